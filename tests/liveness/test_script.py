"""Challenge scripts: random, complete, short, and faithfully serialised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deepshield.errors import DeepshieldError
from deepshield.liveness.script import FLASH_COLOURS, ChallengeScript, generate_script


def test_scripts_are_random_and_hold_every_kind_of_step() -> None:
    scripts = [generate_script() for _ in range(30)]
    assert len({tuple(s.kinds()) for s in scripts}) > 5
    assert len({tuple(f.colour for f in s.flashes) for s in scripts}) > 20
    assert len({s.nonce for s in scripts}) == 30
    for s in scripts:
        kinds = s.kinds()
        assert kinds[0] == "front"
        assert sum(k.startswith("turn_") for k in kinds) == 1
        assert sum(k.startswith("profile_") for k in kinds) == 1
        assert "blink" in kinds and "look_up" in kinds
        # Every turn, profile and look-up is followed by back-to-the-front.
        for a, b in zip(kinds, kinds[1:], strict=False):
            if a.startswith(("turn_", "profile_")) or a == "look_up":
                assert b == "front"
        # Steps follow each other in time.
        for step, after in zip(s.steps, s.steps[1:], strict=False):
            assert step.end_s <= after.start_s + 1e-9 and step.start_s < step.end_s
        assert 5 <= len(s.flashes) <= 7
        assert all(f.colour in FLASH_COLOURS for f in s.flashes)
        assert all(a.colour != b.colour for a, b in zip(s.flashes, s.flashes[1:], strict=False))
        assert s.flashes[-1].end_s <= s.steps[0].end_s
        assert s.duration_s < 20


def test_round_trip() -> None:
    s = generate_script()
    d = s.to_dict()
    assert ChallengeScript.from_dict(d) == s
    assert d["steps"][0]["instruction"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("steps"), "no 'steps'"),
        (lambda d: d["flashes"][0].pop("colour"), "no 'colour'"),
        (lambda d: d.update(duration_s="long"), "expected steps, flashes and duration_s"),
        (lambda d: d.update(steps=5), "expected steps, flashes and duration_s"),
        (lambda d: d["steps"][0].update(kind="dance"), "unknown step kinds or colours ['dance']"),
        (lambda d: d["flashes"][0].update(colour="ultraviolet"), "unknown step kinds or colours ['ultraviolet']"),
    ],
)
def test_a_script_that_is_not_one_is_refused_with_the_reason(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    d: dict[str, Any] = dict(generate_script().to_dict())
    change(d)
    with pytest.raises(DeepshieldError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ChallengeScript.from_dict(d)
