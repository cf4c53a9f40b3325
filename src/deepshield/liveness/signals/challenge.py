"""Challenge compliance: every scripted move seen in its time window, in order, and no large unrequested turn."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepshield.liveness.features import baseline_pitch, detect_blinks, true_runs
from deepshield.liveness.script import Step
from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult, Verdict


class ChallengeCompliance(LivenessSignal):
    name = "challenge"
    weight = 3.0

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        p = ctx.policy
        tr = ctx.track
        t, yaw = tr.series("yaw")
        _, pitch = tr.series("pitch")
        has = np.array([s.has_face for s in tr.samples])
        base = baseline_pitch(tr)
        blinks = detect_blinks(tr, p)
        ctx.cache["blinks"] = blinks
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.066
        steps: list[dict[str, Any]] = []
        reasons: list[str] = []
        for i, st in enumerate(ctx.script.steps):
            lo, hi = st.start_s, st.end_s + p.reaction_s
            w = (t >= lo) & (t <= hi)
            ok, when = self._check(st, t, yaw, pitch, has, w, base, blinks, dt, ctx)
            steps.append(
                {
                    "index": i,
                    "kind": st.kind,
                    "window": [st.start_s, st.end_s],
                    "done": ok,
                    "at_s": None if when is None else round(when, 2),
                }
            )
            if not ok:
                reasons.append(
                    f"step {i + 1} ({st.instruction.lower()}) not seen between {st.start_s:.1f} s and {st.end_s:.1f} s"
                )
        # Large turns outside every turn or profile window: a recording made for another script.
        allowed = np.zeros(len(t), dtype=bool)
        for st in ctx.script.steps:
            if st.kind.startswith(("turn_", "profile_")):
                allowed |= (t >= st.start_s - 0.3) & (t <= st.end_s + p.reaction_s + 1.0)
        stray = np.isfinite(yaw) & (np.abs(yaw) >= p.turn_deg) & ~allowed
        if stray.sum() >= 2:
            reasons.append(f"head turned past {p.turn_deg:.0f} degrees at {t[stray][0]:.1f} s, when no turn was asked")
        # The face must stay in view, except where a full profile may lose the mesh.
        prof = np.zeros(len(t), dtype=bool)
        for st in ctx.script.steps:
            if st.kind.startswith("profile_"):
                prof |= (t >= st.start_s) & (t <= st.end_s + p.reaction_s)
        visible = float(has[~prof].mean()) if (~prof).any() else 1.0
        if visible < p.min_face_fraction:
            reasons.append(f"face visible in only {visible:.0%} of the video")
        done = sum(1 for s in steps if s["done"])
        score = done / max(1, len(steps))
        if (t[-1] if len(t) else 0.0) < ctx.script.duration_s - 0.5:
            end = t[-1] if len(t) else 0.0
            reasons.append(f"video ends at {end:.1f} s, before the script ({ctx.script.duration_s:.1f} s)")
        verdict: Verdict = "pass" if not reasons else "fail"
        if reasons:
            score = min(score, 0.5)
        return self.result(
            verdict,
            score,
            reasons,
            steps=steps,
            baseline_pitch=round(base, 1),
            face_visible=round(visible, 3),
            blinks=[round(b.start_s, 2) for b in blinks],
        )

    def _check(
        self,
        st: Step,
        t: np.ndarray,
        yaw: np.ndarray,
        pitch: np.ndarray,
        has: np.ndarray,
        w: np.ndarray,
        base: float,
        blinks: list[Any],
        dt: float,
        ctx: SignalContext,
    ) -> tuple[bool, float | None]:
        p = ctx.policy
        fy = np.where(np.isfinite(yaw), yaw, np.nan)
        if st.kind in ("turn_left", "turn_right"):
            sign = 1.0 if st.kind == "turn_left" else -1.0
            # A lost mesh (NaN yaw) is no turn on either side: the sign goes on before NaN is replaced.
            hit = w & (np.nan_to_num(sign * fy, nan=-999) >= p.turn_deg)
            return (bool(hit.any()), float(t[hit][0]) if hit.any() else None)
        if st.kind in ("profile_left", "profile_right"):
            sign = 1.0 if st.kind == "profile_left" else -1.0
            sy = np.nan_to_num(sign * fy, nan=-999)
            deep = w & (sy >= p.profile_deg)
            for a, b in true_runs(deep, t):
                if b - a + dt >= p.profile_hold_s:
                    return True, a
            # Beyond about 60 degrees the mesh is lost: losing the face for the hold time is a full profile only
            # with positive evidence on the asked side, a tracked yaw of `profile_lost_from_deg` just before the
            # loss (still rising) or just after it. A 2.5-D warp of a frontal face breaks the mesh near 40 degrees
            # and comes back there (issue 32): the loss alone proves nothing.
            lost = (~has) & w
            for a, b in true_runs(lost, t):
                if b - a + dt < p.profile_hold_s:
                    continue
                ia, ib = int(np.searchsorted(t, a)), int(np.searchsorted(t, b))
                before = [k for k in (ia - 1, ia - 2) if k >= 0 and has[k] and a - t[k] <= 2 * dt + 0.05]
                after = [k for k in (ib + 1, ib + 2) if k < len(t) and has[k] and t[k] - b <= 2 * dt + 0.05]
                deep_before = any(sy[k] >= p.profile_lost_from_deg and (k < 2 or sy[k] >= sy[k - 2]) for k in before)
                deep_after = any(sy[k] >= p.profile_lost_from_deg for k in after)
                if deep_before or deep_after:
                    return True, a
            return False, None
        if st.kind == "front":
            fr = (
                w
                & has
                & (np.abs(np.nan_to_num(fy, nan=99)) < p.front_deg)
                & (np.abs(np.nan_to_num(pitch, nan=99) - base) < p.front_deg)
            )
            for a, b in true_runs(fr, t):
                if b - a + dt >= p.front_hold_s:
                    return True, a
            return False, None
        if st.kind == "look_up":
            hit = w & (np.nan_to_num(pitch, nan=-999) - base >= p.up_deg)
            return (bool(hit.any()), float(t[hit][0]) if hit.any() else None)
        if st.kind == "blink":
            lo, hi = st.start_s, st.end_s + p.reaction_s
            for b in blinks:
                if lo <= b.start_s <= hi:
                    return True, b.start_s
            return False, None
        raise ValueError(f"unknown step kind {st.kind}")


SIGNALS.register(ChallengeCompliance.name, ChallengeCompliance)
