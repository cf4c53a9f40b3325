"""The consent checks on one consent video, each with its evidence: liveness (the liveness domain's decision),
face match against the source media, voice match against the source recordings, and the spoken sentence.

Any failed check: no credential, with its reason. Any uncertain one (and none failed): review."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from deepshield.consent.audio import NoAudio, load_speech
from deepshield.consent.face import FaceTemplate, NoFaceTrack, face_distance, face_template
from deepshield.consent.policy import ConsentPolicy
from deepshield.consent.sentence import challenge_words, get_recogniser, word_recall
from deepshield.consent.voice import TooLittleSpeech, VoicePrint, get_voice_embedder
from deepshield.faces import FaceAnalyzer
from deepshield.jsontypes import JsonObject
from deepshield.liveness.decision import Decision

Verdict = Literal["pass", "review", "fail"]
Outcome = Literal["issued", "review", "failed"]


@dataclass
class CheckResult:
    name: str  # liveness, face, voice, sentence
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    evidence: JsonObject = field(default_factory=dict)


@dataclass
class ConsentDecision:
    outcome: Outcome
    reasons: list[str]
    checks: list[CheckResult]
    policy: JsonObject
    face: FaceTemplate | None = None  # the consenting person's templates, bound to the credential by hash
    voice: VoicePrint | None = None

    def to_dict(self) -> JsonObject:
        return {
            "outcome": self.outcome,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
            "policy": self.policy,
        }


@dataclass(frozen=True)
class SourceTemplates:
    """What the provider's source media gave: the face track embeddings and the voice embedding."""

    face: NDArray[np.float32]  # n x 128
    voice: NDArray[np.float32]  # 256
    source_sha256: tuple[str, ...] = ()


def liveness_check(decision: Decision) -> CheckResult:
    verdict: Verdict = "pass" if decision.outcome == "pass" else ("fail" if decision.outcome == "fail" else "review")
    reasons = [f"liveness: {r}" for r in decision.reasons] or ([] if verdict == "pass" else ["liveness not passed"])
    return CheckResult("liveness", verdict, reasons, {"outcome": decision.outcome, "score": round(decision.score, 4)})


def face_check(consent: FaceTemplate, source: NDArray[np.float32], policy: ConsentPolicy) -> CheckResult:
    d = face_distance(consent, FaceTemplate(source, np.zeros(len(source)), consent.embedder))
    ev: JsonObject = {
        "distance": round(d, 4),
        "frames": len(consent.vectors),
        "source_frames": len(source),
        "model": consent.embedder,
    }
    if d <= policy.face_match_distance:
        return CheckResult("face", "pass", [], ev)
    if d <= policy.face_reject_distance:
        return CheckResult("face", "review", [f"face: the face only loosely matches the source media ({d:.3f})"], ev)
    return CheckResult("face", "fail", [f"face: not the person in the source media (distance {d:.3f})"], ev)


def voice_check(consent: VoicePrint, source: NDArray[np.float32], policy: ConsentPolicy, model: str) -> CheckResult:
    from deepshield.consent.voice import VoiceEmbedder

    s = VoiceEmbedder.similarity(consent.vector, source)
    ev: JsonObject = {"similarity": round(s, 4), "speech_s": round(consent.speech_s, 2), "model": model}
    if s >= policy.voice_match_similarity:
        return CheckResult("voice", "pass", [], ev)
    if s >= policy.voice_reject_similarity:
        return CheckResult("voice", "review", [f"voice: the voice only loosely matches the source ({s:.3f})"], ev)
    return CheckResult("voice", "fail", [f"voice: not the voice of the source recordings (similarity {s:.3f})"], ev)


def sentence_check(speech: NDArray[np.float32], sentence: str, policy: ConsentPolicy) -> CheckResult:
    """Pass when most of the sentence and most of its session-specific words were heard; otherwise review (the
    recogniser hears about 4 words in 5 of read speech, too few to fail anyone on)."""
    rec = get_recogniser()
    if rec is None:
        return CheckResult("sentence", "review", ["sentence: no speech recogniser installed; a reviewer listens"])
    heard = rec.transcribe(speech)
    recall = word_recall(sentence, heard.text)
    said = set(heard.text.lower().split())
    fresh = challenge_words(sentence)
    fresh_heard = sum(w in said for w in fresh)
    ev: JsonObject = {
        "expected": sentence,
        "heard": heard.text,
        "recall": round(recall, 3),
        "session_words_heard": fresh_heard,
        "model": heard.recogniser,
    }
    if recall >= policy.sentence_pass_recall and fresh_heard >= policy.sentence_session_words:
        return CheckResult("sentence", "pass", [], ev)
    return CheckResult(
        "sentence",
        "review",
        [
            f"sentence: heard {recall:.0%} of the consent sentence and {fresh_heard} of its {len(fresh)} session "
            "words; a reviewer listens"
        ],
        ev,
    )


def evaluate_consent(
    video: Path,
    source: SourceTemplates,
    sentence: str,
    liveness: Decision,
    analyzer: FaceAnalyzer,
    policy: ConsentPolicy | None = None,
    video_sha256: str | None = None,
) -> ConsentDecision:
    """Every check on `video`, the consent recording; a missing face or voice is a failed check, not an error."""
    policy = policy or ConsentPolicy()
    checks = [liveness_check(liveness)]
    if video_sha256 and video_sha256 in source.source_sha256:
        checks.append(CheckResult("replay", "fail", ["replay: the consent video is one of the source media files"]))
    face: FaceTemplate | None = None
    try:
        face = face_template(video, analyzer)
        checks.append(face_check(face, source.face, policy))
    except NoFaceTrack as e:
        checks.append(CheckResult("face", "fail", [f"face: {e}"]))
    voice: VoicePrint | None = None
    try:
        speech = load_speech(video)
        emb = get_voice_embedder(required=True)
        assert emb is not None
        voice = emb.embed(speech)
        checks.append(voice_check(voice, source.voice, policy, emb.info.name))
        checks.append(sentence_check(speech, sentence, policy))
    except (NoAudio, TooLittleSpeech) as e:
        checks.append(CheckResult("voice", "fail", [f"voice: {e}"]))
    return combine(checks, policy, face, voice)


def combine(
    checks: list[CheckResult], policy: ConsentPolicy, face: FaceTemplate | None = None, voice: VoicePrint | None = None
) -> ConsentDecision:
    failed = [r for c in checks if c.verdict == "fail" for r in c.reasons]
    if failed:
        return ConsentDecision("failed", failed, checks, policy.to_dict(), face, voice)
    review = [r for c in checks if c.verdict == "review" for r in c.reasons]
    if review:
        return ConsentDecision("review", review, checks, policy.to_dict(), face, voice)
    return ConsentDecision("issued", [], checks, policy.to_dict(), face, voice)
