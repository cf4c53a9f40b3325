"""Colour-flash response: the face (near the screen) takes on the flashed colours, in order and in time; the
background (far away) does not. A replayed or injected recording follows some other sequence or none.

Works on log-chromaticity (each channel's log minus their mean), which exposure changes leave alone, and on the
face's change minus the background's change, which removes white-balance shifts and colour casts that move the
whole frame.
"""

from __future__ import annotations

import numpy as np

from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.regions import FRONT_REGIONS, REGIONS, SIDE_REGIONS
from deepshield.liveness.script import FLASH_COLOURS
from deepshield.liveness.signals import SIGNALS
from deepshield.liveness.signals.base import LivenessSignal, SignalContext, SignalResult


def log_chroma(rgb: np.ndarray) -> np.ndarray:
    lg = np.log(np.clip(rgb, 0, 255) + 4.0)
    return lg - lg.mean(axis=-1, keepdims=True)


def expected_direction(colour: str) -> np.ndarray:
    c = np.asarray(FLASH_COLOURS[colour], dtype=np.float64) / 255.0
    d = c - c.mean()
    return d / (np.linalg.norm(d) or 1.0)


def _nearest_colour(v: np.ndarray) -> str:
    n = float(np.linalg.norm(v)) or 1.0
    return max(FLASH_COLOURS, key=lambda c: float(np.dot(v / n, expected_direction(c))))


#: Each palette colour with the two next to it on the hue circle (60 degrees away: their chroma directions meet
#: at cos 60 = 0.5; every other pair at 120 or 180 degrees). Fixed by the palette, so computed once.
HUE_NEIGHBOURS: dict[str, frozenset[str]] = {
    own: frozenset(c for c in FLASH_COLOURS if float(np.dot(expected_direction(own), expected_direction(c))) > 0.25)
    for own in FLASH_COLOURS
}


def _baseline(t: np.ndarray, ok: np.ndarray, ctx: SignalContext) -> np.ndarray:
    """Samples before the first flash, else just after the last one (plus the longest latency)."""
    flashes, p = ctx.script.flashes, ctx.policy
    pre = ok & (t < flashes[0].start_s)
    if pre.sum() < 2:
        last = flashes[-1].end_s
        pre = ok & (t > last + p.flash_max_latency_s + 0.1) & (t < last + 1.5)
    return pre


def region_response(ctx: SignalContext, latency_s: float) -> dict[str, float] | None:
    """Each region's mean response along the flashed colours (log-chromaticity minus the far background's, as
    `flash_response`), at the latency found for the face: how the light fell across the head."""
    regions = ctx.track.region_colours()
    if regions is None or not ctx.script.flashes:
        return None
    t, _, bg = ctx.track.colours()
    ok = np.isfinite(regions).all(axis=(1, 2)) & np.isfinite(bg).all(axis=1)
    pre = _baseline(t, ok, ctx)
    if pre.sum() < 2:
        return None
    rel = log_chroma(regions) - log_chroma(bg)[:, None, :]
    base = np.median(rel[pre], axis=0)
    amps = []
    for f in ctx.script.flashes:
        m = ok & (t >= f.start_s + latency_s + 0.04) & (t <= f.end_s + latency_s)
        if m.any():
            amps.append((np.median(rel[m], axis=0) - base) @ expected_direction(f.colour))
    if len(amps) < 3:
        return None
    mean = np.mean(amps, axis=0)
    return {name: float(a) for name, a in zip(REGIONS, mean, strict=True)}


def light_shape(amps: dict[str, float], p: LivenessPolicy) -> tuple[str, str]:
    """pass, review or fail: whether the flash lit the head as a screen lights a 3-D head (see `regions`), and
    if not, why. Nothing lit outside the outline fails (a tint painted on the face); an even response inside it
    only asks for review: a head turned a little, or a flat face, brings the cheeks' sides near the front's."""
    front = float(np.mean([amps[r] for r in FRONT_REGIONS]))
    side = float(np.mean([amps[r] for r in SIDE_REGIONS]))
    if front < p.flash_min_amplitude:
        return "fail", "the flash did not light the front of the face"
    if amps["outside"] < p.flash_min_outside * front:
        return "fail", "the flash lit the face but nothing around it (hair, neck): a tint painted on the face"
    if front < p.flash_min_front_to_side * side:
        return "review", "the flash lit the face evenly, not as light falls on a rounded head"
    return "pass", ""


