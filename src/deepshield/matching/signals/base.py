"""The one small interface every signal type implements, and the value types it returns."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from deepshield.media import Media, MediaKind


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


@dataclass(frozen=True)
class Comparison:
    """Outcome of comparing two hashes of one signal type (HMA's `SignalComparisonResult`)."""

    matched: bool
    distance: float
    detail: dict[str, Any] = field(default_factory=dict)


class SignalType(abc.ABC):
    """A way of turning content into a comparable hash: name, content types, hasher, distance, threshold."""

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

    def compare(self, a: str, b: str, threshold: int | None = None) -> Comparison:
        t = self.default_threshold if threshold is None else threshold
        d = self.distance(self.validate(a), self.validate(b))
        return Comparison(matched=d <= t, distance=d)
