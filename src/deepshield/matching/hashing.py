"""Hashing files with every signal type that applies to them, for banking and for lookup."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from deepshield.errors import UnsupportedMediaType
from deepshield.matching.signals import ContentType, SignalHash, SignalType, get_signal, signals_for
from deepshield.media import Media, open_media


def _signals_for_media(
    media: Media, signal_types: Iterable[str] | None, declared: ContentType | None = None
) -> list[SignalType]:
    """The signals to hash with. `declared` is the caller's word on the content type (HMA's upload field or
    `content_type`): as in HMA it picks the signals, of which those that can read the actual file are used
    (a JPEG sent as a video gets the byte hashes, not vPDQ)."""
    ct = ContentType.of(media.info.kind)
    if ct is None:
        raise UnsupportedMediaType(f"{Path(media.info.path).name}: only photos and videos can be hashed")
    wanted = {get_signal(n).name for n in signal_types} if signal_types else None
    usable = signals_for(ct)
    chosen = signals_for(declared) if declared is not None else usable
    out = [st for st in chosen if st in usable and (wanted is None or st.name in wanted)]
    if (wanted or declared) and not out:
        what = f"none of {sorted(wanted)}" if wanted else f"no {declared} signal"
        raise UnsupportedMediaType(f"{what} applies to {ct.value} content")
    return out


def hash_media(
    media: Media, signal_types: Iterable[str] | None = None, declared: ContentType | None = None
) -> dict[str, SignalHash]:
    """Every enabled signal for the content's type (or just the named ones)."""
    return {st.name: st.hash_media(media) for st in _signals_for_media(media, signal_types, declared)}


def hash_file(path: str | Path, signal_types: Iterable[str] | None = None) -> dict[str, SignalHash]:
    media = open_media(path)
    try:
        return hash_media(media, signal_types)
    finally:
        media.close()


def lookup_values(
    media: Media, signal_types: Iterable[str] | None = None, variants: bool = True, declared: ContentType | None = None
) -> tuple[dict[str, SignalHash], dict[str, str | list[str]]]:
    """Hashes of a file and what to look up for each: a signal's variants (PDQ's 8 rotations/flips, one
    decode) where it has them and `variants` is on, else its one hash.

    """
    found = [(st, *st.lookup_hash(media, variants)) for st in _signals_for_media(media, signal_types, declared)]
    hashes = {st.name: h for st, h, _ in found}
    values: dict[str, str | list[str]] = {st.name: vals if len(vals) > 1 else h.value for st, h, vals in found}
    return hashes, values
