"""MediaPipe face detection (both range models) followed by the 478-point mesh fitted per detected face.

Running the mesh on a crop around each detection, rather than on the whole frame, finds small faces in group
photos that the mesh's own short-range detector misses, and gives one mesh per detected face.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import cast

import cv2
import numpy as np

from deepshield.config import DEBUG_NATIVE
from deepshield.faces.geometry import iou, mostly_inside, share_inside
from deepshield.faces.landmarks import FACE_OVAL
from deepshield.faces.pose import estimate_head_pose
from deepshield.faces.types import Face, Points
from deepshield.media.types import RGBImage

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A face at least this fraction of the frame's short side makes the frame a close-up: no tiled search.
_CLOSE_UP = 0.25

# Detections below this confidence are kept only when the mesh agrees that a face is there.
_SURE = 0.8

# Mesh crops are resized so the face spans about this many pixels: the mesh model's own input is 192 px.
_MESH_CROP_SIDE = 256


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """MediaPipe's C++ graphs print start-up chatter straight to file descriptor 2; hide it while they load so
    the CLI's stderr holds only what a person needs."""
    if DEBUG_NATIVE.get():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _plausible(box: tuple[float, float, float, float], kps: Points, landmarks: Points | None) -> bool:
    """The mesh fitted inside the box puts the eyes where the detector put them, upright within 60 degrees."""
    if landmarks is None:
        return False
    from deepshield.faces.landmarks import LEFT_EYE, RIGHT_EYE

    size = max(box[2] - box[0], box[3] - box[1], 1.0)
    re, le = landmarks[RIGHT_EYE, :2].mean(axis=0), landmarks[LEFT_EYE, :2].mean(axis=0)
    err = max(float(np.linalg.norm(re - kps[0])), float(np.linalg.norm(le - kps[1]))) / size
    angle = abs(float(np.degrees(np.arctan2(le[1] - re[1], le[0] - re[0]))))
    return err < 0.2 and angle < 60


