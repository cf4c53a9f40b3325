"""Signal types on real media: PDQ as python-threatexchange writes it, fast-path drift, variants, vPDQ."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps

from deepshield.matching.bits import hamming
from deepshield.matching.signals import get_signal
from deepshield.matching.signals.exact import file_digest
from deepshield.matching.signals.pdq import pdq_dihedral_from_rgb, pdq_from_rgb
from deepshield.matching.signals.vpdq import compare_frames, hash_video, parse_vpdq
from deepshield.media import open_media


def test_pdq_hex_is_threatexchange_form(real_photos: list[Path]) -> None:
    f = real_photos[0]
    rgb = np.asarray(ImageOps.exif_transpose(Image.open(f)).convert("RGB"))
    bits, quality = pdqhash.compute(rgb)
    # python-threatexchange: the bit vector read as one binary number, written as 64 lowercase hex digits.
    expected = "{:064x}".format(int("".join(str(int(b)) for b in bits), 2))
    h = get_signal("pdq").hash_media(open_media(f))
    assert h.value == expected and not h.approximate  # stored hashes never take the lookup fast path
    assert pdq_from_rgb(rgb).hash == expected and h.quality == quality


def test_fast_path_within_10_bits_on_every_photo(python_pdq: dict[str, tuple[str, int, str]]) -> None:
    drift = [hamming(full, server) for full, _, server in python_pdq.values()]
    assert sum(d > 0 for d in drift) >= 5  # the fast path was really taken on some photos
    assert max(drift) <= 10


def test_variants_catch_flip_and_rotation(real_photos: list[Path]) -> None:
    im = ImageOps.exif_transpose(Image.open(real_photos[1])).convert("RGB")
    base = pdq_from_rgb(np.asarray(im)).hash
    for edited in (ImageOps.mirror(im), im.transpose(Image.Transpose.ROTATE_90)):
        plain = pdq_from_rgb(np.asarray(edited)).hash
        variants, _ = pdq_dihedral_from_rgb(np.asarray(edited))
        assert hamming(plain, base) > 31  # plain PDQ misses it...
        assert min(hamming(v, base) for v in variants) <= 31  # ...one of the 8 variants finds it


def test_exact_signals_and_aliases(real_photos: list[Path]) -> None:
    f = real_photos[2]
    m = open_media(f)
    assert get_signal("md5").hash_media(m).value == file_digest(str(f), "md5")
    assert get_signal("sha256").hash_media(m).value == m.info.sha256
    assert get_signal("video_md5").name == "md5"
    with pytest.raises(Exception, match="no such signal type"):
        get_signal("tmk")
    with pytest.raises(Exception, match="hex"):
        get_signal("pdq").validate("zz" * 32)


def test_vpdq_clip_matches_and_other_video_does_not(faces: Path, tmp_path: Path) -> None:
    a, b = faces / "real_videos" / "vr_face1.mp4", faces / "real_videos" / "lp_d18.mp4"
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-ss",
            "1",
            "-i",
            str(a),
            "-t",
            "3",
            "-vf",
            "scale=trunc(iw/4)*2:trunc(ih/4)*2",
            "-c:v",
            "libx264",
            "-crf",
            "28",
            "-an",
            str(clip),
        ],
        check=True,
    )
    fa, fb, fc = hash_video(open_media(a)), hash_video(open_media(b)), hash_video(open_media(clip))
    m = compare_frames(fc, fa)
    assert m.matched and m.query_fraction >= 0.8
    assert m.query_ranges[0][0] == 0.0 and m.query_ranges[-1][1] >= 2.0 and m.bank_ranges
    assert not compare_frames(fb, fa).matched
    sig = get_signal("vpdq")
    value = sig.hash_media(open_media(clip)).value
    assert len(parse_vpdq(value)) == len(fc)
    assert sig.compare(value, sig.hash_media(open_media(a)).value).matched
