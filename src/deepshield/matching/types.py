"""The value types and errors of the matching services: what banks, entries and matches look like to callers."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import TypedDict, cast

from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonObject, JsonValue
from deepshield.matching.signals.base import SignalHash, VideoDetail

#: HMA's bank name rule (`[A-Z_][A-Z0-9_]*`: no leading digit), at most 128 characters (the column), so names
#: created through either system work in both.
BANK_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}\Z")
#: Largest per-bank PDQ threshold: beyond it PDQ matches unrelated images, and the index would fall back
#: from probing (floor(t / 11) <= 3 bits per chunk) to scanning.
MAX_THRESHOLD = 43
#: Pass as `seed` to answer from every bank with a non-zero enabled ratio.
BYPASS_COINFLIP = "\x00bypass"


class BankNotFound(DeepshieldError):
    code = "bank_not_found"
    http_status = 404


class BankExists(DeepshieldError):
    """HMA answers a taken bank name with 403."""

    code = "bank_exists"
    http_status = 403


class EntryNotFound(DeepshieldError):
    code = "entry_not_found"
    http_status = 404


class InvalidBank(DeepshieldError):
    code = "invalid_bank"
    http_status = 400


@dataclass
class BankInfo:
    id: int
    name: str
    enabled_ratio: float
    is_negative: bool
    threshold: int | None
    description: str | None
    created_at: str
    entries: int = 0

    @property
    def enabled(self) -> bool:
        return self.enabled_ratio > 0

    def to_dict(self) -> JsonObject:
        d: JsonObject = asdict(self)
        d["enabled"] = self.enabled
        d["matching_enabled_ratio"] = self.enabled_ratio
        return d


@dataclass
class EntryMeta:
    """What a person or system records about a banked item; every match reports it."""

    source: str | None = None
    case_id: str | None = None
    added_by: str | None = None
    note: str | None = None
    content_type: str | None = None
    original_media_uri: str | None = None
    extra: dict[str, JsonValue] | None = None
    added_at: dt.datetime | None = None


@dataclass
class EntryInfo:
    id: int
    bank: str
    signals: dict[str, str]
    source: str | None
    case_id: str | None
    added_by: str | None
    added_at: str
    note: str | None
    content_type: str | None
    original_media_uri: str | None
    disable_until_ts: int
    extra: dict[str, JsonValue] | None
    low_quality: bool = False

    def to_dict(self) -> JsonObject:
        return asdict(self)

    def metadata(self) -> EntryMetadata:
        """What a match reports about its entry (everything but id, bank, signals and quality)."""
        facts = asdict(self)
        return cast(EntryMetadata, {k: facts[k] for k in EntryMetadata.__annotations__})


class EntryMetadata(TypedDict):
    """A banked entry's metadata as every match carries it (`Match.entry`)."""

    source: str | None
    case_id: str | None
    added_by: str | None
    added_at: str
    note: str | None
    content_type: str | None
    original_media_uri: str | None
    disable_until_ts: int
    extra: dict[str, JsonValue] | None


class SuppressedBy(TypedDict):
    """The negative-bank entry that suppressed a match: it was strictly closer to the query."""

    bank: str
    entry_id: int
    distance: float


@dataclass
class Match:
    bank: str
    bank_id: int
    entry_id: int
    signal_id: int
    signal_type: str
    distance: float
    threshold: float
    needs_review: bool
    entry: EntryMetadata
    variant: str | None = None
    video: VideoDetail | None = None
    suppressed_by: SuppressedBy | None = None

    def to_dict(self) -> JsonObject:
        return asdict(self)


@dataclass
class FileLookup:
    path: str
    content_type: str
    hashes: dict[str, SignalHash]
    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    def to_dict(self) -> JsonObject:
        return {
            "path": self.path,
            "content_type": self.content_type,
            "matched": self.matched,
            "hashes": {k: v.value for k, v in self.hashes.items()},
            "quality": {k: v.quality for k, v in self.hashes.items() if v.quality is not None},
            # Hashes from a lookup's fast path: close to the reference (PDQ: within 10 bits), not equal to it.
            "approximate": [k for k in sorted(self.hashes) if self.hashes[k].approximate],
            "matches": [m.to_dict() for m in self.matches],
            "suppressed": [m.to_dict() for m in self.suppressed],
        }
