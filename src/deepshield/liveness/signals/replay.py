"""Replay: the same upload, or the same frames, seen in an earlier session."""

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
        if frac >= p.replay_fail_fraction:
            return self.result("fail", 1 - frac, [f"{frac:.0%} of the frames were seen in an earlier session"], **ev)
        if frac >= p.replay_review_fraction:
            return self.result("review", 1 - frac, [f"{frac:.0%} of the frames resemble an earlier session"], **ev)
        return self.result("pass", 1 - frac, [], **ev)


SIGNALS.register(ReplaySignal.name, ReplaySignal)
