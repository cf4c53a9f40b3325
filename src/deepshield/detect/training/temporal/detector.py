"""The temporal detector at run time lives in `deepshield.detect.temporal`; this name is kept for the training
commands that load it."""

from deepshield.detect.temporal import TemporalDetector

__all__ = ["TemporalDetector"]
