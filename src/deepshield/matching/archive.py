"""Bank-ready hashes of a file as one JSON object (`deepshield hash`), and as an archive batch's per-file task
(`deepshield hash --ray`), so the line is the same with and without the cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonValue
from deepshield.matching.hashing import hash_media
from deepshield.matching.signals import all_signals
from deepshield.media import open_media
from deepshield.scale.task import FileOutcome


def hash_outcome(path: str | Path, signal_types: list[str] | None) -> FileOutcome:
    """`{"file", <type>: <hex>..., "quality"?}` or `{"file", "error"}`; sha256 from the decoder either way."""
    try:
        media = open_media(path)
    except DeepshieldError as e:
        return FileOutcome(str(path), None, {"file": str(path), "error": e.message}, e.message)
    try:
        hashes = hash_media(media, signal_types)
        sha256 = media.info.sha256
    except DeepshieldError as e:
        return FileOutcome(str(path), None, {"file": str(path), "error": e.message}, e.message)
    finally:
        media.close()
    record: dict[str, JsonValue] = {"file": str(path), **{k: v.value for k, v in hashes.items()}}
    quality: dict[str, JsonValue] = {k: v.quality for k, v in hashes.items() if v.quality is not None}
    if quality:
        record["quality"] = quality
    return FileOutcome(str(path), sha256, record, None, {k: v.value for k, v in hashes.items()})


def hash_columns() -> tuple[str, ...]:
    return tuple(st.name for st in all_signals())


@dataclass
class HashTask:
    signal_types: list[str] | None = None
    columns: tuple[str, ...] = field(default_factory=hash_columns)

    def setup(self) -> None:
        pass  # hashing loads nothing worth keeping

    def __call__(self, path: str) -> FileOutcome:
        return hash_outcome(path, self.signal_types)

    def close(self) -> None:
        pass
