"""The consent sentence: chosen by the server at random, shown on the capture page, read aloud by the person,
and checked by an offline recogniser where it can be (pocketsphinx, English model inside the wheel)."""

from __future__ import annotations

import abc
import re
import secrets
import threading
from dataclasses import dataclass
from functools import lru_cache
from random import Random

import numpy as np
from numpy.typing import NDArray

from deepshield.consent.audio import SPEECH_RATE
from deepshield.errors import NotConfigured

# Short common words the English model knows well; the random part is the colour, the animal and the number.
_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black", "brown", "silver")
_ANIMALS = ("horse", "tiger", "rabbit", "eagle", "dolphin", "monkey", "turtle", "lion", "zebra", "camel")
_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve")
TEMPLATE = "I agree that {provider_words} may make my digital likeness, {colour} {animal} {number}"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def consent_sentence(provider: str, rng: Random | None = None) -> str:
    """A fresh sentence per session: a replayed recording of an earlier session says other words."""
    r = rng or Random(secrets.randbits(64))
    provider_words = " ".join(_words(provider)[:4]) or "this provider"
    return TEMPLATE.format(
        provider_words=provider_words, colour=r.choice(_COLOURS), animal=r.choice(_ANIMALS), number=r.choice(_NUMBERS)
    )


def challenge_words(sentence: str) -> list[str]:
    """The words that change from session to session: what a replay cannot know in advance."""
    return _words(sentence)[-3:]


def word_recall(expected: str, heard: str) -> float:
    """Share of the expected words found in order in what was heard (longest common subsequence of words)."""
    e, h = _words(expected), _words(heard)
    if not e:
        return 0.0
    prev = [0] * (len(h) + 1)
    for we in e:
        cur = [0] * (len(h) + 1)
        for j, wh in enumerate(h, 1):
            cur[j] = prev[j - 1] + 1 if we == wh else max(prev[j], cur[j - 1])
        prev = cur
    return prev[-1] / len(e)


@dataclass(frozen=True)
class Transcript:
    text: str
    recogniser: str


class SpeechRecogniser(abc.ABC):
    name: str

    @abc.abstractmethod
    def transcribe(self, speech_16k: NDArray[np.float32]) -> Transcript:
        """Free-form transcript (no grammar: a grammar built from the expected sentence would hear it in anything)."""


class PocketSphinxRecogniser(SpeechRecogniser):
    """CMU PocketSphinx 5 with its bundled US English acoustic model, dictionary and 3-gram language model."""

    def __init__(self) -> None:
        import pocketsphinx

        self._decoder = pocketsphinx.Decoder(loglevel="FATAL")
        self._lock = threading.Lock()
        self.name = f"pocketsphinx-{getattr(pocketsphinx, '__version__', '5')}-en-us"

    def transcribe(self, speech_16k: NDArray[np.float32]) -> Transcript:
        pcm = (np.clip(np.asarray(speech_16k, dtype=np.float32), -1.0, 1.0) * 32767).astype(np.int16)
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(pcm.tobytes(), full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
        return Transcript(hyp.hypstr if hyp is not None else "", self.name)


@lru_cache(maxsize=1)
def _cached() -> SpeechRecogniser | None:
    try:
        return PocketSphinxRecogniser()
    except ImportError:
        return None


def get_recogniser(required: bool = False) -> SpeechRecogniser | None:
    rec = _cached()
    if rec is None and required:
        raise NotConfigured("no speech recogniser installed: pip install pocketsphinx")
    return rec


__all__ = ["SPEECH_RATE", "Transcript", "challenge_words", "consent_sentence", "get_recogniser", "word_recall"]
