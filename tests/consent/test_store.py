"""The consent tables: the migration creates exactly what the models describe, and a credential is stored,
listed and revoked on SQLite and on a real PostgreSQL server (shared `postgres_url` fixture)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from deepshield.config import Settings
from deepshield.consent import models
from deepshield.consent.revocation import register_revocation_source, unregister_revocation_source
from deepshield.consent.service import ConsentService
from deepshield.store.db import Base, get_engine, session_scope, upgrade_schema
from deepshield.store.timeutil import utcnow

TABLES = {models.ConsentRequest.__tablename__, models.ConsentCredential.__tablename__}


def _check(st: Settings) -> None:
    from deepshield.labels.keys import init_keys

    init_keys(st.home)
    upgrade_schema(st)
    with get_engine(st).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    ours = [d for d in diff if any(t in repr(d) for t in TABLES)]
    assert ours == [], ours
    svc = ConsentService(st)
    now = utcnow()
    with session_scope(st) as db:
        rec = models.ConsentRequest(
            id="r" + now.strftime("%H%M%S%f"), capture_expires_at=now + dt.timedelta(days=1), created_by="p",
            provider="Avatar Studio", purpose="avatar", consent_expires_at=now + dt.timedelta(days=30),
            status="issued", token_hash="0" * 64, source_json=json.dumps([{"sha256": "a" * 64}]),
            sentence="I agree", evidence_json=json.dumps({"face_template": [[0.1] * 128], "voice_template": [0.2]}),
            face_model="dlib-resnet-v1", voice_model="resemblyzer-ge2e",
        )  # fmt: skip
        db.add(rec)
        db.flush()
        issued = svc.issue(db, rec)
        pin = svc.new_pin(db, rec)
    register_revocation_source(st)
    try:
        assert svc.check_token(issued.token).state.value == "valid"
        with session_scope(st) as db:
            assert [c.id for c in svc.list_credentials(db, "p")][:1] == [issued.credential.id]
            svc.withdraw(db, rec.id, pin)
        assert svc.check_token(issued.token).state.value == "revoked"
    finally:
        unregister_revocation_source()
    with session_scope(st) as db:
        cred = svc.credential(db, issued.credential.id)
        assert cred.revoked_by == "person" and svc.public_credential(cred)["state"] == "revoked"
        assert svc.public_credential(cred)["expires_at"].endswith("+00:00")


def test_consent_store_on_sqlite(tmp_path: Path) -> None:
    _check(Settings(home=tmp_path))


def test_consent_store_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _check(Settings(home=tmp_path, database_url=postgres_url))


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    from deepshield.store.db import reset_engines

    reset_engines()
