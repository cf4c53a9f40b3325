"""PDQ for photos (Meta's 256-bit perceptual hash) via the `pdqhash` package, hex as python-threatexchange.

A fast path decodes large JPEGs at half scale (libjpeg's DCT scaling, `Image.draft`): decoding, not hashing,
dominates the cost. It is only taken when the half-scale image keeps a short side of at least 512 pixels;
on the shared photos that keeps every hash within 8 bits of the full-resolution one (the compatibility bar
is 10; `tests/matching/test_signals.py` checks every photo). Smaller scales drifted up to 38 bits: off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash

from deepshield.errors import UnsupportedMediaType
from deepshield.matching.bits import bits_to_hex, hamming, normalise_hex
from deepshield.matching.signals.base import ContentType, SignalHash, SignalType
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


def load_rgb(media: Media, fast: bool = True) -> np.ndarray:
    """The decoded photo, at half scale for large JPEGs when `fast` (see module docstring)."""
    if media.info.kind is not MediaKind.IMAGE:
        raise UnsupportedMediaType(f"PDQ hashes photos; {media.info.path} is a {media.info.kind.value}")
    w, h = media.info.width or 0, media.info.height or 0
    if fast and isinstance(media, ImageMedia) and media.info.format == "jpeg" and min(w, h) // 2 >= FAST_MIN_SIDE:
        return media.draft_rgb(2)
    return next(iter(media.frames())).rgb


class PdqSignal(SignalType):
    name = "pdq"
    content_types = (ContentType.PHOTO,)
    default_threshold = PDQ_THRESHOLD
    perceptual = True

    def __init__(self, fast: bool = True) -> None:
        self.fast = fast

    def hash_media(self, media: Media) -> SignalHash:
        r = pdq_from_rgb(load_rgb(media, self.fast))
        return SignalHash(self.name, r.hash, r.quality)

    def hash_variants(self, media: Media) -> tuple[list[str], int]:
        return pdq_dihedral_from_rgb(load_rgb(media, self.fast))

    def validate(self, value: str) -> str:
        return normalise_hex(value, 64, "PDQ hash")

    def distance(self, a: str, b: str) -> float:
        return float(hamming(a, b))


register_signal(PdqSignal())
