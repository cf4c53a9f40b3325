"""Who is in each file of the shared face corpus, and the train / validation / test split by identity.

Splitting by file would put the same person on both sides and inflate every figure, so files are grouped
into identity groups first (a group photo joins the groups of everyone named in it) and whole groups are
assigned to a split by a stable hash. The rules follow the corpus MANIFEST.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".mp4", ".mov", ".webm", ".mkv", ".avi"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi"}
#: Folders of real photos/videos of people (paintings/ and uncertain/ are never labelled data).
REAL_FOLDERS = ("real_photos", "real_videos", "lfw_1000", "more_photos")

#: Real videos held out for testing (whole identity groups go with them), chosen across sources so the test
#: set has talking heads of several styles. Videos of one person share a group (AOC appears in st_ and vr_).
TEST_VIDEOS = (
    "lp_d0.mp4",
    "lp_d3.mp4",
    "lp_d10.mp4",
    "lp_d18.mp4",
    "st_WDA_KatieHill_000.mp4",
    "st_WDA_EdMarkey0_000.mp4",
    "st_RD_Radio2_000.mp4",
    "fr_hamilton_clip.mp4",
)
VAL_VIDEOS = ("lp_d11.mp4", "lp_d20.mp4", "st_WDA_BobMenendez_000.mp4")


#: The identity splits, in the order the model card lists them.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CorpusItem:
    path: Path
    rel: str  # path relative to the corpus root
    group: str  # identity group
    split: str  # one of SPLITS
    is_video: bool


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


_FR_PEOPLE = {
    "obama": "obama",
    "biden": "biden",
    "lacamoire": "alex_lacamoire",
    "johnsnow": "kit_harington",
    "kit_harington": "kit_harington",
    "kit_with_rose": "kit_harington",
    "rose_leslie": "rose_leslie",
    "miranda": "lin_manuel_miranda",
    "hamilton": "lin_manuel_miranda",
}

#: (file-name pattern, key prefix): sources that name the person in the file name; the first group is the person.
_NAMED_PERSON = (
    (r"fapi_([a-z]+)_\1\d+$", "fapi:"),
    (r"cf_(?:files|sample_images)_person([a-z])-img\d", "cf_person"),
    (r"of_([a-z]+)-\d$", "of:"),
    (r"fp_test_images_(.+)_\d+$", "fp:"),
    (r"grid_([a-z0-9]+)_[a-z0-9]+$", "grid:"),  # configs/extra_real_videos.tsv: grid_<speaker>_<sentence>
)


def identity_keys(name: str) -> list[str]:
    """Identity keys of everyone in a corpus file, from its name (several for group photos)."""
    stem = Path(name).stem
    low = stem.lower()
    if low.startswith("cflfw_"):
        return ["lfw:" + re.sub(r"_\d{4}$", "", stem[6:])]
    if low.startswith("fr_"):
        keys = sorted({v for k, v in _FR_PEOPLE.items() if k in low})
        if "kit_with_rose" in low:
            keys.append("rose_leslie")
        return keys or [low]
    if low.startswith("fapi_") and any(
        p in low for p in ("bbt", "amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart")
    ):
        return ["bbt_cast"]  # the group shots show the whole cast: one group
    for pattern, prefix in _NAMED_PERSON:
        m = re.match(pattern, low)
        if m:
            return [prefix + m.group(1)]
    if low.startswith("vr_") or "ocasiocortez" in low:
        return ["aoc_and_vr"]  # MANIFEST: AOC appears in st_ and vr_; keep all vr_ clips together
    m = re.match(r"lp_d(\d+)$", low)
    if m:
        return ["lp_d" + m.group(1)]  # a driving video and its still share a person
    return [low]


def _df_unions(uf: _UnionFind, corpus: Path) -> None:
    csv_path = corpus / "real_photos" / "df_master.csv"
    if not csv_path.is_file():
        return
    with csv_path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Decision", "").strip().lower() == "yes":
                a, b = Path(row["file_x"]).stem.lower(), Path(row["file_y"]).stem.lower()
                uf.union("df_" + a, "df_" + b)


def _bucket(group: str) -> int:
    return int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) % 100


def list_corpus(corpus: Path, val_pct: int = 10, test_pct: int = 10) -> list[CorpusItem]:
    """Every real file of the corpus with its identity group and split (deterministic)."""
    files: list[tuple[Path, str]] = []
    for folder in REAL_FOLDERS:
        d = corpus / folder
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES:
                files.append((p, f"{folder}/{p.name}"))
    uf = _UnionFind()
    _df_unions(uf, corpus)
    file_keys: dict[str, list[str]] = {}
    for p, rel in files:
        keys = identity_keys(p.name)
        file_keys[rel] = keys
        for k in keys[1:]:
            uf.union(keys[0], k)
    forced: dict[str, str] = {}
    for p, rel in files:
        root = uf.find(file_keys[rel][0])
        if p.name in TEST_VIDEOS:
            forced[root] = "test"
        elif p.name in VAL_VIDEOS:
            forced.setdefault(root, "val")
    items = []
    for p, rel in files:
        group = uf.find(file_keys[rel][0])
        split = forced.get(group)
        if split is None:
            if p.suffix.lower() in VIDEO_SUFFIXES or group == "aoc_and_vr":
                split = "train"  # videos not listed above train the model: video frames are scarce
            else:
                b = _bucket(group)
                split = "test" if b < test_pct else "val" if b < test_pct + val_pct else "train"
        items.append(CorpusItem(p, rel, group, split, p.suffix.lower() in VIDEO_SUFFIXES))
    return items
