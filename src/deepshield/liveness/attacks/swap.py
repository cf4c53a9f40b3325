"""Real-time face-swap attack: the Detect domain's swap generator (`deepshield.detect.training.swaps`) applied to every
frame of a live recording, as a real-time swap tool (DeepFaceLive and the like) would.

Like such tools it needs the target's face mesh on each frame (MediaPipe in tracking mode here): where the mesh
is lost or the head is turned past `max_yaw` (a profile), the frame passes through unswapped, which is where
real-time swaps break and what the challenge's profile step is there to expose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepshield.detect.training.swaps import Donor, delaunay, load_donor, swap_face
from deepshield.faces import FaceAnalyzer, estimate_head_pose
from deepshield.liveness.attacks.simulate import FaceMasker


class SwapSourceError(ValueError):
    pass


def donor_from_photo(path: Path) -> Donor:
    """The swap source (the victim's face) from a photo file; SwapSourceError without a usable face."""
    with FaceAnalyzer(max_faces=1) as fa:
        donor = load_donor(fa, path, path.stem)
    if donor is None:
        raise SwapSourceError(f"no usable face in the swap source photo {path}")
    return donor


def make_swapped_frames(
    frames: list[np.ndarray], donor: Donor, max_yaw: float = 45.0
) -> tuple[list[np.ndarray], float]:
    """Swapped frames and the fraction of frames actually swapped."""
    tris = delaunay(donor.landmarks[:468], (donor.image.shape[0], donor.image.shape[1]))
    masker = FaceMasker()
    out: list[np.ndarray] = []
    done = 0
    try:
        for frame in frames:
            h, w = frame.shape[:2]
            lm = masker.landmarks(frame)
            swapped = None
            if lm is not None:
                full = np.concatenate([lm, np.zeros((len(lm), 1), np.float32)], axis=1)
                pose = estimate_head_pose(full, w, h)
                if pose is not None and abs(pose.yaw) <= max_yaw:
                    swapped = swap_face(frame, lm, donor, tris)
            out.append(swapped if swapped is not None else frame)
            done += swapped is not None
    finally:
        masker.close()
    return out, done / max(1, len(frames))
