"""Limits that bound the work a single file can cause."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int = 512 * 1024 * 1024
    #: Decoded pixels of one image or frame; guards against decompression bombs (a 100k x 100k PNG header).
    max_pixels: int = 80_000_000
    #: Total canvas pixels over all frames of an animated image (GIF bombs).
    max_animation_pixels: int = 2_000_000_000
    max_duration_s: float = 3 * 3600.0
    max_frames: int = 1_000_000
    #: Wall-clock budget for decoding one file's sampled frames.
    decode_timeout_s: float = 120.0
    max_audio_samples: int = 48_000 * 2 * 3600
