"""Labelled deepfake datasets on disk: which layout a folder holds, and its items with their labels.

`deepshield evaluate` is how the detector is judged on datasets it never saw, so each reader follows the
dataset's own published layout and refuses, with one line, what it cannot read unambiguously. Layouts, tried
in this order:

- Celeb-DF (v1 or v2): `List_of_testing_videos.txt`, `<label> <relative path>` per line, label 1 = real.
- FaceForensics++ (with DeepFakeDetection when present): `original_sequences/<source>/<compression>/videos/`
  and `manipulated_sequences/<method>/<compression>/videos/`, as its download script writes them. Mask videos
  (`masks/`), model files and extracted frames are not items. The same videos come in several compressions, so
  a folder holding more than one needs `--compression`. `--split` takes the dataset's split JSON (a list of
  `[target, source]` id pairs, as in its `splits/test.json`).
- DFDC preview: `dataset.json`, {relative path: {"label": "real" | "fake", "set": "train" | "test"}}; `--split`
  picks a set.
- DFDC: a `metadata.json` per training part ({file name: {"label": "REAL" | "FAKE", "split": ...}}) and the
  test set's `labels.csv` (`filename,label`, 1 = fake); `--split train` or `--split test` picks one.
- The public dev set: local copies of the repositories polimi-ispl/icpr2020dfdc (its `test/data/ffpp`
  FaceForensics++ c23 samples, `test/data/dfdc` DFDC parts with their `metadata.json`, and the
  `notebook/samples` the notebooks name real and fake) and ondyari/FaceForensics (its `images/ex_*.png`
  example frames), as the root or its sub-folders. Files the lists name but a copy lacks are left out and
  counted in the selection. Research-use media: read where it was cloned, never copied into this repository.
- A folder with `real/` and `fake/` (each sub-folder of `fake/` is a method).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepshield.detect.training.identities import MEDIA_SUFFIXES, VIDEO_SUFFIXES
from deepshield.errors import DeepshieldError
from deepshield.textfiles import read_json_file, read_text_file

#: FaceForensics++ compression folders (its download script's `-c` choices).
FF_COMPRESSIONS = ("raw", "c23", "c40")
#: FaceForensics++ folders below a method that hold no manipulated videos: masks and the Deepfakes models.
_FF_NOT_ITEMS = {"masks", "models"}
#: FaceForensics++ fakes whose real videos are the paid actors' (`original_sequences/actors`), not YouTube's.
_FF_ACTOR_METHODS = {"DeepFakeDetection"}


@dataclass(frozen=True)
class EvalItem:
    path: Path
    label: int  # 1 = fake
    method: str  # "real" for real items
    #: The real videos a method's fakes are compared with, per method (FaceForensics++'s YouTube and actors
    #: videos are separate sources); "" = all real items.
    real_pool: str = ""


@dataclass(frozen=True)
class DatasetSelection:
    """What part of a dataset to evaluate; each field applies to some layouts only."""

    compression: str | None = None  # FaceForensics++: raw, c23 or c40
    split: str | None = None  # FaceForensics++: a split JSON file; DFDC and its preview: a split name


@dataclass
class Dataset:
    root: Path
    layout: str
    items: list[EvalItem]
    #: What was chosen, for the report: {"compression": "c23", "split": "test.json"}.
    selection: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line a person reads before a long run: the layout, the counts per method, the selection."""
        reals = sum(1 for i in self.items if i.label == 0)
        methods = Counter(i.method for i in self.items if i.label == 1)
        per_method = ", ".join(f"{m} {n}" for m, n in sorted(methods.items()))
        chosen = f"; {describe_selection(self.selection)}" if self.selection else ""
        fakes = sum(methods.values())
        return f"{self.layout}: {reals} real, {fakes} fake" + (f" ({per_method})" if per_method else "") + chosen


def describe_selection(selection: dict[str, str]) -> str:
    """A dataset's selection as the CLI and the report's summary print it: `compression c23, split test.json`."""
    return ", ".join(f"{k} {v}" for k, v in selection.items())


