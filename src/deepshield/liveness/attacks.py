"""The attack suite and genuine sessions, written as videos plus a manifest (one JSON line per trial).

Each attack kind is a generator registered in ATTACKS; `deepshield liveness make-attacks` runs them and
`deepshield liveness evaluate` verifies every trial. Trials that only differ by script (a real video checked
against a script it does not follow) share one video file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from random import Random
from typing import Any

import cv2
import numpy as np

from deepshield.errors import DeepshieldError
from deepshield.liveness.analysis import SessionAnalyzer, SessionTrack
from deepshield.liveness.corpus import (
    Segment,
    derive_script,
    df_same_identity_pairs,
    list_segments,
    observed_events,
    random_corpus_script,
)
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.script import STEP_SECONDS, ChallengeScript, Step, random_flashes
from deepshield.liveness.simulate import FlashModel, apply_flash_response, photo_as_video, screen_recapture
from deepshield.liveness.videoio import read_clip, write_video
from deepshield.media import open_media

ATTACK_KINDS = ("photo", "other_script", "wrong_order", "too_late", "face_swap", "screen_replay", "no_flash")


@dataclass
class Trial:
    id: str
    kind: str  # "genuine" or one of ATTACK_KINDS
    video: str  # relative to the suite folder
    script: dict[str, Any]
    id_photo: str
    group: str  # the real source (video or photo) the trial is built from
    replay_of: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def load_manifest(suite: Path) -> list[Trial]:
    path = suite / "manifest.jsonl"
    if not path.exists():
        raise DeepshieldError(f"no attack suite at {suite}: run `deepshield liveness make-attacks` first")
    return [Trial(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _save_rgb(path: Path, rgb: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def _load_rgb(path: Path) -> np.ndarray:
    m = open_media(path)
    try:
        return next(iter(m.frames())).rgb
    finally:
        m.close()


def _subsample(frames: list[np.ndarray], fps: float, target: float = 15.0) -> Iterator[tuple[float, np.ndarray]]:
    step = max(1, int(round(fps / target)))
    for i in range(0, len(frames), step):
        yield i / fps, frames[i]


def with_flashes(script: ChallengeScript, rng: Random) -> ChallengeScript:
    """The same steps with a fresh flash sequence over the same span."""
    f0 = script.flashes[0].start_s if script.flashes else 0.6
    end = script.steps[0].end_s - 0.4 if script.steps else 3.0
    for _ in range(50):
        fl = random_flashes(rng, f0)
        if fl[-1].end_s <= end + 1e-6:
            break
    return replace(script, flashes=fl, nonce=f"{rng.getrandbits(64):016x}")


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


def _id_frame(seg: Segment) -> np.ndarray:
    """An 'ID photo' for a genuine session: a frame of the same video outside the segment where possible."""
    m = open_media(seg.video)
    dur = float(m.info.duration_s or 0)
    m.close()
    if seg.start_s >= 1.0:
        t = 0.3
    elif dur > seg.end_s + 1.0:
        t = seg.end_s + 0.5
    else:
        t = max(0.0, seg.end_s - 0.3)
    frames, _ = read_clip(seg.video, t, t + 0.5, fps=10)
    return frames[0]


class SuiteBuilder:
    def __init__(self, faces_root: Path, out: Path, seed: int = 7, genuine_variants: int = 2,
                 other_scripts: int = 3, photos: int = 60, max_segments: int | None = None,
                 policy: LivenessPolicy | None = None, log: Callable[[str], None] = print, fps: float = 15.0,
                 stride_s: float = 6.0) -> None:
        self.faces = faces_root
        self.out = out
        self.rng = Random(seed)
        self.genuine_variants = genuine_variants
        self.other_scripts = other_scripts
        self.photos = photos
        self.max_segments = max_segments
        self.policy = policy or LivenessPolicy()
        self.log = log
        self.fps = fps
        self.stride_s = stride_s
        self.trials: list[Trial] = []
        self.analyzer = SessionAnalyzer()

    def _add(self, t: Trial) -> None:
        self.trials.append(t)
        with open(self.out / "manifest.jsonl", "a") as f:
            f.write(t.to_json() + "\n")

    def build(self) -> list[Trial]:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "manifest.jsonl").write_text("")
        segs = list_segments(self.faces / "real_videos", stride_s=self.stride_s)
        if self.max_segments:
            segs = segs[: self.max_segments]
        pairs = df_same_identity_pairs(self.faces / "real_photos")
        for si, seg in enumerate(segs):
            self.log(f"segment {si + 1}/{len(segs)} {seg.name}")
            self._segment(seg, pairs[si % len(pairs)] if pairs else None)
        self._photos(pairs)
        return self.trials

    def _segment(self, seg: Segment, pair: tuple[Path, Path] | None, orders_only: bool = False,
                 variants: int = 1) -> None:
        rng, pol = self.rng, self.policy
        frames, fps = read_clip(seg.video, seg.start_s, seg.end_s, fps=self.fps, max_side=720)
        if len(frames) < fps * 3:
            return
        raw = self.analyzer.analyze_frames(_subsample(frames, fps), fps=15)
        if sum(s.has_face for s in raw.samples) < 0.8 * len(raw.samples):
            self.log(f"  skipped {seg.name}: face not visible enough")
            return
        script0 = derive_script(raw, rng, pol)
        tag = seg.name.replace("@", "_") + ("_long" if orders_only else "")
        id_photo = _save_rgb(self.out / "id" / f"{seg.video.stem}.png", _id_frame(seg))
        genuine0: Trial | None = None
        flashed0: list[np.ndarray] = []
        for v in range(1 if orders_only else self.genuine_variants):
            sc = script0 if v == 0 else with_flashes(script0, rng)
            model = FlashModel.random(rng)
            flashed = apply_flash_response(frames, fps, sc.flashes, model, seed=rng.getrandbits(31))
            vid = write_video(self.out / "videos" / f"genuine_{tag}_{v}.mp4", flashed, fps)
            t = Trial(f"genuine_{tag}_{v}", "genuine", str(vid.relative_to(self.out)), sc.to_dict(), id_photo,
                      seg.video.stem, meta={"flash_model": asdict(model), "segment": [seg.start_s, seg.end_s]})
            self._add(t)
            if v == 0:
                genuine0, flashed0 = t, flashed
        assert genuine0 is not None
        if orders_only:
            for kind, fn in (("too_late", too_late), ("wrong_order", wrong_order)):
                seen: set[str] = set()
                for k in range(variants):
                    sc2 = fn(script0, raw, rng, pol)
                    if sc2 is not None and json.dumps(sc2.to_dict()["steps"]) not in seen:
                        seen.add(json.dumps(sc2.to_dict()["steps"]))
                        self._add(replace(genuine0, id=f"{kind}_{tag}_{k}", kind=kind, script=sc2.to_dict()))
            return
        # A real recording checked against scripts it was not made for.
        for k in range(self.other_scripts):
            sc = random_corpus_script(rng, script0.duration_s)
            self._add(replace(genuine0, id=f"other_script_{tag}_{k}", kind="other_script", script=sc.to_dict()))
        for kind, fn in (("too_late", too_late), ("wrong_order", wrong_order)):
            sc2 = fn(script0, raw, rng, pol)
            if sc2 is not None:
                self._add(replace(genuine0, id=f"{kind}_{tag}", kind=kind, script=sc2.to_dict()))
        # No flash response: the real footage as it is, against the script with its flashes.
        vid = write_video(self.out / "videos" / f"no_flash_{tag}.mp4", frames, fps)
        self._add(Trial(f"no_flash_{tag}", "no_flash", str(vid.relative_to(self.out)), script0.to_dict(), id_photo,
                        seg.video.stem))
        # Screen replay of the genuine recording, against a new session's script; once submitted before, once not.
        sc_new = random_corpus_script(rng, script0.duration_s)
        rec = screen_recapture(flashed0, fps, sc_new.flashes, rng)
        vid = write_video(self.out / "videos" / f"replay_{tag}.mp4", rec, fps)
        self._add(Trial(f"screen_replay_{tag}_seen", "screen_replay", str(vid.relative_to(self.out)), sc_new.to_dict(),
                        id_photo, seg.video.stem, replay_of=genuine0.id))
        self._add(Trial(f"screen_replay_{tag}_fresh", "screen_replay", str(vid.relative_to(self.out)),
                        sc_new.to_dict(), id_photo, seg.video.stem))
        # Real-time face swap: the attacker follows the script live (flashes reflect), wearing the victim's face;
        # the ID photo is another photo of the victim.
        if pair is not None:
            from deepshield.liveness.swap import SwapSourceError, make_swapped_frames

            try:
                swapped, frac = make_swapped_frames(flashed0, _load_rgb(pair[0]))
            except SwapSourceError:
                return
            vid = write_video(self.out / "videos" / f"swap_{tag}.mp4", swapped, fps)
            self._add(Trial(f"face_swap_{tag}", "face_swap", str(vid.relative_to(self.out)), script0.to_dict(),
                            str(pair[1]), seg.video.stem, meta={"source": pair[0].name, "swapped_fraction": frac}))

    def build_orders(self, min_s: float = 12.0, max_s: float = 20.0, variants: int = 3) -> list[Trial]:
        """Long clips (the whole video up to `max_s`), whose scripts hold several steps, for the wrong-order and
        too-late attacks: 7 s segments leave no room to move a window before the move. Appends to the manifest."""
        from deepshield.liveness.corpus import MULTI_PERSON

        self.out.mkdir(parents=True, exist_ok=True)
        start = len(self.trials)
        for p in sorted((self.faces / "real_videos").iterdir()):
            if p.name in MULTI_PERSON or p.suffix.lower() != ".mp4":
                continue
            m = open_media(p)
            dur = float(m.info.duration_s or 0)
            m.close()
            if dur < min_s:
                continue
            seg = Segment(p, 0.0, min(dur, max_s))
            self.log(f"long clip {seg.name}")
            self._segment(seg, None, orders_only=True, variants=variants)
        return self.trials[start:]

    def _photos(self, pairs: list[tuple[Path, Path]]) -> None:
        rng = self.rng
        other = {a: b for a, b in pairs}
        other.update({b: a for a, b in pairs})
        photos = sorted((self.faces / "real_photos").glob("df_img*.jpg"))
        photos += sorted((self.faces / "lfw_1000").glob("*.jpg"))
        rng.shuffle(photos)
        for n, p in enumerate(photos[: self.photos]):
            if n % 10 == 0:
                self.log(f"photo attacks {n}/{min(self.photos, len(photos))}")
            sc = random_corpus_script(rng, round(rng.uniform(6.0, 8.0), 1))
            fl = photo_as_video(_load_rgb(p), sc.duration_s + 0.5, 15.0, rng, flashes=sc.flashes)
            vid = write_video(self.out / "videos" / f"photo_{p.stem}.mp4", fl, 15.0)
            idp = other.get(p, p)
            self._add(Trial(f"photo_{p.stem}", "photo", str(vid.relative_to(self.out)), sc.to_dict(), str(idp), p.stem))
