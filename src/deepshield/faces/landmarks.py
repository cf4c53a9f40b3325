"""Named index sets of MediaPipe's 478-point face mesh used across domains."""

from __future__ import annotations

from deepshield.faces.types import Points

# Face oval ring, in order around the face (for hull masks and crops).
# fmt: off
FACE_OVAL = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
    176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
]
# fmt: on
# Eye contours used for the eye aspect ratio: (outer corner, upper 1, upper 2, inner corner, lower 2, lower 1).
RIGHT_EYE_EAR = [33, 160, 158, 133, 153, 144]  # subject's right eye (image left)
LEFT_EYE_EAR = [362, 385, 387, 263, 373, 380]
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
# Brows and nose (outline points of the mesh's FACEMESH_*EYEBROW and nose regions), for part masks.
RIGHT_BROW = [46, 53, 52, 65, 55, 70, 63, 105, 66, 107]
LEFT_BROW = [276, 283, 282, 295, 285, 300, 293, 334, 296, 336]
NOSE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 64, 294, 48, 278, 115, 344, 220, 440, 129, 358]
NOSE_TIP = 1
CHIN = 152
RIGHT_EYE_OUTER = 33
LEFT_EYE_OUTER = 263
MOUTH_RIGHT = 61
MOUTH_LEFT = 291
# The six points used for head pose, in the order of pose.MODEL_POINTS.
POSE_POINTS = [NOSE_TIP, CHIN, RIGHT_EYE_OUTER, LEFT_EYE_OUTER, MOUTH_RIGHT, MOUTH_LEFT]


def lower_face(points: Points) -> list[int]:
    """Indices of the lower face (lips and the face oval below the nose tip) of one mesh's points (x, y, ...):
    the region a lip-sync model rewrites. Which oval points lie below the nose depends on the head's pose, so
    this takes the points rather than being a fixed list."""
    return LIPS_OUTER + [i for i in FACE_OVAL if points[i, 1] > points[NOSE_TIP, 1]]
