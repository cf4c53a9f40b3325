"""Array helpers of the watermark's geometry search: the 8 flips/right-angle turns and wrapped bilinear sampling."""

from __future__ import annotations

import numpy as np


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """Orientation k of 8: k % 4 quarter turns, then a transpose when k >= 4 (all flips and turns)."""
    b = np.rot90(a, k % 4)
    return np.ascontiguousarray(b.T if k >= 4 else b)


def undihedral(a: np.ndarray, k: int) -> np.ndarray:
    b = a.T if k >= 4 else a
    return np.ascontiguousarray(np.rot90(b, -(k % 4)))


def bilinear_many(a: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear samples of `a` at float coordinates (wrapping round, as an FFT autocorrelation does)."""
    h, w = a.shape
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    y0, x0 = y0 % h, x0 % w
    y1, x1 = (y0 + 1) % h, (x0 + 1) % w
    return a[y0, x0] * (1 - fy) * (1 - fx) + a[y0, x1] * (1 - fy) * fx + a[y1, x0] * fy * (1 - fx) + a[y1, x1] * fy * fx