def media_files(root: Path, suffixes: Iterable[str] = MEDIA_SUFFIXES) -> list[Path]:
    wanted = set(suffixes)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def discover(root: Path, selection: DatasetSelection | None = None) -> Dataset:
    """The labelled items of a dataset folder, in a fixed order, with the selection applied."""
    sel = selection or DatasetSelection()
    if not root.is_dir():
        raise DeepshieldError(f"not a folder: {root}")
    if (root / "List_of_testing_videos.txt").is_file():
        ds = Dataset(root, "celeb-df", _celeb_df_items(root))
    elif any(dev_repos := _dev_set_repos(root)):
        ds = _public_dev_set(root, *dev_repos)
    elif (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir():
        ds = _faceforensics(root, sel)
    elif (root / "dataset.json").is_file():
        ds = _dfdc_preview(root, sel.split)
    elif any(dfdc_lists := _dfdc_lists(root)):
        ds = _dfdc(root, *dfdc_lists, sel.split)
    elif (root / "real").is_dir() and (root / "fake").is_dir():
        ds = Dataset(root, "real-fake-folders", _real_fake_items(root))
    else:
        raise DeepshieldError(
            f"{root}: no known layout (real/ + fake/, FaceForensics++, Celeb-DF list, DFDC metadata.json or "
            "labels.csv, DFDC preview dataset.json, copies of icpr2020dfdc or FaceForensics)"
        )
    if ds.layout != "faceforensics++" and sel.compression is not None:
        raise DeepshieldError(f"--compression applies to FaceForensics++ only, and {root} is {ds.layout}")
    if ds.layout in ("celeb-df", "real-fake-folders", "public-dev-set") and sel.split is not None:
        raise DeepshieldError(f"{root} is {ds.layout}, which has no splits: leave out --split")
    if not ds.items:
        chosen = f" ({describe_selection(ds.selection)})" if ds.selection else ""
        raise DeepshieldError(f"{root}: no media found{chosen}")
    return ds


def limited(items: list[EvalItem], limit: int) -> list[EvalItem]:
    """At most `limit` real and `limit` fake items, taken in turn from each method (and each real pool).

    Taking the first `limit` of each label would fill a quick run with one method's fakes, since items are
    sorted by method.
    """

    def take(group: list[EvalItem], key: str) -> list[EvalItem]:
        queues: dict[str, list[EvalItem]] = {}
        for it in group:
            queues.setdefault(getattr(it, key), []).append(it)
        out: list[EvalItem] = []
        depth = 0
        while len(out) < limit and any(depth < len(q) for q in queues.values()):
            out += [q[depth] for q in queues.values() if depth < len(q)][: limit - len(out)]
            depth += 1
        return out

    return take([i for i in items if i.label == 0], "real_pool") + take([i for i in items if i.label == 1], "method")


def _inside(root: Path, rel: str, where: str) -> Path:
    """`root / rel`, refused when a listed name points outside the dataset (an absolute path or `..`)."""
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts:
        raise DeepshieldError(f"{where}: {rel!r} points outside the dataset folder")
    return root / path


def _real_fake_items(root: Path) -> list[EvalItem]:
    items = [EvalItem(p, 0, "real") for p in media_files(root / "real")]
    fake = root / "fake"
    for p in media_files(fake):
        rel = p.relative_to(fake)
        items.append(EvalItem(p, 1, rel.parts[0] if len(rel.parts) > 1 else "fake"))
    return items


def _celeb_df_items(root: Path) -> list[EvalItem]:
    """Celeb-DF's test list: `<label> <relative path>` per line, label 1 = real, 0 = synthesised."""
    listing = root / "List_of_testing_videos.txt"
    items = []
    for n, line in enumerate(read_text_file(listing, "Celeb-DF list").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{listing} line {n}"
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DeepshieldError(f"{where}: expected '<0 or 1> <relative path>', got {line.strip()[:80]!r}")
        label = 0 if parts[0] == "1" else 1
        path = _inside(root, parts[1], where)
        rel = path.relative_to(root)
        items.append(EvalItem(path, label, "real" if label == 0 else rel.parts[0]))
    return items


def _ff_compression(rel: Path) -> str:
    """The compression folder a FaceForensics++ file sits in (`<source or method>/<compression>/videos/`)."""
    return next((part for part in rel.parts[1:-1] if part in FF_COMPRESSIONS), "")


def _ff_split_ids(path: Path) -> set[str]:
    """Video names of a FaceForensics++ split JSON: both targets of each pair and both swap directions."""
    pairs = read_json_file(path, "FaceForensics++ split file")
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) and v for v in p) for p in pairs
    ):
        raise DeepshieldError(f"{path}: expected a FaceForensics++ split, a list of [target, source] id pairs")
    ids: set[str] = set()
    for a, b in pairs:
        ids |= {a, b, f"{a}_{b}", f"{b}_{a}"}
    return ids


