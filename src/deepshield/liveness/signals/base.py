"""The one interface every liveness signal implements, and what it returns."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np
from numpy.typing import NDArray

from deepshield.jsontypes import JsonObject
from deepshield.liveness.analysis import SessionTrack
from deepshield.liveness.features import Blink
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.replay import ReplayIndex
from deepshield.liveness.script import ChallengeScript

#: "unavailable": the signal could not be computed (no detector, no embeddings); "abstain": it was computed and is
#: reported as evidence, but is not evidence that separates live sessions from attacks, so it leaves the decision.
#: Either way it carries no weight and asks for nothing.
Verdict = Literal["pass", "fail", "review", "unavailable", "abstain"]


class SignalCache(TypedDict, total=False):
    blinks: list[Blink]  # found by the challenge signal, reused by the blink signal


@dataclass
class SignalContext:
    """One session as the signals see it; what a caller does not have (an ID photo, a replay index) is left
    out and the signals that need it report themselves unavailable."""

    track: SessionTrack
    script: ChallengeScript
    session_id: str = ""
    policy: LivenessPolicy = field(default_factory=LivenessPolicy)
    id_embedding: NDArray[np.float32] | None = None
    replay_index: ReplayIndex | None = None
    #: filled by signals for each other (what one computes and another needs, computed once)
    cache: SignalCache = field(default_factory=lambda: SignalCache())


@dataclass
class SignalResult:
    name: str
    verdict: Verdict
    score: float  # 0..1, 1 = evidence of a live, matching person; meaningless when unavailable or abstaining
    weight: float  # weight in the decision; 0 when unavailable or abstaining
    critical: bool  # a "fail" from a critical signal fails the session
    reasons: list[str] = field(default_factory=list)
    #: What the signal measured, by name: numbers, lists and small dicts that the tests and the attack suite's
    #: evaluation read back (typed per signal is still to do: until then the one `Any` of this interface).
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "score": round(float(self.score), 4),
            "weight": self.weight,
            "critical": self.critical,
            "reasons": self.reasons,
            "evidence": self.evidence,
        }


class LivenessSignal(abc.ABC):
    name: str
    weight: float
    critical: bool = True

    @abc.abstractmethod
    def evaluate(self, ctx: SignalContext) -> SignalResult:
        """Judge one session from its track and script."""

    def result(self, verdict: Verdict, score: float, reasons: list[str], **evidence: Any) -> SignalResult:
        weight = 0.0 if verdict in ("unavailable", "abstain") else self.weight
        return SignalResult(self.name, verdict, float(np.clip(score, 0, 1)), weight, self.critical, reasons, evidence)
