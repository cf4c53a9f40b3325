"""The real screeners on real photos: the detector pipeline (faces found, score or the stated reason there is
none) is recorded as case evidence, and the policy's decision comes with its reasons."""

from __future__ import annotations

import json
import shutil

from sqlalchemy import select

from deepshield.cases import flows, screening
from deepshield.cases.context import CasesContext
from deepshield.cases.models import CaseEvidence, UploadScreening
from deepshield.store.db import session_scope

from .conftest import file_notice
from .fakes import MemoryHashBank


def test_detector_evidence_on_a_real_photo(sqlite_settings, shared_faces, make_fields, tmp_path):
    photo = shared_faces / "real_photos" / "df_img1.jpg"
    if not photo.exists():
        photo = sorted((shared_faces / "real_photos").glob("*.jpg"))[0]
    bank = MemoryHashBank()
    ctx = CasesContext.build(sqlite_settings, bank=bank, start_worker=False, detector=True)
    assert [sc.name for sc in ctx.screeners] == ["match", "labels", "detector"]
    try:
        case_id, _ = file_notice(ctx, make_fields())
        copy = tmp_path / "evidence.jpg"
        shutil.copy(photo, copy)
        m = screening.attach_media(ctx, case_id, copy, "evidence.jpg", "image", "p", "automated")
        with session_scope(sqlite_settings) as s:
            ev = {
                e.kind: (e.summary, json.loads(e.data))
                for e in s.scalars(select(CaseEvidence).where(CaseEvidence.media_id == m.id))
            }
        assert "detector" in ev
        summary, data = ev["detector"]
        assert data["faces"] >= 1
        assert data["tracks_over_threshold"] == []  # a still image has no tracks
        assert ("detector score" in summary) or ("no detector score" in summary)
        # Banked, then the same photo screened as an upload: blocked, with the reason naming the case.
        flows.decide(ctx, case_id, ["remove", "bank"], actor="rev", actor_kind="human", reason="ncii")
        up = tmp_path / "reupload.jpg"
        shutil.copy(photo, up)
        r = screening.screen_upload(ctx, up, "reupload.jpg", "platform")
        assert r.decision == "block"
        assert any(case_id in x["reason"] for x in r.reasons)
        with session_scope(sqlite_settings) as s:
            row = s.get(UploadScreening, r.id)
            assert row is not None and row.decision == "block" and case_id in row.reasons
    finally:
        ctx.close()
