"""Consent requests, checks and credentials on real corpus media, including the attacks of issue 29: another
person consenting for a victim's footage, the victim's own source video replayed as the consent video, a real
person with a different voice dubbed in, and revocation by the person and by the provider.

Liveness has its own suite (tests/liveness); where a test here needs a consent video that passed it, the corpus
clip stands in with a liveness decision of "pass", and says so."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from deepshield.cases.models import AuditEvent
from deepshield.consent.service import ConsentService, Issued
from deepshield.liveness.decision import Decision

VICTIM = "st_WDA_KatieHill_000"
OTHER = "st_WDA_BobMenendez_000"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=180)


@pytest.fixture(scope="module")
def clips(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """First half of a video as the provider's source media, second half as the consent recording."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg absent (scripts/apt-packages.txt)")
    d = tmp_path_factory.mktemp("consent-media")
    out: dict[str, Path] = {}
    for who in (VICTIM, OTHER):
        src = shared_faces / "real_videos" / f"{who}.mp4"
        out[f"{who}/source"] = d / f"{who}-source.mp4"
        out[f"{who}/consent"] = d / f"{who}-consent.mp4"
        _ffmpeg("-i", str(src), "-t", "4", "-c:v", "libx264", "-c:a", "aac", str(out[f"{who}/source"]))
        _ffmpeg("-ss", "4", "-i", str(src), "-c:v", "libx264", "-c:a", "aac", str(out[f"{who}/consent"]))
    # the victim's face with the other person's voice dubbed in
    out["dubbed"] = d / "dubbed.mp4"
    _ffmpeg("-i", str(out[f"{VICTIM}/consent"]), "-i", str(out[f"{OTHER}/consent"]), "-map", "0:v", "-map", "1:a",
            "-c:v", "copy", "-c:a", "aac", "-shortest", str(out["dubbed"]))  # fmt: skip
    return out


@pytest.fixture()
def service(keys_home: Path) -> Iterator[ConsentService]:
    from deepshield.config import get_settings
    from deepshield.consent.revocation import register_revocation_source, unregister_revocation_source
    from deepshield.store.db import upgrade_schema

    settings = get_settings()
    upgrade_schema(settings)
    register_revocation_source(settings)
    svc = ConsentService(settings)
    yield svc
    svc.close()
    unregister_revocation_source()


def _request(svc: ConsentService, source: Path, by: str = "provider-a") -> str:
    from deepshield.consent.sources import describe
    from deepshield.store.db import session_scope

    with session_scope(svc.settings) as db:
        rec, _ = svc.create_request(db, "Avatar Studio", "presenter avatar", 30, [describe(source)], by)
        return rec.id


def _decide(svc: ConsentService, request_id: str, video: Path, liveness: Decision) -> tuple[str, list[str], dict]:
    from deepshield.consent.models import ConsentRequest
    from deepshield.consent.sources import describe
    from deepshield.store.db import session_scope

    with session_scope(svc.settings) as db:
        rec = db.get(ConsentRequest, request_id)
        assert rec is not None
        out = svc.decide(db, rec, video, describe(video).sha256, liveness)
        return out.outcome, out.reasons, {c.name: c for c in out.checks}


LIVE = Decision("pass", 1.0, [])  # stand-in: the liveness suite covers liveness itself


def test_genuine_consent_is_issued_verified_and_revoked_by_the_person(
    service: ConsentService, clips: dict[str, Path]
) -> None:
    from deepshield.consent.service import WrongPin
    from deepshield.store.db import session_scope

    rid = _request(service, clips[f"{VICTIM}/source"])
    outcome, reasons, checks = _decide(service, rid, clips[f"{VICTIM}/consent"], LIVE)
    assert checks["face"].verdict == "pass" and checks["voice"].verdict == "pass", reasons
    assert outcome in ("issued", "review")
    with session_scope(service.settings) as db:
        pin = service.new_pin(db, service.get(db, rid))  # as when the capture page's upload is received
        if outcome == "review":  # only the sentence can ask for it here: the clip does not read the sentence
            assert all(r.startswith("sentence:") for r in reasons)
            issued = service.resolve_review(db, rid, approve=True, reviewer="reviewer")
        else:
            issued = service.issue(db, service.get(db, rid))
        assert isinstance(issued, Issued)
        token = issued.token
    assert service.check_token(token).state.value == "valid"
    with session_scope(service.settings) as db, pytest.raises(WrongPin):
        service.withdraw(db, rid, "0000000000" if pin != "0000000000" else "1111111111")
    with session_scope(service.settings) as db:
        service.withdraw(db, rid, pin, "changed my mind")
    res = service.check_token(token)  # the very next check sees it: no cache between store and verifier
    assert res.state.value == "revoked" and "person" in res.reason
    with session_scope(service.settings) as db:  # a second withdrawal changes nothing and is not a second event
        service.withdraw(db, rid, pin)
    with session_scope(service.settings) as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "consent_withdrawn")).all()
        assert [(e.actor_kind, e.reason, json.loads(e.details)["consent_request"]) for e in events] == [
            ("human", "changed my mind", rid)
        ]


