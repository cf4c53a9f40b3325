"""PDQ for photos (Meta's 256-bit perceptual hash) via the `pdqhash` package, hex as python-threatexchange.

Every hash that is stored, shown or exported (`hash_media`: banking, `deepshield hash`, `/h/hash`, case
media) comes from the fully decoded image, so it equals python-threatexchange's bit for bit
(`tests/matching/test_reference_pdq.py` checks every shared photo).

Lookups alone may take a fast path that decodes large JPEGs at half scale (libjpeg's DCT scaling,
`Image.draft`): decoding, not hashing, dominates the cost. It is only taken when the half-scale image keeps a
short side of at least 512 pixels; on the shared photos that keeps every hash within 10 bits of the reference
(the review margin below the match threshold of 31), and the lookup's hash is marked `approximate`.
Smaller scales drifted up to 38 bits: off. `benchmarks/matching.py` prints its drift and speed-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pdqhash

from deepshield.errors import UnsupportedMediaType
from deepshield.matching.bits import bits_to_hex, hamming, hex_to_words, hexes_to_words, normalise_hex
from deepshield.matching.index import HammingIndex
from deepshield.matching.signals.base import (
    REVIEW_MARGIN,
    BankThresholds,
    ContentType,
    IndexHit,
    SignalHash,
    SignalIndex,
    SignalType,
)
from deepshield.matching.signals.registry import register_signal
from deepshield.media import Media, MediaKind
from deepshield.media.image import ImageMedia

PDQ_THRESHOLD = 31
#: Hashes of flatter images than this are unreliable (HMA discards them); we keep but flag them.
PDQ_MIN_QUALITY = 50
FAST_MIN_SIDE = 512

#: Order of `pdqhash.compute_dihedral`'s eight hashes.
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_vertical",
    "flip_horizontal",
    "rotate90_flip_vertical",
    "rotate90_flip_horizontal",
)


@dataclass(frozen=True)
class PdqResult:
    hash: str
    quality: int


def pdq_from_rgb(rgb: np.ndarray) -> PdqResult:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return PdqResult(bits_to_hex(bits), int(quality))


def pdq_dihedral_from_rgb(rgb: np.ndarray) -> tuple[list[str], int]:
    """The hashes of the 8 rotations/flips of the image (first = the image itself), and its quality."""
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb, dtype=np.uint8))
    return [bits_to_hex(v) for v in vectors], int(quality)


def takes_fast_path(media: Media) -> bool:
    """Whether a lookup of this photo may decode it at half scale (a large JPEG; see module docstring)."""
    w, h = media.info.width or 0, media.info.height or 0
    return isinstance(media, ImageMedia) and media.info.format == "jpeg" and min(w, h) // 2 >= FAST_MIN_SIDE


def load_rgb(media: Media, fast: bool = False) -> np.ndarray:
    """The photo's stored pixels as python-threatexchange reads them (`ImageMedia.stored_pixels`: no EXIF
    turn, alpha ignored); at half scale for large JPEGs when `fast`, which only lookups may ask for."""
    if media.info.kind is not MediaKind.IMAGE or not isinstance(media, ImageMedia):
        raise UnsupportedMediaType(f"PDQ hashes photos; {media.info.path} is a {media.info.kind.value}")
    return media.stored_pixels(2 if fast and takes_fast_path(media) else 1)


class PdqIndex(SignalIndex):
    """PDQ hashes in one exact Hamming index (`index.py`); a query may be an image's 8 rotations/flips."""

    def __init__(self) -> None:
        self.codes = HammingIndex()
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self.codes)

    def add(self, key: int, group: int, value: str) -> None:
        self.codes.add(hex_to_words(value), key, group)

    def remove(self, key: int) -> None:
        self.codes.remove(key)

    def load(self, keys: Sequence[int], groups: Sequence[int], values: Sequence[str]) -> None:
        # Batches are kept as packed words and indexed once at the end, at their final size (no regrowth).
        if values:
            self._pending.append(
                (hexes_to_words(values), np.array(keys, dtype=np.int64), np.array(groups, dtype=np.int32))
            )

    def loaded(self) -> None:
        if self._pending:
            codes = np.concatenate([p[0] for p in self._pending])
            keys = np.concatenate([p[1] for p in self._pending])
            groups = np.concatenate([p[2] for p in self._pending])
            self._pending = []
            fresh = HammingIndex(initial_capacity=codes.shape[0] + 4096)
            fresh.add_many(codes, keys, groups)
            self.codes = fresh

    def search(self, values: Sequence[str], thresholds: BankThresholds) -> list[IndexHit]:
        """Each banked hash once, at its best distance over the query's variants, naming the variant."""
        queries = [normalise_hex(v, 64, "PDQ hash") for v in values]
        best: dict[int, tuple[int, int, int]] = {}
        for vi, v in enumerate(queries):
            for h in self.codes.search(hex_to_words(v), thresholds.max, thresholds.per_group):
                if h.key not in best or h.distance < best[h.key][1]:
                    best[h.key] = (h.group, h.distance, vi)
        out = []
        for key, (group, d, vi) in best.items():
            variant = DIHEDRAL_NAMES[vi] if len(queries) == 8 else ("original" if vi == 0 else f"variant{vi}")
            out.append(IndexHit(key, group, float(d), variant=variant))
        return out

    def stats(self) -> dict[str, float | int]:
        return self.codes.stats()


class PdqSignal(SignalType):
    name = "pdq"
    content_types = (ContentType.PHOTO,)
    default_threshold = PDQ_THRESHOLD
    perceptual = True

    def __init__(self, fast_lookup: bool = True) -> None:
        self.fast_lookup = fast_lookup

    def hash_media(self, media: Media) -> SignalHash:
        """The reference hash (full decode): what is banked, shown and exported."""
        r = pdq_from_rgb(load_rgb(media))
        return SignalHash(self.name, r.hash, r.quality)

    def lookup_hash(self, media: Media, variants: bool = True) -> tuple[SignalHash, list[str]]:
        """With `variants`, the 8 rotations/flips from one decode (first = the photo as it is); large JPEGs
        at half scale when `fast_lookup`, their hash marked approximate."""
        if not variants:
            return super().lookup_hash(media, variants)
        fast = self.fast_lookup and takes_fast_path(media)
        hashes, quality = pdq_dihedral_from_rgb(load_rgb(media, fast))
        return SignalHash(self.name, hashes[0], quality, approximate=fast), hashes

    def validate(self, value: str) -> str:
        return normalise_hex(value, 64, "PDQ hash")

    def distance(self, a: str, b: str) -> int:
        """Bits that differ (an int: HMA's `/m/compare` answers PDQ distances as integers)."""
        return hamming(a, b)

    def make_index(self) -> PdqIndex:
        return PdqIndex()

    def needs_review(self, hit: IndexHit, threshold: float) -> bool:
        return hit.distance > threshold - REVIEW_MARGIN

    def low_quality(self, quality: int | None) -> bool:
        return quality is not None and quality < PDQ_MIN_QUALITY


register_signal(PdqSignal())
