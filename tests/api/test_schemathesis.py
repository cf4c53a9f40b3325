"""Every operation of `/openapi.json`, fuzzed by schemathesis's engine (the `st run` phases: examples,
coverage, fuzzing, stateful) with every check it has: no server error, and the answers conform to the
declared schema (status codes, content types, headers, bodies, `Allow`), schema-valid requests are accepted
and schema-invalid ones refused, auth is enforced, deleted resources stay gone (issue 31 point 13).

A valid admin key is sent, so the requests reach the handlers. Few examples per operation in the suite;
`DEEPSHIELD_FUZZ_EXAMPLES=200` searches deeper.

Where a check cannot judge an operation, its expected statuses are widened for that operation only, with
the reason in `OPERATIONS` below; no check is turned off.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from schemathesis import Case
    from schemathesis.schemas import BaseSchema

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (pip install -e .[dev])")
from fastapi.testclient import TestClient  # noqa: E402
from schemathesis import engine  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.engine import events  # noqa: E402
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario  # noqa: E402
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER  # noqa: E402

from deepshield.accounts.service import create_api_key  # noqa: E402
from deepshield.api.app import create_app  # noqa: E402
from deepshield.cases.context import CasesContext  # noqa: E402
from deepshield.config import Settings  # noqa: E402
from deepshield.store.db import reset_engines, session_scope, upgrade_schema  # noqa: E402
from tests.cases.fakes import MemoryHashBank  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("DEEPSHIELD_FUZZ_EXAMPLES", "10"))
#: What positive_data_acceptance takes by default (schemathesis's own list).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
#: Operations whose file field is media: a `format: binary` string is any bytes, and no schema can say
#: "a decodable image or video", so a generated file is refused as unsupported (415) or corrupt (422).
MEDIA_UPLOADS = (
    "POST /v1/scans",
    "POST /v1/uploads",
    "POST /v1/labels",
    "POST /v1/labels/verify",
    "POST /v1/liveness/sessions",
    "POST /v1/liveness/sessions/{session_id}/video",
    "POST /v1/cases/{case_id}/media",
    "POST /v1/consents",
    "POST /v1/consents/{request_id}/video",
)
#: HMA's wire format (kept for its clients): free-form bodies and either/or parameters whose meaning depends
#: on another field (a hash's format on its `signal_type`, `url` or `signal` + `signal_type`) answer 400.
HMA = "^/(h|m|c)/"
HMA_UPLOADS = ("POST /h/hash", "POST /m/lookup", "POST /c/bank/{bank_name}/content")
OPERATIONS: list[dict[str, Any]] = [
    {
        "include-name": list(HMA_UPLOADS),
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400", "415", "422"]}},
    },
    {
        "include-path-regex": HMA,
        "exclude-name": list(HMA_UPLOADS),
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}},
    },
    {
        "include-name": list(MEDIA_UPLOADS),
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "415", "422"]}},
    },
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_schema(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    reset_engines()
    url = None
    if request.param == "postgresql":
        from tests.conftest import reset_pg

        url = request.getfixturevalue("postgres_url")
        reset_pg(url)
    # No exchange fetches on a timer: the fuzzer's exchanges change only through its own requests.
    s = Settings(home=tmp_path_factory.mktemp("st"), database_url=url, exchange_fetch_minutes=0)
    s.ensure_dirs()
    upgrade_schema(s)
    app = create_app(s, cases=CasesContext.build(s, bank=MemoryHashBank(), screeners=[], start_worker=False))
    with session_scope(s) as ss:
        key, _ = create_api_key(ss, ["admin"], "fuzz")
    config = SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {key}"},
            "generation": {"max-examples": EXAMPLES},
            "operations": OPERATIONS,
        }
    )
    hook = _unique_idempotency_keys()
    with TestClient(app):  # the lifespan builds the services the routes use
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    GLOBAL_HOOK_DISPATCHER.unregister(hook)
    reset_engines()


def _unique_idempotency_keys() -> Callable[..., None]:
    """Generated `Idempotency-Key` values repeat ("0", "") across different bodies, which the server rightly
    refuses (422: a key reused for another request); a valid key is made unique, an invalid one is kept.
    (`before_call` is the one hook every phase runs, and it is global: the fixture removes it.)"""
    counter = itertools.count()

    def before_call(_: object, case: Case, kwargs: dict[str, Any]) -> None:
        data = case.meta.phase.data if case.meta is not None else None
        if isinstance(data, CoveragePhaseData) and data.scenario == CoverageScenario.MISSING_PARAMETER:
            return  # an edited case is revalidated, and the scenario (a header left out) would be lost
        value = case.headers.get("idempotency-key") if case.headers is not None else None
        if case.headers is not None and isinstance(value, str) and len(value) <= 128:
            case.headers["idempotency-key"] = f"{value[:100]}#{next(counter)}"

    return schemathesis.hook(before_call)


def test_every_operation_conforms(api_schema: BaseSchema) -> None:
    """0 failures of any check on any operation; failures are listed by check, operation and title."""
    load_all_checks()
    failures: Counter[tuple[str, str, str]] = Counter()
    samples: dict[tuple[str, str, str], str] = {}
    operations: set[str] = set()
    errors: list[str] = []
    for event in engine.from_schema(api_schema).execute():
        if isinstance(event, events.ScenarioFinished):
            operations.add(event.recorder.label)
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.failure_info is not None:
                        found = (node.name, event.recorder.label, node.failure_info.failure.title)
                        failures[found] += 1
                        samples.setdefault(
                            found, f"{node.failure_info.failure.message}\n    {node.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(repr(getattr(event, "value", None) or getattr(event, "exception", None))[:300])
    report = "\n".join(f"{n} x {k}\n    {samples[k][:3000]}" for k, n in sorted(failures.items()))
    assert not errors, errors
    assert not failures, report
    declared = {f"{method.upper()} {path}" for path, item in api_schema.raw_schema["paths"].items() for method in item}
    assert declared <= operations, sorted(declared - operations)
    assert len(declared) >= 49, sorted(declared)
    assert {"use_after_free", "ensure_resource_availability", "ignored_auth"} <= set(CHECKS.get_all_names())
