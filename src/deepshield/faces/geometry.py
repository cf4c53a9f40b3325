"""Box and point arithmetic shared by detection (suppression, frame edges) and tracking (association)."""

from __future__ import annotations

import numpy as np

from deepshield.faces.types import Points

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def intersection(a: Box, b: Box) -> float:
    ix0, iy0 = max(a[0], b[0]), max(a[1], b[1])
    ix1, iy1 = min(a[2], b[2]), min(a[3], b[3])
    return max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)


def area(a: Box) -> float:
    return max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])


def iou(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def mostly_inside(a: Box, b: Box, fraction: float = 0.6) -> bool:
    """Most of box a lies within box b (a partial face from a tile edge inside a whole one)."""
    aa = area(a)
    return aa > 0 and intersection(a, b) / aa > fraction


def share_inside(width: int, height: int, box: Box, points: Points | None = None) -> float:
    """Share of `points` (N x 2+, pixels) inside a width x height frame; of the box's area without points."""
    if points is not None and len(points):
        x, y = points[:, 0], points[:, 1]
        return float(np.mean((x >= 0) & (x < width) & (y >= 0) & (y < height)))
    aa = area(box)
    return intersection(box, (0.0, 0.0, float(width), float(height))) / aa if aa > 0 else 0.0
