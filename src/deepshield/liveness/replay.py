"""Where earlier sessions' frames are remembered, so a replayed recording is recognised.

Three signatures: a 64-bit DCT hash of each keyframe's whole frame (an untouched replay) and the 256-bit PDQ hash
of the face's crop in every sampled frame (15 per second, so a re-timed copy's frames have a stored frame close
in time to match), which survives what an attacker does to a stored recording to
get past the first: cropping and rescaling move the frame but not the face crop, which the face detector finds
again, and a mirror is caught by matching the new face's flipped and rotated variants (PDQ's eight dihedral
hashes). Which variant matched says whether the copy was mirrored: a mirror flips the sign of yaw, which the
challenge would read as a real turn. The third is the head's motion (`liveness.trajectory`): what no edit of
the pixels changes, matched by time-aligned windows.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from deepshield.faces.types import Face
from deepshield.liveness.trajectory import TrajectoryHit, match_trajectory
from deepshield.matching.bits import hexes_to_words, popcount_rows
from deepshield.matching.signals.pdq import DIHEDRAL_NAMES, pdq_dihedral_from_rgb, pdq_from_rgb

#: Side of the square face crop that is hashed, and its size against the mesh's extent (the inner face: the
#: forehead's top and the chin's edge move with expressions and get cut by a cropped frame first).
FACE_CROP_SIDE = 128
FACE_CROP_GROW = 0.8


@dataclass(frozen=True)
class ReplayHit:
    session_id: str
    matched: int  # keyframes of the new session that match a frame of this earlier one
    #: face matches made through a flipped variant (a mirrored copy); 0 for whole-frame matches
    mirrored: int = 0


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def face_box(face: Face) -> tuple[float, float, float, float]:
    """The mesh's extent (it mirrors with the image; a detector's box may not), else the detector's box."""
    if face.landmarks is None:
        return face.box
    lm = np.asarray(face.landmarks)
    return float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()), float(lm[:, 1].max())


