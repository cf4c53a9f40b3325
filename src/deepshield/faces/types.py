"""Face records produced by the analyzer and consumed by detectors, reports, liveness and labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from deepshield.jsontypes import JsonObject

#: Points in pixels, one a row: (x, y) or (x, y, z).
Points: TypeAlias = NDArray[np.float32] | NDArray[np.float64]

#: A face with less than this share inside the frame is partial (see Face.in_frame). Chosen on validation
#: identities of the face-swap set: anything from 0.8 to 1.0 gave the same ranking, 0.9 is the middle.
PARTIAL_FACE_IN_FRAME = 0.9


@dataclass(frozen=True)
class HeadPose:
    """Degrees. yaw > 0: the face turns towards the image's right; pitch > 0: looking up; roll > 0: clockwise."""

    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> JsonObject:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the frame
    confidence: float
    #: 478 x 3 mesh: x, y in pixels, z in pixels relative to the face centre (smaller is nearer). None when the
    #: mesh could not be fitted (tiny or heavily occluded faces); the detector box and keypoints remain.
    landmarks: Points | None
    keypoints: Points  # 6 x 2 detector keypoints: right eye, left eye, nose tip, mouth, right ear, left ear
    pose: HeadPose | None
    frame_index: int = 0
    time_s: float = 0.0
    track_id: int | None = None
    #: Share of the face inside the frame (face-oval mesh points, else box area). A crop of a face cut by the
    #: frame edge is padded with mirrored pixels, so a detector's score of it judges content nobody filmed.
    in_frame: float = 1.0
    extra: JsonObject = field(default_factory=dict)  # e.g. "untracked"

    @property
    def is_partial(self) -> bool:
        """Cut by the frame edge enough that a forgery score of its crop is not to be trusted."""
        return self.in_frame < PARTIAL_FACE_IN_FRAME

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_dict(self, with_landmarks: bool = False) -> JsonObject:
        d: JsonObject = {
            "box": [round(v, 1) for v in self.box],
            "confidence": round(self.confidence, 4),
            "pose": self.pose.to_dict() if self.pose else None,
            "has_mesh": self.landmarks is not None,
            "frame_index": self.frame_index,
            "time_s": round(self.time_s, 3),
            "track_id": self.track_id,
            "in_frame": round(self.in_frame, 3),
        }
        if with_landmarks and self.landmarks is not None:
            d["landmarks"] = np.round(self.landmarks[:, :2], 1).tolist()
        return d


@dataclass
class FaceTrack:
    track_id: int
    faces: list[Face]

    @property
    def first_time_s(self) -> float:
        return self.faces[0].time_s

    @property
    def last_time_s(self) -> float:
        return self.faces[-1].time_s

    def to_dict(self) -> JsonObject:
        return {
            "track_id": self.track_id,
            "detections": len(self.faces),
            "first_time_s": round(self.first_time_s, 3),
            "last_time_s": round(self.last_time_s, 3),
        }
