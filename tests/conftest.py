"""Fixtures shared by every domain's tests: the shared face corpus, an app on a temporary data directory,
API keys, and generated media."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
