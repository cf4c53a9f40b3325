"""Liveness signals: one module each behind `LivenessSignal`, registered by name in `SIGNALS`.

A new signal is a new module ending in `SIGNALS.register(MySignal.name, MySignal)`; a built-in one is also listed
in the table below, whose order is the order signals run and are reported in (challenge fills the blink cache,
identity the embedding cache).
"""

from __future__ import annotations

from collections.abc import Callable

from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult
from deepshield.registry import Registry

SignalFactory = Callable[[], LivenessSignal]

SIGNALS: Registry[SignalFactory] = Registry(
    "liveness signal",
    {
        "challenge": "deepshield.liveness.signals.challenge",
        "blink": "deepshield.liveness.signals.blink",
        "flash": "deepshield.liveness.signals.flash",
        "forgery": "deepshield.liveness.signals.forgery",
        "warp": "deepshield.liveness.signals.warp",
        "identity": "deepshield.liveness.signals.identity",
        "replay": "deepshield.liveness.signals.replay",
        "id_match": "deepshield.liveness.signals.idmatch",
    },
)


def signal_names() -> list[str]:
    return SIGNALS.names()


def build_signals(names: list[str] | None = None) -> list[LivenessSignal]:
    """A fresh instance of each named signal (none named: all), in the order given."""
    return [SIGNALS.get(n)() for n in (names or SIGNALS.names())]


__all__ = ["SIGNALS", "LivenessSignal", "SignalContext", "SignalResult", "build_signals", "signal_names"]
