"""Faces: detection, the 478-point mesh, head pose, aligned crops and tracks across video frames."""

from deepshield.faces.align import AlignedCrop, align_face
from deepshield.faces.analyzer import FaceAnalyzer, quiet_native_stderr
from deepshield.faces.pose import estimate_head_pose
from deepshield.faces.tracking import frame_signature, link_tracks, shot_cuts
from deepshield.faces.types import Face, FaceTrack, HeadPose

__all__ = [
    "AlignedCrop",
    "Face",
    "FaceAnalyzer",
    "FaceTrack",
    "HeadPose",
    "align_face",
    "estimate_head_pose",
    "frame_signature",
    "shot_cuts",
    "link_tracks",
    "quiet_native_stderr",
]
