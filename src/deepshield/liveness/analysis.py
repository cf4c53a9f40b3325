"""One pass over a session video: the dense per-frame track (pose, eye aspect ratio, face and background
colour) and sparse keyframes (face boxes, embeddings, forgery scores, perceptual hashes) that the signals read.

Dense samples come from MediaPipe's mesh in tracking mode on frames scaled to at most `work_side` pixels, with
head pose from `deepshield.faces.estimate_head_pose`; keyframes (a few per second) go through the full
`deepshield.faces.FaceAnalyzer`, which also counts faces, so a second person or a face switch is seen.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from deepshield.errors import MediaError
from deepshield.faces import FaceAnalyzer, estimate_head_pose, quiet_native_stderr
from deepshield.faces.landmarks import LEFT_EYE_EAR, RIGHT_EYE_EAR
from deepshield.faces.types import Face
from deepshield.liveness.regions import region_points
from deepshield.liveness.replay import face_box, face_hash, face_signature
from deepshield.media import FrameSampling, MediaKind, open_media
from deepshield.media.prefetch import prefetch

if TYPE_CHECKING:
    from deepshield.liveness.warp import WarpDetector

os.environ.setdefault("GLOG_minloglevel", "2")

# Skin patches for the colour-flash response: forehead, both cheeks, nose bridge (mesh indices).
SKIN_POINTS = [151, 9, 50, 280, 205, 425, 6, 108, 337]


class NoFaceInVideo(MediaError):
    code = "no_face"


@dataclass
class Sample:
    """One densely sampled frame."""

    t: float
    has_face: bool
    yaw: float = float("nan")
    pitch: float = float("nan")
    roll: float = float("nan")
    ear: float = float("nan")
    face_rgb: tuple[float, float, float] = (float("nan"),) * 3
    bg_rgb: tuple[float, float, float] = (float("nan"),) * 3
    face_center: tuple[float, float] = (float("nan"), float("nan"))
    face_width: float = float("nan")
    face_pdq: str | None = None  # PDQ hash of the face crop (`replay.face_hash`), for replay detection
    #: Mean colour of each of `regions.REGIONS` (forehead, nose, cheek sides, chin, the ring outside the outline),
    #: for the flash check's light-on-a-3-D-head test; None in tracks analysed before it existed
    region_rgb: tuple[tuple[float, float, float], ...] | None = None


@dataclass
class Keyframe:
    t: float
    faces: list[Face]
    rgb: np.ndarray | None  # kept only while signals run; dropped before storing
    phash: int
    embedding: np.ndarray | None = None
    yaw: float | None = None
    forgery: float | None = None  # the forgery detector's score for the main face, when one is installed
    #: PDQ hashes of the main face's crop in its eight rotations/flips (`replay.face_signature`); empty: no face
    face_pdq: list[str] = field(default_factory=list)


@dataclass
class TurnedFrame:
    """A sampled frame whose face is turned far enough for the warped-turn detector (`liveness/warp.py`), about
    7 a second: a turn step's hold can be shorter than the keyframes' half second."""

    t: float
    yaw: float
    crop: np.ndarray | None  # the detector's aligned crop; dropped before storing
    warp: float | None = None  # the detector's probability of a 2.5-D warp


@dataclass
class SessionTrack:
    fps: float
    width: int
    height: int
    duration_s: float
    samples: list[Sample]
    keyframes: list[Keyframe]
    extra: dict[str, object] = field(default_factory=dict)
    turned: list[TurnedFrame] = field(default_factory=list)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        t = np.array([s.t for s in self.samples], dtype=np.float64)
        v = np.array([getattr(s, name) for s in self.samples], dtype=np.float64)
        return t, v

    def colours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.array([s.t for s in self.samples], dtype=np.float64)
        f = np.array([s.face_rgb for s in self.samples], dtype=np.float64).reshape(-1, 3)
        b = np.array([s.bg_rgb for s in self.samples], dtype=np.float64).reshape(-1, 3)
        return t, f, b

    def region_colours(self) -> np.ndarray | None:
        """Samples x regions x RGB (NaN where the face was lost); None when the track has no region colours."""
        if not any(s.region_rgb for s in self.samples):
            return None
        n = len(next(s.region_rgb for s in self.samples if s.region_rgb))
        blank = ((float("nan"),) * 3,) * n
        return np.array([s.region_rgb or blank for s in self.samples], dtype=np.float64)

    def drop_pixels(self) -> None:
        for k in self.keyframes:
            k.rgb = None
        for f in self.turned:
            f.crop = None


def phash64(rgb: np.ndarray) -> int:
    """64-bit DCT perceptual hash of a frame (grey 32x32, low 8x8 frequencies against their median)."""
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    g = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    d = cv2.dct(g)[:8, :8].flatten()
    bits = d > np.median(d[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def eye_aspect_ratio(lm: np.ndarray) -> float:
    def one(idx: list[int]) -> float:
        p = lm[idx, :2]
        w = float(np.linalg.norm(p[0] - p[3])) or 1.0
        return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * w))

    return (one(RIGHT_EYE_EAR) + one(LEFT_EYE_EAR)) / 2


def _patch_mean(rgb: np.ndarray, pts: np.ndarray, radius: int) -> tuple[float, float, float]:
    h, w = rgb.shape[:2]
    acc = np.zeros(3)
    n = 0
    for x, y in pts:
        x0, y0 = int(max(0, x - radius)), int(max(0, y - radius))
        x1, y1 = int(min(w, x + radius + 1)), int(min(h, y + radius + 1))
        if x1 > x0 and y1 > y0:
            acc += rgb[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
            n += 1
    if n == 0:
        return (float("nan"),) * 3
    m = acc / n
    return (float(m[0]), float(m[1]), float(m[2]))


def _background_mean(rgb: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """Mean colour of the frame's outer band, away from the face (box grown by 60%)."""
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), dtype=bool)
    bh, bw = int(0.18 * h), int(0.15 * w)
    mask[:bh, :] = True
    mask[:, :bw] = True
    mask[:, w - bw :] = True
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.8, (y1 - y0) * 0.8
    mask[int(max(0, cy - hh)) : int(min(h, cy + hh * 1.6)), int(max(0, cx - hw)) : int(min(w, cx + hw))] = False
    if mask.sum() < 50:
        return (float("nan"),) * 3
    m = rgb[::2, ::2][mask[::2, ::2]].mean(axis=0)
    return (float(m[0]), float(m[1]), float(m[2]))


