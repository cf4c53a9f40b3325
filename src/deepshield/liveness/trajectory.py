"""Replay detection by the head's motion: a session's pose, eye and face-position trajectory, matched window by
window against earlier sessions' (issue 32 point 3).

What an attacker does to a stored recording to get past the frame and face-crop hashes changes the pixels, not
how the head moved: cropping and rescaling the frame leave the angles and the eye aspect ratio as they were and
move the face's centre by a constant in face widths; a mirror negates yaw, roll and the centre's x only; and
re-timing (pieces played forwards, backwards or shifted) keeps each piece's course. So a session is stored as
yaw, pitch, roll, eye aspect ratio and the face centre (in face widths) on a regular `RATE_HZ` grid (float16:
2.7 kB for 15 s), and a new session's windows of `WINDOW_S` (every `HOP_S`) are compared with every window of
an earlier session, forwards and backwards, as recorded and mirrored, by normalised cross-correlation of each
detrended feature. Single windows of two people's motion correlate by chance; a replayed piece correlates along
one time alignment, so a window counts only in a run of `RUN` consecutive windows whose correlations at one
alignment average at least the policy's threshold. The share of the new session those runs cover is what the
replay signal reads. The mirrored comparison matching better names a mirror, which is how it is told from a
real turn: a real turn does not reproduce a stored session's course of pitch, blinks and position.

Measured on the attack suite (docs/liveness.md): playing speeds other than 1 (0.8, 1.25) raised chance
coverage between different people more than they added, so a stretched copy is met only within the
one-sample tolerance of each window's alignment (about 4% over a run).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

RATE_HZ = 15.0
WINDOW_S = 1.6
HOP_S = 0.4
#: consecutive windows, each at the last one's alignment `HOP_S` on, whose correlations are averaged
RUN = 5
#: stored columns: yaw, pitch, roll, EAR, the face centre's x and y (in 1 / `POSITION_SCALE` face widths,
#: from the session's median position)
COLUMNS = 6
POSITION_SCALE = 100.0
#: the eye aspect ratio in degrees' stead: a blink (about 0.1 of EAR) weighs as a 5 degree nod
EAR_SCALE = 50.0
#: per sample, the energy a still feature's measurement noise has (degrees squared, or its units): a window of a
#: feature moving no more than this correlates weakly with anything
NOISE_VAR = 0.5
#: longest gap (no face) bridged by interpolation; windows over longer gaps are not compared
MAX_GAP_S = 0.5
_W = int(round(WINDOW_S * RATE_HZ))
_HOP = int(round(HOP_S * RATE_HZ))
#: the compared features' signs in a mirror image: pitch, EAR, centre y, centre x, yaw, roll
_MIRROR = np.array([1, 1, 1, -1, -1, -1], np.float32)


class PoseSample(Protocol):
    t: float
    yaw: float
    pitch: float
    roll: float
    ear: float
    face_center: tuple[float, float]
    face_width: float


@dataclass(frozen=True)
class TrajectoryHit:
    session_id: str
    covered: float  # share of the new session's samples inside windows that match this earlier session
    windows: int  # windows of the new session that match
    mirrored: bool  # the matched windows correlate better mirrored (yaw, roll and the centre's x negated)


def trajectory_of(samples: Sequence[PoseSample]) -> NDArray[np.float16] | None:
    """The `COLUMNS` at `RATE_HZ` from the first to the last sample with a face (NaN over gaps longer than
    `MAX_GAP_S`); None when fewer than one window's worth of samples has a face."""
    t = np.array([s.t for s in samples], dtype=np.float64)
    v = np.array([[s.yaw, s.pitch, s.roll, s.ear, *s.face_center] for s in samples], dtype=np.float64).reshape(
        -1, COLUMNS
    )
    ok = np.isfinite(v).all(axis=1)
    if ok.sum() < _W:
        return None
    t, v = t[ok], v[ok]
    # the face's position in face widths (a crop or a rescale of the frame moves it by a constant only)
    width = float(np.nanmedian([s.face_width for s in samples])) or 1.0
    v[:, 4:] = (v[:, 4:] - np.median(v[:, 4:], axis=0)) * (POSITION_SCALE / width)  # small: float16 keeps it
    grid = np.arange(t[0], t[-1] + 1e-9, 1 / RATE_HZ)
    out = np.stack([np.interp(grid, t, v[:, j]) for j in range(COLUMNS)], axis=1)
    # grid points farther than MAX_GAP_S / 2 from a real sample lie in a gap
    i = np.searchsorted(t, grid).clip(1, len(t) - 1)
    nearest = np.minimum(np.abs(t[i] - grid), np.abs(t[i - 1] - grid))
    out[nearest > MAX_GAP_S / 2] = np.nan
    return out.astype(np.float16)


