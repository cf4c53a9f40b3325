"""Dataset layouts and the evaluation report (with a real detector when weights are installed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deepshield.detect.base import DetectorInfo
from deepshield.detect.datasets import Dataset, DatasetSelection, EvalItem, discover, limited
from deepshield.detect.evaluate import (
    ItemResult,
    _by_method,
    _crops_in_processes,
    build_report,
    evaluate,
    format_summary,
    plot_roc,
    score_item,
)
from deepshield.detect.export import calibrate_from_scores
from deepshield.detect.onnx_detector import load_sbi_detector
from deepshield.detect.swaps import make_swap_set
from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer
from deepshield.media import open_media
from tests.cli import run_cli
from tests.detect.conftest import PHOTOS, VIDEO


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_discover_layouts(tmp_path: Path) -> None:
    ff = tmp_path / "ff"
    _touch(ff / "original_sequences/youtube/c23/videos/000.mp4")
    _touch(ff / "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")
    _touch(ff / "manipulated_sequences/FaceSwap/c23/videos/000_003.mp4")
    ds = discover(ff)
    assert ds.layout == "faceforensics++" and ds.selection == {"compression": "c23"}
    assert sorted((i.label, i.method) for i in ds.items) == [(0, "real"), (1, "Deepfakes"), (1, "FaceSwap")]

    cd = tmp_path / "celeb"
    (cd).mkdir()
    (cd / "List_of_testing_videos.txt").write_text("1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    ds = discover(cd)
    assert ds.layout == "celeb-df"
    assert [(i.label, i.method) for i in ds.items] == [(0, "real"), (1, "Celeb-synthesis")]

    dfdc = tmp_path / "dfdc"
    _touch(dfdc / "part0/a.mp4")
    (dfdc / "part0/metadata.json").write_text(json.dumps({"a.mp4": {"label": "FAKE"}, "b.mp4": {"label": "REAL"}}))
    ds = discover(dfdc)
    assert ds.layout == "dfdc" and sorted(i.label for i in ds.items) == [0, 1]

    rf = tmp_path / "rf"
    _touch(rf / "real/x.jpg")
    _touch(rf / "fake/faceswap/y.jpg")
    _touch(rf / "fake/z.mp4")
    ds = discover(rf)
    assert ds.layout == "real-fake-folders"
    assert sorted(i.method for i in ds.items) == ["faceswap", "fake", "real"]

    with pytest.raises(DeepshieldError):
        discover(tmp_path / "rf" / "real")


def _faceforensics_tree(root: Path, compressions: tuple[str, ...] = ("c23",)) -> None:
    """FaceForensics++ as its download script writes it: videos, masks and models, with DeepFakeDetection."""
    for c in compressions:
        for vid in ("000", "003", "953", "974"):
            _touch(root / f"original_sequences/youtube/{c}/videos/{vid}.mp4")
        _touch(root / f"original_sequences/actors/{c}/videos/01__exit_phone_room.mp4")
        for method in ("Deepfakes", "FaceShifter"):
            for pair in ("000_003", "003_000", "953_974", "974_953"):
                _touch(root / f"manipulated_sequences/{method}/{c}/videos/{pair}.mp4")
        _touch(root / f"manipulated_sequences/DeepFakeDetection/{c}/videos/01_02__exit_phone_room__YVGY8LOK.mp4")
        _touch(root / f"original_sequences/youtube/{c}/frames/000/0000.png")  # frames extracted by other tools
    _touch(root / "manipulated_sequences/Deepfakes/masks/videos/000_003.mp4")
    _touch(root / "manipulated_sequences/DeepFakeDetection/masks/videos/01_02__exit_phone_room__YVGY8LOK.mp4")
    _touch(root / "manipulated_sequences/Deepfakes/models/000_003/model.mp4")


def test_faceforensics_leaves_out_masks_models_and_frames_and_pools_reals_by_source(tmp_path: Path) -> None:
    _faceforensics_tree(tmp_path)
    ds = discover(tmp_path)
    assert not [i for i in ds.items if "masks" in i.path.parts or "models" in i.path.parts]
    assert all(i.path.suffix == ".mp4" for i in ds.items)
    by_method = {m: [i for i in ds.items if i.method == m] for m in {i.method for i in ds.items}}
    assert {m: len(v) for m, v in by_method.items()} == {
        "real": 5,
        "Deepfakes": 4,
        "FaceShifter": 4,
        "DeepFakeDetection": 1,
    }
    assert {i.real_pool for i in by_method["DeepFakeDetection"]} == {"actors"}
    assert {i.real_pool for i in by_method["Deepfakes"]} == {"youtube"}
    assert sorted(i.real_pool for i in by_method["real"]) == ["actors"] + ["youtube"] * 4
    assert ds.summary() == (
        "faceforensics++: 5 real, 9 fake (DeepFakeDetection 1, Deepfakes 4, FaceShifter 4); compression c23"
    )


def test_faceforensics_with_several_compressions_needs_one_chosen(tmp_path: Path) -> None:
    _faceforensics_tree(tmp_path, ("c23", "c40"))
    with pytest.raises(DeepshieldError, match=r"several compressions \(c23, c40\); choose one with --compression"):
        discover(tmp_path)
    ds = discover(tmp_path, DatasetSelection(compression="c40"))
    assert len(ds.items) == 14 and all("c40" in i.path.parts for i in ds.items)
    with pytest.raises(DeepshieldError, match=r"no 'raw' videos \(compressions found: c23, c40\)"):
        discover(tmp_path, DatasetSelection(compression="raw"))


def test_faceforensics_split_file_keeps_its_videos_and_both_swap_directions(tmp_path: Path) -> None:
    _faceforensics_tree(tmp_path)
    split = tmp_path / "test.json"
    split.write_text(json.dumps([["953", "974"]]))
    ds = discover(tmp_path, DatasetSelection(split=str(split)))
    assert sorted(i.path.name for i in ds.items) == [
        "953.mp4",
        "953_974.mp4",
        "953_974.mp4",
        "974.mp4",
        "974_953.mp4",
        "974_953.mp4",
    ]
    assert ds.selection == {"compression": "c23", "split": "test.json"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no FaceForensics\\+\\+ split file at"),
        ("{not json", "not valid JSON"),
        ('{"953": "974"}', "expected a FaceForensics\\+\\+ split"),
        ('[["953"]]', "expected a FaceForensics\\+\\+ split"),
        ('[["953", 974]]', "expected a FaceForensics\\+\\+ split"),
        ('[["111", "222"]]', "no media found"),
    ],
)
def test_a_bad_faceforensics_split_file_is_refused(tmp_path: Path, content: str | None, message: str) -> None:
    _faceforensics_tree(tmp_path / "ff")
    split = tmp_path / "split.json"
    if content is not None:
        split.write_text(content)
    with pytest.raises(DeepshieldError, match=message):
        discover(tmp_path / "ff", DatasetSelection(split=str(split)))


def test_dfdc_training_parts_and_test_set_labels_csv_with_a_split_chosen(tmp_path: Path) -> None:
    (tmp_path / "train/dfdc_train_part_0").mkdir(parents=True)
    (tmp_path / "train/dfdc_train_part_0/metadata.json").write_text(
        json.dumps(
            {
                "aagfhgtpmv.mp4": {"label": "FAKE", "split": "train", "original": "vudstovrck.mp4"},
                "vudstovrck.mp4": {"label": "REAL", "split": "train", "original": None},
            }
        )
    )
    (tmp_path / "test").mkdir()
    (tmp_path / "test/labels.csv").write_text(
        "filename,label\naalscayrfi.mp4,1\naaqaifqrwn.mp4,0\n\nabhggqdift.mp4,1\n"
    )
    ds = discover(tmp_path)
    assert ds.layout == "dfdc" and len(ds.items) == 5
    test = discover(tmp_path, DatasetSelection(split="test"))
    assert [(i.path.relative_to(tmp_path).as_posix(), i.label) for i in test.items] == [
        ("test/aalscayrfi.mp4", 1),
        ("test/aaqaifqrwn.mp4", 0),
        ("test/abhggqdift.mp4", 1),
    ]
    assert test.selection == {"split": "test"} and test.summary() == "dfdc: 1 real, 2 fake (dfdc 2); split test"
    assert len(discover(tmp_path, DatasetSelection(split="train")).items) == 2
    with pytest.raises(DeepshieldError, match=r"no items in split 'val' \(splits named: test, train\)"):
        discover(tmp_path, DatasetSelection(split="val"))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a.mp4,2\n", "line 2: expected '<file name>,<0 or 1>'"),
        ("a.mp4\n", "line 2: expected"),
        ("../../etc/passwd,1\n", "points outside the dataset"),
    ],
)
def test_a_malformed_dfdc_labels_csv_is_refused_with_its_line(tmp_path: Path, rows: str, message: str) -> None:
    (tmp_path / "labels.csv").write_text("filename,label\n" + rows)
    with pytest.raises(DeepshieldError, match=message):
        discover(tmp_path)


def test_dfdc_preview_reads_dataset_json_and_its_sets(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(
        json.dumps(
            {
                "method_A/643049/643049_A/1955430.mp4": {"label": "fake", "set": "test", "augmentations": {}},
                "method_B/1224068/1224068_C_001/1486325.mp4": {"label": "fake", "set": "train"},
                "original_videos/643049/1955430.mp4": {"label": "real", "set": "test"},
            }
        )
    )
    ds = discover(tmp_path)
    assert ds.layout == "dfdc-preview"
    assert sorted((i.label, i.method) for i in ds.items) == [(0, "real"), (1, "method_A"), (1, "method_B")]
    test = discover(tmp_path, DatasetSelection(split="test"))
    assert sorted(i.method for i in test.items) == ["method_A", "real"]
    with pytest.raises(DeepshieldError, match="no items in split 'val'"):
        discover(tmp_path, DatasetSelection(split="val"))
    (tmp_path / "dataset.json").write_text(json.dumps({"x.mp4": {"label": "unknown", "set": "test"}}))
    with pytest.raises(DeepshieldError, match="'x.mp4' has no label real or fake"):
        discover(tmp_path)


def test_a_selection_the_layout_does_not_have_is_refused(tmp_path: Path) -> None:
    _touch(tmp_path / "real/x.jpg")
    _touch(tmp_path / "fake/y.jpg")
    with pytest.raises(DeepshieldError, match="--compression applies to FaceForensics\\+\\+ only"):
        discover(tmp_path, DatasetSelection(compression="c23"))
    with pytest.raises(DeepshieldError, match="has no splits: leave out --split"):
        discover(tmp_path, DatasetSelection(split="test"))


def test_limit_takes_items_in_turn_from_each_method(tmp_path: Path) -> None:
    _faceforensics_tree(tmp_path)
    items = limited(discover(tmp_path).items, 3)
    assert sorted(i.method for i in items if i.label == 1) == ["DeepFakeDetection", "Deepfakes", "FaceShifter"]
    assert sorted(i.real_pool for i in items if i.label == 0) == ["actors", "youtube", "youtube"]
    assert len(limited(discover(tmp_path).items, 100)) == 14


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
