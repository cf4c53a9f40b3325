"""Fixtures for the matching tests: a temporary store, an app client and API keys (self-contained)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deepshield.config import Settings
from deepshield.matching.indexes import reset_indexes
from deepshield.store.db import session_scope, upgrade_schema


@pytest.fixture(scope="session")
def faces(shared_faces: Path) -> Path:
    if not (shared_faces / "real_photos").is_dir():
        pytest.skip("../shared/data/faces/real_photos absent")
    return shared_faces


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


@pytest.fixture(scope="session")
def python_pdq(real_photos: list[Path]) -> dict[str, tuple[str, int, str]]:
    """Per shared photo: (full-resolution PDQ, its quality, the server's PDQ with the JPEG fast path).

    Computed once per session: the fast-path test and the browser test both compare against it.
    """
    from deepshield.matching.signals.pdq import load_rgb, pdq_from_rgb
    from deepshield.media import open_media

    out = {}
    for f in real_photos:
        m = open_media(f)
        full = pdq_from_rgb(load_rgb(m, fast=False))
        fast_path = m.info.format == "jpeg" and min(m.info.width or 0, m.info.height or 0) >= 1024
        server = pdq_from_rgb(load_rgb(m, fast=True)).hash if fast_path else full.hash
        out[f.name] = (full.hash, full.quality, server)
    return out
