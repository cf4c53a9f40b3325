"""Degradation as deepfakes arrive: rescaled, then H.264-coded at CRF 23 to 40, the way platforms and messengers
re-encode video. Applied identically to both halves of a training pair (so the pair still differs only where the
blend mask is non-zero), in memory with PyAV's libx264.

JPEG alone teaches the wrong artefacts: H.264 quantises 4x4 and 8x8 integer transforms, halves the chroma
resolution (yuv420p), smooths block edges with its deblocking filter and codes most frames as predictions
from the previous one. Each image is coded as the second frame of a two-frame clip whose first frame is the
same image slightly shifted, so it carries P-frame artefacts, as most frames of a real video do.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np


def _even(n: int) -> int:
    return max(16, n - n % 2)


def h264_clip(frames: np.ndarray, crf: int) -> np.ndarray:
    """A clip (K x H x W x 3 uint8 RGB, even sides) after one trip through libx264 at `crf` as one video: the
    first frame intra-coded, the rest predicted from the frames before (no B-frames), as in the videos scored
    later. Shared by the frame detector's pairs and the temporal detector's clips."""
    k, h, w = frames.shape[:3]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.framerate = Fraction(25, 1)
    enc.options = {"crf": str(int(crf)), "preset": "veryfast", "tune": "zerolatency", "threads": "1", "bf": "0"}
    packets = []
    for pts, frame in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="yuv420p")
        vf.pts = pts
        packets += enc.encode(vf)
    packets += enc.encode(None)
    dec = av.CodecContext.create("h264", "r")
    decoded = []
    for p in packets:
        decoded += dec.decode(p)
    decoded += dec.decode(None)
    if len(decoded) != k:  # never seen; keep the clip rather than fail a training run
        return frames
    return np.stack([d.to_ndarray(format="rgb24") for d in decoded])


def h264_frame(img: np.ndarray, crf: int, shift: tuple[float, float]) -> np.ndarray:
    """`img` (H x W x 3 uint8 RGB, even sides) after one P-frame's trip through libx264 at `crf`: the second frame
    of a clip whose first is the same image shifted by `shift` pixels."""
    h, w = img.shape[:2]
    m = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], np.float32)
    before = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT101)
    return np.asarray(h264_clip(np.stack([before, img]), crf)[-1])


def video_degrade(
    images: list[np.ndarray], rng: np.random.Generator, crf_min: int, crf_max: int, scale_min: float
) -> list[np.ndarray]:
    """Every image rescaled by the same factor (scale_min..1), coded at the same CRF with the same motion, and
    scaled back to its size."""
    size = images[0].shape[0]
    crf = int(rng.integers(crf_min, crf_max + 1))
    scale = rng.uniform(scale_min, 1.0)
    shift = (float(rng.uniform(-2, 2)), float(rng.uniform(-2, 2)))
    small = _even(int(round(size * scale)))
    out = []
    for im in images:
        s = cv2.resize(im, (small, small), interpolation=cv2.INTER_AREA) if small != size else im
        s = h264_frame(s, crf, shift)
        out.append(np.asarray(cv2.resize(s, (size, size), interpolation=cv2.INTER_LINEAR)) if small != size else s)
    return out