def scale_to_side(rgb: np.ndarray, side: int) -> np.ndarray:
    """The frame scaled down (area filter) so its longer side is at most `side`: the analyser's working size."""
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)


class SessionAnalyzer:
    """Turns frames into a SessionTrack. Holds MediaPipe graphs: one per worker, not thread-safe."""

    def __init__(
        self,
        fps: float = 15.0,
        keyframe_fps: float = 2.0,
        work_side: int = 640,
        warp: WarpDetector | None = None,
        turned_fps: float = 7.5,
    ) -> None:
        from mediapipe.python.solutions import face_mesh

        self.fps = fps
        self.keyframe_every = max(1, int(round(fps / keyframe_fps)))
        #: With a warped-turn detector, turned faces are cropped for it as the video is analysed.
        self.warp = warp
        self.turned_every = max(1, int(round(fps / turned_fps)))
        self.work_side = work_side
        self._mesh_mod = face_mesh
        self._mesh = self._new_mesh()
        # A selfie session is a close-up: no tiled search for small faces.
        self._faces = FaceAnalyzer(max_faces=4, tiled=False)

    def _new_mesh(self) -> Any:
        return self._mesh_mod.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def close(self) -> None:
        self._mesh.close()
        self._faces.close()

    def _scale(self, rgb: np.ndarray) -> np.ndarray:
        return scale_to_side(rgb, self.work_side)

    def analyze_frames(self, frames: Iterable[tuple[float, np.ndarray]], fps: float = 0.0) -> SessionTrack:
        # A fresh tracker per video: tracking state must not leak between sessions.
        self._mesh.close()
        self._mesh = self._new_mesh()
        samples: list[Sample] = []
        keys: list[Keyframe] = []
        turned: list[TurnedFrame] = []
        width = height = 0
        last_t = 0.0
        for i, (t, full) in enumerate(frames):
            rgb = self._scale(full)
            height, width = rgb.shape[:2]
            last_t = t
            if i == 0:  # a new graph logs on its first frame
                with quiet_native_stderr():
                    res = self._mesh.process(rgb)
            else:
                res = self._mesh.process(rgb)
            s = Sample(t=t, has_face=False)
            box = (0.0, 0.0, 0.0, 0.0)
            if res.multi_face_landmarks:
                lm = np.array(
                    [(p.x * width, p.y * height, p.z * width) for p in res.multi_face_landmarks[0].landmark],
                    dtype=np.float32,
                )
                pose = estimate_head_pose(lm, width, height)
                x0, y0 = lm[:, 0].min(), lm[:, 1].min()
                x1, y1 = lm[:, 0].max(), lm[:, 1].max()
                fw = float(x1 - x0)
                box = (float(x0), float(y0), float(x1), float(y1))
                s = Sample(
                    t=t,
                    has_face=True,
                    yaw=pose.yaw if pose else float("nan"),
                    pitch=pose.pitch if pose else float("nan"),
                    roll=pose.roll if pose else float("nan"),
                    ear=eye_aspect_ratio(lm),
                    face_rgb=_patch_mean(rgb, lm[SKIN_POINTS, :2], max(1, int(fw * 0.04))),
                    bg_rgb=_background_mean(rgb, (float(x0), float(y0), float(x1), float(y1))),
                    face_center=(float((x0 + x1) / 2), float((y0 + y1) / 2)),
                    face_width=fw,
                    face_pdq=face_hash(rgb, box),
                    region_rgb=tuple(
                        _patch_mean(rgb, pts, max(1, int(fw * 0.03))) for pts in region_points(lm).values()
                    ),
                )
                if (
                    self.warp is not None
                    and pose is not None
                    and i % self.turned_every == 0
                    and self.warp.wants(pose.yaw)
                ):
                    mesh_face = Face(
                        box=box, confidence=1.0, landmarks=lm, keypoints=np.zeros((6, 2), np.float32), pose=pose
                    )
                    turned.append(TurnedFrame(t=t, yaw=pose.yaw, crop=self.warp.crop(rgb, mesh_face)))
            samples.append(s)
            if i % self.keyframe_every == 0:
                faces = self._faces.analyze(rgb, frame_index=i, time_s=t)
                keys.append(
                    Keyframe(
                        t=t,
                        faces=faces,
                        rgb=rgb,
                        phash=phash64(rgb),
                        yaw=faces[0].pose.yaw if faces and faces[0].pose else None,
                        face_pdq=face_signature(rgb, box if s.has_face else face_box(faces[0])) if faces else [],
                    )
                )
        if not samples:
            raise MediaError("the video has no frames")
        return SessionTrack(
            fps=fps or self.fps,
            width=width,
            height=height,
            duration_s=last_t,
            samples=samples,
            keyframes=keys,
            turned=turned,
        )

    def analyze_file(self, path: str | Path) -> SessionTrack:
        media = open_media(path)
        if media.info.kind != MediaKind.VIDEO:
            raise MediaError("a liveness session needs a video, not a still image")
        try:
            sampling = FrameSampling.rate(self.fps, max_frames=900)

            def scaled() -> Iterator[tuple[float, np.ndarray]]:
                for f in media.frames(sampling):
                    yield f.time_s, self._scale(f.rgb)

            # Decoded and scaled in a second thread while the face models run (see media.prefetch).
            with closing(prefetch(scaled, depth=8)) as source:
                track = self.analyze_frames(source, fps=self.fps)
        finally:
            media.close()
        track.extra["sha256"] = media.info.sha256
        return track


