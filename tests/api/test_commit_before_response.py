"""A request's database work is committed before its response leaves the server: a browser that follows the
sign-in's redirect at once must find its session. (FastAPI's default ran the session dependency's exit, and so the
commit, after the response was sent; on a loaded CI machine the redirect to /console arrived first and was sent
back to /login.) The commit is slowed here so the old order fails every time, not once in a few runs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn

from deepshield.accounts.service import create_user
from deepshield.api import deps
from deepshield.api.app import create_app
from deepshield.config import get_settings
from deepshield.store import db as store_db
from deepshield.store.db import session_scope

COMMIT_DELAY_S = 0.5


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def slow_commit_server(ds_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    get_settings.cache_clear()
    settings = get_settings()
    app = create_app(settings)
    with session_scope(settings) as s:
        create_user(s, "rev", "rev-password", "reviewer")

    @contextlib.contextmanager
    def slow_scope(settings_: object = None) -> Iterator[object]:
        with store_db.session_scope(settings_) as session:  # type: ignore[arg-type]
            yield session
            time.sleep(COMMIT_DELAY_S)  # the route has returned; the commit follows this

    monkeypatch.setattr(deps, "session_scope", slow_scope)
    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_the_redirect_after_sign_in_finds_the_session(slow_commit_server: str) -> None:
    with httpx.Client(base_url=slow_commit_server, timeout=30) as client:
        page = client.get("/login", params={"next": "/console"})
        assert page.status_code == 200
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = client.post(
            "/login", data={"username": "rev", "password": "rev-password", "csrf": csrf, "next": "/console"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/console"
        # At once, as a browser follows a redirect: the session row must already be there.
        console = client.get("/console")
        assert console.status_code == 200, (console.status_code, console.headers.get("location"))
