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
from deepshield.liveness.attacks.corpus import (
    Segment,
    derive_script,
    df_same_identity_pairs,
    list_segments,
    random_corpus_script,
)
from deepshield.liveness.attacks.simulate import FlashModel, apply_flash_response, photo_as_video, screen_recapture
from deepshield.liveness.attacks.timing import spliced_too_late, too_late, wrong_order
from deepshield.liveness.attacks.videoio import read_clip, write_video
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.script import ChallengeScript, ScriptDict, random_flashes
from deepshield.media import open_media, representative_frame
from deepshield.textfiles import read_text_file

ATTACK_KINDS = (
    "photo",
    "other_script",
    "wrong_order",
    "too_late",
    "face_swap",
    "screen_replay",
    "no_flash",
    "crafted_replay",
)


@dataclass
class Trial:
    id: str
    kind: str  # "genuine" or one of ATTACK_KINDS
    video: str  # relative to the suite folder
    script: ScriptDict
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
    trials = []
    for n, line in enumerate(read_text_file(path, "attack-suite manifest").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            trials.append(Trial(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            raise DeepshieldError(f"{path} line {n}: not a trial as `make-attacks` writes it") from None
    return trials


def _save_rgb(path: Path, rgb: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


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


@dataclass(frozen=True)
class SuiteSize:
    """How many trials each real source yields. Trials that only differ by script share one video, so the
    script-only attacks are cheap; the others (photo, screen replay, face swap) each cost a video."""

    genuine_variants: int = 3  # genuine sessions per segment, each with its own flashes and flash model
    other_scripts: int = 9  # per segment: the recording checked against a script it was not made for
    no_flash_scripts: int = 9  # per segment: the footage with no flash response, against derived scripts
    replays: int = 5  # per segment: screen re-captures, each tried once seen before and once fresh
    swaps: int = 9  # per segment: face swaps, each with another victim
    order_variants: int = 12  # per segment or long clip: attempts at a wrong-order and a too-late script
    late_splices: int = 9  # per segment or long clip: attempts at a recording edited to make a move too late
    photos: int = 320
    crafted: int = 6  # per segment: an outsider's re-edit of the recording to a fresh full script (issue 32)
    segment_stride_s: float = 3.0


@dataclass(frozen=True)
class _Unit:
    """One independent piece of the suite (a segment, a long clip, a batch of photos): its own seeded random
    stream, so the suite is the same whatever the number of worker processes."""

    kind: str  # "segment", "long" or "photos"
    name: str
    segment: Segment | None = None
    victims: tuple[tuple[Path, Path], ...] = ()  # (swap source photo, ID photo of the same person)
    photos: tuple[tuple[Path, Path], ...] = ()  # (photo, ID photo)


class SuiteBuilder:
    def __init__(
        self,
        faces_root: Path,
        out: Path,
        seed: int = 7,
        size: SuiteSize | None = None,
        max_segments: int | None = None,
        policy: LivenessPolicy | None = None,
        first_segment: int = 0,
        long_clips: bool = True,
        log: Callable[[str], None] = print,
        fps: float = 15.0,
    ) -> None:
        self.faces = faces_root
        self.out = out
        self.seed = seed
        self.size = size or SuiteSize()
        self.max_segments = max_segments
        self.first_segment = first_segment  # segments before this one are held apart (calibration sets)
        self.long_clips = long_clips
        self.policy = policy or LivenessPolicy()
        self.log = log
        self.fps = fps

    def units(self) -> list[_Unit]:
        from deepshield.liveness.attacks.corpus import MULTI_PERSON

        units: list[_Unit] = []
        pairs = df_same_identity_pairs(self.faces / "real_photos")
        segs = list_segments(self.faces / "real_videos", stride_s=self.size.segment_stride_s)
        segs = segs[self.first_segment :]
        if self.max_segments:
            segs = segs[: self.max_segments]
        n = self.size.swaps
        # Victims rotate with the seed, so suites built with different seeds swap in different people.
        off = Random(f"{self.seed}:victims").randrange(len(pairs)) if pairs else 0
        for si, seg in enumerate(segs):
            victims = tuple(pairs[(off + si * n + k) % len(pairs)] for k in range(n)) if pairs else ()
            units.append(_Unit("segment", seg.name, seg, victims=victims))
        other = {a: b for a, b in pairs}
        other.update({b: a for a, b in pairs})
        photos = sorted((self.faces / "real_photos").glob("df_img*.jpg"))
        photos += sorted((self.faces / "lfw_1000").glob("*.jpg"))
        Random(self.seed).shuffle(photos)
        chosen = [(p, other.get(p, p)) for p in photos[: self.size.photos]]
        for k in range(0, len(chosen), 20):
            units.append(_Unit("photos", f"photos{k // 20:03d}", photos=tuple(chosen[k : k + 20])))
        long_clips = 0
        for p in sorted((self.faces / "real_videos").iterdir()):
            if p.name in MULTI_PERSON or p.suffix.lower() != ".mp4":
                continue
            if not self.long_clips or (self.max_segments and long_clips >= self.max_segments):
                break
            m = open_media(p)
            dur = float(m.info.duration_s or 0)
            m.close()
            if dur >= 12.0:  # long enough for several steps: room to move a window before its move
                seg = Segment(p, 0.0, min(dur, 20.0))
                units.append(_Unit("long", seg.name + "_long", seg))
                long_clips += 1
        return units

    def build(self, jobs: int = 1, resume: bool = False, add_crafted: bool = False) -> list[Trial]:
        """Generate every unit (in `jobs` processes) and write the manifest; with `resume`, keep the units an
        interrupted run finished (a unit's trials reach the manifest together) and build the rest; with
        `add_crafted`, top a built suite's segments up to `size.crafted` crafted replays each (a kind added later,
        or more trials for a tighter bound); the trials already there are kept as they are."""
        from deepshield.workers import spawn_pool

        self.out.mkdir(parents=True, exist_ok=True)
        manifest = self.out / "manifest.jsonl"
        units = self.units()
        trials: list[Trial] = []
        originals: dict[str, tuple[Trial, int]] = {}
        if add_crafted:
            trials = load_manifest(self.out)
            by_id = {t.id: t for t in trials}
            for u in units:
                if u.kind != "segment" or u.segment is None:
                    continue
                tag = _tag(u.segment, False)
                if f"genuine_{tag}_0" in by_id:
                    made = sum(1 for k in range(self.size.crafted) if f"crafted_replay_{tag}_{k}" in by_id)
                    if made < self.size.crafted:
                        originals[u.name] = (by_id[f"genuine_{tag}_0"], made)
            units = [u for u in units if u.name in originals]
            self.log(f"adding crafted replays: {len(trials)} trials kept, {len(units)} segments to extend")
        elif resume and manifest.exists():
            trials = load_manifest(self.out)
            have = {t.id for t in trials}
            units = [u for u in units if not _unit_done(u, have)]
            self.log(f"resuming: {len(trials)} trials kept, {len(units)} units to build")
        else:
            manifest.write_text("")

        def done(i: int, u: _Unit, got: list[Trial]) -> None:
            self.log(f"{i + 1}/{len(units)} {u.kind} {u.name}: {len(got)} trials")
            trials.extend(got)
            with manifest.open("a") as f:
                f.writelines(t.to_json() + "\n" for t in got)

        if jobs <= 1:
            for i, u in enumerate(units):
                done(i, u, _build_unit(self._args(u, originals.get(u.name))))
        else:
            with spawn_pool(jobs) as pool:
                args = [self._args(u, originals.get(u.name)) for u in units]
                for i, (u, got) in enumerate(zip(units, pool.map(_build_unit, args), strict=True)):
                    done(i, u, got)
        return trials

    def _args(self, u: _Unit, original: tuple[Trial, int] | None = None) -> tuple[Any, ...]:
        return (u, self.faces, self.out, self.seed, self.size, self.policy, self.fps, original)


def _tag(seg: Segment, long_clip: bool) -> str:
    """The part of a unit's trial ids that names its segment."""
    return seg.name.replace("@", "_") + ("_long" if long_clip else "")


def _unit_done(u: _Unit, ids: set[str]) -> bool:
    if u.kind == "photos":
        return all(f"photo_{p.stem}" in ids for p, _ in u.photos)
    assert u.segment is not None
    return f"genuine_{_tag(u.segment, u.kind == 'long')}_0" in ids


def _build_unit(args: tuple[Any, ...]) -> list[Trial]:
    u, faces, out, seed, size, policy, fps, original = args
    if original is not None:  # crafted replays added to a built segment, from their own random stream
        genuine0, have = original
        stream = f"{seed}:{u.name}:crafted" + (f":{have}" if have else "")  # a top-up draws new scripts
        gen = _UnitBuilder(out, Random(stream), size, policy, fps)
        return gen.crafted_only(u.segment, genuine0, first=have)
    gen = _UnitBuilder(out, Random(f"{seed}:{u.name}"), size, policy, fps)
    if u.kind == "photos":
        return gen.photos(u.photos)
    assert u.segment is not None
    return gen.segment(u.segment, u.victims, orders_only=u.kind == "long")


class _UnitBuilder:
    def __init__(self, out: Path, rng: Random, size: SuiteSize, policy: LivenessPolicy, fps: float) -> None:
        self.out, self.rng, self.size, self.policy, self.fps = out, rng, size, policy, fps
        self.trials: list[Trial] = []

    def _add(self, t: Trial) -> None:
        self.trials.append(t)

    def _video(self, name: str, frames: list[np.ndarray], fps: float) -> str:
        return str(write_video(self.out / "videos" / f"{name}.mp4", frames, fps).relative_to(self.out))

    def segment(self, seg: Segment, victims: tuple[tuple[Path, Path], ...], orders_only: bool = False) -> list[Trial]:
        rng, pol, size = self.rng, self.policy, self.size
        frames, fps = read_clip(seg.video, seg.start_s, seg.end_s, fps=self.fps, max_side=720)
        if len(frames) < fps * 3:
            return []
        raw = SessionAnalyzer().analyze_frames(_subsample(frames, fps), fps=15)
        if sum(s.has_face for s in raw.samples) < 0.8 * len(raw.samples):
            return []
        script0 = derive_script(raw, rng, pol)
        tag = _tag(seg, orders_only)
        id_photo = _save_rgb(self.out / "id" / f"{seg.video.stem}.png", _id_frame(seg))
        genuine0: Trial | None = None
        flashed0: list[np.ndarray] = []
        for v in range(1 if orders_only else size.genuine_variants):
            sc = script0 if v == 0 else with_flashes(script0, rng)
            model = FlashModel.random(rng)
            flashed = apply_flash_response(frames, fps, sc.flashes, model, seed=rng.getrandbits(31))
            t = Trial(
                f"genuine_{tag}_{v}",
                "genuine",
                self._video(f"genuine_{tag}_{v}", flashed, fps),
                sc.to_dict(),
                id_photo,
                seg.video.stem,
                meta={"flash_model": asdict(model), "segment": [seg.start_s, seg.end_s]},
            )
            self._add(t)
            if v == 0:
                genuine0, flashed0 = t, flashed
        assert genuine0 is not None
        # The right moves in the wrong order or too late: the same recording (and flashes), other step windows.
        seen: set[str] = set()
        for k in range(size.order_variants):
            base = script0 if k == 0 else derive_script(raw, rng, pol, flashes=script0.flashes)
            for kind, fn in (("too_late", too_late), ("wrong_order", wrong_order)):
                sc2 = fn(base, raw, rng, pol)
                key = kind + json.dumps(sc2.to_dict()["steps"]) if sc2 is not None else ""
                if sc2 is not None and key not in seen:
                    seen.add(key)
                    self._add(replace(genuine0, id=f"{kind}_{tag}_{k}", kind=kind, script=sc2.to_dict()))
        # The recording edited (paused, then resumed) so that a move comes too late for the script it satisfies.
        delays: set[tuple[int, float]] = set()
        for k in range(size.late_splices):
            got = spliced_too_late(flashed0, fps, script0, raw, rng, pol)
            if got is None:
                break
            late_frames, meta = got
            late_key = (int(meta["step"]), round(float(meta["delay_s"]), 1))
            if late_key in delays:
                continue
            delays.add(late_key)
            name = f"too_late_splice_{tag}_{k}"
            self._add(
                Trial(
                    name,
                    "too_late",
                    self._video(name, late_frames, fps),
                    script0.to_dict(),
                    id_photo,
                    seg.video.stem,
                    meta=meta,
                )
            )
        if orders_only:
            return self.trials
        # A real recording checked against scripts it was not made for.
        for k in range(size.other_scripts):
            sc = random_corpus_script(rng, script0.duration_s)
            self._add(replace(genuine0, id=f"other_script_{tag}_{k}", kind="other_script", script=sc.to_dict()))
        # No flash response: the real footage as it is, against scripts it otherwise satisfies.
        vid = self._video(f"no_flash_{tag}", frames, fps)
        for k in range(size.no_flash_scripts):
            sc = script0 if k == 0 else derive_script(raw, rng, pol)
            self._add(Trial(f"no_flash_{tag}_{k}", "no_flash", vid, sc.to_dict(), id_photo, seg.video.stem))
        # Screen replay of the genuine recording, against a new session's script; once submitted before, once not.
        for k in range(size.replays):
            sc_new = random_corpus_script(rng, script0.duration_s)
            vid = self._video(f"replay_{tag}_{k}", screen_recapture(flashed0, fps, sc_new.flashes, rng), fps)
            self._add(
                Trial(
                    f"screen_replay_{tag}_{k}_seen",
                    "screen_replay",
                    vid,
                    sc_new.to_dict(),
                    id_photo,
                    seg.video.stem,
                    replay_of=genuine0.id,
                )
            )
            self._add(
                Trial(
                    f"screen_replay_{tag}_{k}_fresh", "screen_replay", vid, sc_new.to_dict(), id_photo, seg.video.stem
                )
            )
        self._crafted(frames, fps, raw, genuine0, tag)
        # Real-time face swap: the attacker follows the script live (flashes reflect), wearing the victim's face;
        # the ID photo is another photo of the victim.
        from deepshield.liveness.attacks.swap import SwapSourceError, donor_from_photo, make_swapped_frames

        for k, (source, id_of_victim) in enumerate(victims):
            try:
                swapped, frac = make_swapped_frames(flashed0, donor_from_photo(source))
            except SwapSourceError:
                continue
            self._add(
                Trial(
                    f"face_swap_{tag}_{k}",
                    "face_swap",
                    self._video(f"swap_{tag}_{k}", swapped, fps),
                    script0.to_dict(),
                    str(id_of_victim),
                    seg.video.stem,
                    meta={"source": source.name, "swapped_fraction": frac},
                )
            )
        return self.trials

    def crafted_only(self, seg: Segment, genuine0: Trial, first: int = 0) -> list[Trial]:
        frames, fps = read_clip(seg.video, seg.start_s, seg.end_s, fps=self.fps, max_side=720)
        raw = SessionAnalyzer().analyze_frames(_subsample(frames, fps), fps=15)
        self._crafted(frames, fps, raw, genuine0, _tag(seg, False), first)
        return self.trials

    def _crafted(
        self, frames: list[np.ndarray], fps: float, raw: SessionTrack, genuine0: Trial, tag: str, first: int = 0
    ) -> None:
        """The crafted replay (`crafted.py`): the stored genuine session's footage re-edited to a fresh full script
        (flashes, turn, profile, blink, look-up); the original session is in the replay index. Numbered from
        `first` (a top-up of a built suite)."""
        from deepshield.liveness.attacks.crafted import craft_replay
        from deepshield.liveness.script import generate_script

        for k in range(first, self.size.crafted):
            sc = generate_script(self.rng)
            edited, meta = craft_replay(frames, fps, raw, sc, self.rng, self.policy)
            name = f"crafted_replay_{tag}_{k}"
            video = self._video(name, edited, fps)
            self._add(
                replace(
                    genuine0,
                    id=name,
                    kind="crafted_replay",
                    video=video,
                    script=sc.to_dict(),
                    replay_of=genuine0.id,
                    meta=meta,
                )
            )

    def photos(self, photos: tuple[tuple[Path, Path], ...]) -> list[Trial]:
        rng = self.rng
        for p, idp in photos:
            sc = random_corpus_script(rng, round(rng.uniform(6.0, 8.0), 1))
            fl = photo_as_video(representative_frame(p), sc.duration_s + 0.5, 15.0, rng, flashes=sc.flashes)
            self._add(
                Trial(
                    f"photo_{p.stem}", "photo", self._video(f"photo_{p.stem}", fl, 15.0), sc.to_dict(), str(idp), p.stem
                )
            )
        return self.trials
