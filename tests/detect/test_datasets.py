"""Labelled dataset layouts on disk, read as the datasets ship them (`detect.datasets`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepshield.detect.training.datasets import DatasetSelection, discover, limited
from deepshield.errors import DeepshieldError


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


def test_public_dev_set_reads_both_repositories_as_they_ship(tmp_path: Path) -> None:
    icpr = tmp_path / "icpr2020dfdc"
    ffpp = icpr / "test/data/ffpp"
    _touch(ffpp / "original_sequences/youtube/c23/videos/004.mp4")
    _touch(ffpp / "manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4")
    part = icpr / "test/data/dfdc/dfdc_train_part_0"
    _touch(part / "brtujopkby.mp4")  # awnfpubqmo.mp4 is listed but absent from this copy
    (part / "metadata.json").write_text(
        json.dumps({n: {"label": "FAKE", "split": "train"} for n in ("awnfpubqmo.mp4", "brtujopkby.mp4")})
    )
    _touch(icpr / "notebook/samples/lynaeydofd.mp4")
    _touch(icpr / "notebook/samples/mqzvfufzoq_fr0.jpg")
    _touch(icpr / "notebook/samples/unrelated.mp4")  # no notebook names it: no label, not an item
    ff = tmp_path / "FaceForensics"
    for name in ("ex_original", "ex_neuraltextures", "ex_neuraltextures_mask", "teaser"):
        _touch(ff / f"images/{name}.png")
    ds = discover(tmp_path)
    assert ds.layout == "public-dev-set"
    assert ds.selection == {"absent from this copy": "4"}  # a dfdc video and three of the five example frames
    got = sorted((i.label, i.method, i.path.relative_to(tmp_path).as_posix()) for i in ds.items)
    assert got == [
        (0, "real", "FaceForensics/images/ex_original.png"),
        (0, "real", "icpr2020dfdc/notebook/samples/lynaeydofd.mp4"),
        (0, "real", "icpr2020dfdc/test/data/ffpp/original_sequences/youtube/c23/videos/004.mp4"),
        (1, "NeuralTextures", "FaceForensics/images/ex_neuraltextures.png"),
        (
            1,
            "NeuralTextures",
            "icpr2020dfdc/test/data/ffpp/manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4",
        ),
        (1, "dfdc", "icpr2020dfdc/notebook/samples/mqzvfufzoq_fr0.jpg"),
        (1, "dfdc", "icpr2020dfdc/test/data/dfdc/dfdc_train_part_0/brtujopkby.mp4"),
    ]
    assert discover(icpr).layout == "public-dev-set"  # one repository alone, as its own root
    with pytest.raises(DeepshieldError, match="no splits"):
        discover(tmp_path, DatasetSelection(split="test"))
