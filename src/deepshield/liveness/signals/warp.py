"""Warped turns (issue 32 point 4): a turn or profile made by bending a frontal face with a 2.5-D warp.

The analyser crops every sampled frame (about 7 a second) whose face is turned at least the model's minimum yaw,
and `analysis.enrich_track` scores them with the warped-turn detector (`liveness/warp.py`). A face that was never
turned is not evidence of anything here, so this signal has no weight in the combined score: it can only fail
or review a session, never vouch for one. `warp_fail_frames` turned frames at or above `warp_fail_score` fail
it; `warp_review_frames` at or above `warp_review_score` send it to review. Only frames turned at least
`warp_min_yaw` are judged: a turn step needs more, and a noisy camera's slightly turned frames look warped.
"""

from __future__ import annotations

from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult


class WarpedTurn(LivenessSignal):
    name = "warp"
    weight = 0.0
    critical = True

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        model = ctx.track.extra.get("warp_model")
        if not model:
            return self.result("unavailable", 0.0, ["no warped-turn detector installed"])
        pol = ctx.policy
        scored = [
            (f.t, f.warp, f.yaw) for f in ctx.track.turned if f.warp is not None and abs(f.yaw) >= pol.warp_min_yaw
        ]
        if not scored:
            return self.result("abstain", 1.0, [], model=model, frames=0, min_yaw=pol.warp_min_yaw)
        worst_t, worst, worst_yaw = max(scored, key=lambda s: s[1])
        over_fail = [t for t, p, _ in scored if p >= pol.warp_fail_score]
        over_review = [t for t, p, _ in scored if p >= pol.warp_review_score]
        ev = {
            "model": model,
            "frames": len(scored),
            "max": round(worst, 4),
            "max_at_s": round(worst_t, 2),
            "max_yaw": round(worst_yaw, 1),
            "min_yaw": pol.warp_min_yaw,
            "over_fail": len(over_fail),
            "over_review": len(over_review),
            "fail_frames": pol.warp_fail_frames,
            "review_frames": pol.warp_review_frames,
            "fail_score": pol.warp_fail_score,
            "review_score": pol.warp_review_score,
        }
        if len(over_fail) >= pol.warp_fail_frames:
            msg = (
                f"the turned face looks like a frontal face bent by a warp in {len(over_fail)} frames "
                f"(first at {min(over_fail):.1f} s)"
            )
            return self.result("fail", 1 - worst, [msg], **ev)
        if len(over_review) >= pol.warp_review_frames:
            return self.result(
                "review", 1 - worst, [f"the turned face may be a warped frontal face (worst at {worst_t:.1f} s)"], **ev
            )
        return self.result("pass", 1 - worst, [], **ev)


SIGNALS.register(WarpedTurn.name, WarpedTurn)
