"""Aligned face crops: roll removed, face oval centred, a requested size and margin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from deepshield.faces.landmarks import FACE_OVAL, LEFT_EYE, RIGHT_EYE
from deepshield.faces.types import Face
from deepshield.media.types import RGBImage


@dataclass
class AlignedCrop:
    image: RGBImage  # size x size
    #: 2x3 affine that maps frame pixels to crop pixels (apply to landmarks, or invert for heat maps).
    matrix: NDArray[np.float64]

    def map_points(self, pts: ArrayLike) -> NDArray[np.float64]:
        return apply_affine(self.matrix, pts)


def apply_affine(matrix: ArrayLike, pts: ArrayLike) -> NDArray[np.float64]:
    """N x 2+ points (x, y first) through a 2x3 affine, as cv2.warpAffine moves the pixels under them."""
    p = np.asarray(pts, dtype=np.float64)[:, :2]
    m = np.asarray(matrix, dtype=np.float64)
    moved: NDArray[np.float64] = p @ m[:, :2].T + m[:, 2]
    return moved


def align_face(rgb: RGBImage, face: Face, size: int = 224, margin: float = 0.25, rotate: bool = True) -> AlignedCrop:
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
    return AlignedCrop(image=cast(RGBImage, img), matrix=m)  # warpAffine keeps the dtype
