"""The head-motion signature's invariances on a written-down trajectory (the real-media tests cover edited video):
a mirrored, cropped and rescaled, or re-timed copy is covered and a mirror is named; another motion is not; the
stored bytes read back as they were written."""

from __future__ import annotations

import numpy as np

from deepshield.liveness.analysis import Sample
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.trajectory import from_bytes, match_trajectory, to_bytes, trajectory_of

FPS = 15.0
NCC = LivenessPolicy().replay_motion_ncc
FAIL = LivenessPolicy().replay_motion_fail


def _motion(seed: int, n: int = 150) -> np.ndarray:
    """Smoothed noise of a few degrees (yaw, pitch, roll), eye aspect ratio with blinks, face centre and width
    in pixels, measured with noise: samples x 7."""
    rng = np.random.default_rng(seed)
    k = np.hanning(9) / np.hanning(9).sum()
    smooth = np.stack([np.convolve(rng.normal(0, 6, n + 8), k, mode="valid") for _ in range(5)], axis=1)
    ear = 0.3 - 0.2 * (rng.random(n) < 0.04)
    x = np.column_stack(
        [smooth[:, 0], smooth[:, 1], smooth[:, 2] / 2, ear, 640 + 4 * smooth[:, 3], 360 + 4 * smooth[:, 4]]
    )
    return np.column_stack([x, np.full(n, 200.0)])


def _samples(m: np.ndarray, seed: int) -> list[Sample]:
    noise = np.random.default_rng(seed).normal(0, [0.6, 0.6, 0.4, 0.005, 0.8, 0.8, 0.0], m.shape)
    v = m + noise
    return [
        Sample(i / FPS, True, yaw=r[0], pitch=r[1], roll=r[2], ear=r[3], face_center=(r[4], r[5]), face_width=r[6])
        for i, r in enumerate(v)
    ]


def test_edited_copies_are_covered_and_a_mirror_is_named() -> None:
    m = _motion(1)
    stored = trajectory_of(_samples(m, 10))
    assert stored is not None
    assert np.array_equal(from_bytes(to_bytes(stored)), stored)
    mirrored = m * [-1, 1, -1, 1, -1, 1, 1] + [0, 0, 0, 0, 1280, 0, 0]
    cropped = m * [1, 1, 1, 1, 1.15, 1.15, 1.15] - [0, 0, 0, 0, 90, 40, 0]
    retimed = np.concatenate([m[90:40:-1], m[60:140]])  # a piece played backwards, then one forwards
    for name, edit in (("mirrored", mirrored), ("cropped", cropped), ("retimed", retimed)):
        hit = match_trajectory(trajectory_of(_samples(edit, 11)), [("earlier", stored)], NCC, "new")
        assert hit is not None and hit.session_id == "earlier" and hit.covered >= FAIL, (name, hit)
        assert hit.mirrored == (name == "mirrored"), (name, hit)
    # Another motion, and the same session excluded (its own id), match nothing.
    assert match_trajectory(trajectory_of(_samples(_motion(2), 12)), [("earlier", stored)], NCC, "new") is None
    assert match_trajectory(trajectory_of(_samples(m, 11)), [("earlier", stored)], NCC, "earlier") is None


def test_a_still_head_or_a_short_session_has_no_signature_to_match() -> None:
    still = np.column_stack([np.zeros((150, 3)), np.full(150, 0.3), np.full(150, 640.0), np.full(150, 360.0)])
    still = np.column_stack([still, np.full(150, 200.0)])
    stored = trajectory_of(_samples(still, 1))
    assert stored is not None
    assert match_trajectory(trajectory_of(_samples(still, 2)), [("earlier", stored)], NCC, "new") is None
    assert trajectory_of(_samples(_motion(1, 10), 1)) is None
