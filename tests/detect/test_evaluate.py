"""The evaluation: scores, the report and its figures, the ROC plot, worker processes (with a real detector when
weights are installed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deepshield.detect.base import DetectorInfo
from deepshield.detect.onnx_detector import calibrate, load_sbi_detector
from deepshield.detect.training.datasets import Dataset, EvalItem, discover
from deepshield.detect.training.evaluate import (
    ItemResult,
    _by_method,
    _crops_in_processes,
    build_report,
    evaluate,
    score_item,
)
from deepshield.detect.training.export import calibrate_from_scores
from deepshield.detect.training.summary import format_summary, plot_roc
from deepshield.detect.training.swaps import make_swap_set
from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer
from deepshield.media import open_media
from tests.cli import run_cli
from tests.detect.conftest import PHOTOS, VIDEO


def _result(label: int, method: str, pool: str, score: float) -> ItemResult:
    frame = {"index": 0, "time_s": 0.0, "logit": 0.0, "score": score, "faces": 1, "partial_faces": 0}
    return ItemResult(EvalItem(Path(f"{method}{score}.mp4"), label, method, pool), "video", [frame], score)


def _two_sources() -> list[ItemResult]:
    # Against its own source's reals each method scores 1.0 and 0.75; in one mixed pool it would be 0.5 and 0.875.
    results = [_result(0, "real", "youtube", s) for s in (0.5, 0.6)]
    results += [_result(0, "real", "actors", s) for s in (0.1, 0.2)]
    results += [_result(1, "Deepfakes", "youtube", s) for s in (0.55, 0.9)]
    results += [_result(1, "DeepFakeDetection", "actors", s) for s in (0.3, 0.4)]
    return results


def test_each_method_is_scored_against_the_reals_of_its_own_source() -> None:
    results = _two_sources()
    by_method = _by_method(results, threshold=0.5, n_boot=10)
    assert by_method["DeepFakeDetection"]["video"]["n_real"] == 2
    assert by_method["DeepFakeDetection"]["video"]["auc"] == 1.0
    assert by_method["Deepfakes"]["video"]["n_real"] == 2
    assert by_method["Deepfakes"]["video"]["auc"] == 0.75
    results = [r for r in results if r.item.label == 1 or r.item.real_pool != "actors"]  # none of its own: all
    alone = _by_method(results, threshold=0.5, n_boot=10)["DeepFakeDetection"]["video"]
    assert alone["n_real"] == 2 and alone["auc"] == 0.0


def test_items_without_a_face_are_also_counted_as_undecided(tmp_path: Path) -> None:
    info = DetectorInfo("sbi", "4", threshold=0.5, input_size=160)
    results = [_result(0, "real", "", s) for s in (0.1, 0.6)] + [_result(1, "fake", "", s) for s in (0.8, 0.9)]
    results.append(ItemResult(EvalItem(tmp_path / "noface.mp4", 1, "fake"), "video"))  # a fake the faces missed
    report = build_report(results, Dataset(tmp_path, "real-fake-folders", [r.item for r in results]), info, 1, 10)
    assert report["n_no_face"] == 1 and report["all"]["video"]["auc"] == 1.0
    undecided = report["all_no_face_undecided"]["video"]
    assert undecided["n_fake"] == 3 and undecided["auc"] == 5 / 6  # 0.5 beats one of the two reals
    assert any(
        "every item, the 1 without a face at 0.5, video-level: AUC 0.8333" in line for line in format_summary(report)
    )
    del results[-1]
    report = build_report(results, Dataset(tmp_path, "real-fake-folders", [r.item for r in results]), info, 1, 10)
    assert "all_no_face_undecided" not in report


def test_the_roc_plot_adds_a_panel_of_per_method_curves(tmp_path: Path) -> None:
    info = DetectorInfo("sbi", "4", threshold=0.5, input_size=160)
    results = _two_sources()
    report = build_report(results, Dataset(tmp_path, "faceforensics++", [r.item for r in results]), info, 1, 10)
    assert [i["real_pool"] for i in report["items"]] == [r.item.real_pool for r in results]
    with Image.open(plot_roc(report, tmp_path / "two.png")) as two:
        assert two.size == (1100, 550)
    one = [r for r in results if r.item.method != "DeepFakeDetection" and r.item.real_pool != "actors"]
    report = build_report(one, Dataset(tmp_path, "faceforensics++", [r.item for r in one]), info, 1, 10)
    with Image.open(plot_roc(report, tmp_path / "one.png")) as single:
        assert single.size == (550, 550)


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


def test_the_evaluate_command_on_a_faceforensics_tree_of_real_videos(shared_faces: Path, tmp_path: Path) -> None:
    if load_sbi_detector() is None:
        pytest.skip("no detector weights installed in deepshield/models")
    ff = tmp_path / "ff"
    for rel in (
        "original_sequences/youtube/c23/videos/000.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4",
        "manipulated_sequences/Deepfakes/masks/videos/000_003.mp4",  # not an item
    ):
        (ff / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_faces / VIDEO, ff / rel)
    shutil.copytree(ff / "original_sequences/youtube/c23", ff / "original_sequences/youtube/c40")
    res = run_cli("evaluate", str(ff), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "several compressions (c23, c40); choose one with --compression" in res.stderr

    res = run_cli(
        "evaluate",
        str(ff),
        "--compression",
        "c23",
        "--frames",
        "2",
        "--boot",
        "10",
        "--jobs",
        "2",
        "--out",
        str(tmp_path / "out"),
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert res.stdout.splitlines()[0] == "faceforensics++: 1 real, 1 fake (Deepfakes 1); compression c23"
    assert "faceforensics++ (compression c23)" in res.stdout
    report = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert report["selection"] == {"compression": "c23"} and report["n_items"] == 2
    assert [Path(i["path"]).relative_to(ff).parts[:3] for i in report["items"]] == [
        ("original_sequences", "youtube", "c23"),
        ("manipulated_sequences", "Deepfakes", "c23"),
    ]
    # The same file under both labels: the same frames, so the same score.
    assert report["items"][0]["video_score"] == pytest.approx(report["items"][1]["video_score"])
    assert set(report["by_method"]) == {"Deepfakes"}


def test_evaluate_real_swaps_with_shipped_detector(shared_faces: Path, tmp_path: Path) -> None:
    det = load_sbi_detector()
    if det is None:
        pytest.skip("no detector weights installed in deepshield/models")
    items = [(shared_faces / rel, rel, f"p{i}", False) for i, rel in enumerate(PHOTOS)]
    data = tmp_path / "set"
    make_swap_set(items, data, seed=2)
    (data / "real" / "broken.jpg").write_bytes(b"not an image")
    cache = tmp_path / "crops"
    report = evaluate(discover(data), det, frames=4, n_boot=50, crop_cache=cache)
    again = evaluate(discover(data), det, frames=4, n_boot=50, crop_cache=cache)  # from the crop cache
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


def test_worker_processes_give_the_same_scores_and_a_damaged_cache_file_is_found_again(
    shared_faces: Path, tmp_path: Path
) -> None:
    det = load_sbi_detector()
    if det is None:
        pytest.skip("no detector weights installed in deepshield/models")
    data = tmp_path / "set"
    (data / "real").mkdir(parents=True)
    (data / "fake").mkdir()
    for i, rel in enumerate(PHOTOS[:3]):
        shutil.copy(shared_faces / rel, data / ("real" if i % 2 else "fake") / f"p{i}.jpg")
    shutil.copy(shared_faces / VIDEO, data / "real" / "v.mp4")
    (data / "fake" / "broken.jpg").write_bytes(b"not an image")
    dataset = discover(data)
    serial = evaluate(dataset, det, frames=3, n_boot=20)
    parallel = evaluate(dataset, det, frames=3, n_boot=20, jobs=2)  # crops through a temporary cache

    def scores(report: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        return [(i["path"], i["video_score"], i["error"]) for i in report["items"]]

    assert scores(parallel) == scores(serial)
    assert parallel["n_errors"] == 1 and "broken.jpg" in [Path(p).name for p, _, e in scores(parallel) if e]
    cache = tmp_path / "crops"
    found = dict(_crops_in_processes(dataset.items, det, 3, cache, 2))
    assert {dataset.items[i].path.name for i, f in found.items() if f is None} == {"broken.jpg"}
    files = sorted(cache.glob("*.npz"))
    assert sorted(f for f in found.values() if f is not None) == files and len(files) == 4
    assert not list(cache.glob("*.tmp"))
    files[0].write_bytes(files[0].read_bytes()[:100])  # as if a run had been stopped while writing it
    again = evaluate(dataset, det, frames=3, n_boot=20, crop_cache=cache)
    assert scores(again) == scores(serial)
    assert files[0].stat().st_size > 100  # found again and rewritten


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


def test_calibration_pools_several_score_files(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "sbi_small.json").write_text(json.dumps({"name": "sbi_small", "version": "t"}))
    reals, fakes = tmp_path / "a" / "scores.json", tmp_path / "b" / "scores.json"
    for path, label, logits in ((reals, 0, [-2.0, -1.5, -1.0, 0.5]), (fakes, 1, [1.0, 2.0, 2.5])):
        path.parent.mkdir()
        path.write_text(json.dumps({"items": [{"label": label, "frames": [{"logit": x} for x in logits]}]}))
    meta = calibrate_from_scores([reals, fakes], models)
    assert meta["calibration"]["n_frames"] == 7 and meta["calibration"]["n_real_frames"] == 4
    assert meta["calibration"]["fitted_on"] == "a/scores.json, b/scores.json"
    assert meta["calibration"]["a"] > 0  # fakes score higher, so the fitted slope is positive
    with pytest.raises(DeepshieldError, match="only reals"):
        calibrate_from_scores([reals], models)


def test_calibration_sets_a_photo_threshold_from_real_photos_only(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "sbi_small.json").write_text(json.dumps({"name": "sbi_small", "version": "t"}))
    frames = tmp_path / "frames" / "scores.json"
    frames.parent.mkdir()
    items = [{"label": 0, "kind": "video", "frames": [{"logit": x} for x in (-3.0, -2.0, -1.0, 0.0)]}]
    items.append({"label": 1, "kind": "video", "frames": [{"logit": x} for x in (1.0, 2.0, 3.0)]})
    frames.write_text(json.dumps({"items": items}))
    photos = tmp_path / "photos" / "scores.json"
    photos.parent.mkdir()
    real = [{"label": 0, "kind": "image", "frames": [{"logit": x / 10}]} for x in range(100)]
    fakes = [{"label": 1, "kind": "image", "frames": [{"logit": 50.0}]}]  # fakes never move the photo threshold
    photos.write_text(json.dumps({"items": real + fakes}))
    meta = calibrate_from_scores([frames], models, target_fpr=0.25, photo_scores=[photos], photo_fpr=0.05)
    a, b = meta["calibration"]["a"], meta["calibration"]["b"]
    expected = float(np.quantile(calibrate(np.arange(100) / 10, a, b), 0.95))
    assert meta["photo_threshold"] == pytest.approx(max(expected, meta["threshold"]), abs=1e-4)
    assert meta["photo_threshold"] > meta["threshold"] and "100 validation real photos" in meta["photo_threshold_rule"]
    # Calibrating again without photos drops the old photo threshold rather than keeping a stale one.
    assert "photo_threshold" not in calibrate_from_scores([frames], models, target_fpr=0.25)
    photos.write_text(json.dumps({"items": real[:5]}))
    with pytest.raises(DeepshieldError, match="needs 20"):
        calibrate_from_scores([frames], models, photo_scores=[photos])


def test_evaluate_prints_a_baseline_version_scored_on_the_same_crops(shared_faces: Path, tmp_path: Path) -> None:
    baseline = Path(__file__).parents[2] / "src" / "deepshield" / "models" / "v4"
    if load_sbi_detector() is None or not (baseline / "sbi_small.onnx").is_file():
        pytest.skip("no detector weights installed in deepshield/models")
    data = tmp_path / "set"
    for sub, rel in (("real", PHOTOS[0]), ("fake", PHOTOS[1])):
        (data / sub).mkdir(parents=True)
        shutil.copy(shared_faces / rel, data / sub / "face.jpg")
    res = run_cli("evaluate", str(data), "--out", str(tmp_path / "out"), "--boot", "10", "--baseline", str(baseline))
    assert res.returncode == 0, res.stderr
    assert "video-level AUC" in res.stdout and "version 4" in res.stdout
    base = json.loads((tmp_path / "out" / "scores_baseline.json").read_text())
    main = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert base["detector_version"] == "4" and len(base["items"]) == len(main["items"]) == 2
    assert [len(i["frames"]) for i in base["items"]] == [len(i["frames"]) for i in main["items"]] == [1, 1]
    bad = run_cli("evaluate", str(data), "--out", str(tmp_path / "o2"), "--baseline", str(tmp_path))
    assert bad.returncode == 2 and "no sbi_small.onnx" in bad.stderr
