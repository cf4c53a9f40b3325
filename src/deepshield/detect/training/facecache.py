"""A cache of aligned face crops with their 478-point meshes, extracted once from a folder of real media.

Face analysis (detection + mesh) costs far more than self-blending, so it runs once: each source file gives
an `.npz` of crops (generous margin, roll removed) and landmarks mapped into crop pixels; training then
self-blends from the cache on the fly. Every file is opened through `deepshield.media.open_media`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer, align_face
from deepshield.media import FrameSampling, open_media
from deepshield.textfiles import read_text_file

CACHE_SIZE = 256
CACHE_MARGIN = 0.45  # fraction of the face extent on each side; training crops take a random smaller margin

#: What every line of a cache's index.jsonl holds.
_INDEX_KEYS = {"rel", "group", "split", "n"}


@dataclass
class CachedFaces:
    """All crops of one split, held in memory (a few hundred MB at most)."""

    images: np.ndarray  # N x S x S x 3 uint8
    landmarks: np.ndarray  # N x 478 x 2 float32, crop pixels
    groups: list[str]  # identity group per crop
    sources: list[str]  # corpus-relative file per crop

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _key(rel: str) -> str:
    return hashlib.sha1(rel.encode()).hexdigest()[:16]


def extract_faces(
    analyzer: FaceAnalyzer,
    path: Path,
    frames_per_video: int = 16,
    max_faces: int = 4,
    min_face_px: float = 40.0,
    size: int = CACHE_SIZE,
    margin: float = CACHE_MARGIN,
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops and crop-space landmarks of the faces (with a mesh) in one photo or video."""
    media = open_media(path)
    try:
        crops: list[np.ndarray] = []
        lms: list[np.ndarray] = []
        for frame in media.frames(FrameSampling.evenly(frames_per_video)):
            faces = [f for f in analyzer.analyze(frame.rgb) if f.landmarks is not None]
            faces = [f for f in faces if max(f.width, f.height) >= min_face_px][:max_faces]
            for f in faces:
                assert f.landmarks is not None
                crop = align_face(frame.rgb, f, size=size, margin=margin)
                crops.append(crop.image)
                lms.append(crop.map_points(f.landmarks).astype(np.float32))
    finally:
        media.close()
    if not crops:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 478, 2), np.float32)
    return np.stack(crops), np.stack(lms)


def build_cache(
    items: Iterable[tuple[Path, str, str, str]],
    out_dir: Path,
    frames_per_video: int = 16,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Extract every (path, rel, group, split) item into `out_dir`; files already cached are skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "crops").mkdir(exist_ok=True)
    index_path = out_dir / "index.jsonl"
    done: dict[str, dict[str, object]] = {}
    if index_path.is_file():
        for rec in _index_records(index_path):
            done[rec["rel"]] = rec
    counts: dict[str, int] = {}
    with FaceAnalyzer() as analyzer, index_path.open("a") as index:
        for path, rel, group, split in items:
            if progress:
                progress(rel)
            if rel in done:
                n = int(done[rel]["n"])  # type: ignore[call-overload]
            else:
                try:
                    imgs, lms = extract_faces(analyzer, path, frames_per_video=frames_per_video)
                except DeepshieldError:
                    imgs, lms = np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 478, 2), np.float32)
                n = int(imgs.shape[0])
                if n:
                    np.savez(out_dir / "crops" / f"{_key(rel)}.npz", images=imgs, landmarks=lms)
                index.write(json.dumps({"rel": rel, "group": group, "split": split, "n": n}) + "\n")
                index.flush()
            counts[split] = counts.get(split, 0) + n
    return counts


def _index_records(index_path: Path) -> list[dict[str, Any]]:
    """The records of a cache's `index.jsonl`; a line that is not one (a hand edit, a write cut short) is one
    error naming it, not a traceback in the middle of training."""
    records = []
    for n, line in enumerate(read_text_file(index_path, "face-cache index").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        if not (isinstance(rec, dict) and rec.keys() >= _INDEX_KEYS):
            raise DeepshieldError(f"{index_path} line {n} is not a face-cache record: rebuild the face cache")
        records.append(rec)
    return records


def cached_videos(
    cache_dir: Path, wanted: set[str], folder: str, keys: tuple[str, ...], cache: str, command: str
) -> Iterator[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Each indexed video of the `wanted` splits that has frames, once, with the arrays `keys` of its
    `<folder>/<key>.npz`: the walk both the face cache and the clip cache (`temporal.clips`) load through, so a
    missing or damaged file is the same clear error in both."""
    index_path = cache_dir / "index.jsonl"
    if not index_path.is_file():
        raise DeepshieldError(f"no {cache} at {cache_dir}: run `deepshield {command}` first")
    seen: set[str] = set()
    for rec in _index_records(index_path):
        if rec["split"] not in wanted or rec["n"] == 0 or rec["rel"] in seen:
            continue
        seen.add(rec["rel"])
        path = cache_dir / folder / f"{_key(rec['rel'])}.npz"
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in keys}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            raise DeepshieldError(
                f"{path} (the {folder} of {rec['rel']}) is missing or damaged: rebuild the {cache}"
            ) from None
        yield rec, arrays


def load_cache(cache_dir: Path, splits: Iterable[str], max_per_source: int | None = None) -> CachedFaces:
    """Crops of the given splits. `max_per_source` caps frames taken from one video."""
    wanted = set(splits)
    images, lms, groups, sources = [], [], [], []
    arrays = cached_videos(cache_dir, wanted, "crops", ("images", "landmarks"), "face cache", "detect-cache")
    for rec, z in arrays:
        im, lm = z["images"], z["landmarks"]
        if max_per_source is not None:
            im, lm = im[:max_per_source], lm[:max_per_source]
        images.append(im)
        lms.append(lm)
        groups += [rec["group"]] * len(im)
        sources += [rec["rel"]] * len(im)
    if not images:
        raise DeepshieldError(f"the face cache at {cache_dir} holds no crops for splits {sorted(wanted)}")
    return CachedFaces(np.concatenate(images), np.concatenate(lms), groups, sources)
