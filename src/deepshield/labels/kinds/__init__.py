"""Label kinds read on verification, one module each, behind one small protocol and a registry.

A new kind (e.g. an audio watermark) is a new module ending in `LABEL_KINDS.register(Kind.name, Kind())` (a
built-in one is also listed in the table below); `verify_file` combines whatever the registered kinds report. Each
kind says which AIGC levels it *verifies* (a valid signature or a detected mark) and which it only *claims*
(present but unverifiable), plus facts for cross-checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict

from deepshield.jsontypes import JsonObject
from deepshield.labels.aigc import AigcLabel
from deepshield.media.types import MediaKind
from deepshield.registry import Registry


class LabelFacts(TypedDict, total=False):
    """What a kind found, for the cross-checks between kinds."""

    label: AigcLabel  # the AIGC metadata
    payload: int  # the watermark's payload
    aigc: JsonObject  # the AIGC object a C2PA manifest asserts


@dataclass
class LabelEvidence:
    kind: str
    report: JsonObject | None  # the kind's JSON section in the verify report (None: nothing found)
    verified: list[str] = field(default_factory=list)  # AIGC Label values ("1"/"2"/"3") backed by proof
    claimed: list[str] = field(default_factory=list)  # values claimed without proof
    reasons: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    facts: LabelFacts = field(default_factory=lambda: LabelFacts())


class LabelKind(Protocol):
    name: str

    def read(self, path: Path, media_kind: MediaKind, home: Path | None) -> LabelEvidence:
        """Look for this kind of label in `path` and judge it."""


LABEL_KINDS: Registry[LabelKind] = Registry(
    "label kind",
    {
        "metadata": "deepshield.labels.kinds.metadata",
        "c2pa": "deepshield.labels.kinds.c2pa",
        "watermark": "deepshield.labels.kinds.watermark",
    },
)


def label_kinds() -> list[LabelKind]:
    return LABEL_KINDS.values()
