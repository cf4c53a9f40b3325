"""Media the tests generate: real encodings through Pillow and PyAV, plus deliberately broken files."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image


def write_video(
    path: Path,
    frames: list[np.ndarray] | None = None,
    n: int = 60,
    fps: int = 25,
    gop: int = 10,
    size: tuple[int, int] = (160, 120),
    codec: str = "libx264",
    audio: bool = False,
) -> Path:
    """Frame i is filled with grey level 4*i (so a test can tell which frame it got back)."""
    w, h = size
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream(codec, rate=fps)
        assert isinstance(vs, av.VideoStream)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.gop_size = gop
        if codec == "libx264":
            vs.codec_context.options = {"bf": "0", "sc_threshold": "0"}
        a_stream = out.add_stream("aac", rate=44100) if audio else None
        seq = frames if frames is not None else [np.full((h, w, 3), (4 * i) % 256, np.uint8) for i in range(n)]
        for img in seq:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if a_stream is not None:
            t = np.arange(44100 * len(seq) // fps) / 44100
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for i in range(0, len(samples), 1024):
                chunk = samples[i : i + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate = 44100
                for pkt in a_stream.encode(frame):
                    out.mux(pkt)
            for pkt in a_stream.encode():
                out.mux(pkt)
    return path


def jpeg_bytes(w: int = 64, h: int = 48, exif_orientation: int | None = None) -> bytes:
    img = Image.new("RGB", (w, h), (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, w // 2, h // 4))  # a marker in the top-left
    buf = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(buf, "JPEG", exif=exif.tobytes())
    else:
        img.save(buf, "JPEG")
    return buf.getvalue()


def png_bytes(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 10)).save(buf, "PNG")
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a huge size, with a tiny IDAT: a decompression-bomb header."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def gif_bomb() -> bytes:
    """A GIF whose logical screen is 65535 x 65535 with many frames: tiny on disk, enormous decoded."""
    frame = Image.new("P", (1, 1))
    buf = io.BytesIO()
    frame.save(buf, "GIF", save_all=True, append_images=[Image.new("P", (1, 1), i % 255) for i in range(50)])
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen width/height
    return bytes(data)


def hostile_corpus(root: Path, good_mp4: Path) -> dict[str, Path]:
    """Every kind of bad input the foundation issue names, generated fresh."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        "zero.jpg": b"",
        "random.bin": os.urandom(4096),
        # Cut inside the header, before any image data: nothing to show. (A JPEG cut in its image data decodes
        # as far as it goes, as in a browser: see test_media.test_truncated_jpeg_decodes_what_a_browser_shows.)
        "truncated.jpg": jpeg_bytes(640, 480)[:200],
        "truncated.png": png_bytes(640, 480)[:60],
        "bomb.png": png_claiming(100_000, 100_000),
        "bomb.gif": gif_bomb(),
        "text.mp4": b"this is a text file pretending to be a video\n" * 20,
    }
    mp4 = good_mp4.read_bytes()
    files["truncated.mp4"] = mp4[: len(mp4) // 3]
    # Break the index: overwrite the moov box's contents with noise, leaving the header intact.
    i = mp4.find(b"moov")
    broken = bytearray(mp4)
    if i > 0:
        broken[i + 4 : i + 400] = os.urandom(396)
    files["broken_index.mp4"] = bytes(broken)
    out = {}
    for name, data in files.items():
        p = root / name
        p.write_bytes(data)
        out[name] = p
    out["missing.jpg"] = root / "does-not-exist.jpg"
    return out
