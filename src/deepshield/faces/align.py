"""Aligned face crops: roll removed, face oval centred, a requested size and margin."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deepshield.faces.landmarks import FACE_OVAL, LEFT_EYE, RIGHT_EYE
from deepshield.faces.types import Face


@dataclass
class AlignedCrop:
    image: np.ndarray  # size x size x 3 RGB
    #: 2x3 affine that maps frame pixels to crop pixels (apply to landmarks, or invert for heat maps).
    matrix: np.ndarray

    def map_points(self, pts: np.ndarray) -> np.ndarray:
        return apply_affine(self.matrix, pts)


def apply_affine(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """N x 2+ points (x, y first) through a 2x3 affine, as cv2.warpAffine moves the pixels under them."""
    p = np.asarray(pts, dtype=np.float64)[:, :2]
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def align_face(rgb: np.ndarray, face: Face, size: int = 224, margin: float = 0.25, rotate: bool = True) -> AlignedCrop:
    """Crop `face` out of `rgb`. `margin` is the fraction of the face extent added on each side."""
    if face.landmarks is not None:
        pts = face.landmarks[:, :2].astype(np.float64)
        oval = pts[FACE_OVAL]
        if rotate:
            re, le = pts[RIGHT_EYE].mean(axis=0), pts[LEFT_EYE].mean(axis=0)
            angle = float(np.degrees(np.arctan2(le[1] - re[1], le[0] - re[0])))
        else:
            angle = 0.0
        center = oval.mean(axis=0)
        rot = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle, 1.0)
        r = oval @ rot[:, :2].T + rot[:, 2]
        extent = float(max(r[:, 0].max() - r[:, 0].min(), r[:, 1].max() - r[:, 1].min()))
        c = (r.min(axis=0) + r.max(axis=0)) / 2
    else:
        rot = np.array([[1.0, 0, 0], [0, 1.0, 0]])
        x0, y0, x1, y1 = face.box
        extent = float(max(x1 - x0, y1 - y0))
        c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    side = max(extent * (1 + 2 * margin), 4.0)
    s = size / side
    # crop = s * (rot @ p - c) + size/2
    m = np.zeros((2, 3), dtype=np.float64)
    m[:, :2] = s * rot[:, :2]
    m[:, 2] = s * (rot[:, 2] - c) + size / 2
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    img = cv2.warpAffine(rgb, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT101)
    return AlignedCrop(image=img, matrix=m)
