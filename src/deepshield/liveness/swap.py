"""Face-swap attack generator: a source identity's face warped onto every frame of a real video by mesh
triangulation, then Poisson-blended (cv2.seamlessClone), frame by frame as a real-time swap tool would.

Like real-time swap tools it needs the target's face mesh: where the mesh is lost or the head is turned past
`max_yaw` (profile), the frame passes through unswapped, which is where such tools break. A stand-in until the
Detect domain's swap generator is on main; `make_swapped_frames` is the one entry point to repoint.
"""

from __future__ import annotations

import cv2
import numpy as np

from deepshield.faces import FaceAnalyzer, estimate_head_pose
from deepshield.faces.landmarks import FACE_OVAL, LEFT_EYE, LIPS_OUTER, RIGHT_EYE
from deepshield.liveness.simulate import FaceMasker

_NOSE = [1, 4, 5, 195, 197, 6, 168, 98, 327, 2, 48, 278]
_BROWS = [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]
POINTS = sorted(set(FACE_OVAL + RIGHT_EYE + LEFT_EYE + LIPS_OUTER + _NOSE + _BROWS))


class SwapSourceError(ValueError):
    pass


def _triangles(pts: np.ndarray, w: int, h: int) -> list[tuple[int, int, int]]:
    sub = cv2.Subdiv2D((0, 0, w + 1, h + 1))
    lookup = {}
    for i, (x, y) in enumerate(pts):
        xi, yi = float(np.clip(x, 0, w)), float(np.clip(y, 0, h))
        sub.insert((xi, yi))
        lookup[(round(xi, 2), round(yi, 2))] = i
    tris = []
    for x1, y1, x2, y2, x3, y3 in sub.getTriangleList():
        key = [(round(x1, 2), round(y1, 2)), (round(x2, 2), round(y2, 2)), (round(x3, 2), round(y3, 2))]
        if all(k in lookup for k in key):
            tris.append((lookup[key[0]], lookup[key[1]], lookup[key[2]]))
    return tris


class FaceSwapper:
    def __init__(self, source_rgb: np.ndarray, max_yaw: float = 45.0) -> None:
        with FaceAnalyzer(max_faces=1) as fa:
            faces = fa.analyze(source_rgb)
        if not faces or faces[0].landmarks is None:
            raise SwapSourceError("no face mesh in the swap source photo")
        self.src = source_rgb
        self.src_pts = faces[0].landmarks[POINTS, :2].astype(np.float32)
        h, w = source_rgb.shape[:2]
        self.tris = _triangles(self.src_pts, w, h)
        self.max_yaw = max_yaw
        self._mask = FaceMasker()

    def close(self) -> None:
        self._mask.close()

    def swap(self, frame: np.ndarray) -> tuple[np.ndarray, bool]:
        h, w = frame.shape[:2]
        lm = self._mask.landmarks(frame)
        if lm is None:
            return frame, False
        full = np.concatenate([lm, np.zeros((len(lm), 1), np.float32)], axis=1)
        pose = estimate_head_pose(full, w, h)
        if pose is None or abs(pose.yaw) > self.max_yaw:
            return frame, False
        dst_pts = lm[POINTS]
        warped = np.zeros_like(frame)
        for a, b, c in self.tris:
            s = self.src_pts[[a, b, c]]
            d = dst_pts[[a, b, c]]
            sx, sy, sw, sh = cv2.boundingRect(s)
            dx, dy, dw, dh = cv2.boundingRect(d)
            if sw < 1 or sh < 1 or dw < 1 or dh < 1 or dx < 0 or dy < 0 or dx + dw > w or dy + dh > h:
                continue
            m = cv2.getAffineTransform((s - (sx, sy)).astype(np.float32), (d - (dx, dy)).astype(np.float32))
            patch = cv2.warpAffine(self.src[sy : sy + sh, sx : sx + sw], m, (dw, dh), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT101)
            tm = np.zeros((dh, dw), np.uint8)
            cv2.fillConvexPoly(tm, (d - (dx, dy)).astype(np.int32), (1,))
            roi = warped[dy : dy + dh, dx : dx + dw]
            roi[tm > 0] = patch[tm > 0]
        oval = lm[FACE_OVAL]
        c = oval.mean(axis=0)
        hull = ((oval - c) * 0.92 + c).astype(np.int32)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(mask, hull, (255,))
        x, y, bw, bh = cv2.boundingRect(hull)
        if bw < 8 or bh < 8 or x <= 1 or y <= 1 or x + bw >= w - 1 or y + bh >= h - 1:
            return frame, False
        center = (x + bw // 2, y + bh // 2)
        try:
            out = cv2.seamlessClone(warped, frame, mask, center, cv2.NORMAL_CLONE)
        except cv2.error:
            return frame, False
        return out, True


def make_swapped_frames(frames: list[np.ndarray], source_rgb: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Swapped frames and the fraction of frames actually swapped."""
    sw = FaceSwapper(source_rgb)
    out, done = [], 0
    try:
        for f in frames:
            g, ok = sw.swap(f)
            out.append(g)
            done += ok
    finally:
        sw.close()
    return out, done / max(1, len(frames))
