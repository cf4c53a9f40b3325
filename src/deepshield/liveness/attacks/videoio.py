"""Reading clips of real footage and writing generated sessions (H.264 in MP4, as a phone would upload)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from deepshield.media import FrameSampling, open_media


def read_clip(
    path: str | Path, start_s: float = 0.0, end_s: float | None = None, fps: float = 30.0, max_side: int = 0
) -> tuple[list[np.ndarray], float]:
    """Frames of [start_s, end_s) resampled to at most `fps`, optionally scaled down; returns (frames, fps)."""
    import cv2

    media = open_media(path)
    try:
        src_fps = float(media.info.fps or fps)
        rate = min(fps, src_fps)
        out: list[np.ndarray] = []
        for f in media.frames(FrameSampling.rate(rate, max_frames=100_000)):
            if f.time_s < start_s:
                continue
            if end_s is not None and f.time_s >= end_s:
                break
            rgb: np.ndarray = f.rgb
            if max_side and max(rgb.shape[:2]) > max_side:
                s = max_side / max(rgb.shape[:2])
                rgb = cv2.resize(
                    rgb, (int(rgb.shape[1] * s) // 2 * 2, int(rgb.shape[0] * s) // 2 * 2), interpolation=cv2.INTER_AREA
                )
            out.append(rgb)
        return out, rate
    finally:
        media.close()


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: float, crf: int = 23, preset: str = "ultrafast"
) -> Path:
    """H.264 yuv420p MP4; frame sides are cropped to even numbers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    it: Iterator[np.ndarray] = iter(frames)
    first = next(it)
    h, w = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
    with av.open(str(path), "w") as c:
        rate = Fraction(fps).limit_denominator(1001)
        st = c.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": str(crf), "preset": preset}
        for fr in (first, *it):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(fr[:h, :w]), format="rgb24")
            for pkt in st.encode(vf):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    return path
