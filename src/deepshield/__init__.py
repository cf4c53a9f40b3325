"""Deepshield: detect, label, match, prove liveness and respond to deepfake abuse."""

__version__ = "0.1.0"