def to_bytes(traj: NDArray[np.float16]) -> bytes:
    return np.ascontiguousarray(traj, dtype="<f2").tobytes()


def from_bytes(data: bytes) -> NDArray[np.float16]:
    return np.frombuffer(data, dtype="<f2").reshape(-1, COLUMNS)


def _motion(traj: NDArray[np.float16]) -> NDArray[np.float32]:
    """The compared features (samples x 6): pitch, EAR x `EAR_SCALE`, the centre's y and x, yaw, roll."""
    x = traj.astype(np.float32)
    return np.stack([x[:, 1], x[:, 3] * EAR_SCALE, x[:, 5], x[:, 4], x[:, 0], x[:, 2]], axis=1)


def _normalise(w: NDArray[np.float32]) -> NDArray[np.float32]:
    """Windows (n x samples x features), each feature less its straight-line fit and scaled to unit energy
    plus the noise floor (so a still feature weighs little), flattened; windows over a gap become zeros."""
    n = w.shape[1]
    basis = np.stack([np.ones(n), np.linspace(-1, 1, n)], axis=1).astype(np.float32)
    q, _ = np.linalg.qr(basis)
    bad = ~np.isfinite(w).all(axis=(1, 2))
    w = np.nan_to_num(w - q @ (q.T @ w), nan=0.0)
    w = w / np.sqrt((w * w).sum(axis=1, keepdims=True) + NOISE_VAR * n)
    w[bad] = 0.0
    out: NDArray[np.float32] = (w / np.sqrt(w.shape[2])).reshape(len(w), -1)
    return out


@dataclass(frozen=True)
class _Queries:
    """The new session's windows, forwards or backwards, as recorded or mirrored."""

    backwards: bool
    mirrored: bool
    vectors: NDArray[np.float32]  # windows x (`_W` * features), normalised
    starts: NDArray[np.int64]


def _queries(traj: NDArray[np.float16]) -> list[_Queries]:
    x = _motion(traj)
    starts = np.arange(0, len(x) - _W + 1, _HOP, dtype=np.int64)
    if not len(starts):
        return []
    w = sliding_window_view(x, _W, axis=0).transpose(0, 2, 1)[starts]
    mirror = np.tile(_MIRROR, _W)
    out = []
    for back in (False, True):
        v = _normalise(np.ascontiguousarray(w[:, ::-1] if back else w))
        out += [_Queries(back, False, v, starts), _Queries(back, True, v * mirror, starts)]
    return out


@dataclass(frozen=True)
class _Stored:
    """A batch of earlier sessions' windows side by side, one per sample offset, each session followed by a
    gap longer than a run (windows over it or over a session's own gaps are zeros, flagged `void`)."""

    ids: list[str]
    vectors: NDArray[np.float32]  # windows x (`_W` * features), normalised
    void: NDArray[np.bool_]
    first: NDArray[np.int64]  # each session's first window


