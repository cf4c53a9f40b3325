"""Spontaneous blinking: a photo or a frozen frame never blinks; a live person blinks every few seconds."""

from __future__ import annotations

from deepshield.liveness.features import Blink, detect_blinks
from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult


class Blinks(LivenessSignal):
    name = "blink"
    weight = 1.0
    critical = False  # the scripted blink step is already required by the challenge signal

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        blinks: list[Blink] = ctx.cache.get("blinks") or detect_blinks(ctx.track, ctx.policy)
        n = len(blinks)
        ev = {
            "count": n,
            "times_s": [round(b.start_s, 2) for b in blinks],
            "depths": [round(b.depth, 2) for b in blinks],
        }
        if n == 0:
            # Weak evidence only: people go 10 s without blinking, and a scripted blink is already required by
            # the challenge signal. It lowers the combined score; it does not decide on its own.
            ev["note"] = "no spontaneous blink seen"
            return self.result("pass", 0.2, [], **ev)
        return self.result("pass", min(1.0, 0.6 + 0.2 * n), [], **ev)


SIGNALS.register(Blinks.name, Blinks)