def _faceforensics(root: Path, sel: DatasetSelection) -> Dataset:
    found: list[tuple[EvalItem, str]] = []  # (item, compression)
    originals, manipulated = root / "original_sequences", root / "manipulated_sequences"
    for folder, label in ((originals, 0), (manipulated, 1)):
        if not folder.is_dir():
            continue
        for p in media_files(folder, VIDEO_SUFFIXES):
            rel = p.relative_to(folder)
            if len(rel.parts) < 2 or _FF_NOT_ITEMS & set(rel.parts[1:-1]):
                continue
            group = rel.parts[0]  # the real source (youtube, actors) or the method
            if label == 0:
                item = EvalItem(p, 0, "real", real_pool=group)
            else:
                item = EvalItem(p, 1, group, real_pool="actors" if group in _FF_ACTOR_METHODS else "youtube")
            found.append((item, _ff_compression(rel)))
    selection: dict[str, str] = {}
    levels = sorted({c for _, c in found if c})
    if sel.compression is not None:
        if sel.compression not in levels:
            raise DeepshieldError(
                f"{root} has no {sel.compression!r} videos (compressions found: {', '.join(levels) or 'none'})"
            )
        found = [(i, c) for i, c in found if c == sel.compression]
    elif len(levels) > 1:
        raise DeepshieldError(
            f"{root} holds the same videos in several compressions ({', '.join(levels)}); choose one with --compression"
        )
    if levels:
        selection["compression"] = sel.compression or levels[0]
    items = [i for i, _ in found]
    if sel.split is not None:
        ids = _ff_split_ids(Path(sel.split))
        # The split names YouTube videos and their fakes; DeepFakeDetection's actors are in no split.
        items = [i for i in items if i.real_pool == "youtube" and i.path.stem in ids]
        selection["split"] = Path(sel.split).name
    return Dataset(root, "faceforensics++", items, selection)


def _dfdc_preview(root: Path, split: str | None) -> Dataset:
    """DFDC preview's `dataset.json`: {relative path: {"label": "real" | "fake", "set": "train" | "test"}}."""
    meta_path = root / "dataset.json"
    meta = read_json_file(meta_path, "DFDC preview dataset.json")
    if not isinstance(meta, dict):
        raise DeepshieldError(f"{meta_path}: expected an object of path -> {{'label': ..., 'set': ...}}")
    items = []
    sets: set[str] = set()
    for name, rec in sorted(meta.items()):
        label = _label_of(rec, ("real", "fake"))
        if label is None:
            raise DeepshieldError(f"{meta_path}: entry {name[:80]!r} has no label real or fake")
        subset = str(rec.get("set", ""))
        sets.add(subset)
        if split is not None and subset != split:
            continue
        path = _inside(root, name, str(meta_path))
        method = "real" if label == 0 else (Path(name).parts[0] if len(Path(name).parts) > 1 else "fake")
        items.append(EvalItem(path, label, method))
    _check_split(meta_path, split, sets)
    return Dataset(root, "dfdc-preview", items, {"split": split} if split else {})


def _label_of(rec: Any, names: tuple[str, str]) -> int | None:
    """0 or 1 from a record's "label" (names[0] = real, names[1] = fake, any case); None when it has none."""
    label = str(rec.get("label", "")).lower() if isinstance(rec, dict) else ""
    return names.index(label) if label in names else None


def _check_split(where: Path, split: str | None, found: set[str]) -> None:
    if split is not None and split not in found:
        named = ", ".join(sorted(s for s in found if s)) or "none"
        raise DeepshieldError(f"{where}: no items in split {split!r} (splits named: {named})")


def _dfdc_lists(root: Path) -> tuple[list[Path], list[tuple[Path, list[list[str]]]]]:
    """DFDC's label files under `root`: each training part's `metadata.json`, and the test set's `labels.csv`
    (at the root or one folder down, known by its `filename,label` header) with its rows, read once."""
    metas = sorted(root.rglob("metadata.json"))
    tests = []
    for path in (root / "labels.csv", *sorted(root.glob("*/labels.csv"))):
        if not path.is_file():
            continue
        try:
            rows = list(csv.reader(io.StringIO(read_text_file(path, "DFDC labels.csv"))))
        except (DeepshieldError, csv.Error):
            continue  # not a DFDC list: the layout is decided by the other files
        if rows and [h.strip().lower() for h in rows[0][:2]] == ["filename", "label"]:
            tests.append((path, rows[1:]))
    return metas, tests


