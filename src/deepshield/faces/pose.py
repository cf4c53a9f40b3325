"""Head pose from six mesh points with solvePnP against a generic 3D face."""

from __future__ import annotations

import cv2
import numpy as np

from deepshield.faces.landmarks import POSE_POINTS
from deepshield.faces.types import HeadPose, Points

# Mean face in millimetres (outer eye corners 90 mm apart), camera-style axes (x right, y down, z away from the
# camera), nose tip at the origin. Measured by this project: 400 MediaPipe meshes from the shared photo corpus,
# each rotated into its own eye-line / forehead-chin frame and averaged, so zero pitch means the forehead-chin
# line lies in the image plane.
MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip (mesh 1)
        (0.0, 79.5, 33.0),  # chin (152)
        (-45.0, -37.6, 46.5),  # right eye outer corner, image left (33)
        (45.0, -37.6, 46.5),  # left eye outer corner, image right (263)
        (-28.1, 29.5, 36.6),  # mouth right corner, image left (61)
        (28.1, 29.5, 36.6),  # mouth left corner, image right (291)
    ],
    dtype=np.float64,
)


def estimate_head_pose(landmarks: Points, frame_width: int, frame_height: int) -> HeadPose | None:
    """Yaw, pitch and roll in degrees; focal length taken as the frame width (an uncalibrated camera)."""
    image_points = landmarks[POSE_POINTS, :2].astype(np.float64)
    f = float(frame_width)
    camera = np.array([[f, 0, frame_width / 2], [0, f, frame_height / 2], [0, 0, 1]], dtype=np.float64)
    # Start from a frontal face at the distance its eye span implies: without a guess the iterative solver can
    # settle on the mirrored solution (roll near 180 degrees) for such a shallow model.
    eye_span = float(np.linalg.norm(image_points[3] - image_points[2])) or 1.0
    rvec0 = np.zeros((3, 1))
    tvec0 = np.array([[image_points[0, 0] - frame_width / 2], [image_points[0, 1] - frame_height / 2], [f]])
    tvec0 *= 90.0 / eye_span
    tvec0[2, 0] = f * 90.0 / eye_span
    ok, rvec, tvec = cv2.solvePnP(
        MODEL_POINTS,
        image_points,
        camera,
        np.zeros(4),
        rvec0,
        tvec0,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    # Decompose R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in camera axes.
    sy = float(np.hypot(rot[0, 0], rot[1, 0]))
    if sy > 1e-6:
        pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
        yaw = np.degrees(np.arctan2(-rot[2, 0], sy))
        roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    else:
        pitch = np.degrees(np.arctan2(-rot[1, 2], rot[1, 1]))
        yaw = np.degrees(np.arctan2(-rot[2, 0], sy))
        roll = 0.0
    # Camera y points down: a positive rotation about x tips the face down, so negate for "up is positive".
    return HeadPose(yaw=float(-yaw), pitch=float(-pitch), roll=float(roll))
