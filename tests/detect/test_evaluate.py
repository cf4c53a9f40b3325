"""Dataset layouts and the evaluation report (with a real detector when weights are installed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepshield.detect.evaluate import EvalItem, discover, evaluate, format_summary, plot_roc, score_item
from deepshield.detect.export import calibrate_from_scores
from deepshield.detect.onnx_detector import load_sbi_detector
from deepshield.detect.swaps import make_swap_set
from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer
from deepshield.media import open_media
from tests.cli import run_cli
from tests.detect.conftest import PHOTOS


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_discover_layouts(tmp_path: Path) -> None:
    ff = tmp_path / "ff"
    _touch(ff / "original_sequences/youtube/c23/videos/000.mp4")
    _touch(ff / "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")
    _touch(ff / "manipulated_sequences/FaceSwap/c23/videos/000_003.mp4")
    layout, items = discover(ff)
    assert layout == "faceforensics++"
    assert sorted((i.label, i.method) for i in items) == [(0, "real"), (1, "Deepfakes"), (1, "FaceSwap")]

    cd = tmp_path / "celeb"
    (cd).mkdir()
    (cd / "List_of_testing_videos.txt").write_text("1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    layout, items = discover(cd)
    assert layout == "celeb-df-v2"
    assert [(i.label, i.method) for i in items] == [(0, "real"), (1, "Celeb-synthesis")]

    dfdc = tmp_path / "dfdc"
    _touch(dfdc / "part0/a.mp4")
    (dfdc / "part0/metadata.json").write_text(json.dumps({"a.mp4": {"label": "FAKE"}, "b.mp4": {"label": "REAL"}}))
    layout, items = discover(dfdc)
    assert layout == "dfdc" and sorted(i.label for i in items) == [0, 1]

    rf = tmp_path / "rf"
    _touch(rf / "real/x.jpg")
    _touch(rf / "fake/faceswap/y.jpg")
    _touch(rf / "fake/z.mp4")
    layout, items = discover(rf)
    assert layout == "real-fake-folders"
    assert sorted(i.method for i in items) == ["faceswap", "fake", "real"]

    with pytest.raises(DeepshieldError):
        discover(tmp_path / "rf" / "real")


@pytest.mark.parametrize(
    ("listing", "message"),
    [
        ("1 YouTube-real/00170.mp4\ngarbage\n", "line 2: expected"),
        ("2 YouTube-real/00170.mp4\n", "line 1: expected"),
        ("0 ../../etc/passwd\n", "points outside the dataset"),
        ("1 /etc/passwd\n", "points outside the dataset"),
    ],
)
def test_a_malformed_celeb_df_list_is_refused_with_its_line(tmp_path: Path, listing: str, message: str) -> None:
    (tmp_path / "List_of_testing_videos.txt").write_text(listing)
    with pytest.raises(DeepshieldError, match=message):
        discover(tmp_path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        (json.dumps({"a.mp4": {"split": "train"}}), "'a.mp4' has no label"),
        (json.dumps({"a.mp4": "FAKE"}), "'a.mp4' has no label"),
        (json.dumps({"a.mp4": {"label": "MAYBE"}}), "'a.mp4' has no label"),
        (json.dumps({"../a.mp4": {"label": "FAKE"}}), "points outside the dataset"),
    ],
)
def test_a_malformed_dfdc_metadata_file_is_refused(tmp_path: Path, metadata: str, message: str) -> None:
    (tmp_path / "part0").mkdir()
    (tmp_path / "part0" / "metadata.json").write_text(metadata)
    with pytest.raises(DeepshieldError, match=message):
        discover(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no evaluation scores at"),
        (b"zz", "is not valid JSON"),
        (b"\xff\xfe\x00", "is not UTF-8 text"),
        (b'{"items": 5}', "not a scores.json written by `deepshield evaluate`"),
        (b'{"items": [{"label": 2, "frames": [{"logit": 0.1}]}]}', "not a scores.json"),
        (b'{"items": [{"label": 0, "frames": [{"score": 0.1}]}]}', "not a scores.json"),
    ],
)
def test_calibrate_refuses_a_file_that_is_not_evaluate_scores(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    scores = tmp_path / "scores.json"
    if content is not None:
        scores.write_bytes(content)
    with pytest.raises(DeepshieldError, match=message):
        calibrate_from_scores(scores, tmp_path)


def test_the_evaluate_command_lists_failed_items_and_exits_1(shared_faces: Path, tmp_path: Path) -> None:
    if load_sbi_detector() is None:
        pytest.skip("no detector weights installed in deepshield/models")
    data = tmp_path / "set"
    (data / "real").mkdir(parents=True)
    (data / "fake").mkdir()
    shutil.copy(shared_faces / PHOTOS[0], data / "real" / "face.jpg")
    (data / "fake" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    res = run_cli("evaluate", str(data), "--out", str(tmp_path / "out"))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "FAILED" in res.stderr and "broken.mp4" in res.stderr
    assert "Warning" not in res.stderr  # a one-class ROC plot says so on the picture, not through matplotlib
    report = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert report["n_errors"] == 1 and report["n_items"] == 2
    assert (tmp_path / "out" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_real_swaps_with_shipped_detector(shared_faces: Path, tmp_path: Path) -> None:
    det = load_sbi_detector()
    if det is None:
        pytest.skip("no detector weights installed in deepshield/models")
    items = [(shared_faces / rel, rel, f"p{i}", False) for i, rel in enumerate(PHOTOS)]
    data = tmp_path / "set"
    make_swap_set(items, data, seed=2)
    (data / "real" / "broken.jpg").write_bytes(b"not an image")
    cache = tmp_path / "crops"
    report = evaluate(data, det, frames=4, n_boot=50, crop_cache=cache)
    again = evaluate(data, det, frames=4, n_boot=50, crop_cache=cache)  # from the crop cache
    assert len(list(cache.glob("*.npz"))) == len(report["items"]) - 1
    assert [i["video_score"] for i in again["items"]] == [i["video_score"] for i in report["items"]]
    assert report["layout"] == "real-fake-folders" and report["n_errors"] == 1
    scored = [i for i in report["items"] if i["video_score"] is not None]
    assert {i["label"] for i in scored} == {0, 1}
    for i in scored:
        assert 0 <= i["video_score"] <= 1
        assert i["video_score"] == pytest.approx(np.mean([f["score"] for f in i["frames"]]))
    m = report["all"]["video"]
    assert 0 <= m["auc"] <= 1 and len(m["auc_ci95"]) == 2 and "fpr_at_threshold" in m
    assert any("video-level: AUC" in line for line in format_summary(report))
    png = plot_roc(report, tmp_path / "roc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(report)  # every score serialisable
    shutil.rmtree(data)


def test_a_face_cut_by_the_frame_edge_does_not_decide_the_frame(shared_faces: Path, tmp_path: Path) -> None:
    det = load_sbi_detector()
    if det is None:
        pytest.skip("no detector weights installed in deepshield/models")
    photo = shared_faces / "lfw_1000" / "cflfw_Marissa_Jaret_Winokur_0001.jpg"
    analyzer = FaceAnalyzer()
    try:
        rgb = next(open_media(photo).frames()).rgb
        faces = analyzer.analyze(rgb)
        logits = det.logits(np.stack(det.crops(rgb, faces)))
        item = EvalItem(photo, 0, "real")
        fresh = score_item(item, analyzer, det, frames=1, crop_cache=tmp_path)
        cached = score_item(item, analyzer, det, frames=1, crop_cache=tmp_path)
    finally:
        analyzer.close()
    assert [f.is_partial for f in faces] == [False, True]
    for res in (fresh, cached):
        (frame,) = res.frames
        assert frame["faces"] == 2 and frame["partial_faces"] == 1
        assert frame["logit"] == pytest.approx(float(logits[0]), abs=1e-5)
