"""Events derived from the dense track, shared by several signals: blinks, frontal baseline, turn extremes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepshield.liveness.analysis import SessionTrack
from deepshield.liveness.policy import LivenessPolicy


@dataclass(frozen=True)
class Blink:
    start_s: float
    end_s: float
    depth: float  # minimum EAR over the open-eye baseline


def true_runs(mask: np.ndarray, t: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) times of consecutive True runs."""
    out: list[tuple[float, float]] = []
    i, n = 0, len(mask)
    while i < n:
        if mask[i]:
            j = i
            while j + 1 < n and mask[j + 1]:
                j += 1
            out.append((float(t[i]), float(t[j])))
            i = j + 1
        else:
            i += 1
    return out


def baseline_pitch(track: SessionTrack) -> float:
    """Pitch of the near-frontal samples: people hold the phone above or below their eyes."""
    _, yaw = track.series("yaw")
    _, pitch = track.series("pitch")
    ok = np.isfinite(yaw) & np.isfinite(pitch) & (np.abs(yaw) < 15)
    return float(np.median(pitch[ok])) if ok.any() else 0.0


def detect_blinks(track: SessionTrack, policy: LivenessPolicy) -> list[Blink]:
    """Eye-aspect-ratio dips below `blink_drop` of the rolling open-eye level that recover within
    `blink_max_s`. Samples with a large yaw are skipped: a turn foreshortens the eye and mimics a dip."""
    t, ear = track.series("ear")
    _, yaw = track.series("yaw")
    valid = np.isfinite(ear) & np.isfinite(yaw) & (np.abs(yaw) < 25)
    if valid.sum() < 5:
        return []
    tv, ev = t[valid], ear[valid]
    # Open-eye level: the 80th percentile over a 2 s neighbourhood (blinks are short and pull the median less).
    base = np.array([np.percentile(ev[np.abs(tv - x) <= 1.0], 80) for x in tv])
    low = ev < policy.blink_drop * base
    blinks: list[Blink] = []
    i = 0
    n = len(tv)
    while i < n:
        if not low[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and low[j + 1]:
            j += 1
        # The dip must be bounded by open-eye samples close in time on both sides (not a tracking gap). Eyes
        # open over a few frames after a long blink, so the open level may be reached up to 0.35 s later.
        before_ok = i > 0 and tv[i] - tv[i - 1] < 0.25 and ev[i - 1] > 0.85 * base[i - 1]
        after_ok = False
        for k in range(j + 1, min(n, j + 5)):
            if tv[k] - tv[k - 1] >= 0.25 or tv[k] - tv[j] > 0.35:
                break
            if ev[k] > 0.8 * base[k]:
                after_ok = True
                break
        dur = tv[j] - tv[i] + (tv[1] - tv[0] if n > 1 else 0.066)
        if before_ok and after_ok and policy.blink_min_s <= dur <= policy.blink_max_s:
            blinks.append(Blink(float(tv[i]), float(tv[j]), float(ev[i : j + 1].min() / base[i])))
        i = j + 1
    return blinks
