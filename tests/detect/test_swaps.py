"""The face-swap generator: real swaps between different people, photos and videos, decodable output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepshield.detect.training.swaps import delaunay, make_swap_set, warp_triangles
from deepshield.media import FrameSampling, open_media
from tests.cli import run_cli
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


def test_a_lower_face_swap_changes_nothing_above_the_nose(shared_faces: Path) -> None:
    from deepshield.detect.training.swaps import _main_face, load_donor, region_points, swap_face
    from deepshield.errors import DeepshieldError
    from deepshield.faces import FaceAnalyzer
    from deepshield.faces.landmarks import LEFT_EYE, NOSE_TIP, RIGHT_EYE
    from deepshield.media import representative_frame

    with FaceAnalyzer() as analyzer:
        donor = load_donor(analyzer, shared_faces / PHOTOS[1], PHOTOS[1])
        rgb = representative_frame(shared_faces / PHOTOS[0])
        face = _main_face(analyzer, rgb)
    assert donor is not None and face is not None and face.landmarks is not None
    lm = face.landmarks
    lower = swap_face(rgb, lm, donor, region="lower-face")
    whole = swap_face(rgb, lm, donor)
    assert lower is not None and whole is not None
    changed_lower = np.abs(lower.astype(int) - rgb.astype(int)).max(axis=2) > 3
    changed_whole = np.abs(whole.astype(int) - rgb.astype(int)).max(axis=2) > 3
    nose_row = int(lm[NOSE_TIP, 1])
    eye_rows = slice(int(lm[RIGHT_EYE + LEFT_EYE, 1].min()), int(lm[RIGHT_EYE + LEFT_EYE, 1].max()) + 1)
    assert not changed_lower[:nose_row].any(), "a lower-face swap leaves eyes and forehead alone"
    assert changed_lower[nose_row:].mean() > 0.01
    assert changed_whole[eye_rows].any(), "a whole-face swap does replace the eyes"
    with pytest.raises(DeepshieldError, match="lower-face"):
        region_points(lm, "chin")


def test_make_swaps_refuses_an_unknown_region_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "swaps"
    res = run_cli("make-swaps", "--out", str(out), "--region", "chin", timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "unknown swap region" in res.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["make-swaps", "--corpus", "{empty}", "--split", "bogus"],
            "unknown split 'bogus': choose one of train, val, test",
        ),
        (["make-swaps", "--corpus", "{empty}"], "no photos or videos of the test split under"),
        (["detect-cache", "--corpus", "{empty}"], "no photos or videos under"),
    ],
)
def test_corpus_commands_refuse_a_bad_split_or_an_empty_corpus(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    argv = [a.replace("{empty}", str(tmp_path / "empty")) for a in args] + ["--out", str(out)]
    res = run_cli(*argv, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr and message in res.stderr, res.stderr
    assert not out.exists()
