"""Fixtures for the cases tests: settings on a temp SQLite home, or on the real PostgreSQL server that the root
conftest starts (`postgres_url`)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update

from deepshield.cases import service
from deepshield.cases.context import CasesContext
from deepshield.cases.models import Case
from deepshield.cases.validity import ReportFields
from deepshield.config import Settings
from deepshield.store.db import reset_engines, session_scope, upgrade_schema
from deepshield.store.timeutil import utcnow
from tests.conftest import csrf_token, free_port, reset_pg

from .fakes import MemoryHashBank

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

#: Path prefixes of the Respond API that need an API key (the self-service routes take a case token instead).
KEYED_PATH_PREFIXES = (
    "/v1/cases",
    "/v1/reports",
    "/v1/uploads",
    "/v1/transparency",
    "/v1/webhooks",
    "/v1/audit",
    "/v1/statements",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh database: SQLite under tmp_path, or a fresh schema on the test PostgreSQL."""
    url = None
    if request.param == "postgresql":
        reset_engines()  # no pooled connection to the schema that is dropped
        url = request.getfixturevalue("postgres_url")
        reset_pg(url)
    yield from _fresh_settings(tmp_path / "home", url)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Iterator[Settings]:
    yield from _fresh_settings(tmp_path / "home", None)


def _fresh_settings(home: Path, database_url: str | None) -> Iterator[Settings]:
    """Settings on a migrated database, with no engine of an earlier test cached before or after."""
    reset_engines()
    s = Settings(home=home, database_url=database_url)
    s.ensure_dirs()
    upgrade_schema(s)
    yield s
    reset_engines()


@pytest.fixture
def ctx(settings: Settings) -> Iterator[CasesContext]:
    c = CasesContext.build(settings, bank=MemoryHashBank(), screeners=[], start_worker=False)
    yield c
    c.close()


def file_notice(
    ctx: CasesContext, fields: ReportFields, key: str | None = None, submitted_by: str = "p"
) -> tuple[str, str]:
    """File a notice as the API does (an automated actor) and commit it; returns the case id and its PIN."""
    with session_scope(ctx.settings) as s:
        case, pin = service.create_case(
            s,
            fields,
            source="api",
            submitted_by=submitted_by,
            actor_kind="automated",
            policy=ctx.policy,
            settings=ctx.settings,
            idempotency_key=key,
        )
        return case.id, pin


def set_clocks(settings: Settings, *clocks: tuple[str, float, float]) -> None:
    """Move cases' deadline clocks: each (case id, hours since it became valid, hours left, negative if overdue)."""
    now = utcnow()
    with session_scope(settings) as s:
        for case_id, since_h, left_h in clocks:
            s.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(valid_at=now - dt.timedelta(hours=since_h), due_at=now + dt.timedelta(hours=left_h))
            )


def valid_fields(**over: object) -> ReportFields:
    base: dict[str, object] = dict(
        category="ncii",
        jurisdiction="US",
        content_locations=["https://example.com/v/123"],
        explanation="A sexual deepfake of me posted without consent.",
        good_faith=True,
        signature="Jane Roe",
        reporter_name="Jane Roe",
        reporter_email="jane@example.org",
        reporter_contact="",
        reporter_role="depicted_person",
    )
    base.update(over)
    return ReportFields(**base)  # type: ignore[arg-type]


@pytest.fixture
def make_fields() -> Callable[..., ReportFields]:
    return valid_fields


@pytest.fixture
def make_json() -> Callable[..., dict[str, object]]:
    return lambda **over: asdict(valid_fields(**over))


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[TestClient, CasesContext, Callable[..., dict[str, str]]]]:
    """(TestClient, context, key factory) on the app with an in-memory bank and no detector (fast)."""
    from fastapi.testclient import TestClient

    from deepshield.accounts.service import create_api_key
    from deepshield.api.app import create_app
    from deepshield.cases.adapters import BankScreener
    from deepshield.cases.ratelimit import FORM, LOGIN_ACCOUNT, LOGIN_CLIENT, PIN
    from deepshield.store.db import session_scope

    for limiter in (FORM, PIN, LOGIN_ACCOUNT, LOGIN_CLIENT):
        limiter._hits.clear()
    bank = MemoryHashBank()
    ctx = CasesContext.build(settings, bank=bank, screeners=[], start_worker=False)
    ctx.screeners = [BankScreener(bank, ctx.policy.screening)]
    app = create_app(settings, cases=ctx)  # the app closes it when its lifespan ends

    def key(*scopes: str) -> dict[str, str]:
        with session_scope(settings) as s:
            k, _ = create_api_key(s, list(scopes), "platform")
        return {"Authorization": f"Bearer {k}"}

    with TestClient(app) as client:
        yield client, ctx, key


def login(client: TestClient, settings: Settings, username: str, role: str) -> str:
    """Create a user and sign the TestClient in; returns the CSRF token of the session."""
    from deepshield.accounts.service import create_user
    from deepshield.store.db import session_scope

    with session_scope(settings) as s:
        create_user(s, username, "pw-" + username, role)
    page = client.get("/login").text
    tok = csrf_token(page)
    r = client.post(
        "/login",
        data={"username": username, "password": "pw-" + username, "csrf": tok, "next": "/console"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get("/console").text
    return csrf_token(page)


def make_image(path: Path, seed: int = 0) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = (rng.random((96, 128, 3)) * 255).astype("uint8")
    Image.fromarray(arr).save(path)
    return path


class Server:
    """`deepshield serve` in a subprocess on a loopback port (so it can be SIGKILLed)."""

    def __init__(self, settings: Settings, extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        src = str(Path(__file__).resolve().parents[2] / "src")
        self.env = {
            **os.environ,
            "DEEPSHIELD_HOME": str(settings.home),
            "PYTHONPATH": src,
            **({"DATABASE_URL": settings.database_url} if settings.database_url else {}),
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        import sys
        import urllib.request

        self.log = open(self.settings.home / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deepshield.cli.main", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(900):  # up to ~90 s on a loaded machine
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.settings.home / f'server-{self.port}.log').read_text()}")
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self, "log"):
            self.log.close()
