"""Spontaneous blinking, reported for reviewers but left out of the decision (verdict "abstain").

It used to vote "pass" whatever it saw (a fixed 0.2 with no blink, 0.6 + 0.2 per blink otherwise), so it could
only move the combined score, never catch an attack. Nor can it be made to: a still photo is already failed by
the challenge signal's scripted blink, and a replayed recording or a real-time face swap blinks as the person it
shows does. Until a measurement on the attack suite shows spontaneous blinks separating attacks from genuine
sessions, the count and times are evidence for a reviewer, not a vote.
"""

from __future__ import annotations

from deepshield.liveness.features import Blink, detect_blinks
from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult


class Blinks(LivenessSignal):
    name = "blink"
    weight = 0.0  # abstains: see the module's docstring
    critical = False

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        blinks: list[Blink] = ctx.cache.get("blinks") or detect_blinks(ctx.track, ctx.policy)
        ev = {
            "count": len(blinks),
            "times_s": [round(b.start_s, 2) for b in blinks],
            "depths": [round(b.depth, 2) for b in blinks],
        }
        return self.result("abstain", 0.0, [], **ev)


SIGNALS.register(Blinks.name, Blinks)
