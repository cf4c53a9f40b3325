"""Fixtures shared by every domain's tests: the shared face corpus, an app on a temporary data directory,
API keys, and generated media."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"shared face corpus absent at {SHARED_FACES}: tests on real media skipped")
    return SHARED_FACES


@pytest.fixture()
def ds_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh DEEPSHIELD_HOME (SQLite) for one test; DATABASE_URL cleared unless a test sets it."""
    from deepshield.config import get_settings
    from deepshield.store.db import reset_engines

    home = tmp_path / "home"
    monkeypatch.setenv("DEEPSHIELD_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    reset_engines()
    yield home
    get_settings.cache_clear()
    reset_engines()


@pytest.fixture()
def app_client(ds_home: Path) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app
    from deepshield.config import get_settings

    app = create_app(get_settings())
    with TestClient(app) as client:
        yield client


@pytest.fixture()
def api_key(ds_home: Path) -> Callable[..., str]:
    """api_key("scan", "match") -> a plaintext key with those scopes."""
    from deepshield.accounts.service import create_api_key
    from deepshield.store.db import session_scope, upgrade_schema

    def make(*scopes: str) -> str:
        upgrade_schema()
        with session_scope() as s:
            key, _ = create_api_key(s, list(scopes), "test")
        return key

    return make


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def report_action(page: str) -> str:
    """The public report form's action URL: it carries the CSRF token, checked before the body is read."""
    found = re.search(r'<form method="post" action="(/report\?csrf=[^"]+)"', page)
    assert found, "no report form on the page"
    return found.group(1)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def require_chromium_and_ffmpeg() -> None:
    """Skip, saying which, when the browser or the tool that turns a corpus clip into a fake camera is absent."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg missing (scripts/apt-packages.txt)")


@contextmanager
def fake_camera_page(origin: str, video: Path, audio: Path | None = None) -> Iterator[Page]:
    """A phone-sized page in headless Chromium whose camera plays `video` (a .y4m, looped) and, given `audio`
    (a .wav), whose microphone plays it, with the permissions granted to `origin` as a person's tap would."""
    from playwright.sync_api import sync_playwright

    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    if audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={audio}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            ctx = b.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            ctx.grant_permissions(["camera"] if audio is None else ["camera", "microphone"], origin=origin)
            yield ctx.new_page()
        finally:
            b.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, url: str, admin_password: str, home: Path, proc: object) -> None:
        self.url = url
        self.admin_password = admin_password
        self.home = home
        self.proc = proc


@pytest.fixture()
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """`deepshield serve` as a real process on a loopback port, with its first-start admin password."""
    import re
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    home = tmp_path / "served"
    env = {**os.environ, "DEEPSHIELD_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepshield.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("server did not start:\n" + log.read()) from None
                time.sleep(0.2)
        log.seek(0)
        m = re.search(r"one-time password (\S+)", log.read())
        assert m, "first start must print the admin's one-time password"
        yield LiveServer(url, m.group(1), home, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:
            proc.kill()
        log.close()


#: Every browser step's wait (a failure still fails, only later): see `browser`.
BROWSER_TIMEOUT_MS = 120_000


@pytest.fixture()
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: install Debian's chromium (scripts/system-packages.sh does)")
    from playwright.sync_api import BrowserContext, sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        new_context = b.new_context

        def patient_context(**kwargs: Any) -> BrowserContext:
            # Sign-in hashes passwords and the service scans media on two shared cores: under load a step can
            # take well over Playwright's 30 s default, which is a slow machine, not a broken page.
            ctx = new_context(**kwargs)
            ctx.set_default_timeout(BROWSER_TIMEOUT_MS)
            return ctx

        b.new_context = patient_context  # type: ignore[method-assign]
        try:
            yield b
        finally:
            b.close()


# A real PostgreSQL server from Debian's binaries on a loopback port, shared by every domain's tests.
PG_BIN = Path(os.environ.get("DEEPSHIELD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if os.environ.get("DEEPSHIELD_TEST_PG_URL"):
        yield os.environ["DEEPSHIELD_TEST_PG_URL"]
        return
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql)")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
    tmp = Path(tempfile.mkdtemp(prefix="ds-pg-"))
    data = tmp / "data"
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
        tmp.chmod(0o700)
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run(
        _as_pg_user([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "ds", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        env=env,
    )
    subprocess.run(
        _as_pg_user(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(tmp / "log"),
                "-w",
                "-o",
                f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        import psycopg

        for _ in range(50):
            try:
                with psycopg.connect(f"host=127.0.0.1 port={port} user=ds dbname=postgres", autocommit=True) as c:
                    c.execute("CREATE DATABASE deepshield")
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        yield f"postgresql+psycopg://ds@127.0.0.1:{port}/deepshield"
    finally:
        subprocess.run(
            _as_pg_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            env=env,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def reset_pg(url: str) -> None:
    """Empty the test database (drop and recreate the public schema)."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    eng.dispose()
