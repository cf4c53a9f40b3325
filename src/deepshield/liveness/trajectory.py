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
    w = np.nan_to_num(w - np.einsum("sk,tk,ntf->nsf", q, q, w), nan=0.0)
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


def _stored_windows(traj: NDArray[np.float16]) -> NDArray[np.float32]:
    """Every window of a stored trajectory, one per sample offset, normalised."""
    if len(traj) < _W:
        return np.zeros((0, _W * len(_MIRROR)), np.float32)
    w = sliding_window_view(_motion(traj), _W, axis=0).transpose(0, 2, 1)
    return _normalise(np.ascontiguousarray(w))


def _aligned(c: NDArray[np.float32], step: int, min_ncc: float) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Windows (rows of c: consecutive query windows; columns: stored offsets) in runs of `RUN` consecutive
    windows whose correlations, each at an offset `step` stored samples on from the last (within a sample: the
    same piece, time-aligned), average at least `min_ncc`: chance matches between different people's motion
    fall at unrelated offsets. Returns the matched windows and each one's offset."""
    k, p = c.shape
    if k < RUN:
        return np.zeros(k, bool), np.zeros(k, np.int64)
    # a one-sample tolerance: each window's best correlation within a sample of each offset
    near = c.copy()
    near[:, 1:] = np.maximum(near[:, 1:], c[:, :-1])
    near[:, :-1] = np.maximum(near[:, :-1], c[:, 1:])
    total = np.zeros((k - RUN + 1, p), np.float32)
    for j in range(RUN):
        shifted = np.full((k, p), -1.0, np.float32)  # shifted[i, o] = near[i, o + j * step]
        lo, hi = max(0, -j * step), min(p, p - j * step)
        if lo < hi:
            shifted[:, lo:hi] = near[:, lo + j * step : hi + j * step]
        total += shifted[j : k - RUN + 1 + j]
    run = total / RUN >= min_ncc
    starts = run.any(axis=1)
    matched = np.zeros(k, bool)
    at = np.zeros(k, np.int64)
    for j in range(RUN):
        matched[j : k - RUN + 1 + j] |= starts
    best = np.where(run, total, -np.inf).argmax(axis=1)
    for i in np.flatnonzero(starts):
        for j in range(RUN):
            at[i + j] = min(max(best[i] + j * step, 0), p - 1)
    return matched, at


def match_trajectory(
    traj: NDArray[np.float16] | None,
    stored: Iterable[tuple[str, NDArray[np.float16]]],
    min_ncc: float,
    exclude_session: str,
) -> TrajectoryHit | None:
    """The earlier session covering the largest share of `traj` with time-aligned windows correlating at
    least `min_ncc`."""
    if traj is None:
        return None
    queries = _queries(traj)
    n = len(traj)
    best: TrajectoryHit | None = None
    for sid, old in stored:
        if sid == exclude_session or not queries:
            continue
        m = _stored_windows(old)
        if not len(m):
            continue
        covered = np.zeros(n, bool)
        windows: set[int] = set()
        score = {False: 0.0, True: 0.0}  # summed correlation of the matched windows, as recorded and mirrored
        for q in queries:
            c = q.vectors @ m.T
            matched, at = _aligned(c, -_HOP if q.backwards else _HOP, min_ncc)
            for k in np.flatnonzero(matched):
                covered[q.starts[k] : q.starts[k] + _W] = True
                windows.add(int(q.starts[k]))
            score[q.mirrored] += float(c[matched, at[matched]].sum())
        share = float(covered.sum()) / n
        if windows and (best is None or share > best.covered):
            best = TrajectoryHit(sid, share, len(windows), score[True] > score[False])
    return best
