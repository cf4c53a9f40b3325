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
    """Built-ins first, in `_BUILTIN_MODULES` order, then others as registered: hashes and answers list
    signals in this order whatever order their modules happened to be imported in."""
    _ensure_builtins()
    return sorted(_SIGNALS.values(), key=_rank)


def _rank(signal: SignalType) -> int:
    package, _, module = type(signal).__module__.rpartition(".")
    builtin = package == _PACKAGE and module in _BUILTIN_MODULES
    return _BUILTIN_MODULES.index(module) if builtin else len(_BUILTIN_MODULES)


def signals_for(content_type: ContentType) -> list[SignalType]:
    return [s for s in all_signals() if content_type in s.content_types]


_loaded = False
#: The signal modules that ship with deepshield (each registers itself on import).
_BUILTIN_MODULES = ("pdq", "vpdq", "exact")
_PACKAGE = "deepshield.matching.signals"


def _ensure_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib

        for module in _BUILTIN_MODULES:
            importlib.import_module(f"{_PACKAGE}.{module}")
