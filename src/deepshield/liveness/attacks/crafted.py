"""The crafted replay of issue 32: what an outside attacker built in 11 to 65 s from a real video of the right
person with MediaPipe landmarks, OpenCV warps and ffmpeg, re-timed to a fresh session's script.

* The footage is mirrored (one time in two) and cropped by 12 to 14% at a random offset, then scaled back:
  whole-frame perceptual hashes of the stored session no longer match.
* It is played back and forth, skipping the person's own blinks; in each blink step one source blink is
  spliced in 0.3 to 0.8 s after the step opens.
* Turn, profile and look-up steps are a 2.5-D warp of the frontal face: the 468 mesh points (with MediaPipe's
  relative depth) are rotated about the face's vertical (or horizontal) axis and projected, and the image is
  warped piecewise-affinely over the mesh and a fixed ring around the face, so the background beyond the ring
  stays still. Turns are warped to 45 to 52 degrees, profiles to 60 (more than the mesh can show), look-ups to
  40 degrees of pitch (a 2.5-D warp shows about a third of it).
* The colour flashes are a tint of the face only, inside the mesh outline with soft edges, starting 0.05 s
  after each flash (the verifier's best-latency search finds it), with no light on the background.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from random import Random
from typing import Any

import cv2
import numpy as np

from deepshield.detect.training.swaps import delaunay, warp_triangles
from deepshield.faces.landmarks import FACE_OVAL
from deepshield.liveness.analysis import SessionTrack
from deepshield.liveness.attacks.simulate import FaceMasker, flash_colour_at
from deepshield.liveness.features import detect_blinks
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.script import ChallengeScript

TINT_LATENCY_S = 0.05


@dataclass(frozen=True)
class CraftedEdit:
    mirror: bool
    crop: float  # fraction of each side's length removed
    crop_x: float  # where the crop sits, 0 (left) to 1 (right)
    crop_y: float
    turn_deg: float  # warp angle for turn steps
    profile_deg: float
    up_deg: float
    tint_gain: float

    @staticmethod
    def random(rng: Random) -> CraftedEdit:
        return CraftedEdit(
            mirror=rng.random() < 0.5,
            crop=rng.uniform(0.12, 0.14),
            crop_x=rng.random(),
            crop_y=rng.random(),
            turn_deg=rng.uniform(45.0, 52.0),
            profile_deg=60.0,
            up_deg=40.0,
            tint_gain=rng.uniform(0.10, 0.16),
        )


def mirror_and_crop(frame: np.ndarray, edit: CraftedEdit) -> np.ndarray:
    h, w = frame.shape[:2]
    f = frame[:, ::-1] if edit.mirror else frame
    ch, cw = int(round(h * (1 - edit.crop))), int(round(w * (1 - edit.crop)))
    y0, x0 = int((h - ch) * edit.crop_y), int((w - cw) * edit.crop_x)
    return np.asarray(cv2.resize(np.ascontiguousarray(f[y0 : y0 + ch, x0 : x0 + cw]), (w, h)), dtype=np.uint8)


def _source_order(n: int, fps: float, track: SessionTrack, policy: LivenessPolicy) -> tuple[list[int], list[list[int]]]:
    """Source frame indices with the person's own blinks (and 0.15 s around them) left out, and each blink's
    frames, to splice where a blink step asks for one."""
    blinks = detect_blinks(track, policy)
    pad = 0.15
    banned = np.zeros(n, bool)
    spans: list[list[int]] = []
    for b in blinks:
        a, e = max(0, int((b.start_s - pad) * fps)), min(n, int(np.ceil((b.end_s + pad) * fps)) + 1)
        banned[a:e] = True
        spans.append(list(range(a, e)))
    free = [i for i in range(n) if not banned[i]]
    return (free or list(range(n))), spans


def _pose_at(t: float, script: ChallengeScript, edit: CraftedEdit, rng_side: dict[str, float]) -> tuple[float, float]:
    """(yaw, pitch) of warp wanted at time t: ramp up over 0.5 s from 0.3 s into the step, hold, and back to
    frontal 0.3 s before the step ends."""
    for s in script.steps:
        if not (s.start_s <= t < s.end_s):
            continue
        if s.kind.startswith(("turn_", "profile_")):
            deg = edit.turn_deg if s.kind.startswith("turn_") else edit.profile_deg
            sign = rng_side["left"] if s.kind.endswith("left") else -rng_side["left"]
            return sign * deg * _ramp(t, s.start_s, s.end_s), 0.0
        if s.kind == "look_up":
            return 0.0, edit.up_deg * _ramp(t, s.start_s, s.end_s)
    return 0.0, 0.0


def _ramp(t: float, a: float, b: float) -> float:
    up0, up1, down0, down1 = a + 0.3, a + 0.8, b - 0.8, b - 0.3
    if t < up0 or t > down1:
        return 0.0
    if t < up1:
        return (t - up0) / (up1 - up0)
    if t > down0:
        return (down1 - t) / (down1 - down0)
    return 1.0


#: Mesh points the warp moves: every third point and the face outline (fewer triangles, same shape).
WARP_POINTS = np.unique(np.concatenate([np.arange(0, 468, 3), np.asarray(FACE_OVAL)]))


def warp_pose(
    frame: np.ndarray,
    lm3: np.ndarray,
    yaw_deg: float,
    pitch_deg: float,
    tris: np.ndarray | None = None,
    ring: tuple[float, float] = (1.6, 1.5),
) -> tuple[np.ndarray, np.ndarray]:
    """The frontal face turned by a 2.5-D warp: mesh points rotated with their depth and projected, a fixed
    ring around the face (`ring`: its half-axes in half face widths and heights), one affine per triangle.
    Returns the frame and the triangles (the mesh's layout hardly changes from frame to frame, so a clip reuses
    the first frame's)."""
    h, w = frame.shape[:2]
    c = lm3[FACE_OVAL].mean(axis=0)
    p = lm3 - c
    ry, rp = np.radians(yaw_deg), np.radians(pitch_deg)
    x = p[:, 0] * np.cos(ry) + p[:, 2] * np.sin(ry)
    z = -p[:, 0] * np.sin(ry) + p[:, 2] * np.cos(ry)
    y = p[:, 1] * np.cos(rp) + z * np.sin(rp)  # looking up: the nose (nearer, z < 0) rises
    dst = np.stack([x + c[0], y + c[1]], axis=1)
    oval = lm3[FACE_OVAL, :2]
    half = (oval.max(axis=0) - oval.min(axis=0)) / 2
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring_pts = np.stack([c[0] + ring[0] * half[0] * np.cos(ang), c[1] + ring[1] * half[1] * np.sin(ang)], axis=1)
    ring_pts = np.clip(ring_pts, 0, [w - 1, h - 1])
    src_pts = np.concatenate([lm3[WARP_POINTS, :2], ring_pts]).astype(np.float32)
    dst_pts = np.concatenate([dst[WARP_POINTS], ring_pts]).astype(np.float32)
    if tris is None:
        tris = delaunay(src_pts, (h, w))
    warped, cover = warp_triangles(frame, src_pts, dst_pts, tris, (h, w))
    m = cv2.GaussianBlur(cover, (5, 5), 0)[..., None]
    return np.clip(warped * m + frame.astype(np.float32) * (1 - m), 0, 255).astype(np.uint8), tris


def tint_face(frame: np.ndarray, masker: FaceMasker, colour: np.ndarray, gain: float) -> np.ndarray:
    """The attacker's flash: the face inside the mesh outline (soft edges) tinted by `colour`, nothing else."""
    if not colour.any():
        return frame
    m = masker.mask(frame)[..., None]
    return np.clip(frame.astype(np.float32) * (1 + gain * m * colour[None, None, :]), 0, 255).astype(np.uint8)


def craft_replay(
    frames: list[np.ndarray],
    fps: float,
    track: SessionTrack,
    script: ChallengeScript,
    rng: Random,
    policy: LivenessPolicy | None = None,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The footage `frames` (with its analysed `track`) re-edited to follow `script` (see module doc).
    Returns the frames and what was done (for the manifest)."""
    policy = policy or LivenessPolicy()
    edit = CraftedEdit.random(rng)
    free, blinks = _source_order(len(frames), fps, track, policy)
    n_out = int((script.duration_s + 0.5) * fps)
    # Play the free frames back and forth from a random start; splice a source blink into each blink step.
    period = max(1, 2 * len(free) - 2)
    pos = rng.randrange(len(free))
    order: list[int] = []
    splice_at = {
        int((s.start_s + rng.uniform(0.3, 0.8)) * fps): blinks[k % len(blinks)]
        for k, s in enumerate(st for st in script.steps if st.kind == "blink")
        if blinks
    }
    while len(order) < n_out:
        if len(order) in splice_at:
            order += splice_at[len(order)]
            continue
        q = pos % period
        order.append(free[q if q < len(free) else period - q])
        pos += 1
    order = order[:n_out]
    # The verifier reads "left" as positive yaw in the unmirrored recording; the attacker warps accordingly.
    side = {"left": -1.0}
    masker = FaceMasker()
    out: list[np.ndarray] = []
    warped_frames = 0
    tris: np.ndarray | None = None
    try:
        for i, si in enumerate(order):
            t = i / fps
            fr = mirror_and_crop(frames[si], edit)
            yaw, pitch = _pose_at(t, script, edit, side)
            lm3 = masker.landmarks3d(fr) if abs(yaw) > 0.5 or abs(pitch) > 0.5 else None
            if lm3 is not None:
                fr, tris = warp_pose(fr, lm3, yaw, pitch, tris)
                warped_frames += 1
            out.append(tint_face(fr, masker, flash_colour_at(script.flashes, t - TINT_LATENCY_S), edit.tint_gain))
    finally:
        masker.close()
    meta: dict[str, Any] = {
        "edit": asdict(edit),
        "spliced_blinks": len(splice_at),
        "source_blinks": len(blinks),
        "warped_frames": warped_frames,
    }
    return out, meta
