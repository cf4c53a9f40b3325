"""Explicit labels: a visible text label on images and opening video frames, an audible cue for audio.

GB 45438 asks for wording with "AI" or "人工智能" and "生成" or "合成", text at least 5% of the
shorter side, on video for at least 2 s from the start, and for audio a spoken notice or the rhythm
short-long-short-short ("AI" in Morse: .- ..).
"""

from __future__ import annotations

import enum
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deepshield.labels.errors import LabelError, LabelTextError

DEFAULT_TEXT = "AI生成"
MIN_HEIGHT_FRACTION = 0.05
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


class Position(enum.StrEnum):
    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"
    BOTTOM_LEFT = "bottom-left"
    BOTTOM_RIGHT = "bottom-right"
    TOP = "top"
    BOTTOM = "bottom"
    CENTER = "center"


def validate_text(text: str) -> str:
    t = text.strip()
    if not (("AI" in t or "人工智能" in t) and ("生成" in t or "合成" in t)):
        raise LabelTextError(
            f'label text "{text}" must contain "AI" or "人工智能" and "生成" or "合成" (GB 45438-2025)'
        )
    return t


@lru_cache(maxsize=1)
def cjk_font_path() -> str:
    """A CJK-capable font installed by the set-up (Debian fonts-wqy-microhei), found via fontconfig."""
    fc = shutil.which("fc-match")
    if fc:
        try:
            out = subprocess.run(
                [fc, "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            if out and Path(out).exists() and not out.endswith((".pfb", ".pfa")):
                return out
        except (OSError, subprocess.TimeoutExpired):
            pass
    for c in FONT_CANDIDATES:
        if Path(c).exists():
            return c
    raise LabelError("no CJK font found: install fonts-wqy-microhei (scripts/apt-packages.txt)")


@dataclass
class VisibleLabelBox:
    x: int
    y: int
    width: int
    height: int
    text_height: int  # measured ink height of the rendered text


def render_image_label(
    rgb: np.ndarray,
    text: str = DEFAULT_TEXT,
    position: Position | str = Position.BOTTOM_RIGHT,
    height_fraction: float = 0.06,
) -> tuple[np.ndarray, VisibleLabelBox]:
    """Draw the label: white text with a dark outline on a translucent dark plate, legible on any background."""
    h, w = rgb.shape[:2]
    frac = max(height_fraction, MIN_HEIGHT_FRACTION)
    overlay, box = label_overlay(h, w, validate_text(text), Position(position).value, frac)
    a = overlay[..., 3:4].astype(np.float32) / 255.0
    out = rgb[..., :3].astype(np.float32) * (1.0 - a) + overlay[..., :3].astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), box


@lru_cache(maxsize=8)
def label_overlay(
    h: int, w: int, text: str, position: str, height_fraction: float
) -> tuple[np.ndarray, VisibleLabelBox]:
    """RGBA overlay for an h x w frame (cached: every video frame reuses it)."""
    short = min(h, w)
    target = max(10, int(np.ceil(short * height_fraction)))
    path = cjk_font_path()
    size = target
    font = ImageFont.truetype(path, size)
    for _ in range(20):  # grow until the ink height reaches the target
        font = ImageFont.truetype(path, size)
        left, t, r, b = font.getbbox(text)
        if b - t >= target:
            break
        size += max(1, size // 10)
    left, t, r, b = font.getbbox(text)
    tw, th = r - left, b - t
    pad = max(2, th // 4)
    bw, bh = tw + 2 * pad, th + 2 * pad
    if bw > w or bh > h:
        raise LabelError(f"image {w}x{h} too small for a legible label of height {th} px")
    m = max(1, short // 50)
    xs = {"left": m, "right": w - bw - m, "center": (w - bw) // 2}
    ys = {"top": m, "bottom": h - bh - m, "center": (h - bh) // 2}
    vert = "top" if position.startswith("top") else "bottom" if position.startswith("bottom") else "center"
    horiz = "left" if position.endswith("left") else "right" if position.endswith("right") else "center"
    x0, y0 = xs[horiz], ys[vert]
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(overlay)
    d.rounded_rectangle((x0, y0, x0 + bw, y0 + bh), radius=pad, fill=(0, 0, 0, 150))
    text_layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    stroke = max(1, th // 14)
    ImageDraw.Draw(text_layer).text(
        (x0 + pad - left, y0 + pad - t),
        text,
        font=font,
        fill=(255, 255, 255, 255),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, 255),
    )
    overlay = Image.alpha_composite(overlay, text_layer)
    return np.array(overlay), VisibleLabelBox(int(x0), int(y0), int(bw), int(bh), int(th))


# ---------------------------------------------------------------------------------------------- audio
def ai_rhythm_cue(sample_rate: int, unit_s: float = 0.09, freq: float = 880.0, amplitude: float = 0.5) -> np.ndarray:
    """Short-long-short-short tones (Morse .- ..), with 20 ms ramps to avoid clicks, then a pause."""

    def tone(units: int) -> np.ndarray:
        n = int(sample_rate * unit_s * units)
        t = np.arange(n) / sample_rate
        env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
        return (amplitude * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)

    gap = np.zeros(int(sample_rate * unit_s), np.float32)
    letter_gap = np.zeros(int(sample_rate * unit_s * 3), np.float32)
    parts = [tone(1), gap, tone(3), letter_gap, tone(1), gap, tone(1), np.zeros(int(sample_rate * 0.4), np.float32)]
    return np.concatenate(parts)


def notice_from_file(path: Path) -> Callable[[int], np.ndarray]:
    """A configured spoken notice (any audio file) as a prefix: mono, resampled to the target rate."""
    from deepshield.media import read_audio

    track = read_audio(path)
    if track is None or track.samples.size == 0:
        raise LabelError(f"{path.name}: the notice file has no audio")
    mono = track.samples.astype(np.float32).mean(axis=1)

    def prefix(sample_rate: int) -> np.ndarray:
        n = max(1, round(len(mono) * sample_rate / track.sample_rate))
        x = np.interp(np.linspace(0, len(mono) - 1, n), np.arange(len(mono)), mono).astype(np.float32)
        return np.concatenate([x, np.zeros(int(sample_rate * 0.3), np.float32)])

    return prefix


def cue_pattern(samples: np.ndarray, sample_rate: int, threshold: float = 0.1) -> list[float]:
    """Durations (s) of the tone bursts at the start of a mono signal: used to check the cue is there."""
    win = max(1, sample_rate // 200)
    env = np.sqrt(np.convolve(samples.astype(np.float64) ** 2, np.ones(win) / win, mode="same"))
    on = env > threshold * (float(env.max()) + 1e-9)
    durs: list[float] = []
    i, n = 0, len(on)
    while i < n and len(durs) < 8:
        if on[i]:
            j = i
            while j < n and on[j]:
                j += 1
            durs.append((j - i) / sample_rate)
            i = j
        else:
            i += 1
    return durs
