"""The face cache refuses a damaged index or crop file with one line naming it (training reads it first)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deepshield.detect.training.facecache import load_cache
from deepshield.errors import DeepshieldError


def _copy(face_cache: Path, tmp_path: Path) -> Path:
    out = tmp_path / "cache"
    shutil.copytree(face_cache, out)
    return out


@pytest.mark.parametrize(
    "last_line",
    ['{"rel": "a.jpg", "group": "a", "spl', "[1, 2]", '{"rel": "a.jpg"}'],
    ids=["cut short", "not an object", "missing keys"],
)
def test_a_bad_index_line_is_one_error_naming_it(face_cache: Path, tmp_path: Path, last_line: str) -> None:
    cache = _copy(face_cache, tmp_path)
    index = cache / "index.jsonl"
    lines = index.read_text().splitlines()
    index.write_text("\n".join([*lines, last_line]) + "\n")
    with pytest.raises(DeepshieldError, match=rf"index.jsonl line {len(lines) + 1} is not a face-cache record"):
        load_cache(cache, ["train"])


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_crop_file_is_one_error_naming_it(face_cache: Path, tmp_path: Path, damage: str) -> None:
    cache = _copy(face_cache, tmp_path)
    crop = sorted((cache / "crops").glob("*.npz"))[0]
    if damage == "truncate":
        crop.write_bytes(crop.read_bytes()[:200])
    else:
        crop.unlink()
    with pytest.raises(DeepshieldError, match=r"\(the crops of .+\) is missing or damaged"):
        load_cache(cache, ["train", "val"])


def test_an_intact_copy_still_loads(face_cache: Path, tmp_path: Path) -> None:
    assert len(load_cache(_copy(face_cache, tmp_path), ["train"])) == len(load_cache(face_cache, ["train"]))