def _dfdc(root: Path, metas: list[Path], tests: list[tuple[Path, list[list[str]]]], split: str | None) -> Dataset:
    items: list[EvalItem] = []
    splits: set[str] = set()
    parts = [_dfdc_part_items(m) for m in metas] + [_dfdc_test_items(path, rows) for path, rows in tests]
    for part in parts:
        for item, subset in part:
            splits.add(subset)
            if split is None or subset == split:
                items.append(item)
    _check_split(root, split, splits)
    return Dataset(root, "dfdc", items, {"split": split} if split else {})


def _dfdc_part_items(meta_path: Path) -> list[tuple[EvalItem, str]]:
    """One DFDC part's `metadata.json`: {file name: {"label": "REAL" | "FAKE", "split": ...}}."""
    meta = read_json_file(meta_path, "DFDC metadata")
    if not isinstance(meta, dict):
        raise DeepshieldError(f"{meta_path}: expected an object of file name -> {{'label': ...}}")
    out = []
    for name, rec in sorted(meta.items()):
        label = _label_of(rec, ("real", "fake"))
        if label is None:
            raise DeepshieldError(f"{meta_path}: entry {name[:80]!r} has no label REAL or FAKE")
        path = _inside(meta_path.parent, name, str(meta_path))
        out.append((EvalItem(path, label, "dfdc" if label else "real"), str(rec.get("split", "train"))))
    return out


def _dfdc_test_items(csv_path: Path, rows: list[list[str]]) -> list[tuple[EvalItem, str]]:
    """The DFDC test set's `labels.csv` rows after its header: `filename,label`, label 1 = fake."""
    out = []
    for n, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or row[1].strip() not in ("0", "1"):
            raise DeepshieldError(f"{csv_path} line {n}: expected '<file name>,<0 or 1>', got {','.join(row)[:80]!r}")
        label = int(row[1].strip())
        path = _inside(csv_path.parent, row[0].strip(), f"{csv_path} line {n}")
        out.append((EvalItem(path, label, "dfdc" if label else "real"), "test"))
    return out


#: polimi-ispl/icpr2020dfdc's notebook samples: its notebooks load `lynaeydofd` as the real video and
#: `mqzvfufzoq` as the fake one (`notebook/Video prediction.ipynb`, `Image prediction.ipynb`), with a frame of each.
_ICPR_NOTEBOOK_LABELS = {"lynaeydofd": 0, "mqzvfufzoq": 1}
#: ondyari/FaceForensics' example frames (`images/`): name -> method ("real" for the originals).
_FF_EXAMPLE_FRAMES = {
    "ex_original": "real",
    "ex_original_actors": "real",
    "ex_deepfakes": "Deepfakes",
    "ex_neuraltextures": "NeuralTextures",
    "ex_deepfakedetection": "DeepFakeDetection",
}


def _dev_set_repos(root: Path) -> tuple[list[Path], list[Path]]:
    """Copies of icpr2020dfdc and of FaceForensics at `root` or one level below it."""
    candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    icpr = [p for p in candidates if (p / "test" / "data" / "ffpp").is_dir() or (p / "notebook" / "samples").is_dir()]
    ff = [p for p in candidates if (p / "images" / "ex_original.png").is_file()]
    return icpr, ff


def _public_dev_set(root: Path, icpr: list[Path], ff: list[Path]) -> Dataset:
    listed: list[EvalItem] = []
    for repo in icpr:
        if (repo / "test" / "data" / "ffpp").is_dir():
            listed += _faceforensics(repo / "test" / "data" / "ffpp", DatasetSelection()).items
        listed += [
            item
            for meta in sorted((repo / "test" / "data").glob("dfdc/*/metadata.json"))
            for item, _ in _dfdc_part_items(meta)
        ]
        samples = repo / "notebook" / "samples"
        for p in media_files(samples) if samples.is_dir() else []:
            name = p.stem.removesuffix("_fr0")
            if name in _ICPR_NOTEBOOK_LABELS:
                label = _ICPR_NOTEBOOK_LABELS[name]
                listed.append(EvalItem(p, label, "dfdc" if label else "real"))
    for repo in ff:
        for name, method in _FF_EXAMPLE_FRAMES.items():
            listed.append(EvalItem(repo / "images" / f"{name}.png", int(method != "real"), method))
    items = [i for i in listed if i.path.is_file()]
    absent = len(listed) - len(items)
    return Dataset(root, "public-dev-set", items, {"absent from this copy": str(absent)} if absent else {})
