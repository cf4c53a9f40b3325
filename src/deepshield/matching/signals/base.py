"""The one small interface every signal type implements, and the value types it returns.

A signal type owns everything that differs between signals: hashing, validation, comparison, which index
holds its banked hashes (`make_index`, python-threatexchange's `get_index_cls`) and when a match needs a
person. The banks, lookup and HTTP layers only ever go through this interface, so a new signal type is one
module that calls `register_signal`.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypedDict

import numpy as np
from numpy.typing import NDArray

from deepshield.jsontypes import JsonValue
from deepshield.media import Media, MediaKind

#: Matches this close to the threshold are flagged for a person to confirm (perceptual-hash attacks and
#: shared-bank false positives live there).
REVIEW_MARGIN = 4


class ContentType(enum.StrEnum):
    """HMA / python-threatexchange content type names."""

    PHOTO = "photo"
    VIDEO = "video"

    @staticmethod
    def of(kind: MediaKind) -> ContentType | None:
        return {MediaKind.IMAGE: ContentType.PHOTO, MediaKind.VIDEO: ContentType.VIDEO}.get(kind)


@dataclass(frozen=True)
class SignalHash:
    """One hash of one piece of content, as stored and exchanged (lowercase hex or the signal's text form)."""

    signal_type: str
    value: str
    quality: int | None = None
    #: Made by a lookup's fast path (a reduced decode), not the reference hash: never banked or exported.
    approximate: bool = False


@dataclass(frozen=True)
class Comparison:
    """Outcome of comparing two hashes of one signal type (HMA's `SignalComparisonResult`)."""

    matched: bool
    distance: float
    detail: dict[str, JsonValue] = field(default_factory=dict)


class VideoDetail(TypedDict):
    """How a banked video matched: matched shares and time ranges on both sides (reported with the match)."""

    query_fraction: float
    bank_fraction: float
    query_ranges: list[tuple[float, float]]
    bank_ranges: list[tuple[float, float]]
    matched_frames: int
    best_frame_distance: int


@dataclass(frozen=True)
class IndexHit:
    """One banked hash an index found for a query, with what the signal reports about the match."""

    key: int
    group: int
    distance: float
    variant: str | None = None
    video: VideoDetail | None = None


@dataclass(frozen=True)
class BankThresholds:
    """Per group (bank id): the largest distance that matches there, or -1 where the bank is not searched."""

    per_group: NDArray[np.int32]
    max: int

    def searched(self, group: int) -> bool:
        return group < len(self.per_group) and bool(self.per_group[group] >= 0)

    def of(self, group: int) -> int:
        return int(self.per_group[group])


class SignalIndex(abc.ABC):
    """The in-memory index of one signal type's banked hashes: incremental adds and removals, range search."""

    @abc.abstractmethod
    def add(self, key: int, group: int, value: str) -> None:
        """Index one stored (already validated) hash."""

    @abc.abstractmethod
    def remove(self, key: int) -> None:
        """Forget a stored hash; a key not indexed is ignored (the change log may repeat itself)."""

    @abc.abstractmethod
    def search(self, values: Sequence[str], thresholds: BankThresholds) -> list[IndexHit]:
        """Banked hashes matching the query within their bank's threshold, each key at most once.

        `values` is what `SignalType.lookup_hash` gave (one hash, or a signal's variants of one item)."""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    def stats(self) -> dict[str, float | int]:
        return {"hashes": len(self)}

    def load(self, keys: Sequence[int], groups: Sequence[int], values: Sequence[str]) -> None:
        """Bulk add at start-up: one batch of many, as columns (keys = stored signal ids, groups = bank ids);
        `loaded` follows the last batch."""
        for key, group, value in zip(keys, groups, values, strict=True):
            self.add(key, group, value)

    def loaded(self) -> None:  # noqa: B027 (optional hook: most indexes have nothing to finish)
        """The bulk load is over: an index that buffers `load` batches builds itself here."""


class SignalType(abc.ABC):
    """A way of turning content into a comparable hash: name, content types, hasher, distance, threshold, index."""

    name: ClassVar[str]
    content_types: ClassVar[tuple[ContentType, ...]]
    #: Largest distance that still counts as a match, unless a bank overrides it.
    default_threshold: ClassVar[int]
    #: True for perceptual hashes indexed by Hamming distance; False for exact-copy hashes.
    perceptual: ClassVar[bool] = False

    @abc.abstractmethod
    def hash_media(self, media: Media) -> SignalHash:
        """Hash an opened file. Raises a `MediaError` subclass if the content cannot be hashed."""

    @abc.abstractmethod
    def validate(self, value: str) -> str:
        """The canonical form of a hash given as text; raises `InvalidHash` when malformed."""

    @abc.abstractmethod
    def distance(self, a: str, b: str) -> float:
        """Distance between two valid hashes (0 = identical)."""

    @abc.abstractmethod
    def make_index(self) -> SignalIndex:
        """A new, empty index for this signal's banked hashes."""

    def compare(self, a: str, b: str, threshold: int | None = None) -> Comparison:
        t = self.default_threshold if threshold is None else threshold
        d = self.distance(self.validate(a), self.validate(b))
        return Comparison(matched=d <= t, distance=d)

    def lookup_hash(self, media: Media, variants: bool = True) -> tuple[SignalHash, list[str]]:
        """The file's hash, and the values to look up for it (more than one where the signal has variants)."""
        h = self.hash_media(media)
        return h, [h.value]

    def needs_review(self, hit: IndexHit, threshold: float) -> bool:
        """Whether a match should go in front of a person before anything is done (near the threshold)."""
        return False

    def low_quality(self, quality: int | None) -> bool:
        """Whether a banked hash of this quality is unreliable (kept, but flagged)."""
        return False