def test_provider_revokes_only_its_own_credentials(service: ConsentService, clips: dict[str, Path]) -> None:
    from deepshield.consent.service import ConsentNotFound
    from deepshield.store.db import session_scope

    rid = _request(service, clips[f"{VICTIM}/source"], by="provider-a")
    _decide(service, rid, clips[f"{VICTIM}/consent"], LIVE)
    with session_scope(service.settings) as db:
        rec = service.get(db, rid)
        rec.status = rec.outcome = "issued"  # as after an approved review (the sentence is not read here)
        cid, token = (i := service.issue(db, rec)).credential.id, i.token
    with session_scope(service.settings) as db, pytest.raises(ConsentNotFound):
        service.revoke_by_provider(db, cid, "provider-b")
    with session_scope(service.settings) as db:
        assert len(service.list_credentials(db, "provider-a")) == 1
        assert service.list_credentials(db, "provider-b") == []
        service.revoke_by_provider(db, cid, "provider-a")
    assert service.check_token(token).state.value == "revoked"


def test_another_person_consenting_for_the_victims_footage_fails(
    service: ConsentService, clips: dict[str, Path]
) -> None:
    rid = _request(service, clips[f"{VICTIM}/source"])
    outcome, reasons, checks = _decide(service, rid, clips[f"{OTHER}/consent"], LIVE)
    assert outcome == "failed"
    assert checks["face"].verdict == "fail" and checks["voice"].verdict == "fail", reasons
    assert any("not the person in the source media" in r for r in reasons)


def test_a_different_voice_dubbed_over_the_real_person_fails(service: ConsentService, clips: dict[str, Path]) -> None:
    rid = _request(service, clips[f"{VICTIM}/source"])
    outcome, reasons, checks = _decide(service, rid, clips["dubbed"], LIVE)
    assert checks["face"].verdict == "pass"
    assert outcome == "failed" and checks["voice"].verdict == "fail", reasons
    assert any("not the voice of the source recordings" in r for r in reasons)


def test_the_victims_source_video_replayed_as_the_consent_video_fails(
    service: ConsentService, clips: dict[str, Path]
) -> None:
    """The whole flow: capture started (liveness script + sentence), the source clip uploaded as the recording;
    the real liveness verifier sees no scripted move, and the file is one of the sources."""
    from deepshield.consent.sources import describe
    from deepshield.store.db import session_scope

    source = clips[f"{VICTIM}/source"]
    with session_scope(service.settings) as db:
        rec, token = service.create_request(db, "Avatar Studio", "presenter avatar", 30, [describe(source)], "p")
        rid = rec.id
    with session_scope(service.settings) as db:
        _live_id, live_token, script, sentence = service.start_capture(db, rid, token)
        assert sentence.startswith("I agree that avatar studio") and len(script.steps) > 0
    with session_scope(service.settings) as db:
        out, received = service.submit(db, rid, token, live_token, source, describe(source).sha256)
        assert received.request_id == rid and len(received.pin) == 10
        assert service.credential_of(db, rid) is None
    checks = {c.name: c for c in out.checks}
    assert out.outcome == "failed"
    assert checks["liveness"].verdict == "fail" and checks["replay"].verdict == "fail", out.reasons
    with session_scope(service.settings) as db:
        assert service.get(db, rid).status == "failed"
        from deepshield.consent.service import ConsentConflict

        with pytest.raises(ConsentConflict):
            service.issue(db, service.get(db, rid))
