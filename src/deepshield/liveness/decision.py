"""Combining signal results into pass / fail / review, with reasons a reviewer can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from deepshield.jsontypes import JsonObject
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.signals import LivenessSignal, SignalContext, SignalResult, build_signals

Outcome = Literal["pass", "fail", "review"]
#: Signals whose absence sends a session to review instead of letting it pass on the others.
REQUIRED = ("challenge", "flash", "identity", "id_match")


@dataclass
class Decision:
    outcome: Outcome
    score: float  # weighted mean of the available signals' scores; never shown to the person being checked
    reasons: list[str]
    signals: list[SignalResult] = field(default_factory=list)
    policy: JsonObject = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        return {
            "outcome": self.outcome,
            "score": round(self.score, 4),
            "reasons": self.reasons,
            "signals": [s.to_dict() for s in self.signals],
            "policy": self.policy,
        }


def decide(results: list[SignalResult], policy: LivenessPolicy) -> Decision:
    """Unavailable and abstaining signals carry no weight and ask for nothing; only a required signal that is
    unavailable sends the session to review."""
    avail = [r for r in results if r.verdict not in ("unavailable", "abstain") and r.weight > 0]
    wsum = sum(r.weight for r in avail)
    score = float(sum(r.weight * r.score for r in avail) / wsum) if wsum else 0.0
    failed = [r for r in results if r.verdict == "fail" and r.critical]
    if failed:
        reasons = [f"{r.name}: {m}" for r in failed for m in r.reasons]
        return Decision("fail", score, reasons, results, policy.to_dict())
    reasons = [f"{r.name}: {m}" for r in results if r.verdict in ("review", "fail") for m in r.reasons]
    missing = [r for r in results if r.verdict == "unavailable" and r.name in REQUIRED]
    reasons += [f"{r.name}: {m}" for r in missing for m in r.reasons]
    if reasons:
        return Decision("review", score, reasons, results, policy.to_dict())
    if score < policy.review_below_score:
        return Decision("review", score, [f"combined evidence is weak ({score:.2f})"], results, policy.to_dict())
    return Decision("pass", score, [], results, policy.to_dict())


def verify_track(ctx: SignalContext, signals: list[LivenessSignal] | None = None) -> Decision:
    """Every signal (the registered ones unless given) on one session, combined under the context's policy."""
    results = [s.evaluate(ctx) for s in (signals if signals is not None else build_signals())]
    return decide(results, ctx.policy)
