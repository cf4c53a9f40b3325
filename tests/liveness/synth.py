"""Synthetic session tracks: a pose / eye / colour trajectory written down directly, to test the signals'
logic without video (the real-media tests cover the measurement)."""

from __future__ import annotations

import numpy as np

from deepshield.liveness.analysis import Keyframe, Sample, SessionTrack
from deepshield.liveness.script import FLASH_COLOURS, ChallengeScript

FPS = 15.0


def follow(
    script: ChallengeScript,
    delay_s: float = 0.5,
    flash_gain: float = 0.12,
    flash_on_bg: float = 0.0,
    flashes: ChallengeScript | None = None,
    seed: int = 0,
    order: list[int] | None = None,
    late_s: float = 0.0,
    added_light: float = 0.0,
    bg_scale: float = 1.0,
    toward: dict[int, tuple[str, float]] | None = None,
) -> SessionTrack:
    """A track of a person performing `script` (each move `delay_s` after its window opens), lit by the
    flashes of `flashes` (default: the same script). `order` permutes which step's move is made in which
    window; `late_s` delays every move. `toward` {flash index: (colour, share)} turns that flash's light on the
    face `share` of the way to another colour (skin and white balance turning the reflected hue)."""
    rng = np.random.default_rng(seed)
    flashes = flashes or script
    n = int((script.duration_s + 0.5) * FPS)
    t = np.arange(n) / FPS
    yaw = rng.normal(0, 1.5, n)
    pitch = rng.normal(0, 1.5, n)
    ear = 0.3 + rng.normal(0, 0.006, n)
    has = np.ones(n, dtype=bool)
    steps = list(script.steps)
    kinds = [s.kind for s in steps]
    if order is not None:
        kinds = [kinds[i] for i in order]
    for st, kind in zip(steps, kinds, strict=True):
        a = st.start_s + delay_s + late_s
        if kind in ("turn_left", "turn_right", "profile_left", "profile_right"):
            sign = 1 if kind.endswith("left") else -1
            peak = 40 if kind.startswith("turn") else 75
            hold = 0.3 if kind.startswith("turn") else 0.9
            # Trapezoid: 0.4 s out, hold, 0.4 s back.
            m = (t >= a) & (t < a + 0.8 + hold)
            x = t[m] - a
            yaw[m] = sign * peak * np.clip(np.minimum(x / 0.4, (0.8 + hold - x) / 0.4), 0, 1)
            if kind.startswith("profile"):
                has[m & (np.abs(yaw) > 60)] = False
        elif kind == "look_up":
            m = (t >= a) & (t < a + 1.0)
            pitch[m] = 25 * np.sin(np.pi * (t[m] - a) / 1.0)
        elif kind == "blink":
            m = (t >= a) & (t < a + 0.2)
            ear[m] = 0.08
    skin = np.array([150.0, 110.0, 90.0])
    bgc = np.array([80.0, 90.0, 100.0]) * bg_scale
    samples = []
    for i, ti in enumerate(t):
        light = np.zeros(3)
        for k, f in enumerate(flashes.flashes):
            if f.start_s + 0.08 <= ti < f.end_s + 0.08:
                light = np.asarray(FLASH_COLOURS[f.colour]) / 255.0
                if toward and k in toward:
                    other, share = toward[k]
                    light = (1 - share) * light + share * np.asarray(FLASH_COLOURS[other]) / 255.0
        face = skin * (1 + flash_gain * light) + added_light * light + rng.normal(0, 0.4, 3)
        bg = bgc * (1 + flash_on_bg * light) + added_light * light + rng.normal(0, 0.4, 3)
        if not has[i]:
            samples.append(Sample(t=float(ti), has_face=False))
            continue
        samples.append(
            Sample(
                t=float(ti),
                has_face=True,
                yaw=float(yaw[i]),
                pitch=float(pitch[i]),
                roll=0.0,
                ear=float(ear[i]),
                face_rgb=tuple(face),
                bg_rgb=tuple(bg),
                face_center=(320.0 + yaw[i], 240.0),
                face_width=200.0,
            )
        )
    keys = [
        Keyframe(
            t=float(t[i]), faces=[], rgb=None, phash=int(rng.integers(0, 2**63)), yaw=float(yaw[i]) if has[i] else None
        )
        for i in range(0, n, 5)
    ]
    return SessionTrack(fps=FPS, width=640, height=480, duration_s=float(t[-1]), samples=samples, keyframes=keys)
