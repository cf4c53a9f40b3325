"""Steps revealed as they come: the capture page learns step k only when it is due, never the whole script.

The server keeps the script; the page gets the first step and the flashes when it starts recording, and each
later step from `GET .../steps/{k}` with the nonce the previous answer carried, no earlier than the step's start
on the server's clock (less `STEP_LEAD_S` for the network). So a person cannot look at a session's script and
abandon it for an easier one without starting it, and starting counts (see `LivenessService`): issue 32.
"""

from __future__ import annotations

import hashlib
import hmac
import math

from typing_extensions import TypedDict  # pydantic (the API's answers) needs it on Python 3.11

from deepshield.errors import DeepshieldError
from deepshield.liveness.script import ChallengeScript, FlashDict

#: A step is revealed at most this long before it is due, so the instruction is on screen in time.
STEP_LEAD_S = 0.5


class StepNotDue(DeepshieldError):
    code = "step_not_due"
    http_status = 425


class InvalidStepNonce(DeepshieldError):
    code = "invalid_step_nonce"
    http_status = 403


class NoSuchStep(DeepshieldError):
    code = "not_found"
    http_status = 404


class CaptureState(TypedDict):
    """What the capture page learns before it starts: whether it can."""

    session_id: str
    status: str
    expires_at: str
    started: bool


class StepView(TypedDict):
    """One step as the capture page sees it; times are seconds from the start of the recording."""

    index: int
    kind: str
    instruction: str
    start_s: float
    end_s: float


class NextStep(TypedDict):
    """Where the next step is fetched and when: `GET steps/{index}?nonce=...` at `due_s`."""

    index: int
    due_s: float
    nonce: str


class StepReveal(TypedDict):
    step: StepView
    next: NextStep | None  # None: this is the last step; stop recording after its end_s


class StartView(StepReveal):
    flashes: list[FlashDict]  # the colours to flash during the first step, with their times


def step_nonce(script: ChallengeScript, session_id: str, index: int) -> str:
    """Keyed by the script's own nonce, which never leaves the server before the session is closed."""
    msg = f"{session_id}:{index}".encode()
    return hmac.new(script.nonce.encode(), msg, hashlib.sha256).hexdigest()[:24]


def _next(script: ChallengeScript, session_id: str, index: int) -> NextStep | None:
    if index >= len(script.steps):
        return None
    return NextStep(index=index, due_s=script.steps[index].start_s, nonce=step_nonce(script, session_id, index))


def _reveal(script: ChallengeScript, session_id: str, index: int) -> StepReveal:
    s = script.steps[index]
    step = StepView(index=index, kind=s.kind, instruction=s.instruction, start_s=s.start_s, end_s=s.end_s)
    return StepReveal(step=step, next=_next(script, session_id, index + 1))


def start_view(script: ChallengeScript, session_id: str) -> StartView:
    first = _reveal(script, session_id, 0)
    return StartView(step=first["step"], next=first["next"], flashes=script.to_dict()["flashes"])


def reveal_step(script: ChallengeScript, session_id: str, index: int, nonce: str, elapsed_s: float) -> StepReveal:
    """Step `index` if `nonce` is its nonce and it is due `elapsed_s` after the start; early asks get nothing."""
    if not 0 < index < len(script.steps):
        raise NoSuchStep(f"no step {index} in this session (steps 1 to {len(script.steps) - 1} are fetched here)")
    if not hmac.compare_digest(nonce, step_nonce(script, session_id, index)):
        raise InvalidStepNonce("wrong step nonce: use the one the previous step's answer gave")
    wait = script.steps[index].start_s - STEP_LEAD_S - elapsed_s
    if wait > 0:
        err = StepNotDue(f"step {index} is not due yet: ask again in {wait:.2f} s")
        err.retry_after_s = max(1, math.ceil(wait))
        raise err
    return _reveal(script, session_id, index)
