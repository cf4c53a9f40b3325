"""Hashing files with every signal type that applies to them, for banking and for lookup."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from deepshield.errors import UnsupportedMediaType
from deepshield.matching.signals import ContentType, SignalHash, SignalType, get_signal, signals_for
from deepshield.media import Media, open_media


def _signals_for_media(media: Media, signal_types: Iterable[str] | None) -> list[SignalType]:
    ct = ContentType.of(media.info.kind)
    if ct is None:
        raise UnsupportedMediaType(f"{Path(media.info.path).name}: only photos and videos can be hashed")
    wanted = {get_signal(n).name for n in signal_types} if signal_types else None
    out = [st for st in signals_for(ct) if wanted is None or st.name in wanted]
    if wanted and not out:
        raise UnsupportedMediaType(f"none of {sorted(wanted)} applies to {ct.value} content")
    return out


def hash_media(media: Media, signal_types: Iterable[str] | None = None) -> dict[str, SignalHash]:
    """Every enabled signal for the content's type (or just the named ones)."""
    return {st.name: st.hash_media(media) for st in _signals_for_media(media, signal_types)}


def hash_file(path: str | Path, signal_types: Iterable[str] | None = None) -> dict[str, SignalHash]:
    media = open_media(path)
    try:
        return hash_media(media, signal_types)
    finally:
        media.close()


def lookup_values(
    media: Media, signal_types: Iterable[str] | None = None, variants: bool = True
) -> tuple[dict[str, SignalHash], dict[str, str | list[str]]]:
    """Hashes of a file and what to look up for each: a signal's variants (PDQ's 8 rotations/flips, one
    decode) where it has them and `variants` is on, else its one hash.

    """
    found = [(st, *st.lookup_hash(media, variants)) for st in _signals_for_media(media, signal_types)]
    hashes = {st.name: h for st, h, _ in found}
    values: dict[str, str | list[str]] = {st.name: vals if len(vals) > 1 else h.value for st, h, vals in found}
    return hashes, values
