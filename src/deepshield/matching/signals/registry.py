"""Signal types by name, on the one registry style (`deepshield.registry`): a new signal is a new module that
calls `register_signal`, nothing else."""

from __future__ import annotations

from deepshield.errors import DeepshieldError
from deepshield.matching.signals.base import ContentType, SignalType
from deepshield.registry import Registry


class UnknownSignalType(DeepshieldError):
    code = "unknown_signal_type"
    http_status = 400


#: Built-ins in answer order (hashes and answers list signals in this order whatever order their modules were
#: imported in), each with the module that registers it; names other systems use for one of ours (HMA and
#: StopNCII send MD5 of videos as `video_md5`) as aliases.
SIGNAL_TYPES: Registry[SignalType] = Registry(
    "signal type",
    {
        "pdq": "deepshield.matching.signals.pdq",
        "vpdq": "deepshield.matching.signals.vpdq",
        "md5": "deepshield.matching.signals.exact",
        "sha256": "deepshield.matching.signals.exact",
    },
    aliases={"video_md5": "md5", "photo_md5": "md5"},
    error=UnknownSignalType,
)


def register_signal(signal: SignalType) -> SignalType:
    return SIGNAL_TYPES.register(signal.name, signal)


def get_signal(name: str) -> SignalType:
    return SIGNAL_TYPES.get(name.strip().lower())


def all_signals() -> list[SignalType]:
    return SIGNAL_TYPES.values()


def signals_for(content_type: ContentType) -> list[SignalType]:
    return [s for s in all_signals() if content_type in s.content_types]
