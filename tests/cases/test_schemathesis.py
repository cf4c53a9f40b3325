"""Bad input: schemathesis generates requests from the OpenAPI spec for every cases endpoint; none may answer
5xx (with a valid admin key, so the requests get past authentication into the handlers)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from schemathesis import BaseSchema, Case

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (pip install -e .[dev])")
from hypothesis import HealthCheck, settings  # noqa: E402

from deepshield.accounts.service import create_api_key  # noqa: E402
from deepshield.api.app import create_app  # noqa: E402
from deepshield.cases.context import CasesContext  # noqa: E402
from deepshield.config import Settings  # noqa: E402
from deepshield.store.db import reset_engines, session_scope, upgrade_schema  # noqa: E402

from .conftest import KEYED_PATH_PREFIXES  # noqa: E402
from .fakes import MemoryHashBank  # noqa: E402

pytestmark = pytest.mark.slow
#: Examples per operation: a handful in the suite; raise it (DEEPSHIELD_FUZZ_EXAMPLES=200) for a deeper search.
EXAMPLES = int(os.environ.get("DEEPSHIELD_FUZZ_EXAMPLES", "8"))
KEY: dict[str, str] = {}
#: The Respond API: the keyed routes and the self-service routes that victims reach with a case token.
CASE_PATHS = (*KEYED_PATH_PREFIXES, "/v1/selfservice")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_schema(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    reset_engines()
    url = None
    if request.param == "postgresql":
        from tests.conftest import reset_pg

        url = request.getfixturevalue("postgres_url")
        reset_pg(url)
    s = Settings(home=tmp_path_factory.mktemp("st"), database_url=url)
    s.ensure_dirs()
    upgrade_schema(s)
    app = create_app(s, cases=CasesContext.build(s, bank=MemoryHashBank(), screeners=[], start_worker=False))
    with session_scope(s) as ss:
        KEY["admin"], _ = create_api_key(ss, ["admin"], "fuzz")
    yield schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^(" + "|".join(CASE_PATHS) + ")")
    reset_engines()


def test_no_server_errors(api_schema: BaseSchema) -> None:
    """Every operation, a handful of generated requests each (valid and invalid by the schema)."""
    from hypothesis import given
    from schemathesis.core.result import Ok

    checked = []
    statuses: list[int] = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation of the OpenAPI spec does not load: {result.err()}"
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {KEY['admin']}"})
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])

        run()
        checked.append(f"{op.method.upper()} {op.path}")
    assert len(checked) >= 18, checked
    assert len(statuses) >= 5 * len(checked)
    assert any(200 <= c < 300 for c in statuses) and any(400 <= c < 500 for c in statuses)