def _face_crop(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """The square around the face's centre, `FACE_CROP_GROW` times the box's larger side, scaled to
    `FACE_CROP_SIDE`; what falls outside the frame is black, so a crop of the frame that cuts into the square
    does not rescale the face inside it."""
    x0, y0, x1, y1 = box
    half = max(x1 - x0, y1 - y0) * FACE_CROP_GROW / 2
    if half < 8:
        return None
    s = FACE_CROP_SIDE / (2 * half)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    m = np.array([[s, 0.0, FACE_CROP_SIDE / 2 - s * cx], [0.0, s, FACE_CROP_SIDE / 2 - s * cy]])
    crop = cv2.warpAffine(rgb, m, (FACE_CROP_SIDE, FACE_CROP_SIDE), flags=cv2.INTER_AREA, borderValue=(0, 0, 0))
    return np.asarray(crop)


def face_hash(rgb: np.ndarray, box: tuple[float, float, float, float]) -> str | None:
    """PDQ hash of the square face crop around `box` (x0, y0, x1, y1): what is stored, for every sampled frame."""
    crop = _face_crop(rgb, box)
    return None if crop is None else pdq_from_rgb(crop).hash


def face_signature(rgb: np.ndarray, box: tuple[float, float, float, float]) -> list[str]:
    """PDQ hashes of the eight rotations/flips of the face crop (the first: the crop itself): what is looked up,
    for each keyframe."""
    crop = _face_crop(rgb, box)
    return [] if crop is None else pdq_dihedral_from_rgb(crop)[0]


class ReplayIndex(abc.ABC):
    @abc.abstractmethod
    def seen_sha256(self, sha256: str, exclude_session: str) -> str | None:
        """The id of an earlier session whose upload had exactly these bytes."""

    @abc.abstractmethod
    def best_match(self, hashes: list[int], max_distance: int, exclude_session: str) -> ReplayHit | None:
        """The earlier session sharing the most keyframes with `hashes`."""

    @abc.abstractmethod
    def best_face_match(self, variants: list[list[str]], max_distance: int, exclude_session: str) -> ReplayHit | None:
        """The earlier session whose face crops match the most keyframes, each keyframe given as its face's
        eight dihedral PDQ hashes (`face_signature`)."""

    @abc.abstractmethod
    def best_motion_match(
        self, trajectory: NDArray[np.float16] | None, min_ncc: float, exclude_session: str
    ) -> TrajectoryHit | None:
        """The earlier session whose head motion covers the largest share of `trajectory`'s
        (`trajectory.match_trajectory`)."""

    @abc.abstractmethod
    def add(
        self,
        session_id: str,
        sha256: str | None,
        hashes: list[int],
        faces: Sequence[str | None] = (),
        trajectory: NDArray[np.float16] | None = None,
    ) -> None:
        """Remember a decided session: its keyframes' frame hashes, the face PDQ hashes of its sampled frames
        (`face_hash`; None where no face was found) and its head motion (`trajectory.trajectory_of`)."""


class MemoryReplayIndex(ReplayIndex):
    """In-process index for evaluation and tests; the service uses the database one."""

    def __init__(self) -> None:
        self._hashes: dict[str, list[int]] = {}
        self._faces: dict[str, list[str]] = {}
        self._sha: dict[str, str] = {}
        self._motion: dict[str, NDArray[np.float16]] = {}

    def seen_sha256(self, sha256: str, exclude_session: str) -> str | None:
        sid = self._sha.get(sha256)
        return sid if sid and sid != exclude_session else None

    def best_match(self, hashes: list[int], max_distance: int, exclude_session: str) -> ReplayHit | None:
        return best_match(self._hashes.items(), hashes, max_distance, exclude_session)

    def best_face_match(self, variants: list[list[str]], max_distance: int, exclude_session: str) -> ReplayHit | None:
        return best_face_match(self._faces.items(), variants, max_distance, exclude_session)

    def best_motion_match(
        self, trajectory: NDArray[np.float16] | None, min_ncc: float, exclude_session: str
    ) -> TrajectoryHit | None:
        return match_trajectory(trajectory, self._motion.items(), min_ncc, exclude_session)

    def add(
        self,
        session_id: str,
        sha256: str | None,
        hashes: list[int],
        faces: Sequence[str | None] = (),
        trajectory: NDArray[np.float16] | None = None,
    ) -> None:
        self._hashes[session_id] = list(hashes)
        self._faces[session_id] = [f for f in faces if f]
        if trajectory is not None:
            self._motion[session_id] = trajectory
        if sha256:
            self._sha.setdefault(sha256, session_id)


def best_match(
    stored: Iterable[tuple[str, list[int]]], hashes: list[int], max_distance: int, exclude_session: str
) -> ReplayHit | None:
    best: ReplayHit | None = None
    for sid, old in stored:
        if sid == exclude_session or not old:
            continue
        n = sum(1 for h in hashes if any(hamming(h, o) <= max_distance for o in old))
        if n and (best is None or n > best.matched):
            best = ReplayHit(sid, n)
    return best


FLIP_VARIANTS = frozenset(i for i, name in enumerate(DIHEDRAL_NAMES) if "flip" in name)


def best_face_match(
    stored: Iterable[tuple[str, list[str]]], variants: list[list[str]], max_distance: int, exclude_session: str
) -> ReplayHit | None:
    """Per earlier session: how many of the new keyframes' faces match one of its face crops in some rotation or
    flip, and how many of those only through a flip (the original variant further than `max_distance`). All
    stored hashes are compared at once, one variant of one keyframe at a time."""
    queries = [hexes_to_words(v) for v in variants if len(v) == len(DIHEDRAL_NAMES)]
    sessions = [(sid, old) for sid, old in stored if sid != exclude_session and old]
    if not queries or not sessions:
        return None
    codes = hexes_to_words([h for _, old in sessions for h in old])
    starts = np.cumsum([0] + [len(old) for _, old in sessions[:-1]])
    # dist[k, v, s]: the nearest face crop of session s to variant v of keyframe k
    dist = np.array(
        [[np.minimum.reduceat(popcount_rows(codes ^ q[i][None, :]), starts) for i in range(len(q))] for q in queries]
    )
    best_v, best_d = dist.argmin(axis=1), dist.min(axis=1)  # (keyframe, session)
    hit = best_d <= max_distance
    flipped = hit & np.isin(best_v, sorted(FLIP_VARIANTS)) & (dist[:, 0, :] > max_distance)
    matched, mirrored = hit.sum(axis=0), flipped.sum(axis=0)
    j = int(matched.argmax())
    if matched[j] == 0:
        return None
    return ReplayHit(sessions[j][0], int(matched[j]), int(mirrored[j]))
