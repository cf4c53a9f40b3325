"""Genuine sessions and attacks built from the shared real media (see `suite.py` for the generators).

Genuine sessions are real videos paired with scripts they satisfy: the script is derived from what the person in
the video actually does (their observed blinks, turns and frontal holds, each placed in a window around the
observed move), and the colour-flash response is simulated on the real footage (`simulate.py`), because no real
capture of these people under our flashes exists.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from random import Random

import numpy as np

from deepshield.liveness.analysis import SessionTrack
from deepshield.liveness.features import baseline_pitch, detect_blinks, true_runs
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.script import STEP_SECONDS, ChallengeScript, Flash, Step, random_flashes

#: Videos with more than one person (street scenes, TV): not selfie sessions.
MULTI_PERSON = {"fp_street.mp4", "fr_hamilton_clip.mp4"}


@dataclass(frozen=True)
class Segment:
    video: Path
    start_s: float
    end_s: float

    @property
    def name(self) -> str:
        return f"{self.video.stem}@{self.start_s:.1f}"


def list_segments(videos_dir: Path, length_s: float = 7.0, stride_s: float = 4.0, min_s: float = 5.0) -> list[Segment]:
    from deepshield.media import open_media

    out: list[Segment] = []
    for p in sorted(videos_dir.iterdir()):
        if p.suffix.lower() not in (".mp4", ".mov", ".webm", ".mkv") or p.name in MULTI_PERSON:
            continue
        m = open_media(p)
        dur = float(m.info.duration_s or 0)
        m.close()
        if dur < min_s:
            continue
        if dur <= length_s + 1:
            out.append(Segment(p, 0.0, dur))
            continue
        a = 0.0
        while a + length_s <= dur + 1e-6:
            out.append(Segment(p, a, a + length_s))
            a += stride_s
    return out


def _front_runs(track: SessionTrack, policy: LivenessPolicy) -> list[tuple[float, float]]:
    t, yaw = track.series("yaw")
    _, pitch = track.series("pitch")
    base = baseline_pitch(track)
    lim = policy.front_deg - 3
    ok = np.isfinite(yaw) & (np.abs(yaw) < lim) & (np.abs(np.nan_to_num(pitch, nan=99) - base) < lim)
    return true_runs(ok, t)


#: A scripted ("full") blink: the eye aspect ratio falls to this fraction of the open-eye level or lower.
FULL_BLINK_DEPTH = 0.55


def observed_events(
    track: SessionTrack, policy: LivenessPolicy, full_blinks_only: bool = False
) -> list[tuple[str, float]]:
    """(kind, time) of the scriptable moves seen in a real video: blinks and turns past the policy's angles."""
    blinks = detect_blinks(track, policy)
    if full_blinks_only:
        blinks = [b for b in blinks if b.depth <= FULL_BLINK_DEPTH]
    ev: list[tuple[str, float]] = [("blink", b.start_s) for b in blinks]
    t, yaw = track.series("yaw")
    _, pitch = track.series("pitch")
    base = baseline_pitch(track)
    last: dict[str, float] = {}
    for ti, y, pt in zip(t, yaw, pitch, strict=False):
        kinds = []
        if np.isfinite(y) and y >= policy.turn_deg:
            kinds.append("turn_left")
        if np.isfinite(y) and y <= -policy.turn_deg:
            kinds.append("turn_right")
        if np.isfinite(pt) and pt - base >= policy.up_deg + 3:
            kinds.append("look_up")
        for k in kinds:
            if ti - last.get(k, -99) > 2.5:
                ev.append((k, float(ti)))
            last[k] = float(ti)
    return sorted(ev, key=lambda e: e[1])


def derive_script(
    track: SessionTrack,
    rng: Random,
    policy: LivenessPolicy | None = None,
    flashes: tuple[Flash, ...] | None = None,
) -> ChallengeScript:
    """A script this video satisfies: colour flashes while the face is frontal at the start, then a step for each
    observed move (window opening 0.3 to 1.0 s before it), with front steps where the face is held frontal.

    Only full blinks are scripted: a blink made on instruction closes the eye, while the shallow dips a person
    makes unasked are read at the edge of the detector's threshold and would test the footage, not the check.
    Pass `flashes` to keep a recording's flash sequence (its simulated response) and vary only the steps."""
    policy = policy or LivenessPolicy()
    if flashes is None:
        flashes = random_flashes(rng, start_s=round(rng.uniform(0.5, 0.8), 2))
    t = round(flashes[-1].end_s + 0.4, 3)
    steps = [Step("front", 0.0, t)]
    end_limit = track.duration_s
    fronts = _front_runs(track, policy)
    for kind, te in observed_events(track, policy, full_blinks_only=True):
        start = round(te - rng.uniform(0.3, 1.0), 3)
        if start < t:
            continue
        # A front step in the gap if the face is held frontal there.
        if start - t >= STEP_SECONDS["front"]:
            for a, b in fronts:
                lo, hi = max(a, t), min(b, start)
                if hi - lo >= policy.front_hold_s + 0.2:
                    fs = round(max(t, lo - 0.3), 3)
                    steps.append(Step("front", fs, round(min(start, fs + STEP_SECONDS["front"]), 3)))
                    break
        end = round(start + STEP_SECONDS[kind], 3)
        if end > end_limit + 0.3:
            break
        steps.append(Step(kind, start, end))
        t = end
    duration = round(min(end_limit, max(t, steps[-1].end_s)), 3)
    return ChallengeScript(
        steps=tuple(steps), flashes=flashes, duration_s=duration, nonce=f"{rng.getrandbits(64):016x}"
    )


def random_corpus_script(rng: Random, duration_s: float, blinks: int | None = None) -> ChallengeScript:
    """A script of the same family as the derived ones (flashes, front and blink steps) at random times: what
    an attacker who cannot predict the script faces."""
    flashes = random_flashes(rng, start_s=round(rng.uniform(0.5, 0.8), 2))
    t = round(flashes[-1].end_s + 0.4, 3)
    steps = [Step("front", 0.0, t)]
    n = blinks if blinks is not None else rng.randint(1, 2)
    for _ in range(n):
        gap = rng.uniform(0.0, 1.5)
        start = round(t + gap, 3)
        end = round(start + STEP_SECONDS["blink"], 3)
        if end > duration_s:
            break
        steps.append(Step("blink", start, end))
        t = end
    return ChallengeScript(
        steps=tuple(steps),
        flashes=flashes,
        duration_s=round(min(duration_s, max(t, 4.0)), 3),
        nonce=f"{rng.getrandbits(64):016x}",
    )


def df_same_identity_pairs(photos_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs of different photos of one person, from df_master.csv (Decision == Yes)."""
    csv_path = photos_dir / "df_master.csv"
    if not csv_path.exists():
        return []
    out = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Decision") == "Yes":
                a, b = photos_dir / f"df_{row['file_x']}", photos_dir / f"df_{row['file_y']}"
                if a.exists() and b.exists():
                    out.append((a, b))
    return out
