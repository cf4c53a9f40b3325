"""Detect: the `Detector` interface, its registry, score aggregation and the scan pipeline."""

from deepshield.detect.aggregate import ScoredFace, aggregate_scores, pick_frame_face
from deepshield.detect.base import Detector, DetectorInfo, FaceEvidence, FaceScore
from deepshield.detect.registry import available_detectors, get_detector, register_detector

__all__ = [
    "Detector",
    "DetectorInfo",
    "FaceEvidence",
    "FaceScore",
    "ScoredFace",
    "aggregate_scores",
    "available_detectors",
    "get_detector",
    "pick_frame_face",
    "register_detector",
]
