"""ISO/IEC 30107-3 style figures over an attack suite: APCER per attack type (and the worst), BPCER on genuine
sessions, each with its trial count and a one-sided 95% upper bound (Clopper-Pearson)."""

from __future__ import annotations

import math
import pickle
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from deepshield.liveness.analysis import SessionAnalyzer, SessionTrack, enrich_track
from deepshield.liveness.attacks.suite import Trial, load_manifest
from deepshield.liveness.decision import Decision, verify_track
from deepshield.liveness.embedding import get_embedder
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.replay import MemoryReplayIndex
from deepshield.liveness.script import ChallengeScript
from deepshield.liveness.signals import SignalContext
from deepshield.liveness.trajectory import trajectory_of
from deepshield.liveness.warp import WarpDetector, get_warp_detector


def upper_bound(errors: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a rate seen as errors/n (about 3/n when errors is 0)."""
    if n == 0:
        return 1.0
    if errors >= n:
        return 1.0
    alpha = 1 - confidence

    def cdf(p: float) -> float:
        return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(errors + 1))

    lo, hi = errors / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if cdf(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass
class Rate:
    kind: str
    trials: int
    errors: int
    reviews: int
    groups: int  # distinct real sources behind the trials

    @property
    def rate(self) -> float:
        return self.errors / self.trials if self.trials else 0.0

    @property
    def bound(self) -> float:
        return upper_bound(self.errors, self.trials)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "trials": self.trials,
            "errors": self.errors,
            "rate": round(self.rate, 4),
            "upper95": round(self.bound, 4),
            "reviews": self.reviews,
            "sources": self.groups,
        }


@dataclass
class EvalReport:
    apcer: list[Rate]
    bpcer: Rate
    bpcer_strict: Rate  # genuine sessions not passed outright (fail or review)
    outcomes: dict[str, dict[str, int]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: Kinds built by more than one method (too late: other windows, or an edited recording), per method.
    by_method: list[Rate] = field(default_factory=list)
    #: Per kind: how many trials each signal failed, and how many were sent to review by the combined score alone
    #: (no signal failed or asked for review), the weakest way an attack can be stopped.
    failed_by: dict[str, dict[str, int]] = field(default_factory=dict)
    review_by_score_only: dict[str, int] = field(default_factory=dict)

    @property
    def worst(self) -> Rate | None:
        return max(self.apcer, key=lambda r: (r.rate, r.bound)) if self.apcer else None

    def to_dict(self) -> dict[str, Any]:
        w = self.worst
        return {
            "apcer": [r.to_dict() for r in self.apcer],
            "worst_apcer": w.to_dict() if w else None,
            "bpcer": self.bpcer.to_dict(),
            "bpcer_incl_review": self.bpcer_strict.to_dict(),
            "by_method": [r.to_dict() for r in self.by_method],
            "outcomes": self.outcomes,
            "errors": self.failures,
            "failed_by": self.failed_by,
            "review_by_score_only": self.review_by_score_only,
        }


def _resolve(suite: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else suite / q


def _crop_scorer() -> Any:
    """The installed detector when it scores crops apart from finding them (`crops` + `probabilities`, as the
    shipped ONNX detector does), else None: then the forgery scores are computed with the analysis."""
    from deepshield.detect import get_detector

    det = get_detector("sbi")
    return det if hasattr(det, "crops") and hasattr(det, "probabilities") and hasattr(det, "meta") else None


#: Bumped when the analysis records something new (a3: face-crop PDQ signatures; a4: region colours for the
#: flash check; a5: turned frames cropped for the warped-turn detector), so older caches are not read.
ANALYSIS_VERSION = "a5"


def _cache_key() -> str:
    """A cached analysis holds the embedder's output and either the keyframes' face crops at the detector's crop
    size (valid for any detector that crops the same way, which re-scores them in milliseconds) or, for other
    detectors, their scores (valid for that detector version only)."""
    from deepshield.detect import get_detector

    embedder, scorer, det = get_embedder(), _crop_scorer(), get_detector("sbi")
    emb = embedder.info.name if embedder else "none"
    warp = get_warp_detector()
    emb += f"-warp{warp.meta.input_size}m{warp.meta.margin:g}y{warp.meta.min_yaw_deg:g}" if warp else "-nowarp"
    if scorer is not None:
        forgery = f"crop{scorer.meta.input_size}m{scorer.meta.margin:g}"
    else:
        forgery = f"{det.info.name}-{det.info.version}" if det is not None else "nodetector"
    return f"{ANALYSIS_VERSION}-{emb}-{forgery}".replace("/", "_")


_worker: dict[str, Any] = {}


def _analyse(job: tuple[Path, Path]) -> Path:
    """Analyse one video (in a worker process) and pickle its track, with the main face's crop of every keyframe
    for the forgery detector, to `cached`."""
    from deepshield.detect import get_detector

    src, cached = job
    if not _worker:
        _worker.update(
            analyzer=SessionAnalyzer(warp=get_warp_detector()),
            embedder=get_embedder(),
            scorer=_crop_scorer(),
            detector=get_detector("sbi"),
        )
    tr = _worker["analyzer"].analyze_file(src)
    scorer = _worker["scorer"]
    enrich_track(tr, _worker["embedder"], None if scorer is not None else _worker["detector"])
    # The turned frames' crops are kept and re-scored on every load (a retrained warp model needs no new analysis).
    tr.extra["warp_crops"] = {i: f.crop for i, f in enumerate(tr.turned) if f.crop is not None}
    if scorer is not None:
        tr.extra["forgery_crops"] = {
            i: scorer.crops(k.rgb, k.faces[:1])[0] for i, k in enumerate(tr.keyframes) if k.rgb is not None and k.faces
        }
    tr.drop_pixels()
    tmp = cached.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(tr, f)
    tmp.replace(cached)
    return cached


def _score_crops(tr: SessionTrack, scorer: Any) -> None:
    """The detector's forgery score for each keyframe from the cached crops (what `enrich_track` would give)."""
    if "forgery_crops" not in tr.extra:
        return  # scored during the analysis
    crops = cast("dict[int, np.ndarray]", tr.extra.pop("forgery_crops") or {})
    if crops:
        idx = sorted(crops)
        for i, p in zip(idx, scorer.probabilities(np.stack([crops[i] for i in idx])), strict=True):
            tr.keyframes[i].forgery = float(p)
    tr.extra["detector"] = scorer.info.name
    tr.extra["detector_threshold"] = scorer.info.threshold


def _score_warp_crops(tr: SessionTrack, warp: WarpDetector | None) -> None:
    """The warped-turn detector's probability for each turned frame from the cached crops."""
    crops = cast("dict[int, np.ndarray]", tr.extra.pop("warp_crops", None) or {})
    if warp is None:
        return
    if crops:
        idx = sorted(crops)
        for i, p in zip(idx, warp.probabilities(np.stack([crops[i] for i in idx])), strict=True):
            tr.turned[i].warp = float(p)
    tr.extra["warp_model"] = warp.name


def analyse_videos(
    suite: Path, videos: list[str], jobs: int = 1, log: Callable[[str], None] = lambda s: None
) -> dict[str, SessionTrack]:
    """Every video's track, from the cache (per video file, embedder and crop size) or analysed in `jobs`
    processes, then scored by the installed detector: re-evaluating (a new policy, more trials, a retrained
    detector) only verifies scripts."""
    cache = suite / "cache"
    cache.mkdir(exist_ok=True)
    models = _cache_key()
    paths = {vf: (_resolve(suite, vf), cache / f"{vf.replace('/', '_')}.{models}.pkl") for vf in videos}
    todo = [
        (vf, src, c) for vf, (src, c) in paths.items() if not (c.exists() and c.stat().st_mtime >= src.stat().st_mtime)
    ]
    if todo:
        log(f"analysing {len(todo)} of {len(videos)} videos in {jobs} process(es)")
        if jobs <= 1:
            for i, (vf, src, c) in enumerate(todo):
                _analyse((src, c))
                log(f"analysed {i + 1}/{len(todo)} {vf}")
        else:
            from deepshield.workers import spawn_pool

            with spawn_pool(jobs) as pool:
                for i, _ in enumerate(pool.map(_analyse, [(src, c) for _, src, c in todo], chunksize=4)):
                    if (i + 1) % 20 == 0 or i + 1 == len(todo):
                        log(f"analysed {i + 1}/{len(todo)}")
    scorer, warp = _crop_scorer(), get_warp_detector()
    tracks: dict[str, SessionTrack] = {}
    for vf, (_, c) in paths.items():
        with open(c, "rb") as f:
            tracks[vf] = pickle.load(f)
        _score_crops(tracks[vf], scorer)
        _score_warp_crops(tracks[vf], warp)
    return tracks


def _attack_rate(name: str, res: list[tuple[Trial, Decision]]) -> Rate:
    """Attacks accepted (passed) among `res`, with reviews and distinct sources."""
    return Rate(
        name,
        len(res),
        sum(d.outcome == "pass" for _, d in res),
        sum(d.outcome == "review" for _, d in res),
        len({t.group for t, _ in res}),
    )


def evaluate_suite(
    suite: Path,
    policy: LivenessPolicy | None = None,
    kinds: list[str] | None = None,
    log: Callable[[str], None] = lambda s: None,
    jobs: int = 1,
) -> EvalReport:
    policy = policy or LivenessPolicy()
    trials = [t for t in load_manifest(suite) if not kinds or t.kind in kinds or t.kind == "genuine"]
    tracks = analyse_videos(suite, sorted({t.video for t in trials}), jobs, log)
    embedder = get_embedder()
    id_embs: dict[str, Any] = {}
    from deepshield.faces import FaceAnalyzer
    from deepshield.liveness.service import embed_id_photo

    fa = FaceAnalyzer(max_faces=4)
    for t in trials:
        if t.id_photo not in id_embs:
            try:
                id_embs[t.id_photo] = embed_id_photo(_resolve(suite, t.id_photo), fa, embedder)
            except Exception:  # noqa: BLE001 - an ID photo without a face: the trial runs without it
                id_embs[t.id_photo] = None
    # Earlier sessions: every genuine trial's first variant, keyed by its id and source video.
    genuine_hashes: dict[str, tuple[str, str | None, list[int], list[str | None], Any]] = {}
    for t in trials:
        if t.kind == "genuine":
            tr = tracks[t.video]
            faces = [s.face_pdq for s in tr.samples]
            genuine_hashes[t.id] = (
                t.group,
                str(tr.extra.get("sha256")),
                [k.phash for k in tr.keyframes],
                faces,
                trajectory_of(tr.samples),
            )
    by_kind: dict[str, list[tuple[Trial, Decision]]] = defaultdict(list)
    for t in trials:
        idx = MemoryReplayIndex()
        for sid, (group, sha, hashes, faces, motion) in genuine_hashes.items():
            # Other people's earlier sessions; the same source only when the trial replays it.
            if group != t.group or sid == t.replay_of:
                idx.add(sid, sha, hashes, faces, motion)
        script = ChallengeScript.from_dict(t.script)
        ctx = SignalContext(tracks[t.video], script, t.id, policy, id_embs.get(t.id_photo), idx)
        d = verify_track(ctx)
        by_kind[t.kind].append((t, d))
    outcomes: dict[str, dict[str, int]] = {
        k: dict(Counter(str(d.outcome) for _, d in res)) for k, res in by_kind.items()
    }
    apcer = []
    by_method: list[Rate] = []
    failures: list[dict[str, Any]] = []
    for k, res in sorted(by_kind.items()):
        if k == "genuine":
            continue
        apcer.append(_attack_rate(k, res))
        failures += [
            {"trial": t.id, "kind": k, "outcome": d.outcome, "score": round(d.score, 3)}
            for t, d in res
            if d.outcome == "pass"
        ]
        methods: dict[str, list[tuple[Trial, Decision]]] = defaultdict(list)
        for t, d in res:
            methods[str(t.meta.get("method", "script"))].append((t, d))
        if len(methods) > 1:
            by_method += [_attack_rate(f"{k} / {m}", r) for m, r in sorted(methods.items())]
    g = by_kind.get("genuine", [])
    rejected = [(t, d) for t, d in g if d.outcome == "fail"]
    not_passed = [(t, d) for t, d in g if d.outcome != "pass"]
    groups = len({t.group for t, _ in g})
    bpcer = Rate("genuine", len(g), len(rejected), len(not_passed) - len(rejected), groups)
    strict = Rate("genuine (review counted as rejection)", len(g), len(not_passed), 0, groups)
    failures += [{"trial": t.id, "kind": "genuine", "outcome": d.outcome, "reasons": d.reasons} for t, d in not_passed]
    failed_by = {
        k: dict(Counter(sig.name for _, d in res for sig in d.signals if sig.verdict == "fail"))
        for k, res in by_kind.items()
    }
    score_only = {
        k: sum(
            d.outcome == "review" and all(sig.verdict not in ("fail", "review") for sig in d.signals) for _, d in res
        )
        for k, res in by_kind.items()
    }
    return EvalReport(apcer, bpcer, strict, outcomes, failures, by_method, failed_by, score_only)


@dataclass
class ForgeryCalibration:
    """The forgery signal's run rule fitted on genuine sessions: for each run length, the highest score that
    many consecutive keyframes of any genuine session reach, and the run score to review at (just above it)."""

    sessions: int
    sources: int
    worst_runs: dict[int, list[float]]  # run length -> every genuine session's worst run, sorted
    suggested: dict[int, float]  # run length -> run score at which no genuine session here would be reviewed

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "sources": self.sources,
            "worst_runs": {str(k): [round(x, 4) for x in v] for k, v in self.worst_runs.items()},
            "suggested": {str(k): v for k, v in self.suggested.items()},
        }


def _scores(track: SessionTrack) -> list[float]:
    return [k.forgery for k in track.keyframes if k.forgery is not None]


def calibrate_forgery(
    suite: Path, run_lengths: tuple[int, ...] = (2, 3, 4), margin: float = 0.01, jobs: int = 1
) -> ForgeryCalibration:
    """Fit the run rule on the genuine sessions of `suite`, which must be held apart from the suite the figures
    are reported on (`make-attacks --first-segment`)."""
    from deepshield.liveness.signals.forgery import worst_run

    genuine = [t for t in load_manifest(suite) if t.kind == "genuine"]
    tracks = analyse_videos(suite, sorted({t.video for t in genuine}), jobs)
    runs: dict[int, list[float]] = {}
    for n in run_lengths:
        runs[n] = sorted(worst_run(_scores(tracks[t.video]), n) for t in genuine)
    suggested = {n: round(min(1.0, math.ceil((max(v, default=0.0) + margin) * 100) / 100), 2) for n, v in runs.items()}
    return ForgeryCalibration(len(genuine), len({t.group for t in genuine}), runs, suggested)
