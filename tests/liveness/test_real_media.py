"""Signals measured on real footage: a real talking head with the flash response simulated on it answers the
flashes, the same footage without it does not; the face matches a frame of the same person and not a stranger."""

from __future__ import annotations

from pathlib import Path
from random import Random
from typing import Any

import pytest

from deepshield.liveness.analysis import SessionAnalyzer, SessionTrack, enrich_track
from deepshield.liveness.attacks.crafted import CraftedEdit, mirror_and_crop, tint_face
from deepshield.liveness.attacks.simulate import (
    FaceMasker,
    FlashModel,
    apply_flash_response,
    flash_colour_at,
    screen_recapture,
)
from deepshield.liveness.attacks.videoio import read_clip, write_video
from deepshield.liveness.decision import verify_track
from deepshield.liveness.embedding import get_embedder
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.replay import MemoryReplayIndex
from deepshield.liveness.script import ChallengeScript
from deepshield.liveness.signals import SignalContext
from deepshield.liveness.trajectory import trajectory_of

CLIP = "st_WDA_AlexandriaOcasioCortez_000.mp4"
OTHER = "lp_d13.mp4"
POLICY_OUTSIDE = LivenessPolicy().flash_min_outside


def _edit(mirror: bool) -> CraftedEdit:
    return CraftedEdit(mirror, 0.13, 0.3, 0.7, turn_deg=45.0, profile_deg=60.0, up_deg=40.0, tint_gain=0.1)


def _tinted(frames: list[Any], fps: float, script: ChallengeScript) -> list[Any]:
    masker = FaceMasker()
    try:
        return [
            tint_face(f, masker, flash_colour_at(script.flashes, i / fps - 0.05), 0.12) for i, f in enumerate(frames)
        ]
    finally:
        masker.close()


