"""Challenge scripts: a random, server-chosen sequence of head moves, a blink and screen colour flashes.

Times are seconds from the start of the recording. "Left" and "right" are the subject's own: a subject who turns
to their left shows the camera the right side of the image (positive yaw in `deepshield.faces`), because the
recorded video is not mirrored (only the on-screen preview is).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any, cast

from typing_extensions import TypedDict  # pydantic (the API's answers) needs it on Python 3.11

from deepshield.errors import DeepshieldError

STEP_KINDS = ("front", "turn_left", "turn_right", "profile_left", "profile_right", "blink", "look_up")

INSTRUCTIONS = {
    "front": "Look straight at the camera",
    "turn_left": "Turn your head to your left",
    "turn_right": "Turn your head to your right",
    "profile_left": "Turn fully to your left and hold",
    "profile_right": "Turn fully to your right and hold",
    "blink": "Blink",
    "look_up": "Look up",
}

#: Flash colours (sRGB). Only strongly chromatic colours: the check follows the face's chromaticity, which
#: auto-exposure leaves alone, rather than its brightness, which auto-exposure undoes.
FLASH_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
}

#: How long each kind of step lasts (the window the move must happen in), seconds.
STEP_SECONDS = {
    "front": 1.4,
    "turn_left": 2.0,
    "turn_right": 2.0,
    "profile_left": 2.6,
    "profile_right": 2.6,
    "blink": 2.0,
    "look_up": 2.0,
}


@dataclass(frozen=True)
class Step:
    kind: str
    start_s: float
    end_s: float

    @property
    def instruction(self) -> str:
        return INSTRUCTIONS[self.kind]


@dataclass(frozen=True)
class Flash:
    colour: str
    start_s: float
    end_s: float

    @property
    def rgb(self) -> tuple[int, int, int]:
        return FLASH_COLOURS[self.colour]


class StepDict(TypedDict):
    kind: str
    start_s: float
    end_s: float
    instruction: str


class FlashDict(TypedDict):
    colour: str
    start_s: float
    end_s: float
    rgb: list[int]


class ScriptDict(TypedDict):
    """The one script object: stored with the session, given whole only to the relying party's backend once
    the session is closed, and read by `deepshield liveness verify --script`. The person being checked sees
    one step at a time (`liveness.reveal`), never this."""

    nonce: str
    duration_s: float
    steps: list[StepDict]
    flashes: list[FlashDict]


@dataclass(frozen=True)
class ChallengeScript:
    steps: tuple[Step, ...]
    flashes: tuple[Flash, ...]
    duration_s: float
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))

    def to_dict(self) -> ScriptDict:
        return {
            "nonce": self.nonce,
            "duration_s": round(self.duration_s, 3),
            "steps": [
                StepDict(kind=s.kind, start_s=s.start_s, end_s=s.end_s, instruction=s.instruction) for s in self.steps
            ],
            "flashes": [
                FlashDict(colour=f.colour, start_s=f.start_s, end_s=f.end_s, rgb=list(f.rgb)) for f in self.flashes
            ],
        }

    @staticmethod
    def from_dict(data: object) -> ChallengeScript:
        """The script `to_dict` wrote, as parsed JSON; anything else (a hand-edited file, say) is refused with
        the reason."""
        d = cast(Mapping[str, Any], data)  # checked by use: a wrong shape raises below and is refused
        try:
            script = ChallengeScript(
                steps=tuple(Step(s["kind"], float(s["start_s"]), float(s["end_s"])) for s in d["steps"]),
                flashes=tuple(Flash(f["colour"], float(f["start_s"]), float(f["end_s"])) for f in d["flashes"]),
                duration_s=float(d["duration_s"]),
                nonce=str(d.get("nonce", "")),
            )
        except KeyError as exc:
            raise DeepshieldError(f"not a challenge script: no {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError):
            raise DeepshieldError("not a challenge script: expected steps, flashes and duration_s as written") from None
        unknown = sorted({s.kind for s in script.steps} - set(STEP_KINDS)) + sorted(
            {f.colour for f in script.flashes} - set(FLASH_COLOURS)
        )
        if unknown:
            raise DeepshieldError(f"not a challenge script: unknown step kinds or colours {unknown}")
        return script

    def kinds(self) -> list[str]:
        return [s.kind for s in self.steps]


def random_flashes(rng: Random, start_s: float, count: int | None = None) -> tuple[Flash, ...]:
    """`count` (5 to 7) flashes of 0.25 to 0.4 s, no colour twice in a row, from `start_s`: about 2.2 s, and
    one chance in 6**5 or less of guessing the sequence."""
    n = count or rng.randint(5, 7)
    out: list[Flash] = []
    t = start_s
    prev = ""
    for _ in range(n):
        colour = rng.choice([c for c in FLASH_COLOURS if c != prev])
        d = round(rng.uniform(0.25, 0.4), 2)
        out.append(Flash(colour, round(t, 3), round(t + d, 3)))
        t += d
        prev = colour
    return tuple(out)


def generate_script(rng: Random | None = None) -> ChallengeScript:
    """A fresh random script: a frontal phase with the colour flashes, then in random order a turn past 30
    degrees to one side, a full profile hold to a random side (each followed by back-to-front), a blink and a
    look up. Uses the OS's cryptographic source unless `rng` is given (tests, evaluation)."""
    rng = rng or Random(secrets.randbits(64))
    flashes = random_flashes(rng, start_s=round(rng.uniform(0.6, 1.0), 2))
    t = flashes[-1].end_s + 0.4
    steps: list[Step] = [Step("front", 0.0, round(t, 3))]
    turn_side = rng.choice(["left", "right"])
    profile_side = rng.choice(["left", "right"])
    blocks = [[f"turn_{turn_side}", "front"], [f"profile_{profile_side}", "front"], ["blink"], ["look_up", "front"]]
    rng.shuffle(blocks)
    for block in blocks:
        for kind in block:
            d = STEP_SECONDS[kind]
            steps.append(Step(kind, round(t, 3), round(t + d, 3)))
            t += d
    return ChallengeScript(
        steps=tuple(steps), flashes=flashes, duration_s=round(t, 3), nonce=f"{rng.getrandbits(64):016x}"
    )
