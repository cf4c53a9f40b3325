"""Every threshold of a consent decision in one place, stored with each decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from deepshield.jsontypes import JsonObject
from deepshield.liveness.policy import LivenessPolicy

_LIVENESS = LivenessPolicy()


@dataclass(frozen=True)
class ConsentPolicy:
    #: Face, dlib ResNet euclidean distance (median over frame pairs): the ID-photo match's thresholds from
    #: `deepshield liveness calibrate-match` (FMR 7.7e-5 at 0.485 on 495,772 impostor photo pairs).
    face_match_distance: float = _LIVENESS.id_match_distance
    face_reject_distance: float = _LIVENESS.id_reject_distance
    #: Voice, Resemblyzer GE2E cosine similarity: pass at or above match, fail below reject, review between.
    #: Measured by benchmarks/consent.py on the corpus' talking videos and LibriVox speech (docs/consent.md).
    voice_match_similarity: float = 0.80
    voice_reject_similarity: float = 0.70
    #: Sentence: share of the sentence's words heard in order by the recogniser, and how many of the 3 words that
    #: change per session were heard (the rest of the sentence is the same for every session, so a replayed
    #: earlier consent says it too). Pocketsphinx hears 80% of the words of read speech (74 of 92, LibriVox and
    #: an4; docs/consent.md), so the sentence check never fails a session on its own: short of these, review.
    sentence_pass_recall: float = 0.6
    sentence_session_words: int = 2
    #: Longest credential life, whatever the request asks.
    max_validity_days: int = 730

    def to_dict(self) -> JsonObject:
        return asdict(self)
