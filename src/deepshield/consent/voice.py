"""Speaker embeddings for the voice match: one small interface, one implementation (Resemblyzer's GE2E encoder,
whose weights ship inside the PyPI wheel, Apache-2.0, so it loads offline)."""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from deepshield.consent.audio import SPEECH_RATE
from deepshield.errors import MediaError, NotConfigured

#: Less voiced speech than this (after silences are trimmed) gives an embedding too noisy to decide on.
MIN_SPEECH_S = 1.5


class TooLittleSpeech(MediaError):
    code = "too_little_speech"


@dataclass(frozen=True)
class VoiceEmbedderInfo:
    name: str
    version: str
    dim: int
    metric: str  # "cosine": larger is more alike


@dataclass(frozen=True)
class VoicePrint:
    """A speaker embedding (unit length) and how much voiced speech it was computed from."""

    vector: NDArray[np.float32]
    speech_s: float


class VoiceEmbedder(abc.ABC):
    info: VoiceEmbedderInfo

    @abc.abstractmethod
    def embed(self, speech_16k: NDArray[np.float32]) -> VoicePrint:
        """The speaker embedding of 16 kHz mono speech; `TooLittleSpeech` under `MIN_SPEECH_S` of voice."""

    @staticmethod
    def similarity(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
        a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return float(a64 @ b64 / max(1e-12, float(np.linalg.norm(a64) * np.linalg.norm(b64))))


class ResemblyzerEmbedder(VoiceEmbedder):
    """GE2E d-vectors (256-d) over 1.6 s windows, averaged; silences trimmed by WebRTC VAD first."""

    def __init__(self) -> None:
        import resemblyzer
        from resemblyzer import VoiceEncoder, preprocess_wav

        self._preprocess = preprocess_wav
        self._encoder = VoiceEncoder("cpu", verbose=False)
        self._lock = threading.Lock()
        version = getattr(resemblyzer, "__version__", "0.1.4")
        self.info = VoiceEmbedderInfo(name="resemblyzer-ge2e", version=str(version), dim=256, metric="cosine")

    def embed(self, speech_16k: NDArray[np.float32]) -> VoicePrint:
        x = np.asarray(speech_16k, dtype=np.float32)
        if x.size < int(0.1 * SPEECH_RATE) or not np.isfinite(x).all() or float(np.sqrt(np.mean(x**2))) < 1e-4:
            raise TooLittleSpeech("the recording is silent or too short for a voice match")
        with self._lock:
            wav = self._preprocess(x, source_sr=SPEECH_RATE)
            speech_s = len(wav) / SPEECH_RATE
            if speech_s < MIN_SPEECH_S:
                raise TooLittleSpeech(
                    f"the recording has {speech_s:.1f} s of speech; a voice match needs {MIN_SPEECH_S} s"
                )
            vec = self._encoder.embed_utterance(wav)
        return VoicePrint(np.asarray(vec, dtype=np.float32), speech_s)


@lru_cache(maxsize=1)
def _cached() -> VoiceEmbedder | None:
    try:
        return ResemblyzerEmbedder()
    except ImportError:
        return None


def get_voice_embedder(required: bool = False) -> VoiceEmbedder | None:
    """The installed voice embedder, or None (NotConfigured when `required`) if resemblyzer is missing."""
    emb = _cached()
    if emb is None and required:
        raise NotConfigured("no voice embedder installed: pip install resemblyzer webrtcvad-wheels")
    return emb
