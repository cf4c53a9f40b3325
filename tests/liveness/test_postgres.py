"""Sessions, decisions, frame hashes and lockouts on a real PostgreSQL server (shared `postgres_url` fixture)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from deepshield.config import Settings
from deepshield.liveness.service import LivenessService, LivenessSettings, LockedOut
from deepshield.store.db import session_scope, upgrade_schema


def test_sessions_and_lockout_on_postgres(
    tmp_path: Path, shared_faces: Path, faceless_video: Path, postgres_url: str
) -> None:
    st = Settings(home=tmp_path, database_url=postgres_url)
    upgrade_schema(st)
    svc = LivenessService(st, LivenessSettings(max_failures=2))
    subject = "pg-" + uuid.uuid4().hex[:8]
    photo = shared_faces / "real_photos" / "df_img1.jpg"
    ids = []
    for i in range(2):
        with session_scope(st) as db:
            rec, token, _ = svc.create_session(db, photo, subject=subject, device=f"{subject}-dev")
            rec = svc.claim_for_upload(db, rec.id, token)
            assert svc.verify(db, rec, faceless_video, f"{subject}-{i}").outcome == "fail"
            ids.append(rec.id)
    with session_scope(st) as db:
        view = svc.public_view(svc.get(db, ids[0]), detail=True)
        assert view["decision"] == "fail" and view["signals"] and view["expires_at"].endswith("+00:00")
        # The second session's frames were compared with the first one's, stored in the database.
        second = svc.public_view(svc.get(db, ids[1]), detail=True)
        replay = next(s for s in second["signals"] if s["name"] == "replay")
        assert replay["evidence"]["earlier_session"] == ids[0]
        with pytest.raises(LockedOut):
            svc.create_session(db, photo, subject=subject)
    # Started, then replaced by a newer session: abandoned sessions lock the device too (issue 32 point 1).
    device = f"{subject}-shop"
    for i in range(2):
        with session_scope(st) as db:
            rec, token, _ = svc.create_session(db, photo, subject=f"{subject}-s{i}", device=device)
            assert svc.start(db, rec.id, token)["step"]["index"] == 0
    with session_scope(st) as db, pytest.raises(LockedOut):
        svc.admit(db, "someone", device)
    with session_scope(st) as db:
        assert svc.get(db, rec.id).status == "abandoned"
