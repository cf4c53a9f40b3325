"""How much of each trial's head motion an earlier session covers (`liveness.trajectory`): each crafted replay
against the session it was cut from, and every trial against other people's genuine sessions (the index
`evaluate_suite` builds), so the motion thresholds can be set where no genuine session reaches another person's.

    PYTHONPATH=src python -m deepshield.liveness.attacks.motion SUITE [KIND,KIND,...]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepshield.liveness.attacks.evaluate import analyse_videos
from deepshield.liveness.attacks.suite import load_manifest
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.trajectory import match_trajectory, trajectory_of


@dataclass
class Coverage:
    """Per comparison ("crafted_replay vs its source", "genuine vs other people", ...): each trial's share
    covered, and for copies covered at or above review whether a mirror was named as one."""

    shares: dict[str, list[float]]
    mirror_named: dict[str, int]  # "mirrored, named mirrored" etc.


def motion_coverage(suite: Path, kinds: list[str] | None = None, policy: LivenessPolicy | None = None) -> Coverage:
    p = policy or LivenessPolicy()
    trials = [t for t in load_manifest(suite) if not kinds or t.kind in kinds or t.kind == "genuine"]
    tracks = analyse_videos(suite, sorted({t.video for t in trials}))
    motion = {v: trajectory_of(tr.samples) for v, tr in tracks.items()}
    genuine = {t.id: (t.group, motion[t.video]) for t in trials if t.kind == "genuine"}
    shares: dict[str, list[float]] = defaultdict(list)
    named: dict[str, int] = defaultdict(int)
    for t in trials:
        others = [(sid, m) for sid, (group, m) in genuine.items() if group != t.group and m is not None]
        hit = match_trajectory(motion[t.video], others, p.replay_motion_ncc, t.id)
        shares[f"{t.kind} vs other people"].append(hit.covered if hit else 0.0)
        source = genuine.get(t.replay_of or "")
        if t.kind == "crafted_replay" and source is not None and source[1] is not None:
            hit = match_trajectory(motion[t.video], [(str(t.replay_of), source[1])], p.replay_motion_ncc, t.id)
            shares[f"{t.kind} vs its source"].append(hit.covered if hit else 0.0)
            if hit and hit.covered >= p.replay_motion_review:
                mirrored = "mirrored" if t.meta.get("edit", {}).get("mirror") else "not mirrored"
                named[f"{mirrored}, named {'mirrored' if hit.mirrored else 'not mirrored'}"] += 1
    return Coverage(dict(shares), dict(named))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    p = LivenessPolicy()
    cov = motion_coverage(Path(argv[0]), argv[1].split(",") if len(argv) > 1 else None, p)
    print(f"correlation {p.replay_motion_ncc}, review at {p.replay_motion_review}, fail at {p.replay_motion_fail}")
    for name, v in sorted(cov.shares.items()):
        a = np.array(v)
        q = np.percentile(a, [0, 25, 50, 75, 90, 100]).round(2).tolist()
        review, fail = int((a >= p.replay_motion_review).sum()), int((a >= p.replay_motion_fail).sum())
        print(f"{name}: {len(a)} trials, 0/25/50/75/90/100th percentiles {q}, review {review}, fail {fail}")
    print("crafted replays at or above review:", cov.mirror_named)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