def flash_response(ctx: SignalContext, domain: str = "log") -> dict[str, object]:
    """Per-flash face-minus-background chroma change, best latency, correlation and amplitude.

    `log`: log-chromaticity, blind to exposure and white-balance gains that scale face and background alike.
    `linear`: pixel values over the face's own level, blind to light *added* to the whole frame alike (the
    flashes reflecting off the glass of a screen that replays a recording). The screen's light on a real face
    is neither: it scales the face's reflectance and hardly reaches the background, so it shows in both.
    """
    t, face, bg = ctx.track.colours()
    flashes = ctx.script.flashes
    p = ctx.policy
    ok = np.isfinite(face).all(axis=1) & np.isfinite(bg).all(axis=1)
    if not flashes or ok.sum() < 5:
        return {"usable": False}
    pre = _baseline(t, ok, ctx)
    if pre.sum() < 2:
        return {"usable": False}
    if domain == "log":
        rel = log_chroma(face) - log_chroma(bg)
    else:
        level = max(1.0, float(np.median(face[pre].mean(axis=1))))
        lin = np.nan_to_num(face - bg) / level
        rel = lin - lin.mean(axis=1, keepdims=True)
    base = np.median(rel[pre], axis=0)
    noise = float(np.median(np.linalg.norm(rel[pre] - base, axis=1)))
    best: dict[str, object] = {"usable": False}
    best_r = -2.0
    for lat in np.arange(0.0, p.flash_max_latency_s + 1e-9, 0.05):
        resp, exp, names = [], [], []
        for f in flashes:
            m = ok & (t >= f.start_s + lat + 0.04) & (t <= f.end_s + lat)
            if m.sum() == 0:
                continue
            resp.append(np.median(rel[m], axis=0) - base)
            exp.append(expected_direction(f.colour))
            names.append(f.colour)
        if len(resp) < 3:
            continue
        r_arr, e_arr = np.array(resp), np.array(exp)
        a, b = r_arr.flatten(), e_arr.flatten()
        r = 0.0 if a.std() < 1e-9 else float(np.corrcoef(a, b)[0, 1])
        amp = float(np.mean(np.sum(r_arr * e_arr, axis=1)))
        # Each flash's response must point at its own colour rather than any other colour of the palette.
        nearest = [_nearest_colour(rv) for rv in r_arr]
        correct = sum(1 for got, name in zip(nearest, names, strict=True) if got == name)
        # Skin and the camera's white balance turn the reflected hue a little: a face under a yellow flash can
        # read nearer green. Such a flash is off by one hue step, never towards an unrelated colour.
        hue_close = sum(1 for got, name in zip(nearest, names, strict=True) if got in HUE_NEIGHBOURS[name])
        if r > best_r:
            best_r = r
            best = {
                "usable": True,
                "corr": r,
                "amplitude": amp,
                "latency_s": float(lat),
                "flashes_seen": len(resp),
                "flashes_matched": correct,
                "flashes_hue_close": hue_close,
                "noise": noise,
            }
    return best


def _judge(r: dict[str, object], p: LivenessPolicy) -> str:
    """pass, near or fail for one domain's response.

    Near (review): one flash off; or, on a strong overall fit (a noisy camera), up to a third of the flashes
    one hue step off and none further. A replay made for another script misses by more than a hue step on
    several flashes, and its overall fit stays far under `flash_hue_shift_corr`."""
    if not r.get("usable"):
        return "fail"
    corr, amp = float(r["corr"]), float(r["amplitude"])  # type: ignore[arg-type]
    seen, matched = int(r["flashes_seen"]), int(r["flashes_matched"])  # type: ignore[call-overload]
    hue_close = int(r["flashes_hue_close"])  # type: ignore[call-overload]
    if corr < p.flash_min_corr or amp < p.flash_min_amplitude:
        return "fail"
    if matched == seen:
        return "pass"
    if matched == seen - 1:
        return "near"
    shifted_only = hue_close == seen and seen - matched <= max(1, seen // 3)
    return "near" if shifted_only and corr >= p.flash_hue_shift_corr else "fail"


def _rounded(r: dict[str, object]) -> dict[str, object]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}


class FlashResponse(LivenessSignal):
    name = "flash"
    weight = 2.0

    def evaluate(self, ctx: SignalContext) -> SignalResult:
        p = ctx.policy
        lg = flash_response(ctx, "log")
        if not lg.get("usable"):
            return self.result("fail", 0.0, ["the face was not visible during the colour flashes"])
        ln = flash_response(ctx, "linear")
        j_log = _judge(lg, p)
        # The linear view only has to show that the change is not light added to the whole frame: a real face's
        # response is about as large there as in log-chromaticity, added light leaves next to nothing.
        lin_amp = float(ln.get("amplitude", 0.0)) if ln.get("usable") else 0.0  # type: ignore[arg-type]
        j_lin = "pass" if lin_amp >= max(p.flash_min_amplitude, 0.5 * float(lg["amplitude"])) else "fail"  # type: ignore[arg-type]
        ev = {"log": _rounded(lg), "linear": _rounded(ln)}
        corr = min(float(lg["corr"]), float(ln.get("corr", 0.0)))  # type: ignore[arg-type]
        amps = region_response(ctx, float(lg["latency_s"]))  # type: ignore[arg-type]
        if amps is not None:
            ev["regions"] = {k: round(v, 4) for k, v in amps.items()}
            shape, why = light_shape(amps, p)
            if shape == "fail" and j_log != "fail" and j_lin == "pass":
                return self.result("fail", max(0.0, corr) / 4, [why], **ev)
            if shape == "review" and j_log == "pass" and j_lin == "pass":
                return self.result("review", max(0.0, corr) / 2, [why], **ev)
        if j_log == "pass" and j_lin == "pass":
            return self.result("pass", min(1.0, 0.5 + corr / 2), [], **ev)
        if j_log == "near" and j_lin == "pass":
            missed = int(lg["flashes_seen"]) - int(lg["flashes_matched"])  # type: ignore[call-overload]
            why = (
                "the face followed the flashed sequence but one flash did not match"
                if missed == 1
                else f"the face followed the flashed sequence with {missed} flashes a hue step off (a noisy camera)"
            )
            return self.result("review", max(0.0, corr) / 2, [why], **ev)
        if j_log != "fail":
            reason = "the flashed colours reached the whole frame alike (a screen or a print reflecting them)"
        elif float(lg["amplitude"]) < p.flash_min_amplitude:  # type: ignore[arg-type]
            reason = "the face did not take on the flashed colours"
        else:
            reason = (
                f"the face's colour did not follow the flashed sequence ({lg['flashes_matched']} of "
                f"{lg['flashes_seen']} flashes)"
            )
        return self.result("fail", max(0.0, corr) / 2, [reason], **ev)


SIGNALS.register(FlashResponse.name, FlashResponse)
