"""Detector commands: face cache, self-blend samples, training, export + calibration, swap set, evaluation.

Training and export need the `train` extra (torch, onnx); everything else runs on the base install.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deepshield.config import get_settings, work_path
from deepshield.errors import DeepshieldError
from deepshield.terminal import failed_line, plain_console

console = plain_console()
err_console = plain_console(stderr=True)
#: `evaluate` lists at most this many failed items on stderr; scores.json holds every item's error.
_LISTED_FAILURES = 20
DEFAULT_CORPUS = Path("../shared/data/faces")
#: The work folder in help texts (it defaults to $DEEPSHIELD_HOME/work, `Settings.work_dir`).
_WORK_HELP = "$DEEPSHIELD_WORK"


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[item]}", markup=False),
        console=console,
    )


@contextmanager
def _item_bar(name: str, total: int) -> Iterator[Callable[[str], None]]:
    """A bar of `total` items; the callback it gives (a command's `progress=`) moves it one item on, named."""
    with _bar() as bar:
        task = bar.add_task(name, total=total, item="")
        yield lambda item: bar.update(task, advance=1, item=item)


def _corpus_items(corpus: Path, split: str | None, folder: bool) -> list[tuple[Path, str, str, str, bool]]:
    """(path, rel, group, split, is_video): the shared corpus with its identity split, or any folder; never empty."""
    from deepshield.detect.training.datasets import media_files
    from deepshield.detect.training.identities import SPLITS, VIDEO_SUFFIXES, list_corpus

    if not corpus.is_dir():
        raise DeepshieldError(f"no such folder: {corpus}")
    if split is not None and split not in SPLITS:
        raise DeepshieldError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if folder:  # any folder of real media: one identity per file, all in the train split
        files = media_files(corpus)
        items = [
            (
                p,
                str(p.relative_to(corpus)),
                str(p.relative_to(corpus)),
                "train",
                p.suffix.lower() in VIDEO_SUFFIXES,
            )
            for p in files
        ]
    else:
        items = [
            (i.path, i.rel, i.group, i.split, i.is_video)
            for i in list_corpus(corpus)
            if split is None or i.split == split
        ]
    if not items:
        raise DeepshieldError(f"no photos or videos {f'of the {split} split ' if split else ''}under {corpus}")
    return items


def detect_cache(
    corpus: Annotated[Path, typer.Option(help="real photos/videos (the shared corpus by default)")] = DEFAULT_CORPUS,
    out: Annotated[Path | None, typer.Option(help=f"cache folder (default {_WORK_HELP}/detect/faces)")] = None,
    frames: Annotated[int, typer.Option(help="frames sampled per video", min=1)] = 16,
    any_folder: Annotated[bool, typer.Option("--any-folder", help="not the shared corpus: no split rules")] = False,
) -> None:
    """Extract aligned face crops and meshes once, for training (split by identity).

    The work folder $DEEPSHIELD_WORK defaults to $DEEPSHIELD_HOME/work.
    """
    from deepshield.detect.training.facecache import build_cache

    out = out or get_settings().face_cache_dir
    items = _corpus_items(corpus, None, any_folder)
    with _item_bar("faces", len(items)) as progress:
        counts = build_cache([(p, r, g, s) for p, r, g, s, _ in items], out, frames, progress=progress)
    console.print(f"crops per split: {counts} -> {out}")


def sbi_samples(
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("sbi_samples.png"),
    cache: Annotated[Path | None, typer.Option(help=f"face cache (default {_WORK_HELP}/detect/faces)")] = None,
    config: Annotated[Path | None, typer.Option(help="training config (for the SBI parameters)")] = None,
    n: Annotated[int, typer.Option(help="pairs", min=1)] = 8,
    split: Annotated[str, typer.Option(help="split to draw from")] = "train",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write a grid of self-blended pairs with their masks, to see what the model learns from."""
    from deepshield.detect.training.facecache import load_cache
    from deepshield.detect.training.samples import write_sample_grid
    from deepshield.detect.training.sbi import SbiParams

    params = SbiParams()
    if config is not None:
        from deepshield.detect.training.train import load_config, sbi_params

        params = sbi_params(load_config(config))
    faces = load_cache(cache or get_settings().face_cache_dir, [split])
    console.print(f"wrote {write_sample_grid(faces, params, out, n=n, seed=seed)}")


def train_cmd(
    config: Annotated[Path, typer.Option(help="TOML config, e.g. configs/sbi_small.toml")],
    out: Annotated[Path | None, typer.Option(help="run folder (default: the config's train.out_dir)")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="ignore an existing last.pt")] = False,
) -> None:
    """Train the detector from the face cache by self-blending (resumes from last.pt)."""
    try:
        from deepshield.detect.training.train import load_config, train
    except ModuleNotFoundError as e:
        raise DeepshieldError(f"training needs the 'train' extra ({e.name} missing)") from e
    cfg = load_config(config)
    run = out or work_path(cfg["train"].get("out_dir", "runs/sbi_small"))
    rec = train(cfg, run, resume=not fresh)
    console.print(f"done: {json.dumps(rec)} -> {run}")


def average_cmd(
    run: Annotated[Path, typer.Option(help="run folder with epochNNN.pt checkpoints")],
    first: Annotated[int, typer.Option(help="first epoch to average (1-based)")],
    last: Annotated[int, typer.Option(help="last epoch to average (inclusive)")],
    out: Annotated[Path, typer.Option(help="checkpoint to write")],
    bn_batches: Annotated[int, typer.Option(help="training batches that re-measure BatchNorm statistics", min=1)] = 100,
) -> None:
    """Average the weights of a run's last epochs (SWA), for `export`."""
    try:
        from deepshield.detect.training.swa import average_checkpoints
    except ModuleNotFoundError as e:
        raise DeepshieldError(f"averaging needs the 'train' extra ({e.name} missing)") from e
    if first < 1 or last < first:
        raise DeepshieldError(f"need 1 <= --first <= --last (got {first}, {last})")
    paths = [run / f"epoch{e:03d}.pt" for e in range(first, last + 1)]
    console.print(average_checkpoints(paths, out, bn_batches=bn_batches))


def export_cmd(
    checkpoint: Annotated[Path, typer.Option(help="training checkpoint (best.pt or epochNNN.pt)")],
    out: Annotated[Path, typer.Option(help="models folder")] = Path("src/deepshield/models"),
    version: Annotated[str, typer.Option(help="model version string")] = "1",
    flip_average: Annotated[
        bool, typer.Option("--flip-average", help="score each crop and its mirror image, average the logits")
    ] = False,
) -> None:
    """Export a checkpoint to ONNX (checked against torch) with its metadata JSON."""
    try:
        from deepshield.detect.training.export import export_onnx
    except ModuleNotFoundError as e:
        raise DeepshieldError(f"export needs the 'train' extra ({e.name} missing)") from e
    p = export_onnx(checkpoint, out, version, extra={"flip_average": flip_average})
    console.print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB)")


def calibrate_cmd(
    scores: Annotated[
        list[Path],
        typer.Option(help="JSON written by `deepshield evaluate` on VALIDATION data (repeatable: pooled)"),
    ],
    out: Annotated[Path, typer.Option(help="models folder")] = Path("src/deepshield/models"),
    target_fpr: Annotated[float, typer.Option(help="real frames allowed over the default threshold")] = 0.02,
    photo_scores: Annotated[
        list[Path] | None,
        typer.Option(help="`evaluate` JSON with real still photos (repeatable): a threshold of their own for photos"),
    ] = None,
    photo_fpr: Annotated[float, typer.Option(help="real photos allowed over the photo threshold")] = 0.03,
) -> None:
    """Fit Platt calibration and the default threshold from validation scores (and a photo threshold)."""
    from deepshield.detect.training.export import calibrate_from_scores

    meta = calibrate_from_scores(scores, out, target_fpr=target_fpr, photo_scores=photo_scores, photo_fpr=photo_fpr)
    photo = f", photo threshold {meta['photo_threshold']}" if "photo_threshold" in meta else ""
    console.print(f"calibration {meta['calibration']}, threshold {meta['threshold']}{photo}")


def make_swaps(
    out: Annotated[
        Path | None, typer.Option(help=f"output folder, gets real/ and fake/ (default {_WORK_HELP}/swaps)")
    ] = None,
    corpus: Annotated[Path, typer.Option(help="the shared face corpus")] = DEFAULT_CORPUS,
    split: Annotated[str, typer.Option(help="identities to use: test (evaluation) or val (calibration)")] = "test",
    seconds: Annotated[float, typer.Option(help="seconds of each video to swap", min=0.5)] = 4.0,
    max_photos: Annotated[int | None, typer.Option(help="cap on photo targets", min=1)] = None,
    seed: Annotated[int, typer.Option()] = 0,
    region: Annotated[str, typer.Option(help="what to swap: face, or lower-face (lip-sync stand-in)")] = "face",
) -> None:
    """Build a face-swap set (Delaunay warp, colour transfer, seamless clone) from one split."""
    from deepshield.detect.training.swaps import check_region, make_swap_set

    check_region(region)
    out = out or get_settings().work_dir / "swaps"
    items = _corpus_items(corpus, split, False)
    with _item_bar("swaps", len(items)) as progress:
        counts = make_swap_set(
            [(p, r, g, v) for p, r, g, _, v in items],
            out,
            seed=seed,
            seconds=seconds,
            max_photos=max_photos,
            region=region,
            progress=progress,
        )
    console.print(f"{counts} -> {out}")


def _score_checkpoints(
    paths: list[Path], scored: Callable[[Any, str, Path | None, int], dict[str, Any]], crops: Path | None, out: Path
) -> None:
    """One line per checkpoint (video-level AUC over all items and over videos, frame-level AUC), each
    checkpoint's scores in `out`; the crops are found once and shared."""
    from deepshield.detect.training.checkpoint_detector import CheckpointDetector

    def auc_of(m: dict[str, Any]) -> str:
        return f"{m['auc']:.3f}" if "auc" in m else "  -  "

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deepshield-crops-") as tmp:
        lines = []
        for path in paths:
            report = scored(CheckpointDetector(path), path.name, crops or Path(tmp), 1)
            (out / f"scores_{path.parent.name}_{path.stem}.json").write_text(json.dumps(report, indent=1))
            video = report["all"].get("video", {})
            videos_only = report["by_kind"].get("video", {}).get("video", {})
            frame = report["all"].get("frame", {})
            lines.append(
                f"{path}: video-level AUC {auc_of(video)}, videos only {auc_of(videos_only)}, "
                f"frame-level {auc_of(frame)}"
            )
    for line in lines:
        console.print(line, highlight=False)


def evaluate_cmd(
    dataset: Annotated[
        Path, typer.Argument(help="real/+fake/ folder, FaceForensics++, Celeb-DF, DFDC or DFDC preview root")
    ],
    out: Annotated[Path, typer.Option(help="folder for scores.json and roc.png")] = Path("eval_out"),
    frames: Annotated[int, typer.Option(help="frames sampled per video", min=1)] = 32,
    detector: Annotated[str, typer.Option(help="detector name")] = "sbi",
    limit: Annotated[
        int | None, typer.Option(help="at most this many real and fake items, taken in turn per method", min=1)
    ] = None,
    boot: Annotated[int, typer.Option(help="bootstrap resamples for the 95% intervals", min=10)] = 1000,
    crop_cache: Annotated[
        Path | None,
        typer.Option(help="keep face crops here: re-score other checkpoints fast, or resume a stopped run"),
    ] = None,
    compression: Annotated[
        str | None, typer.Option(help="FaceForensics++: the compression to evaluate (raw, c23 or c40)")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="FaceForensics++: its split JSON (e.g. splits/test.json); DFDC or DFDC preview: train or test"
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option(help="worker processes that find faces (the scores are the same for any number)", min=1)
    ] = 1,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="a folder with another version's sbi_small.onnx + .json (e.g. models/v4): scored on the same "
            "crops in the same run and printed beside"
        ),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            help="score these training checkpoints instead (repeatable; needs the train extra): "
            "one line each, to choose among a run's epochs on a dev set"
        ),
    ] = None,
    temporal: Annotated[
        Path | None,
        typer.Option(
            help="a temporal model folder (temporal.onnx + .json; default: the shipped one): videos are scored by "
            "it too, and the frame, temporal and fused figures printed side by side"
        ),
    ] = None,
    no_temporal: Annotated[bool, typer.Option("--no-temporal", help="frame detector only")] = False,
) -> None:
    """Frame- and video-level AUC, EER, TPR@1%FPR with bootstrap intervals, per method; ROC PNG + JSON.

    Exit code 1 if any item could not be scored (the report is still written, with each item's error).
    """
    from deepshield.detect.registry import get_detector
    from deepshield.detect.training.datasets import DatasetSelection, discover, limited
    from deepshield.detect.training.evaluate import evaluate
    from deepshield.detect.training.summary import compare_versions, format_summary, plot_roc

    data = discover(dataset, DatasetSelection(compression=compression, split=split))
    det = get_detector(detector)
    if det is None or not hasattr(det, "logits"):
        raise DeepshieldError(f"detector {detector!r} is not installed (no weights)")
    base_det = None
    if baseline is not None:
        from deepshield.detect.onnx_detector import load_sbi_detector

        base_det = load_sbi_detector(baseline)
        if base_det is None:
            raise DeepshieldError(f"--baseline {baseline}: no sbi_small.onnx and sbi_small.json there")
    if limit is not None:
        data = dataclasses.replace(data, items=limited(data.items, limit))
    console.print(data.summary(), highlight=False)  # what will be scored, before a run that may take hours

    def scored(scorer: Any, name: str, crops: Path | None, workers: int) -> dict[str, Any]:
        with _item_bar(name, len(data.items)) as progress:
            return evaluate(
                data,
                scorer,
                frames=frames,
                n_boot=boot,
                progress=progress,
                crop_cache=crops,
                jobs=workers,
            )

    if checkpoint:
        _score_checkpoints(checkpoint, scored, crop_cache, out)
        return
    with tempfile.TemporaryDirectory(prefix="deepshield-crops-") as tmp:
        # With a baseline, both versions score the same crops, found once (kept in a temporary cache).
        crops = crop_cache or (Path(tmp) if base_det is not None else None)
        report = scored(det, "evaluate", crops, jobs)
        base_report = scored(base_det, f"baseline {base_det.info.version}", crops, 1) if base_det else None
    out.mkdir(parents=True, exist_ok=True)
    if base_report is not None:
        (out / "scores_baseline.json").write_text(json.dumps(base_report, indent=1))
    (out / "scores.json").write_text(json.dumps(report, indent=1))
    plot_roc(report, out / "roc.png")
    failed = [i for i in report["items"] if i["error"]]
    for i in failed[:_LISTED_FAILURES]:
        err_console.print(failed_line(i["path"], i["error"]), highlight=False, soft_wrap=True)
    if len(failed) > _LISTED_FAILURES:
        err_console.print(f"... and {len(failed) - _LISTED_FAILURES} more failures, listed in scores.json")
    for line in format_summary(report):
        console.print(line, highlight=False)
    if base_report is not None:
        for line in compare_versions(report, base_report):
            console.print(line, highlight=False)
    if not no_temporal:
        _temporal_figures(data.items, report, base_report, temporal, boot, out)
    console.print(f"wrote {out / 'scores.json'} and {out / 'roc.png'}")
    if failed:
        raise typer.Exit(1)


