"""Blended images of two real people (Li et al., "Face X-ray", CVPR 2020, written from the paper): a donor face
of another identity warped onto a target face by the mesh, colour-matched, and blended inside a random mask.

Like self-blending it needs real faces only, and it teaches what a face swap leaves that a self-blend does not:
a face whose identity, texture and lighting do not belong to the head around it. The warp and colour transfer
are the ones of the project's face-swap generator (`swaps.py`); the mask and blend are drawn at random (SBI's
mask family, alpha blending or Poisson cloning), so the model sees far more than that one generator's output.
"""

from __future__ import annotations

import cv2
import numpy as np

from deepshield.detect.training.sbi import OPACITIES, blend_mask
from deepshield.detect.training.swaps import colour_transfer, delaunay, warp_triangles
from deepshield.faces.landmarks import FACE_OVAL, LEFT_EYE, LIPS_OUTER, RIGHT_EYE

#: Mesh points the warp follows (oval, eyes, brows, nose, lips): a coarser warp than the swap generator's
#: 468 points, about 4x cheaper, and the coarseness is one more variation for the model to see.
WARP_POINTS = np.array(
    sorted(
        set(
            FACE_OVAL
            + RIGHT_EYE
            + LEFT_EYE
            + LIPS_OUTER
            + [1, 4, 5, 6, 195, 197, 168, 98, 327, 2, 48, 278]  # nose
            + [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]  # brows
        )
    )
)

_triangles: np.ndarray | None = None


def _triangulation(landmarks: np.ndarray) -> np.ndarray:
    """One triangulation of WARP_POINTS for every face (the mesh topology is fixed), made on the first face."""
    global _triangles
    if _triangles is None:
        pts = landmarks[WARP_POINTS, :2]
        _triangles = delaunay(pts, (int(pts[:, 1].max()) + 1, int(pts[:, 0].max()) + 1))
    return _triangles


def yaw_proxy(landmarks: np.ndarray) -> float:
    """Signed head turn from the mesh alone: nose tip offset from the eyes' midpoint, in eye distances."""
    right, left, nose = landmarks[33, :2], landmarks[263, :2], landmarks[1, :2]
    eyes = float(np.linalg.norm(left - right)) + 1e-6
    return float((nose[0] - (left[0] + right[0]) / 2) / eyes)


def cross_blend(
    img: np.ndarray,
    landmarks: np.ndarray,
    donor: np.ndarray,
    donor_landmarks: np.ndarray,
    rng: np.random.Generator,
    inner_prob: float = 0.35,
    soft_prob: float = 0.3,
    soft_min: float = 0.4,
    part_prob: float = 0.0,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(fake, mask): the donor's face blended onto `img`; None when the warp leaves too little face. With
    `soft_prob` the donor first loses resolution (scale `soft_min` to 0.8): a swap model's output is often softer
    than the frame around it (models that work at 128 to 256 px, pasted onto a larger face)."""
    h, w = img.shape[:2]
    src = donor
    if rng.random() < soft_prob:
        f = rng.uniform(soft_min, 0.8)
        dh, dw = donor.shape[:2]
        small = cv2.resize(donor, (max(8, int(dw * f)), max(8, int(dh * f))), interpolation=cv2.INTER_AREA)
        src = cv2.resize(small, (dw, dh), interpolation=cv2.INTER_LINEAR)
    tris = _triangulation(donor_landmarks)
    warped, cover = warp_triangles(src, donor_landmarks[WARP_POINTS], landmarks[WARP_POINTS], tris, (h, w))
    mask = blend_mask(landmarks, (h, w), rng, inner_prob, part_prob)
    mask = mask * cv2.erode(cover, np.ones((3, 3), np.uint8))
    hard = (mask > 0.5).astype(np.uint8)
    if hard.sum() < 200:
        return None
    warped_u8 = np.clip(warped, 0, 255).astype(np.uint8)
    if rng.random() < 0.85:
        warped_u8 = colour_transfer(warped_u8, img, hard)
    if rng.random() < 0.5:
        x, y, bw, bh = cv2.boundingRect(hard)
        if x >= 1 and y >= 1 and x + bw < w - 1 and y + bh < h - 1:
            try:
                out = cv2.seamlessClone(
                    warped_u8[..., ::-1].copy(),
                    img[..., ::-1].copy(),
                    hard * 255,
                    (x + bw // 2, y + bh // 2),
                    cv2.NORMAL_CLONE,
                )
                return np.ascontiguousarray(out[..., ::-1]), hard.astype(np.float32)
            except cv2.error:
                pass
    mask = mask * float(rng.choice(OPACITIES[2:]))  # a donor at 25% opacity is not a swap
    m3 = mask[..., None]
    fake = np.clip(m3 * warped_u8.astype(np.float32) + (1 - m3) * img.astype(np.float32) + 0.5, 0, 255)
    return fake.astype(np.uint8), mask
