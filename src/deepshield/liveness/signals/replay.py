"""Replay: the same upload, the same frames, or the same face images (cropped, rescaled, mirrored or re-timed:
`liveness.replay`) seen in an earlier session."""

from __future__ import annotations

from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult


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
        ev = {
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
        if ffrac > frac and ffrac >= p.replay_review_fraction:
            assert fhit is not None
            how = "a mirror image of " if fhit.mirrored * 2 > fhit.matched else ""
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