class FaceAnalyzer:
    """Finds faces in RGB frames. Not thread-safe (MediaPipe graphs hold state): one per worker."""

    def __init__(
        self, min_confidence: float = 0.5, max_faces: int = 32, with_mesh: bool = True, tiled: bool = True
    ) -> None:
        with quiet_native_stderr():
            self._load(min_confidence, with_mesh)
        self.min_confidence = min_confidence
        self.max_faces = max_faces
        self.with_mesh = with_mesh
        self.tiled = tiled
        self._warm = False
        self._lock = threading.Lock()

    def _load(self, min_confidence: float, with_mesh: bool) -> None:
        from mediapipe.python.solutions import face_detection, face_mesh

        self._short = face_detection.FaceDetection(model_selection=0, min_detection_confidence=min_confidence)
        self._full = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
        self._mesh = (
            face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
            )
            if with_mesh
            else None
        )
        # The first inference initialises delegates (and logs); do it here, silenced.
        blank = np.zeros((64, 64, 3), np.uint8)
        self._short.process(blank)
        self._full.process(blank)
        if self._mesh is not None:
            self._mesh.process(blank)

    def close(self) -> None:
        self._short.close()
        self._full.close()
        if self._mesh is not None:
            self._mesh.close()

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_detector(
        self, det: object, rgb: RGBImage, ox: int, oy: int, fw: int, fh: int
    ) -> list[tuple[tuple[float, float, float, float], float, Points]]:
        h, w = rgb.shape[:2]
        out: list[tuple[tuple[float, float, float, float], float, Points]] = []
        res = det.process(np.ascontiguousarray(rgb))  # type: ignore[attr-defined]
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            x0 = max(0.0, bb.xmin * w + ox)
            y0 = max(0.0, bb.ymin * h + oy)
            x1 = min(float(fw), (bb.xmin + bb.width) * w + ox)
            y1 = min(float(fh), (bb.ymin + bb.height) * h + oy)
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            kps = np.array([(k.x * w + ox, k.y * h + oy) for k in d.location_data.relative_keypoints], np.float32)
            out.append(((x0, y0, x1, y1), float(d.score[0]), kps))
        return out

    def _tiles(self, w: int, h: int) -> list[tuple[int, int, int, int]]:
        """Overlapping tiles so faces a few dozen pixels wide in a large frame reach the detector's input size.

        The full-range model looks at 192 px; a 40 px face in a 1920 px frame would shrink to 4 px."""
        tiles = []
        long_side = max(w, h)
        for n in (2, 3, 4):
            if long_side < 640 * (n - 1):
                break
            tw, th = int(w / n * 1.5), int(h / n * 1.5)
            tw, th = min(tw, w), min(th, h)
            xs = np.linspace(0, w - tw, n).astype(int)
            ys = np.linspace(0, h - th, n).astype(int)
            tiles += [(int(x), int(y), tw, th) for y in ys for x in xs]
        return tiles

    def _detect(self, rgb: RGBImage) -> list[tuple[tuple[float, float, float, float], float, Points]]:
        h, w = rgb.shape[:2]
        found = self._run_detector(self._short, rgb, 0, 0, w, h) + self._run_detector(self._full, rgb, 0, 0, w, h)
        # Tiles cost up to 13 more detector passes: spend them only where small faces may hide, i.e. when the
        # whole-frame pass found no face big enough to make this a close-up (selfie and talking-head video).
        largest = max((max(b[2] - b[0], b[3] - b[1]) for b, _, _ in found), default=0.0)
        if self.tiled and largest < _CLOSE_UP * min(w, h):
            for x, y, tw, th in self._tiles(w, h):
                found += self._run_detector(self._full, rgb[y : y + th, x : x + tw], x, y, w, h)
        # Non-maximum suppression across models and tiles (a tile may cut a face: prefer the larger, surer box).
        found.sort(key=lambda f: -f[1])
        kept: list[tuple[tuple[float, float, float, float], float, Points]] = []
        for f in found:
            if all(iou(f[0], k[0]) < 0.3 and not mostly_inside(f[0], k[0]) for k in kept):
                kept.append(f)
            if len(kept) >= self.max_faces:
                break
        return kept

    def _fit_mesh(self, rgb: RGBImage, box: tuple[float, float, float, float], fast: bool = False) -> Points | None:
        """The mesh of the face in `box`, fitted on a crop twice the box's size. `fast` cuts and resizes that crop
        in one bilinear warp (about 1 ms instead of 5-10 ms for a large face in a 720p frame): for following a face
        through consecutive frames, where only the crop geometry depends on the mesh."""
        assert self._mesh is not None
        h, w = rgb.shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        side = max(bw, bh) * 2.0
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - 0.1 * bh
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
        if x1 <= max(0, x0) or y1 <= max(0, y0) or x0 >= w or y0 >= h:
            return None
        if fast:
            scale = _MESH_CROP_SIDE * 2.0 / max(y1 - y0, 1)
            size = (int(round((x1 - x0) * scale)), int(round((y1 - y0) * scale)))
            # Pixel centres map as cv2.resize maps them: dst + 0.5 = scale * (src - origin + 0.5).
            m = np.array([[scale, 0, -x0 * scale + 0.5 * (scale - 1)], [0, scale, -y0 * scale + 0.5 * (scale - 1)]])
            crop = cast(RGBImage, cv2.warpAffine(rgb, m, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)))
        else:
            # Pad instead of clipping so the face stays centred in the crop.
            pad = [max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w)]
            crop = rgb[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
            if crop.size == 0:
                return None
            if any(pad):
                crop = cast(
                    RGBImage,
                    cv2.copyMakeBorder(crop, pad[0], pad[1], pad[2], pad[3], cv2.BORDER_CONSTANT, value=(0, 0, 0)),
                )
            scale = _MESH_CROP_SIDE * 2.0 / crop.shape[0]
            if abs(scale - 1.0) > 0.05:
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
                size = (int(round(crop.shape[1] * scale)), int(round(crop.shape[0] * scale)))
                crop = cast(RGBImage, cv2.resize(crop, size, interpolation=interp))  # both keep the dtype
        res = self._mesh.process(np.ascontiguousarray(crop))
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        ch, cw = crop.shape[:2]
        pts = np.array([(p.x * cw, p.y * ch, p.z * cw) for p in lm], dtype=np.float32)
        pts /= scale
        pts[:, 0] += x0
        pts[:, 1] += y0
        # The mesh must describe the detected face, not a neighbour inside the enlarged crop.
        mx0, my0 = pts[:, 0].min(), pts[:, 1].min()
        mx1, my1 = pts[:, 0].max(), pts[:, 1].max()
        if iou((mx0, my0, mx1, my1), box) < 0.25:
            return None
        return pts

    def analyze(self, rgb: RGBImage, frame_index: int = 0, time_s: float = 0.0) -> list[Face]:
        """Faces in one RGB frame, largest first."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("expected an H x W x 3 uint8 RGB array")
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        with self._lock:
            if not self._warm:
                # The mesh logs once on its first real face; keep that chatter off the console too.
                self._warm = True
                with quiet_native_stderr():
                    return self._analyze(rgb, w, h, frame_index, time_s)
            return self._analyze(rgb, w, h, frame_index, time_s)

    def follow(self, rgb: RGBImage, previous: Face, frame_index: int = 0, time_s: float = 0.0) -> Face | None:
        """`previous` (a face with its mesh, in the frame before this one) in this frame, found by fitting the mesh
        inside its box instead of running the face detector: a third of `analyze`'s cost for a run of consecutive
        frames. The box moves and scales as the mesh did, so it stays the detector's kind of box. None when the
        mesh no longer finds the face there (the caller ends the run). No head pose is estimated."""
        if previous.landmarks is None:
            raise ValueError("a face is followed from its mesh: the previous face has none")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("expected an H x W x 3 uint8 RGB array")
        with self._lock:
            landmarks = self._fit_mesh(rgb, previous.box, fast=True) if self._mesh is not None else None
        if landmarks is None:
            return None
        (ax0, ay0), (ax1, ay1) = previous.landmarks[:, :2].min(axis=0), previous.landmarks[:, :2].max(axis=0)
        (bx0, by0), (bx1, by1) = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
        s = float(max(bx1 - bx0, by1 - by0) / max(ax1 - ax0, ay1 - ay0, 1e-6))
        ca, cb = ((ax0 + ax1) / 2, (ay0 + ay1) / 2), ((bx0 + bx1) / 2, (by0 + by1) / 2)
        x0, y0, x1, y1 = previous.box
        box = (
            float(cb[0] + (x0 - ca[0]) * s),
            float(cb[1] + (y0 - ca[1]) * s),
            float(cb[0] + (x1 - ca[0]) * s),
            float(cb[1] + (y1 - ca[1]) * s),
        )
        keypoints = ((previous.keypoints - np.array(ca, np.float32)) * s + np.array(cb, np.float32)).astype(np.float32)
        h, w = rgb.shape[:2]
        return Face(
            box=box,
            confidence=previous.confidence,
            landmarks=landmarks,
            keypoints=keypoints,
            pose=None,
            frame_index=frame_index,
            time_s=time_s,
            in_frame=share_inside(w, h, box, landmarks[FACE_OVAL]),
            extra={"followed": True},
        )

    def _analyze(self, rgb: RGBImage, w: int, h: int, frame_index: int, time_s: float) -> list[Face]:
        faces: list[Face] = []
        for box, score, kps in self._detect(rgb):
            landmarks = self._fit_mesh(rgb, box) if self._mesh is not None else None
            if score < _SURE and not _plausible(box, kps, landmarks):
                continue
            pose = estimate_head_pose(landmarks, w, h) if landmarks is not None else None
            in_frame = share_inside(w, h, box, landmarks[FACE_OVAL] if landmarks is not None else None)
            faces.append(
                Face(
                    box=box,
                    confidence=score,
                    landmarks=landmarks,
                    keypoints=kps,
                    pose=pose,
                    frame_index=frame_index,
                    time_s=time_s,
                    in_frame=in_frame,
                )
            )
        faces.sort(key=lambda f: -(f.width * f.height))
        return faces
