"""The video's face against the ID document photo (dlib ResNet distance), with a grey zone for review."""

from __future__ import annotations

import numpy as np

from deepshield.liveness.embedding import get_embedder
from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult


class IdPhotoMatch(LivenessSignal):
    name = "id_match"
    weight = 2.0

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        p = ctx.policy
        emb = get_embedder()
        if emb is None or not ctx.track.extra.get("embedder"):
            return self.result("unavailable", 0.0, ["no face embedder installed: the ID photo was not compared"])
        if ctx.id_embedding is None:
            return self.result("unavailable", 0.0, ["no ID photo face to compare with"])
        embs = [(k.t, k.embedding) for k in ctx.track.keyframes if k.embedding is not None]
        if not embs:
            return self.result("review", 0.0, ["no frontal face in the video to compare with the ID photo"])
        d = [emb.distance(e, ctx.id_embedding) for _, e in embs]
        dist = float(np.median(d))
        ev = {
            "model": emb.info.name,
            "version": emb.info.version,
            "distance": round(dist, 4),
            "match_at_or_below": p.id_match_distance,
            "reject_above": p.id_reject_distance,
            "frames": len(d),
        }
        score = float(np.clip(1 - dist / (2 * p.id_reject_distance), 0, 1))
        if dist <= p.id_match_distance:
            return self.result("pass", score, [], **ev)
        if dist <= p.id_reject_distance:
            return self.result("review", score, ["the face resembles the ID photo but not closely enough"], **ev)
        return self.result("fail", score, ["the face does not match the ID photo"], **ev)


SIGNALS.register(IdPhotoMatch.name, IdPhotoMatch)