def _stored(batch: list[tuple[str, NDArray[np.float16]]]) -> _Stored:
    gap = np.full(((RUN - 1) * _HOP + 2, len(_MIRROR)), np.nan, np.float32)
    parts, first, at = [], [], 0
    for _, traj in batch:
        parts += [_motion(traj), gap]
        first.append(at)
        at += len(traj) + len(gap)
    w = sliding_window_view(np.concatenate(parts), _W, axis=0).transpose(0, 2, 1)
    void = ~np.isfinite(w).all(axis=(1, 2))
    return _Stored([sid for sid, _ in batch], _normalise(np.ascontiguousarray(w)), void, np.array(first))


def _runs(c: NDArray[np.float32], step: int, min_ncc: float) -> NDArray[np.float32]:
    """For each run of `RUN` consecutive query windows (rows of c) and stored offset (columns) of its first,
    the mean correlation of the run's windows, each `step` stored samples on from the last (within a sample:
    the same piece, time-aligned); -inf where under `min_ncc`. Chance matches between different people's motion
    fall at unrelated offsets."""
    k, p = c.shape
    near = c.copy()  # a one-sample tolerance: each window's best correlation within a sample of each offset
    near[:, 1:] = np.maximum(near[:, 1:], c[:, :-1])
    near[:, :-1] = np.maximum(near[:, :-1], c[:, 1:])
    total = np.zeros((k - RUN + 1, p), np.float32)
    for j in range(RUN):
        shifted = np.full((k, p), -np.inf, np.float32)  # shifted[i, o] = near[i, o + j * step]
        lo, hi = max(0, -j * step), min(p, p - j * step)
        if lo < hi:
            shifted[:, lo:hi] = near[:, lo + j * step : hi + j * step]
        total += shifted[j : k - RUN + 1 + j]
    total /= RUN
    total[total < min_ncc] = -np.inf
    return total


def _match_batch(
    queries: list[_Queries], n: int, batch: list[tuple[str, NDArray[np.float16]]], min_ncc: float
) -> TrajectoryHit | None:
    st = _stored(batch)
    k = len(queries[0].starts)
    matched = np.zeros((k, len(batch)), bool)  # query window x session
    score = {False: np.zeros(len(batch)), True: np.zeros(len(batch))}  # as recorded, mirrored
    for q in queries:
        c = q.vectors @ st.vectors.T
        c[:, st.void] = -np.inf
        best = np.maximum.reduceat(_runs(c, -_HOP if q.backwards else _HOP, min_ncc), st.first, axis=1)
        hit = np.isfinite(best)
        for j in range(RUN):
            matched[j : k - RUN + 1 + j] |= hit
        score[q.mirrored] += np.where(hit, best, 0.0).sum(axis=0)
    if not matched.any():
        return None
    covered = np.zeros((n, len(batch)), bool)
    for i, a in enumerate(queries[0].starts):
        covered[a : a + _W] |= matched[i]
    share = covered.mean(axis=0)
    j = int(share.argmax())
    return TrajectoryHit(st.ids[j], float(share[j]), int(matched[:, j].sum()), bool(score[True][j] > score[False][j]))


#: earlier sessions compared at once (memory: windows x features x batch)
BATCH = 1000


def match_trajectory(
    traj: NDArray[np.float16] | None,
    stored: Iterable[tuple[str, NDArray[np.float16]]],
    min_ncc: float,
    exclude_session: str,
) -> TrajectoryHit | None:
    """The earlier session covering the largest share of `traj` with time-aligned runs of windows correlating
    at least `min_ncc` on average."""
    queries = _queries(traj) if traj is not None else []
    if traj is None or not queries or len(queries[0].starts) < RUN:
        return None
    best: TrajectoryHit | None = None
    batch: list[tuple[str, NDArray[np.float16]]] = []

    def flush() -> None:
        nonlocal best
        hit = _match_batch(queries, len(traj), batch, min_ncc) if batch else None
        if hit and (best is None or hit.covered > best.covered):
            best = hit
        batch.clear()

    for sid, old in stored:
        if sid != exclude_session and len(old) >= _W:
            batch.append((sid, old))
        if len(batch) == BATCH:
            flush()
    flush()
    return best
