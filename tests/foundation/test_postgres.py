"""DATABASE_URL switches the service to PostgreSQL: schema, first admin, keys and scans on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import auth, reset_pg


def test_service_runs_on_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_faces: Path
) -> None:
    from fastapi.testclient import TestClient

    from deepshield.accounts.service import create_api_key
    from deepshield.api.app import create_app
    from deepshield.config import get_settings
    from deepshield.store.db import get_engine, reset_engines, session_scope

    reset_pg(postgres_url)
    monkeypatch.setenv("DEEPSHIELD_HOME", str(tmp_path / "home"))
    # The plain postgresql:// form that hosting providers hand out must work too.
    monkeypatch.setenv("DATABASE_URL", postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    get_settings.cache_clear()
    reset_engines()
    try:
        settings = get_settings()
        assert settings.db_url.startswith("postgresql+psycopg://")
        app = create_app(settings)
        assert app.state.first_admin_password
        assert get_engine(settings).dialect.name == "postgresql"
        assert not (tmp_path / "home" / "deepshield.db").exists()
        with session_scope(settings) as s:
            key, _ = create_api_key(s, ["scan"], "pg")
        with TestClient(app) as client:
            photo = (shared_faces / "real_photos" / "fr_two_people.jpg").read_bytes()
            r = client.post("/v1/scans", files={"file": ("p.jpg", photo, "image/jpeg")}, headers=auth(key))
            assert r.status_code == 200 and r.json()["face_count"] == 2
            g = client.get(f"/v1/scans/{r.json()['scan_id']}", headers=auth(key))
            assert g.json()["status"] == "done"
            # NUL bytes cannot be stored by PostgreSQL: a clean 4xx, never a 500.
            bad = client.post("/login", data={"username": "a\x00b", "password": "x", "csrf": "nope"})
            assert 400 <= bad.status_code < 500
    finally:
        get_settings.cache_clear()
        reset_engines()
