"""Registry of signal types: a new signal is a new module that calls `register_signal`, nothing else."""

from __future__ import annotations

from deepshield.errors import DeepshieldError
from deepshield.matching.signals.base import ContentType, SignalType


class UnknownSignalType(DeepshieldError):
    code = "unknown_signal_type"
    http_status = 400


_SIGNALS: dict[str, SignalType] = {}
#: Names other systems use for one of ours (HMA and StopNCII send MD5 of videos as `video_md5`).
_ALIASES: dict[str, str] = {"video_md5": "md5", "photo_md5": "md5"}


def register_signal(signal: SignalType) -> SignalType:
    _SIGNALS[signal.name] = signal
    return signal


def get_signal(name: str) -> SignalType:
    _ensure_builtins()
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return _SIGNALS[key]
    except KeyError:
        known = ", ".join(sorted(_SIGNALS))
        raise UnknownSignalType(f"no such signal type {name!r} (known: {known})") from None


def all_signals() -> list[SignalType]:
    _ensure_builtins()
    return list(_SIGNALS.values())


def signals_for(content_type: ContentType) -> list[SignalType]:
    return [s for s in all_signals() if content_type in s.content_types]


_loaded = False


def _ensure_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from deepshield.matching.signals import exact, pdq, vpdq  # noqa: F401  (modules register themselves)
