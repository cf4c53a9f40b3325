"""The right moves at the wrong time: a genuine recording checked against a script with two steps swapped or a
step's window moved before its move, and the recording itself edited (paused, then resumed) so a move comes late.
"""

from __future__ import annotations

from dataclasses import replace
from random import Random
from typing import Any

import numpy as np

from deepshield.liveness.analysis import SessionTrack
from deepshield.liveness.attacks.corpus import observed_events
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.script import STEP_SECONDS, ChallengeScript, Step


def too_late(
    script: ChallengeScript, track: SessionTrack, rng: Random, policy: LivenessPolicy
) -> ChallengeScript | None:
    """Move the window of one observed move so that the move comes after the window and the reaction time."""
    steps = list(script.steps)
    order = list(range(len(steps)))
    rng.shuffle(order)
    for i in order:
        st = steps[i]
        if st.kind == "front" or i == 0:
            continue
        events = [te for k, te in observed_events(track, policy) if k == st.kind and st.start_s <= te]
        if not events:
            continue
        te = events[0]
        end = te - policy.reaction_s - rng.uniform(0.4, 1.2)
        start = end - STEP_SECONDS[st.kind]
        if start < steps[0].end_s:
            continue
        # The move must not also occur inside the new window.
        if any(k == st.kind and start <= t <= end + policy.reaction_s for k, t in observed_events(track, policy)):
            continue
        steps[i] = Step(st.kind, round(start, 3), round(end, 3))
        return replace(script, steps=tuple(steps), nonce=f"{rng.getrandbits(64):016x}")
    return None


def wrong_order(
    script: ChallengeScript, track: SessionTrack, rng: Random, policy: LivenessPolicy
) -> ChallengeScript | None:
    """The same moves asked in a different order: swap a move step's kind with a later or earlier step's kind."""
    steps = list(script.steps)
    idx = [i for i, s in enumerate(steps) if i > 0]
    moves = [i for i in idx if steps[i].kind != "front"]
    rng.shuffle(moves)
    events = observed_events(track, policy)
    for i in moves:
        others = list(idx)
        rng.shuffle(others)
        for j in others:
            if j == i or steps[j].kind == steps[i].kind:
                continue
            a, b = steps[i], steps[j]
            new_i = Step(b.kind, a.start_s, a.start_s + STEP_SECONDS[b.kind])
            new_j = Step(a.kind, b.start_s, b.start_s + STEP_SECONDS[a.kind])
            # Only a real attack if the person did not also make the move inside its new window.
            if any(k == a.kind and new_j.start_s <= t <= new_j.end_s + policy.reaction_s for k, t in events):
                continue
            s2 = list(steps)
            s2[i], s2[j] = new_i, new_j
            return replace(script, steps=tuple(s2), nonce=f"{rng.getrandbits(64):016x}")
    return None


def spliced_too_late(
    frames: list[np.ndarray],
    fps: float,
    script: ChallengeScript,
    track: SessionTrack,
    rng: Random,
    policy: LivenessPolicy,
) -> tuple[list[np.ndarray], dict[str, Any]] | None:
    """The recording edited to come late: a still stretch just before one scripted move is played back and forth
    (a paused, then resumed, replay) so the move lands after its window and the reaction time. The script is
    the one the unedited recording satisfies, so only the timing is wrong. `track` is the analysis of `frames`
    (one sample per frame)."""
    from deepshield.liveness.features import detect_blinks

    busy = [(b.start_s - 0.2, b.end_s + 0.2) for b in detect_blinks(track, policy)]
    events = observed_events(track, policy)
    busy += [(te - 1.0, te + 1.0) for k, te in events if k != "blink"]
    t0 = script.steps[0].end_s if script.steps else 0.0
    moves = [(i, s) for i, s in enumerate(script.steps) if i > 0 and s.kind != "front"]
    rng.shuffle(moves)
    for i, st in moves:
        hits = [te for k, te in events if k == st.kind and st.start_s <= te <= st.end_s + policy.reaction_s]
        if not hits:
            continue
        te = hits[0]
        cut = te - 0.25
        loop_s = min(0.8, cut - t0)
        if loop_s < 0.4 or any(a < cut and b > cut - loop_s for a, b in busy):
            continue
        delay = st.end_s + policy.reaction_s - te + rng.uniform(0.4, 1.2)
        c, a = int(round(cut * fps)), int(round((cut - loop_s) * fps))
        if not 0 < a < c <= len(frames):
            continue
        # Back from the cut and forward again, repeated, so the resumed recording joins where it paused.
        cycle = list(range(c - 1, a - 1, -1)) + list(range(a + 1, c))
        need = int(round(delay * fps))
        held = [frames[cycle[k % len(cycle)]] for k in range(need)]
        # Only an attack if no move of that kind is left inside the window once the rest is pushed back.
        moved = [te2 + (delay if te2 >= cut else 0.0) for k, te2 in events if k == st.kind]
        if any(st.start_s <= x <= st.end_s + policy.reaction_s for x in moved):
            continue
        meta = {"method": "splice", "step": i, "cut_s": round(cut, 3), "delay_s": round(need / fps, 3)}
        return frames[:c] + held + frames[c:], meta
    return None
