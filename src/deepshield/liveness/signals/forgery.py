"""Face-forgery score from the Detect domain's detector, with extra weight on turned and profile frames, where
real-time face swaps break. A session fails on its worst frames: a run of consecutive keyframes all at or above
the policy's run score (fitted on genuine sessions held apart from the reported suite, `deepshield liveness
calibrate-forgery`), since an attacker who edits only some steps (a warped turn) keeps the weighted mean low. A
weighted mean or any single keyframe at the detector's own threshold sends the session to review: a genuine face
the detector dislikes throughout, with no run that sure, is a reviewer's call.

The scores are computed per keyframe by `analysis.enrich_track`, with whichever
detector the service loaded. Without an installed detector, or when it could score no face, this signal says so
and carries no weight (verdict "unavailable"): it has no evidence, so it leaves the decision to the others
rather than voting a made-up 0.5. The shipped detector scores every face it is given, so nothing scored means no
keyframe showed a face: the challenge, identity and ID-photo-match signals, which need one, already stop that."""

from __future__ import annotations

import numpy as np

from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult

PROFILE_WEIGHT = 3.0
#: Detector score at or above which a frame counts as manipulated, when the track does not carry the detector's
#: own documented threshold.
DEFAULT_THRESHOLD = 0.5


def worst_run(scores: list[float], frames: int) -> float:
    """The highest score that `frames` consecutive scored keyframes all reach (the minimum of the best window);
    0 when fewer keyframes were scored."""
    return max((min(scores[i : i + frames]) for i in range(len(scores) - frames + 1)), default=0.0)


class ForgeryScore(LivenessSignal):
    name = "forgery"
    weight = 2.0

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        name = ctx.track.extra.get("detector")
        if not name:
            return self.result("unavailable", 0.0, ["no face-forgery detector installed"])
        thr = float(ctx.track.extra.get("detector_threshold") or DEFAULT_THRESHOLD)  # type: ignore[arg-type]
        scored = [
            (k.t, k.forgery, abs(k.yaw) if k.yaw is not None else 90.0)
            for k in ctx.track.keyframes
            if k.forgery is not None
        ]
        if not scored:
            return self.result("unavailable", 0.0, ["no face could be scored for forgery"], detector=name)
        scores = [s for _, s, _ in scored]
        weights = [PROFILE_WEIGHT if yaw >= 30 else 1.0 for _, _, yaw in scored]
        s = float(np.average(scores, weights=weights))
        wi = int(np.argmax(scores))
        pol = ctx.policy
        run = worst_run(scores, pol.forgery_run_frames)
        ev = {
            "detector": name,
            "threshold": thr,
            "weighted_mean": round(s, 4),
            "max": round(scores[wi], 4),
            "frames": len(scores),
            "profile_frames": sum(1 for w in weights if w > 1),
            "worst_run": round(run, 4),
            "run_frames": pol.forgery_run_frames,
            "run_score": pol.forgery_run_score,
        }
        if run >= pol.forgery_run_score:
            # Review, not fail: the run score fitted on held-apart genuine sessions failed 5 of 33 genuine
            # sessions of the reported suite (the detector's scores follow the person), so on its own this
            # detector is a reviewer's call (docs/liveness.md).
            msg = f"the face looks manipulated in {pol.forgery_run_frames} keyframes in a row (face-forgery detector)"
            return self.result("review", 1 - s, [msg], **ev)
        if s >= thr:
            return self.result("review", 1 - s, ["the face looks manipulated on average (face-forgery detector)"], **ev)
        if scores[wi] >= thr:
            return self.result(
                "review", 1 - s, [f"some frames look manipulated (worst at {scored[wi][0]:.1f} s)"], **ev
            )
        return self.result("pass", 1 - s, [], **ev)


SIGNALS.register(ForgeryScore.name, ForgeryScore)
