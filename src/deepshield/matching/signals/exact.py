"""MD5 and SHA-256 of the file bytes: exact copies only, but all StopNCII sends for video is MD5."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar

from deepshield.matching.bits import normalise_hex
from deepshield.matching.signals.base import (
    BankThresholds,
    ContentType,
    IndexHit,
    SignalHash,
    SignalIndex,
    SignalType,
)
from deepshield.matching.signals.registry import register_signal
from deepshield.media import Media


def file_digest(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ExactIndex(SignalIndex):
    """Exact-copy hashes: a dictionary from value to the signals holding it (and their banks)."""

    def __init__(self, signal: SignalType) -> None:
        self.signal = signal
        self._by_value: dict[str, dict[int, int]] = {}
        self._value_of: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._value_of)

    def add(self, key: int, group: int, value: str) -> None:
        self._by_value.setdefault(value, {})[key] = group
        self._value_of[key] = value

    def remove(self, key: int) -> None:
        v = self._value_of.pop(key, None)
        if v is not None:
            d = self._by_value.get(v)
            if d is not None:
                d.pop(key, None)
                if not d:
                    del self._by_value[v]

    def search(self, values: Sequence[str], thresholds: BankThresholds) -> list[IndexHit]:
        v = self.signal.validate(values[0])
        return [IndexHit(k, g, 0.0) for k, g in self._by_value.get(v, {}).items() if thresholds.searched(g)]


class _ExactSignal(SignalType):
    algorithm: ClassVar[str]
    hex_len: ClassVar[int]
    content_types = (ContentType.PHOTO, ContentType.VIDEO)
    default_threshold = 0
    perceptual = False

    def hash_media(self, media: Media) -> SignalHash:
        if self.algorithm == "sha256" and media.info.sha256:
            return SignalHash(self.name, media.info.sha256)
        return SignalHash(self.name, file_digest(media.info.path, self.algorithm))

    def validate(self, value: str) -> str:
        return normalise_hex(value, self.hex_len, f"{self.name} hash")

    def distance(self, a: str, b: str) -> float:
        return 0.0 if a == b else 1.0

    def make_index(self) -> ExactIndex:
        return ExactIndex(self)


class Md5Signal(_ExactSignal):
    name = "md5"
    algorithm = "md5"
    hex_len = 32


class Sha256Signal(_ExactSignal):
    name = "sha256"
    algorithm = "sha256"
    hex_len = 64


register_signal(Md5Signal())
register_signal(Sha256Signal())
