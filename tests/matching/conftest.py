"""Fixtures for the matching tests: a temporary store, an app client and API keys (self-contained)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deepshield.config import Settings
from deepshield.matching.indexes import reset_indexes
from deepshield.store.db import session_scope, upgrade_schema

FACES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "faces"


@pytest.fixture(scope="session")
def faces() -> Path:
    if not (FACES / "real_photos").is_dir():
        pytest.skip("../shared/data/faces absent")
    return FACES


@pytest.fixture(scope="session")
def real_photos(faces: Path) -> list[Path]:
    d = faces / "real_photos"
    return sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp"))


@pytest.fixture()
def match_settings(tmp_path: Path) -> Iterator[Settings]:
    s = Settings(home=tmp_path / "home")
    s.ensure_dirs()
    upgrade_schema(s)
    yield s
    reset_indexes()


@pytest.fixture()
def match_session(match_settings: Settings) -> Callable[[], object]:
    def make() -> object:
        return session_scope(match_settings)

    return make


@pytest.fixture()
def match_client(match_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app

    monkeypatch.setenv("DEEPSHIELD_HOME", str(match_settings.home))
    app = create_app(match_settings)
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def match_key(match_settings: Settings) -> Callable[..., dict[str, str]]:
    from deepshield.accounts.service import create_api_key

    def make(*scopes: str) -> dict[str, str]:
        with session_scope(match_settings) as s:
            key, _ = create_api_key(s, list(scopes), "test")
        return {"Authorization": f"Bearer {key}"}

    return make
