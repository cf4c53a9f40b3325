"""The face-swap generator: real swaps between different people, photos and videos, decodable output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deepshield.detect.swaps import delaunay, make_swap_set, warp_triangles
from deepshield.media import FrameSampling, open_media
from tests.detect.conftest import PHOTOS, VIDEO


def test_delaunay_covers_the_convex_hull() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(10, 90, size=(60, 2))
    tris = delaunay(pts, (100, 100))
    # Euler: a full triangulation of n points with h on the hull has 2n - 2 - h triangles. OpenCV's
    # Subdiv2D can leave a few slivers along the hull to its virtual outer vertices, never more.
    import cv2

    h = len(cv2.convexHull(pts.astype(np.float32)))
    assert 2 * len(pts) - 2 - h - 4 <= len(tris) <= 2 * len(pts) - 2 - h
    assert len({tuple(sorted(t)) for t in tris.tolist()}) == len(tris)
    img = rng.integers(0, 255, (100, 100, 3)).astype(np.uint8)
    out, cover = warp_triangles(img, pts, pts, tris, (100, 100))  # identity warp
    m = cover > 0
    assert m.sum() > 0.4 * 100 * 100
    assert np.abs(out[m] - img[m].astype(np.float32)).mean() < 1.0


def test_make_swap_set_writes_real_and_fake_pairs(shared_faces: Path, tmp_path: Path) -> None:
    items = [(shared_faces / rel, rel, f"person{i}", False) for i, rel in enumerate(PHOTOS[:3])]
    items.append((shared_faces / VIDEO, VIDEO, "video_person", True))
    out = tmp_path / "swaps"
    counts = make_swap_set(items, out, seed=1, seconds=0.6)
    assert counts["fake_photos"] >= 2 and counts["fake_videos"] == 1
    meta = json.loads((out / "swaps.json").read_text())
    for pair in meta["pairs"]:
        assert Path(pair["donor"]).stem != Path(pair["target"]).stem
    fakes = sorted((out / "fake").glob("*.jpg"))
    for f in fakes:
        real = out / "real" / (f.name.split("__from__")[0] + ".jpg")
        a = next(iter(open_media(real).frames())).rgb.astype(int)
        b = next(iter(open_media(f).frames())).rgb.astype(int)
        assert a.shape == b.shape
        changed = np.abs(a - b).max(axis=2) > 20
        # The face changed, the rest of the picture (mostly) did not.
        assert 0.01 < changed.mean() < 0.6
    fv = next((out / "fake").glob("*.mp4"))
    rv = out / "real" / (fv.name.split("__from__")[0] + ".mp4")
    mf, mr = open_media(fv), open_media(rv)
    assert mf.info.kind.value == "video" and mf.info.width == mr.info.width
    ff = next(iter(mf.frames(FrameSampling.evenly(1)))).rgb.astype(int)
    fr = next(iter(mr.frames(FrameSampling.evenly(1)))).rgb.astype(int)
    assert np.abs(ff - fr).mean() > 0.5
    assert meta["pairs"][-1]["swapped_frames"] >= 1
