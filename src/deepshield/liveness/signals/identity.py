"""One identity throughout: no face switch (embeddings of the frontal frames agree), no cut (the face never
jumps across the frame between neighbouring samples) and no second face in view."""

from __future__ import annotations

import numpy as np

from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult, Verdict


class SingleIdentity(LivenessSignal):
    name = "identity"
    weight = 2.0

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        p = ctx.policy
        reasons: list[str] = []
        verdict: Verdict = "pass"
        ev: dict[str, object] = {}
        # Cuts: the tracked face centre jumping by more than max_jump_widths face widths in one sample step.
        s = ctx.track.samples
        jumps = []
        for a, b in zip(s, s[1:], strict=False):
            if a.has_face and b.has_face and b.t - a.t < 0.2:
                d = float(np.hypot(b.face_center[0] - a.face_center[0], b.face_center[1] - a.face_center[1]))
                if d > p.max_jump_widths * max(a.face_width, b.face_width, 1.0):
                    jumps.append(round(b.t, 2))
        ev["jumps_s"] = jumps[:10]
        if jumps:
            reasons.append(f"the face jumped across the frame at {jumps[0]} s (a cut or a switch)")
            verdict = "fail"
        # Other faces in view.
        crowd = []
        for k in ctx.track.keyframes:
            if len(k.faces) > 1:
                main = k.faces[0].width * k.faces[0].height
                if any(f.width * f.height >= 0.3 * main for f in k.faces[1:]):
                    crowd.append(round(k.t, 2))
        ev["other_faces_s"] = crowd[:10]
        if crowd and verdict == "pass":
            reasons.append(f"another face is in view (at {crowd[0]} s)")
            verdict = "review"
        embs = [(k.t, k.embedding) for k in ctx.track.keyframes if k.embedding is not None]
        if not ctx.track.extra.get("embedder"):
            ev["embedder"] = None
            reasons.append("no face embedder installed: the face was not compared across frames")
            return self.result("review" if verdict == "pass" else verdict, 0.5, reasons, **ev)
        ev["frames_compared"] = len(embs)
        if len(embs) >= 2:
            m = np.median(np.stack([e for _, e in embs]), axis=0)
            dists = [float(np.linalg.norm(e - m)) for _, e in embs]
            worst = int(np.argmax(dists))
            ev["max_distance_to_median"] = round(dists[worst], 4)
            if dists[worst] > p.identity_max_distance:
                reasons.append(f"the face at {embs[worst][0]:.1f} s is a different person")
                verdict = "fail"
            score = float(np.clip(1 - dists[worst] / (2 * p.identity_max_distance), 0, 1))
        else:
            reasons.append("too few frontal frames to compare the face across the video")
            score = 0.5
            if verdict == "pass":
                verdict = "review"
        return self.result(verdict, score if verdict != "fail" else min(score, 0.3), reasons, **ev)


SIGNALS.register(SingleIdentity.name, SingleIdentity)