@pytest.fixture(scope="module")
def sessions(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from deepshield.liveness.attacks.corpus import derive_script

    out = tmp_path_factory.mktemp("live")
    frames, fps = read_clip(shared_faces / "real_videos" / CLIP, 0.0, 5.0, fps=15)
    an = SessionAnalyzer()
    raw = an.analyze_frames(((i / fps, f) for i, f in enumerate(frames)), fps=fps)
    script = derive_script(raw, Random(1))
    lit = apply_flash_response(frames, fps, script.flashes, FlashModel.random(Random(2)), seed=3)
    paths = {
        "genuine": write_video(out / "genuine.mp4", lit, fps),
        "no_flash": write_video(out / "raw.mp4", frames, fps),
        # The outside attacker's flash (issue 32): the face alone tinted, inside the mesh outline.
        "tinted": write_video(out / "tinted.mp4", _tinted(frames, fps, script), fps),
        "replay": write_video(out / "replay.mp4", screen_recapture(lit, fps, script.flashes, Random(4)), fps),
        # The stored session edited as the outside attacker did (issue 32): mirrored and cropped by 13%, or
        # cropped, played backwards from the middle (re-timed); and another person's footage.
        "mirrored": write_video(out / "mirrored.mp4", [mirror_and_crop(f, _edit(True)) for f in lit], fps),
        "retimed": write_video(
            out / "retimed.mp4", [mirror_and_crop(f, _edit(False)) for f in lit[len(lit) // 2 :: -1] + lit], fps
        ),
        "other": write_video(out / "other.mp4", read_clip(shared_faces / "real_videos" / OTHER, 0.0, 5.0, 15)[0], fps),
    }
    emb = get_embedder()
    tracks: dict[str, SessionTrack] = {}
    for k, p in paths.items():
        tracks[k] = an.analyze_file(p)
        enrich_track(tracks[k], emb, None)
        tracks[k].drop_pixels()
    an.close()
    return {"script": script, "tracks": tracks, "fps": fps}


def _sig(d: Any, name: str) -> Any:
    return next(s for s in d.signals if s.name == name)


def test_flash_response_on_real_footage(sessions: dict[str, Any]) -> None:
    script: ChallengeScript = sessions["script"]
    tr = sessions["tracks"]
    g = verify_track(SignalContext(tr["genuine"], script))
    assert _sig(g, "flash").verdict == "pass", _sig(g, "flash").evidence
    assert _sig(g, "challenge").verdict == "pass", _sig(g, "challenge").reasons
    for k in ("no_flash", "replay", "tinted"):
        f = _sig(verify_track(SignalContext(tr[k], script)), "flash")
        assert f.verdict == "fail", (k, f.evidence)
    # The tint follows the flashes well enough; what gives it away is where the light fell.
    tint = _sig(verify_track(SignalContext(tr["tinted"], script)), "flash")
    assert "nothing around it" in tint.reasons[0], tint.evidence
    lit = _sig(g, "flash").evidence["regions"]
    assert lit["outside"] > POLICY_OUTSIDE * (lit["forehead"] + lit["nose"]) / 2


def test_screen_replay_of_an_earlier_session_is_recognised(sessions: dict[str, Any]) -> None:
    tr = sessions["tracks"]
    idx = MemoryReplayIndex()
    idx.add("earlier", str(tr["genuine"].extra["sha256"]), [k.phash for k in tr["genuine"].keyframes])
    r = _sig(
        verify_track(SignalContext(tr["replay"], sessions["script"], replay_index=idx, session_id="new")), "replay"
    )
    assert r.verdict in ("fail", "review"), r.evidence
    # The untouched genuine upload again: the exact bytes were seen.
    r2 = _sig(
        verify_track(SignalContext(tr["genuine"], sessions["script"], replay_index=idx, session_id="new")), "replay"
    )
    assert r2.verdict == "fail"


def test_edited_copies_of_an_earlier_session_are_caught_by_their_faces(sessions: dict[str, Any]) -> None:
    """Issue 32 point 3: a mirrored, cropped, rescaled or re-timed copy of a stored session changes every
    whole-frame hash, not the face crops; a mirror is named as one (its yaw sign flips, which the challenge would
    read as a real turn), and another person's session matches nothing."""
    tr = sessions["tracks"]
    g = tr["genuine"]
    idx = MemoryReplayIndex()
    idx.add("earlier", str(g.extra["sha256"]), [k.phash for k in g.keyframes], [s.face_pdq for s in g.samples])
    for k in ("mirrored", "retimed"):
        r = _sig(verify_track(SignalContext(tr[k], sessions["script"], replay_index=idx, session_id="new")), "replay")
        assert r.verdict == "fail" and r.evidence["face_earlier_session"] == "earlier", (k, r.evidence)
        assert r.evidence["matched"] < r.evidence["face_matched"]  # the whole-frame hashes alone miss it
        assert ("mirror image" in r.reasons[0]) == (k == "mirrored"), r.reasons
    r = _sig(verify_track(SignalContext(tr["other"], sessions["script"], replay_index=idx, session_id="new")), "replay")
    assert r.verdict == "pass" and r.evidence["face_matched"] == 0, r.evidence


def test_edited_copies_of_an_earlier_session_are_caught_by_the_head_motion(
    sessions: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 32 point 3: with no frame or face hash stored, a mirrored and cropped, or a cropped and re-timed
    (half played backwards) copy of a stored session is still caught by how the head moved, a mirror named as
    one; another person's session is not; and the motion is stored in and read back from the database."""
    from deepshield.config import Settings
    from deepshield.liveness.models import LivenessSession
    from deepshield.liveness.service import DbReplayIndex
    from deepshield.store.db import session_scope, upgrade_schema
    from deepshield.store.timeutil import utcnow

    tr = sessions["tracks"]
    policy = LivenessPolicy()
    stored = trajectory_of(tr["genuine"].samples)
    assert stored is not None
    mem = MemoryReplayIndex()
    mem.add("earlier", None, [], [], stored)
    st = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_schema(st)
    with session_scope(st) as db:
        db.add(LivenessSession(id="earlier", expires_at=utcnow(), token_hash="x", script_json="{}"))
        db.flush()
        DbReplayIndex(db).add("earlier", None, [], [], stored)
    with session_scope(st) as db:
        for idx in (mem, DbReplayIndex(db)):
            for k in ("mirrored", "retimed"):
                ctx = SignalContext(tr[k], sessions["script"], replay_index=idx, session_id="new", policy=policy)
                r = _sig(verify_track(ctx), "replay")
                assert r.verdict == "fail" and r.evidence["motion_earlier_session"] == "earlier", (k, r.evidence)
                assert r.evidence["motion_covered"] >= policy.replay_motion_fail, r.evidence
                assert r.evidence["face_matched"] == 0 and "earlier session earlier" in r.reasons[0], r.reasons
                assert r.evidence["motion_mirrored"] == (k == "mirrored"), (k, r.evidence)
                assert ("mirror image" in r.reasons[0]) == (k == "mirrored"), r.reasons
            ctx = SignalContext(tr["other"], sessions["script"], replay_index=idx, session_id="new", policy=policy)
            r = _sig(verify_track(ctx), "replay")
            assert r.verdict == "pass" and r.evidence["motion_covered"] < policy.replay_motion_review, r.evidence


def test_id_photo_match(sessions: dict[str, Any], shared_faces: Path) -> None:
    from deepshield.faces import FaceAnalyzer
    from deepshield.liveness.service import embed_id_photo

    emb = get_embedder()
    if emb is None:
        pytest.skip("dlib-bin / face_recognition_models not installed")
    fa = FaceAnalyzer()
    same = embed_id_photo(shared_faces / "real_photos" / "fp_test_images_angelina_jolie_1.jpg", fa, emb)
    tr = sessions["tracks"]["genuine"]
    stranger = _sig(verify_track(SignalContext(tr, sessions["script"], id_embedding=same)), "id_match")
    assert stranger.verdict == "fail", stranger.evidence
    # A frame of the same person from elsewhere in the video as the "ID photo".
    frames, _ = read_clip(shared_faces / "real_videos" / CLIP, 6.5, 7.0, fps=5)
    faces = fa.analyze(frames[0])
    own = emb.embed(frames[0], faces[0])
    d = verify_track(SignalContext(tr, sessions["script"], id_embedding=own))
    assert _sig(d, "id_match").verdict == "pass", _sig(d, "id_match").evidence
    assert _sig(d, "identity").verdict == "pass"