def _temporal_figures(
    items: list[Any], report: dict[str, Any], other: dict[str, Any] | None, model: Path | None, boot: int, out: Path
) -> None:
    """Score the videos with the temporal detector and print frame / temporal / fused AUC side by side."""
    from deepshield.detect.temporal import TemporalDetector, shipped_temporal
    from deepshield.detect.training.temporal.evaluate import attach_report, fused_lines, score_videos, summary

    tdet = TemporalDetector(model) if model is not None else shipped_temporal()
    if tdet is None:
        console.print("no temporal detector installed: frame detector figures only")
        return
    with _item_bar("temporal", len(items)) as progress:
        results = score_videos(items, tdet, progress=progress)
    attach_report(results, report)
    frame_name = f"frame v{report.get('detector_version', '?')}"
    for line in fused_lines(results, tdet.fusion, frame_name, other, boot):
        console.print(line, highlight=False)
    (out / "temporal_scores.json").write_text(json.dumps(summary(results, tdet.threshold, boot), indent=1))


#: The detector's commands, registered on the `deepshield` app by `register`.
COMMANDS: dict[str, Callable[..., None]] = {
    "detect-cache": detect_cache,
    "sbi-samples": sbi_samples,
    "train": train_cmd,
    "average-checkpoints": average_cmd,
    "export": export_cmd,
    "calibrate": calibrate_cmd,
    "make-swaps": make_swaps,
    "evaluate": evaluate_cmd,
}


def register(app: typer.Typer) -> None:
    for name, command in COMMANDS.items():
        app.command(name)(command)
