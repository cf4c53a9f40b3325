"""`deepshield liveness ...`: build the attack suite, evaluate it, calibrate the ID-photo match, verify a video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deepshield.errors import DeepshieldError
from deepshield.terminal import plain_console
from deepshield.textfiles import read_json_file

console = plain_console()
liveness_app = typer.Typer(
    help="Liveness (KYC video) checks: attack suite, evaluation, calibration.", no_args_is_help=True
)

FacesOpt = Annotated[Path, typer.Option("--faces", help="The shared face corpus (../shared/data/faces).")]


def _faces_default() -> Path:
    return Path("../shared/data/faces")


@liveness_app.command("make-attacks")
def make_attacks(
    out: Annotated[Path, typer.Option("--out", help="Folder for the suite (videos + manifest.jsonl).")] = Path(
        "var/liveness-suite"
    ),
    faces: FacesOpt = _faces_default(),
    segments: Annotated[int, typer.Option(help="At most this many real video segments (0: all).")] = 0,
    first_segment: Annotated[
        int, typer.Option(help="Skip the segments before this index (a set held apart from another suite's).")
    ] = 0,
    long_clips: Annotated[bool, typer.Option(help="Also the order attacks on the long clips.")] = True,
    photos: Annotated[int, typer.Option(help="Still-photo attacks.")] = 320,
    genuine_variants: Annotated[int, typer.Option(help="Genuine sessions per segment (each its own flashes).")] = 3,
    other_scripts: Annotated[int, typer.Option(help="Different-script trials per segment.")] = 9,
    replays: Annotated[int, typer.Option(help="Screen re-captures per segment (each tried seen and fresh).")] = 5,
    swaps: Annotated[int, typer.Option(help="Face swaps per segment (each another victim).")] = 9,
    late_splices: Annotated[int, typer.Option(help="Recordings edited to make a move too late, per segment.")] = 9,
    crafted: Annotated[int, typer.Option(help="Crafted replays (an outsider's re-edit) per segment.")] = 6,
    jobs: Annotated[int, typer.Option(help="Worker processes (the suite is the same for any number).")] = 1,
    seed: int = 7,
    resume: Annotated[bool, typer.Option("--resume", help="Keep what an interrupted run finished.")] = False,
    add_crafted: Annotated[
        bool, typer.Option("--add-crafted", help="Top a built suite's segments up to --crafted crafted replays each.")
    ] = False,
) -> None:
    """Generate genuine sessions and every attack kind from the shared real media."""
    from deepshield.liveness.attacks.suite import SuiteBuilder, SuiteSize

    if not (faces / "real_videos").is_dir():
        raise DeepshieldError(f"no real_videos folder under {faces}")
    size = SuiteSize(
        genuine_variants=genuine_variants,
        other_scripts=other_scripts,
        no_flash_scripts=other_scripts,
        replays=replays,
        swaps=swaps,
        photos=photos,
        late_splices=late_splices,
        crafted=crafted,
    )
    b = SuiteBuilder(
        faces,
        out,
        seed=seed,
        size=size,
        max_segments=segments or None,
        first_segment=first_segment,
        long_clips=long_clips,
        log=lambda s: console.print(s, highlight=False),
    )
    trials = b.build(jobs=jobs, resume=resume, add_crafted=add_crafted)
    kinds: dict[str, int] = {}
    for t in trials:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    console.print(f"{len(trials)} trials in {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))


@liveness_app.command("evaluate")
def evaluate(
    suite: Annotated[Path, typer.Option("--suite", help="Folder written by make-attacks.")] = Path(
        "var/liveness-suite"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the JSON report here.")] = None,
    jobs: Annotated[int, typer.Option(help="Worker processes for analysing the suite's videos.")] = 1,
    kinds: Annotated[
        str | None,
        typer.Option("--kinds", help="Only these attack kinds, comma-separated (genuine sessions always run)."),
    ] = None,
) -> None:
    """APCER per attack type (and the worst), BPCER, trial counts and 95% upper bounds."""
    from deepshield.liveness.attacks.evaluate import Rate, evaluate_suite
    from deepshield.liveness.attacks.suite import ATTACK_KINDS

    chosen = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    unknown = sorted(set(chosen or []) - set(ATTACK_KINDS))
    if unknown:
        raise DeepshieldError(f"unknown attack kind(s) {', '.join(unknown)}; known: {', '.join(ATTACK_KINDS)}")
    rep = evaluate_suite(
        suite,
        kinds=chosen,
        log=lambda s: console.print(s, highlight=False) if not as_json else None,
        jobs=jobs,
    )
    if report:
        report.write_text(json.dumps(rep.to_dict(), indent=2))
    if as_json:
        print(json.dumps(rep.to_dict(), indent=2))
        return
    t = Table(title="Liveness: attacks accepted (APCER) and genuine sessions rejected (BPCER)")
    for c in ("kind", "trials", "sources", "accepted / rejected", "rate", "95% upper", "to review"):
        t.add_column(c)

    def row(label: str, r: Rate, reviews: bool = True) -> None:
        t.add_row(
            label,
            str(r.trials),
            str(r.groups),
            str(r.errors),
            f"{r.rate:.2%}",
            f"{r.bound:.2%}",
            str(r.reviews) if reviews else "",
        )

    for r in rep.apcer:
        row(f"attack: {r.kind}", r)
    for r in rep.by_method:
        row(f"  of which {r.kind}", r)
    b = rep.bpcer
    row("genuine (BPCER: fail)", b)
    row("genuine (fail or review)", rep.bpcer_strict, reviews=False)
    console.print(t)
    w = rep.worst
    if w:
        console.print(f"worst APCER: {w.kind} {w.errors}/{w.trials} = {w.rate:.2%} (95% upper bound {w.bound:.2%})")
    console.print(
        f"BPCER: {b.errors}/{b.trials} = {b.rate:.2%} (95% upper bound {b.bound:.2%}); sent to review {b.reviews}"
    )
    for kind, counts in sorted(rep.failed_by.items()):
        named = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        only = rep.review_by_score_only.get(kind, 0)
        console.print(f"{kind}: failed by {named or 'no signal'}; sent to review by the combined score alone: {only}")
    console.print("Genuine sessions are real footage with a simulated colour-flash response (no real capture).")


@liveness_app.command("calibrate-forgery")
def calibrate_forgery_cmd(
    suite: Annotated[Path, typer.Option("--suite", help="A suite held apart from the reported one.")] = Path(
        "var/liveness-calibration"
    ),
    jobs: Annotated[int, typer.Option(help="Worker processes for analysing the suite's videos.")] = 1,
) -> None:
    """The forgery signal's run rule (a run of keyframes over a score: review) fitted on a suite's genuine sessions."""
    import numpy as np

    from deepshield.liveness.attacks.evaluate import calibrate_forgery

    cal = calibrate_forgery(suite, jobs=jobs)
    if not cal.sessions:
        raise DeepshieldError(f"no genuine session in {suite}")
    t = Table(title=f"Forgery run rule on {cal.sessions} genuine sessions ({cal.sources} sources)")
    for c in ("keyframes in a row", "median worst run", "95% worst run", "max worst run", "review at"):
        t.add_column(c)
    for n, v in cal.worst_runs.items():
        q = np.quantile(v, [0.5, 0.95])
        t.add_row(str(n), f"{q[0]:.3f}", f"{q[1]:.3f}", f"{max(v):.3f}", f"{cal.suggested[n]:.2f}")
    console.print(t)


@liveness_app.command("calibrate-match")
def calibrate_match(
    faces: FacesOpt = _faces_default(),
    lfw: Annotated[int, typer.Option(help="LFW photos (one per person) for impostor pairs.")] = 998,
    target_fmr: Annotated[float, typer.Option(help="False match rate the match threshold is set at.")] = 1e-4,
) -> None:
    """False match / non-match rates of the ID-photo match at several thresholds, with pair counts."""
    from deepshield.liveness.facematch import calibrate
    from deepshield.liveness.policy import LivenessPolicy

    cal = calibrate(faces, lfw=lfw, log=lambda s: console.print(s, highlight=False))
    pol = LivenessPolicy()
    thr = cal.threshold_at_fmr(target_fmr)
    t = Table(title=f"ID-photo match ({cal.embedder}): distance at or below the threshold = match")
    for c in ("threshold", "false matches / impostor pairs", "FMR", "of which df_master", "false non-matches", "FNMR"):
        t.add_column(c)
    for th in sorted({0.4, 0.45, pol.id_match_distance, 0.55, pol.id_reject_distance, round(thr, 4)}):
        r = cal.at(th)
        t.add_row(
            f"{th:.4f}",
            f"{r['false_matches']} / {r['impostor_pairs']}",
            f"{r['fmr']:.2e}",
            f"{r['false_matches_df']} / {r['impostor_pairs_df']}",
            f"{r['false_non_matches']} / {r['genuine_pairs']}",
            f"{r['fnmr']:.2%}",
        )
    console.print(t)
    console.print(
        f"threshold at FMR {target_fmr:g}: {thr:.4f}; policy: match <= {pol.id_match_distance}, "
        f"review up to {pol.id_reject_distance}, fail above"
    )
    if cal.skipped:
        console.print(f"no face found in {len(cal.skipped)} photo(s): {', '.join(cal.skipped[:5])}")


@liveness_app.command("verify")
def verify(
    video: Path,
    script: Annotated[
        Path,
        typer.Option(
            "--script",
            help="The session's script object (JSON): `script` of GET /v1/liveness/sessions/{id} once the "
            "session is closed, e.g. `jq .script`.",
        ),
    ],
    id_photo: Annotated[Path | None, typer.Option("--id-photo")] = None,
) -> None:
    """Verify one recorded video against a script, offline (no replay index), and print the decision (made here,
    synchronously, as the API makes it during the upload)."""
    from deepshield.detect import get_detector
    from deepshield.faces import FaceAnalyzer
    from deepshield.liveness.analysis import SessionAnalyzer, enrich_track
    from deepshield.liveness.decision import verify_track
    from deepshield.liveness.embedding import get_embedder
    from deepshield.liveness.script import ChallengeScript
    from deepshield.liveness.service import embed_id_photo
    from deepshield.liveness.signals import SignalContext
    from deepshield.liveness.warp import get_warp_detector

    sc = ChallengeScript.from_dict(read_json_file(script, "challenge script"))
    emb = get_embedder()
    idv = embed_id_photo(id_photo, FaceAnalyzer(), emb) if id_photo else None
    warp = get_warp_detector()
    tr = SessionAnalyzer(warp=warp).analyze_file(video)
    enrich_track(tr, emb, get_detector("sbi"), warp)
    print(json.dumps(verify_track(SignalContext(tr, sc, id_embedding=idv)).to_dict(), indent=2))


@liveness_app.command("train-warp")
def train_warp_cmd(
    faces: FacesOpt = _faces_default(),
    out: Annotated[Path, typer.Option("--out", help="Folder for warp_turn.onnx and warp_turn.json.")] = Path(
        "var/warp-model"
    ),
    suite: Annotated[
        Path | None, typer.Option("--suite", help="An attack suite whose crafted replays are the held-out warps.")
    ] = None,
    crafted_limit: Annotated[int, typer.Option(help="At most this many crafted replays from --suite (0: all).")] = 0,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Keep the face crops here (.npz); a re-fit reads them back.")
    ] = None,
    version: str = "1",
    seed: int = 7,
    c: Annotated[
        float, typer.Option("--c", help="Inverse L2 strength of the logistic head (as scikit-learn's C).")
    ] = 0.01,
) -> None:
    """Train the warped-turn detector on the corpus' photos; print out-of-fold figures and, held out, the real
    videos' turned frames against a suite's crafted replays."""
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from deepshield.detect.onnx_detector import calibrate
    from deepshield.liveness.attacks import warp_training as wt
    from deepshield.liveness.policy import LivenessPolicy

    if not (faces / "lfw_1000").is_dir():
        raise DeepshieldError(f"no lfw_1000 folder under {faces}")
    pol = LivenessPolicy()
    thresholds = {"review": pol.warp_review_score, "fail": pol.warp_fail_score}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("photos", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if cache is not None and cache.is_file():
            got = wt.load_examples(cache, ("photos", "videos"))
            ex, held = got["photos"], got["videos"]
        else:
            ex = wt.photo_examples(faces, seed=seed, progress=tick)
            bar.update(task, description="held-out videos")
            crafted = wt.crafted_turn_times(suite, crafted_limit) if suite is not None else []
            held = wt.video_examples(sorted((faces / "real_videos").glob("*")), crafted, progress=tick)
            if cache is not None:
                wt.save_examples(cache, {"photos": ex, "videos": held})
        bar.update(task, description="features")
        feats = wt.tap_features(ex.crops, progress=tick)
        held_feats = wt.tap_features(held.crops, progress=tick)
    y = np.asarray(ex.labels)
    if y.min() == y.max():
        raise DeepshieldError("the photos gave only one kind of example (real turns and warps are both needed)")
    oof = wt.out_of_fold(feats, ex, c=c)
    gate = np.abs(np.asarray(ex.yaws)) >= wt.MIN_YAW  # what the verifier scores
    w, b = wt.fit_head(feats, ex, np.arange(len(ex)), c)
    judged = np.abs(np.asarray(ex.yaws)) >= pol.warp_min_yaw  # what the liveness signal judges
    training: dict[str, object] = {
        "command": f"deepshield liveness train-warp --faces FACES --seed {seed} --c {c}",
        "photos": wt.summarize(y[gate], oof[gate], thresholds) | {"note": "out of fold, 5 folds by photo"},
        "photos_judged": wt.summarize(y[judged], oof[judged], thresholds) | {"min_yaw": pol.warp_min_yaw},
    }
    if len(held):
        hp = calibrate(wt.mirrored_logits(held_feats, w, b), 1.0, 0.0)
        hy, hj = np.asarray(held.labels), np.abs(np.asarray(held.yaws)) >= pol.warp_min_yaw
        training["held_out_video_frames"] = wt.summarize(hy, hp, thresholds)
        training["held_out_video_frames_judged"] = wt.summarize(hy[hj], hp[hj], thresholds) | {
            "min_yaw": pol.warp_min_yaw
        }
    onnx_path = wt.export_onnx(w, b, out)
    wt.write_meta(onnx_path, version, training)
    t = Table(title=f"Warped-turn detector (all from {wt.MIN_YAW:g} degrees; judged: from {pol.warp_min_yaw:g})")
    for col in ("set", "real", "warps", "AUC", "max real", "median warp", "over review (real/warps)", "over fail"):
        t.add_column(col)
    for name in ("photos", "photos_judged", "held_out_video_frames", "held_out_video_frames_judged"):
        s = training.get(name)
        if isinstance(s, dict):
            o = s["over"]
            t.add_row(
                name,
                str(s["real"]),
                str(s["warps"]),
                f"{s['auc']:.3f}",
                str(s["real_max"]),
                str(s["warp_median"]),
                f"{o['review']['real']}/{o['review']['warps']}",
                f"{o['fail']['real']}/{o['fail']['warps']}",
            )
    console.print(t)
    console.print(f"wrote {onnx_path} and {onnx_path.with_suffix('.json')}")


def register(app: typer.Typer) -> None:
    app.add_typer(liveness_app, name="liveness")
