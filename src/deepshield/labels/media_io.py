"""Re-writing pixels and samples for labelling: images in their own format, video via PyAV with the audio
stream copied untouched, audio with the cue prepended."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from deepshield.labels.errors import LabelError, UnsupportedLabelFormat

IMAGE_SAVE = {
    "jpeg": ("JPEG", {"quality": 95}),
    "png": ("PNG", {}),
    "webp": ("WEBP", {"quality": 95}),
}


def load_image(path: Path) -> tuple[np.ndarray, str]:
    from deepshield.media import open_media

    m = open_media(path)
    try:
        fmt = m.info.format
        frame = next(iter(m.frames()))
        return np.ascontiguousarray(frame.rgb[..., :3]), fmt
    finally:
        m.close()


def save_image(rgb: np.ndarray, dst: Path, fmt: str) -> None:
    if fmt not in IMAGE_SAVE:
        raise UnsupportedLabelFormat(f"cannot write labelled {fmt} images; use JPEG, PNG or WebP")
    name, kw = IMAGE_SAVE[fmt]
    Image.fromarray(rgb).save(dst, name, **kw)


def rewrite_video(src: Path, dst: Path, fn: Callable[[np.ndarray, float], np.ndarray], crf: int = 18) -> int:
    """Decode every frame, pass it through `fn(rgb, time_s)`, encode H.264 in MP4; audio packets copied."""
    n = 0
    try:
        with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
            vin = inp.streams.video[0]
            ain: av.audio.stream.AudioStream | None = inp.streams.audio[0] if inp.streams.audio else None
            rate = vin.average_rate or Fraction(25, 1)
            vout = out.add_stream("libx264", rate=rate)
            w, h = vin.codec_context.width, vin.codec_context.height
            vout.width, vout.height = w - (w % 2), h - (h % 2)
            vout.pix_fmt = "yuv420p"
            vout.options = {"crf": str(crf), "preset": "veryfast"}
            aout = out.add_stream_from_template(ain) if ain is not None else None
            for packet in inp.demux(*[s for s in (vin, ain) if s is not None]):
                if ain is not None and aout is not None and packet.stream.index == ain.index:
                    if packet.dts is None:
                        continue
                    packet.stream = aout
                    out.mux(packet)
                    continue
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    t = float(frame.time or 0.0)
                    rgb = frame.to_ndarray(format="rgb24")[: vout.height, : vout.width]
                    nf = av.VideoFrame.from_ndarray(np.ascontiguousarray(fn(rgb, t)), format="rgb24")
                    for p in vout.encode(nf):
                        out.mux(p)
                    n += 1
            for p in vout.encode():
                out.mux(p)
    except av.FFmpegError as e:
        raise LabelError(f"video could not be re-encoded: {e}") from None
    return n


def _write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def rewrite_audio(src: Path, dst: Path, fmt: str, prefix: Callable[[int], np.ndarray]) -> None:
    """Prepend `prefix(sample_rate)` (mono float) to the audio; WAV written here, MP3 encoded by ffmpeg."""
    from deepshield.media import read_audio

    track = read_audio(src)
    if track is None:
        raise LabelError("no audio track to label")
    cue = prefix(track.sample_rate)
    ch = track.samples.shape[1]
    samples = np.concatenate([np.repeat(cue[:, None], ch, axis=1), track.samples.astype(np.float32)], axis=0)
    if fmt == "wav":
        _write_wav(dst, samples, track.sample_rate)
        return
    if fmt != "mp3":
        raise UnsupportedLabelFormat(f"cannot write labelled {fmt} audio; use WAV or MP3")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise LabelError("ffmpeg is needed to encode MP3")
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "a.wav"
        _write_wav(tmp, samples, track.sample_rate)
        p = subprocess.run(
            [ffmpeg, "-v", "error", "-y", "-i", str(tmp), "-c:a", "libmp3lame", "-q:a", "2", "-f", "mp3", str(dst)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if p.returncode != 0:
            raise LabelError(f"MP3 encoding failed: {p.stderr.strip()[:200]}")
