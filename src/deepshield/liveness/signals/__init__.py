"""Liveness signals: one module each behind `LivenessSignal`, registered by name."""

from __future__ import annotations

from collections.abc import Callable

from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult

SignalFactory = Callable[[], LivenessSignal]
_REGISTRY: dict[str, SignalFactory] = {}


def register_signal(name: str, factory: SignalFactory) -> None:
    _REGISTRY[name] = factory


def signal_names() -> list[str]:
    return list(_REGISTRY)


def build_signals(names: list[str] | None = None) -> list[LivenessSignal]:
    return [_REGISTRY[n]() for n in (names or list(_REGISTRY))]


def _register_builtins() -> None:
    from deepshield.liveness.signals.blink import Blinks
    from deepshield.liveness.signals.challenge import ChallengeCompliance
    from deepshield.liveness.signals.flash import FlashResponse
    from deepshield.liveness.signals.forgery import ForgeryScore
    from deepshield.liveness.signals.identity import SingleIdentity
    from deepshield.liveness.signals.idmatch import IdPhotoMatch
    from deepshield.liveness.signals.replay import ReplaySignal

    # Order matters a little: challenge fills the blink cache, identity the embedding cache.
    for cls in (ChallengeCompliance, Blinks, FlashResponse, ForgeryScore, SingleIdentity, ReplaySignal, IdPhotoMatch):
        register_signal(cls.name, cls)


_register_builtins()

__all__ = ["LivenessSignal", "SignalContext", "SignalResult", "build_signals", "register_signal", "signal_names"]
