"""The case lifecycle. Every state entered gets a timestamp (case_transitions); illegal moves are typed
errors."""

from __future__ import annotations

from enum import StrEnum

from deepshield.errors import DeepshieldError


class State(StrEnum):
    RECEIVED = "received"
    NEEDS_INFO = "needs_info"
    VALID = "valid"
    IN_REVIEW = "in_review"
    ACTIONED = "actioned"
    NO_ACTION = "no_action"
    APPEALED = "appealed"
    UPHELD = "upheld"
    REVERSED = "reversed"
    CLOSED = "closed"


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.RECEIVED: frozenset({S.NEEDS_INFO, S.VALID, S.CLOSED}),
    S.NEEDS_INFO: frozenset({S.VALID, S.CLOSED}),
    S.VALID: frozenset({S.IN_REVIEW, S.ACTIONED, S.NO_ACTION, S.CLOSED}),
    S.IN_REVIEW: frozenset({S.VALID, S.ACTIONED, S.NO_ACTION, S.CLOSED}),
    S.ACTIONED: frozenset({S.APPEALED, S.CLOSED}),
    S.NO_ACTION: frozenset({S.APPEALED, S.CLOSED}),
    S.APPEALED: frozenset({S.UPHELD, S.REVERSED, S.CLOSED}),  # closed: withdrawn
    S.UPHELD: frozenset({S.CLOSED}),
    # A reversed "no action" goes back to review so the restriction can be applied.
    S.REVERSED: frozenset({S.IN_REVIEW, S.CLOSED}),
    S.CLOSED: frozenset(),
}
#: States in which the 48-hour clock runs (a decision stops it).
OPEN_FOR_DECISION = frozenset({S.VALID, S.IN_REVIEW})
DECIDED = frozenset({S.ACTIONED, S.NO_ACTION})
#: States with work left for a reviewer (the queue), in the queue's order of kinds, and the rest.
WORK_LEFT = (S.VALID.value, S.IN_REVIEW.value, S.APPEALED.value, S.NEEDS_INFO.value, S.RECEIVED.value, S.REVERSED.value)
DONE = (S.ACTIONED.value, S.NO_ACTION.value, S.UPHELD.value, S.CLOSED.value)


class InvalidTransition(DeepshieldError):
    code = "invalid_transition"
    http_status = 409


class ConcurrentUpdate(DeepshieldError):
    """Someone else changed the case first (optimistic lock lost): reload and decide again."""

    code = "conflict"
    http_status = 409


def check_transition(current: str, target: str) -> None:
    try:
        cur, tgt = State(current), State(target)
    except ValueError as e:
        raise InvalidTransition(f"unknown state: {e}") from None
    if tgt not in TRANSITIONS[cur]:
        allowed = ", ".join(sorted(TRANSITIONS[cur])) or "none (final)"
        raise InvalidTransition(f"a case in state {cur.value!r} cannot move to {tgt.value!r} (allowed: {allowed})")
