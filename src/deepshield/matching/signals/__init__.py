"""Signal types: one interface (`SignalType`), one module per signal, one registry."""

from deepshield.matching.signals.base import Comparison, ContentType, SignalHash, SignalType
from deepshield.matching.signals.registry import (
    UnknownSignalType,
    all_signals,
    get_signal,
    register_signal,
    signals_for,
)

__all__ = [
    "Comparison",
    "ContentType",
    "SignalHash",
    "SignalType",
    "UnknownSignalType",
    "all_signals",
    "get_signal",
    "register_signal",
    "signals_for",
]