#: Keyframes embedded for identity checks: near-frontal (dlib's ResNet is trained on frontal faces), at most 5
#: (dlib's CPU build takes 0.1 to 0.5 s per face here).
EMBED_MAX_YAW = 25.0
EMBED_MAX_FRAMES = 5


def enrich_track(
    track: SessionTrack, embedder: object | None, detector: object | None, warp: object | None = None
) -> None:
    """Embeddings of near-frontal keyframes, forgery scores of every keyframe and warp probabilities of the
    turned frames the analyser cropped, computed once, so that the signals (and re-evaluations against other
    scripts) never need the pixels again."""
    from deepshield.detect import Detector
    from deepshield.liveness.embedding import FaceEmbedder
    from deepshield.liveness.warp import WarpDetector

    if isinstance(embedder, FaceEmbedder):
        keys = [
            k
            for k in track.keyframes
            if k.rgb is not None and k.faces and k.yaw is not None and abs(k.yaw) < EMBED_MAX_YAW
        ]
        if len(keys) > EMBED_MAX_FRAMES:
            keys = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, EMBED_MAX_FRAMES)]
        for k in keys:
            assert k.rgb is not None
            k.embedding = embedder.embed(k.rgb, k.faces[0])
    if isinstance(detector, Detector):
        for k in track.keyframes:
            if k.rgb is not None and k.faces:
                fs = detector.score_faces(k.rgb, k.faces[:1])
                if fs:
                    k.forgery = float(fs[0].score)
    if isinstance(warp, WarpDetector):
        turned = [f for f in track.turned if f.crop is not None]
        if turned:
            crops = np.stack([f.crop for f in turned if f.crop is not None])
            for f, p in zip(turned, warp.probabilities(crops), strict=True):
                f.warp = float(p)
        track.extra["warp_model"] = warp.name
    track.extra["embedder"] = getattr(getattr(embedder, "info", None), "name", None)
    track.extra["detector"] = getattr(getattr(detector, "info", None), "name", None)
    track.extra["detector_threshold"] = getattr(getattr(detector, "info", None), "threshold", None)
