"""Speech from any media file, through the project's one decoder (PyAV), as 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

from deepshield.errors import MediaError
from deepshield.media import read_audio

SPEECH_RATE = 16_000


class NoAudio(MediaError):
    code = "no_audio"


def mono_16k(samples: NDArray[np.float32], sample_rate: int) -> NDArray[np.float32]:
    """Average the channels (stored samples x channels) and resample to 16 kHz, the rate both speech models use."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] <= x.shape[0] else x.mean(axis=0)
    if sample_rate != SPEECH_RATE:
        g = int(np.gcd(int(sample_rate), SPEECH_RATE))
        x = resample_poly(x, SPEECH_RATE // g, int(sample_rate) // g)
    return np.ascontiguousarray(x, dtype=np.float32)


def load_speech(path: Path, start_s: float = 0.0, end_s: float | None = None) -> NDArray[np.float32]:
    """The audio of `path` (video or audio file) between `start_s` and `end_s`, 16 kHz mono. `NoAudio` when the
    file has no sound track: a consent video must carry the spoken sentence."""
    track = read_audio(path)
    if track is None or track.samples.size == 0:
        raise NoAudio(f"{Path(path).name}: no audio track (the consent video must record the spoken sentence)")
    x = mono_16k(track.samples, track.sample_rate)
    a = int(max(0.0, start_s) * SPEECH_RATE)
    b = len(x) if end_s is None else int(end_s * SPEECH_RATE)
    return x[a:b]
