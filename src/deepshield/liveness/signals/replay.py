"""Replay: the same upload, the same frames, the same face images (cropped, rescaled, mirrored or re-timed:
`liveness.replay`) or the same head motion (`liveness.trajectory`) seen in an earlier session."""

from __future__ import annotations

from typing import Any

from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult
from deepshield.liveness.trajectory import trajectory_of


class ReplaySignal(LivenessSignal):
    name = "replay"
    weight = 2.0

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        idx = ctx.replay_index
        if idx is None:
            return self.result("unavailable", 0.0, ["no replay index configured"])
        p = ctx.policy
        sha = ctx.track.extra.get("sha256")
        if isinstance(sha, str):
            prev = idx.seen_sha256(sha, ctx.session_id)
            if prev:
                return self.result(
                    "fail", 0.0, ["this exact video was uploaded in an earlier session"], earlier_session=prev
                )
        hashes = [k.phash for k in ctx.track.keyframes]
        hit = idx.best_match(hashes, p.replay_hamming, ctx.session_id)
        frac = hit.matched / len(hashes) if hit and hashes else 0.0
        ev: dict[str, Any] = {
            "keyframes": len(hashes),
            "matched": hit.matched if hit else 0,
            "earlier_session": hit.session_id if hit else None,
        }
        faced = [k.face_pdq for k in ctx.track.keyframes if k.face_pdq]
        fhit = idx.best_face_match(faced, p.replay_face_pdq, ctx.session_id) if faced else None
        ffrac = fhit.matched / len(faced) if fhit and faced else 0.0
        ev.update(
            face_keyframes=len(faced),
            face_matched=fhit.matched if fhit else 0,
            face_mirrored=fhit.mirrored if fhit else 0,
            face_earlier_session=fhit.session_id if fhit else None,
        )
        mhit = idx.best_motion_match(trajectory_of(ctx.track.samples), p.replay_motion_ncc, ctx.session_id)
        mfrac = mhit.covered if mhit else 0.0
        ev.update(
            motion_covered=round(mfrac, 3),
            motion_mirrored=mhit.mirrored if mhit else None,
            motion_earlier_session=mhit.session_id if mhit else None,
        )
        frames = self._frames(p, frac, ffrac, fhit.mirrored * 2 > fhit.matched if fhit else False, ev)
        if frames.verdict == "fail" or mfrac < p.replay_motion_review:
            return frames
        assert mhit is not None
        how = "a mirror image of " if mhit.mirrored else ""
        what = f"{mfrac:.0%} of the head's motion {{}} {how}earlier session {mhit.session_id}'s"
        if mfrac >= p.replay_motion_fail:
            return self.result("fail", 1 - mfrac, [what.format("follows")], **ev)
        if frames.verdict == "review":
            return frames
        return self.result("review", 1 - mfrac, [what.format("resembles")], **ev)

    def _frames(self, p: LivenessPolicy, frac: float, ffrac: float, mirrored: bool, ev: dict[str, Any]) -> SignalResult:
        """The verdict of the whole-frame (`frac` of keyframes matched) and face-crop (`ffrac`) hashes."""
        if ffrac > frac and ffrac >= p.replay_review_fraction:
            how = "a mirror image of " if mirrored else ""
            what = f"{ffrac:.0%} of the face images {{}} {how}an earlier session's"
            if ffrac >= p.replay_fail_fraction:
                return self.result("fail", 1 - ffrac, [what.format("are")], **ev)
            return self.result("review", 1 - ffrac, [what.format("resemble")], **ev)
        if frac >= p.replay_fail_fraction:
            return self.result("fail", 1 - frac, [f"{frac:.0%} of the frames were seen in an earlier session"], **ev)
        if frac >= p.replay_review_fraction:
            return self.result("review", 1 - frac, [f"{frac:.0%} of the frames resemble an earlier session"], **ev)
        return self.result("pass", 1 - frac, [], **ev)


SIGNALS.register(ReplaySignal.name, ReplaySignal)
