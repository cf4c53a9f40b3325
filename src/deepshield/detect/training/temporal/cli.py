"""Temporal-detector commands: `temporal-cache` (clips of real videos), `temporal-train` (train and export),
`temporal-evaluate` (video-level AUC on a dataset beside another detector's scores, or the share of the corpus's
real videos flagged). Training needs the `train` extra (torch, onnx)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from deepshield.config import get_settings
from deepshield.detect.cli import DEFAULT_CORPUS, _bar, _item_bar
from deepshield.errors import DeepshieldError
from deepshield.terminal import plain_console

console = plain_console()


def _work(*parts: str) -> Path:
    return get_settings().work_dir.joinpath("temporal", *parts)


def _pool_sources(pool: Path) -> dict[str, Any]:
    """A pool's `pool_sources.json` (written by `temporal-pool`), or {} for a pool made before it existed."""
    from deepshield.textfiles import read_json_file

    path = pool / "pool_sources.json"
    if not path.is_file():
        return {}
    sources = read_json_file(path, "pool sources")
    if not isinstance(sources, dict):
        raise DeepshieldError(f"{path} is not a pool's sources record (a JSON object)")
    return sources


def register(app: typer.Typer) -> None:
    @app.command("temporal-cache")
    def temporal_cache(
        corpus: Annotated[Path, typer.Option(help="the shared face corpus (its real_videos/)")] = DEFAULT_CORPUS,
        out: Annotated[Path | None, typer.Option(help="cache folder (default $DEEPSHIELD_WORK/temporal/clips)")] = None,
        max_frames: Annotated[int, typer.Option(help="first frames of each video to keep", min=8)] = 300,
        jobs: Annotated[int, typer.Option(help="worker processes finding faces", min=1)] = 1,
        split: Annotated[
            list[str] | None, typer.Option(help="only these identity splits (repeatable; training reads train, val)")
        ] = None,
    ) -> None:
        """Crop the main face of every frame of the corpus's real videos, smoothed over time (split by identity)."""
        from deepshield.detect.training.identities import list_corpus
        from deepshield.detect.training.temporal.clips import build_clip_cache

        if not corpus.is_dir():
            raise DeepshieldError(f"no such folder: {corpus}")
        items = [
            (i.path, i.rel, i.group, i.split)
            for i in list_corpus(corpus)
            if i.is_video and (not split or i.split in split)
        ]
        if not items:
            raise DeepshieldError(f"no videos under {corpus}")
        out = out or _work("clips")
        with _item_bar("clips", len(items)) as progress:
            counts = build_clip_cache(items, out, max_frames, progress=progress, jobs=jobs)
        console.print(f"frames per split: {counts} -> {out}")

    @app.command("temporal-train")
    def temporal_train(
        cache: Annotated[Path | None, typer.Option(help="clip cache (default $DEEPSHIELD_WORK/temporal/clips)")] = None,
        out: Annotated[Path | None, typer.Option(help="run folder (default $DEEPSHIELD_WORK/temporal/run)")] = None,
        export_to: Annotated[
            Path | None, typer.Option(help="where temporal.onnx goes (default: the run folder)")
        ] = None,
        version: Annotated[str, typer.Option(help="model version string")] = "1",
        minutes: Annotated[float, typer.Option(help="wall-clock training budget", min=0.05)] = 20.0,
        batch_pairs: Annotated[int, typer.Option(help="pairs per step", min=1)] = 8,
        frames: Annotated[int, typer.Option(help="consecutive frames per clip", min=4)] = 8,
        size: Annotated[int, typer.Option(help="crop side in pixels (a multiple of 16)", min=32)] = 96,
        workers: Annotated[int, typer.Option(help="processes synthesising pairs", min=0)] = 1,
        threads: Annotated[int, typer.Option(help="torch threads", min=1)] = 2,
        seed: Annotated[int, typer.Option()] = 0,
        init_from: Annotated[
            Path | None, typer.Option(help="go on from this checkpoint's weights (same frames and size)")
        ] = None,
    ) -> None:
        """Train the temporal-coherence network on real clips and synthetic fakes, then export it to ONNX."""
        try:
            from deepshield.detect.training.temporal.export import export_onnx, val_real_probs
            from deepshield.detect.training.temporal.model import TemporalNetConfig
            from deepshield.detect.training.temporal.synth import SynthParams
            from deepshield.detect.training.temporal.train import TrainSettings, train
        except ModuleNotFoundError as e:
            raise DeepshieldError(f"training needs the 'train' extra ({e.name} missing)") from e
        if size % 16:
            raise DeepshieldError(f"--size must be a multiple of 16 (got {size})")
        cache = cache or _work("clips")
        run = out or _work("run")
        settings = TrainSettings(
            cache_dir=cache,
            seed=seed,
            batch_pairs=batch_pairs,
            time_budget_min=minutes,
            threads=threads,
            num_workers=workers,
            init_from=init_from,
            net=TemporalNetConfig(frames=frames, size=size),
            synth=SynthParams(frames=frames, size=size),
        )
        rec = train(settings, run, log=lambda r: console.print(json.dumps(r), highlight=False))
        dest = export_to or run
        path = export_onnx(run / "best.pt", dest, version)
        probs = val_real_probs(dest, cache)
        path = export_onnx(run / "best.pt", dest, version, real_probs=probs)
        meta = json.loads((dest / "temporal.json").read_text())
        console.print(f"last: {json.dumps(rec)}", highlight=False)
        console.print(
            f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), threshold {meta['threshold']} "
            f"(from {len(probs)} real validation clips)",
            highlight=False,
        )

    @app.command("temporal-pool")
    def temporal_pool(
        cache: Annotated[Path | None, typer.Option(help="clip cache (default $DEEPSHIELD_WORK/temporal/clips)")] = None,
        out: Annotated[Path | None, typer.Option(help="pool folder (default $DEEPSHIELD_WORK/temporal/pool)")] = None,
        chunks: Annotated[
            int, typer.Option(help="chunks of 320 pairs from the training identities' videos", min=1)
        ] = 8,
        val_pairs: Annotated[int, typer.Option(help="pairs from the validation identities' videos", min=16)] = 240,
        backbone: Annotated[
            str,
            typer.Option(help="frozen features: 'forgery' (the frame detector's network) or 'imagenet'"),
        ] = "forgery",
    ) -> None:
        """Synthesise pairs of real clips and fakes once and store their frozen MobileNetV2 features (the
        training pool is written after every chunk, so a stopped run keeps what it made)."""
        try:
            from deepshield.detect.training.temporal.clips import load_clip_cache
            from deepshield.detect.training.temporal.features import HeadConfig, backbone_record, frame_features
            from deepshield.detect.training.temporal.pool import OnnxFrameFeatures, build_pool, concat_pools
            from deepshield.detect.training.temporal.synth import SynthParams
        except ModuleNotFoundError as e:
            raise DeepshieldError(f"training needs the 'train' extra ({e.name} missing)") from e
        cache = cache or _work("clips")
        out = out or _work("pool")
        frames = frame_features(backbone)
        out.mkdir(parents=True, exist_ok=True)
        cfg = HeadConfig()
        extract = OnnxFrameFeatures(frames, out / "frame_features.onnx")
        params = SynthParams(frames=cfg.frames, size=cfg.size)
        val_videos = load_clip_cache(cache, ["val"])
        build_pool(val_videos, extract, val_pairs, params, 1).save(out / "pool_val.npz")
        videos = load_clip_cache(cache, ["train"])
        # What the pool was made from, for the model's metadata (`temporal-head` copies it there).
        sources = {
            "backbone": backbone_record(backbone),
            "train_videos": [v.rel for v in videos],
            "train_people": len({v.group for v in videos}),
            "train_frames": sum(len(v) for v in videos),
            "val_videos": [v.rel for v in val_videos],
        }
        (out / "pool_sources.json").write_text(json.dumps(sources, indent=1))
        parts = []
        with _bar() as bar:
            task = bar.add_task("pairs", total=chunks * 320, item="")
            for k in range(chunks):
                parts.append(build_pool(videos, extract, 320, params, 100 + k))
                concat_pools(parts).save(out / "pool_train.npz")
                bar.update(task, completed=(k + 1) * 320)
        console.print(f"wrote {out}/pool_val.npz and pool_train.npz")

    @app.command("temporal-head")
    def temporal_head(
        pool: Annotated[Path | None, typer.Option(help="pool folder (default $DEEPSHIELD_WORK/temporal/pool)")] = None,
        out: Annotated[Path | None, typer.Option(help="model folder (default $DEEPSHIELD_WORK/temporal/head)")] = None,
        version: Annotated[str, typer.Option(help="model version string")] = "3",
        epochs: Annotated[int, typer.Option(min=1)] = 30,
        cache: Annotated[Path | None, typer.Option(help="clip cache: its validation videos set the threshold")] = None,
        seed: Annotated[int, typer.Option()] = 0,
    ) -> None:
        """Train the temporal head on a feature pool and export backbone + head to one ONNX file."""
        try:
            from deepshield.detect.training.temporal.export import (
                MAX_BYTES_FEATURES,
                val_real_probs,
                write_meta,
                write_onnx,
            )
            from deepshield.detect.training.temporal.features import (
                FeatureTemporalNet,
                HeadConfig,
                pool_frame_features,
            )
            from deepshield.detect.training.temporal.pool import FeaturePool, train_head
            from deepshield.detect.training.temporal.synth import SynthParams
        except ModuleNotFoundError as e:
            raise DeepshieldError(f"training needs the 'train' extra ({e.name} missing)") from e
        pool = pool or _work("pool")
        out = out or _work("head")
        sources = _pool_sources(pool)
        frames = pool_frame_features(sources.get("backbone"))
        cfg = HeadConfig(features=frames.backbone.feature_dim)
        train_pool, val_pool = FeaturePool.load(pool / "pool_train.npz"), FeaturePool.load(pool / "pool_val.npz")
        head, rec = train_head(
            train_pool, val_pool, cfg, epochs=epochs, seed=seed, log=lambda r: console.print(json.dumps(r))
        )
        net = FeatureTemporalNet(frames, head)
        path, diff = write_onnx(net, cfg.frames, cfg.size, out, MAX_BYTES_FEATURES)
        meta = {
            "method": f"{frames.backbone.name}-mobilenetv2-features+temporal-head",
            "version": version,
            "frames": cfg.frames,
            "input_size": cfg.size,
            "margin": SynthParams().margin,
            "threshold": 0.5,
            "head": cfg.to_dict(),
            "epochs": epochs,
            "best": rec,
            "train_pairs": len(train_pool.kind),
            "onnx_torch_max_diff": diff,
        }
        if sources:
            meta["train_data"] = sources
        write_meta(out, meta)
        if cache is not None:
            from deepshield.detect.training.temporal.export import real_threshold

            meta["threshold"] = real_threshold(val_real_probs(out, cache))
            write_meta(out, meta)
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), threshold {meta['threshold']}")

    @app.command("temporal-fuse")
    def temporal_fuse(
        report: Annotated[
            list[Path], typer.Argument(help="`temporal-evaluate` reports run with --baseline-scores (pooled)")
        ],
        model: Annotated[Path, typer.Option(help="folder with temporal.json: the fusion and thresholds go there")],
        quantile: Annotated[float, typer.Option(help="real videos' quantile the fused threshold sits above")] = 0.95,
        in_verdict: Annotated[
            bool, typer.Option(help="let the fused and temporal scores flag a file (else shown for review only)")
        ] = False,
        temporal_quantile: Annotated[
            float, typer.Option(help="real videos' quantile the temporal detector's own threshold sits above")
        ] = 1.0,
    ) -> None:
        """Fit the fusion (class-balanced logistic regression on both detectors' logits) on labelled videos, and
        set the temporal and fused thresholds above the real videos' scores."""
        from deepshield.detect.temporal import Fusion
        from deepshield.detect.training.temporal.fusion import (
            fit_fusion,
            fused_threshold,
            fusion_check,
            temporal_threshold,
        )
        from deepshield.textfiles import read_json_file

        rows = []
        source: list[str] = []  # the report each row came from
        for r in report:
            rep = read_json_file(r, "temporal-evaluate report")
            kept = [i for i in rep.get("items", []) if i.get("score") is not None and i.get("baseline") is not None]
            rows += kept
            source += [r.name] * len(kept)
        if not rows:
            raise DeepshieldError(
                "no video has both a temporal and a frame score: run temporal-evaluate with --baseline-scores"
            )
        frame = [float(i["baseline"]) for i in rows]
        temporal = [float(i["score"]) for i in rows]
        labels = [int(i["label"]) for i in rows]
        w_f, w_t, b = fit_fusion(frame, temporal, labels)
        names = ", ".join(p.name for p in report)
        fusion = Fusion(w_f, w_t, b, 0.5, f"{len(rows)} videos of {names}")
        real = [k for k, y in enumerate(labels) if y == 0]
        fusion = Fusion(
            w_f,
            w_t,
            b,
            fused_threshold(fusion, [frame[k] for k in real], [temporal[k] for k in real], quantile),
            fusion.fitted_on,
            in_verdict,
        )
        check = fusion_check(frame, temporal, labels, source, fusion)
        for line in check["lines"]:
            console.print(line, highlight=False)
        meta_path = model / "temporal.json"
        meta = read_json_file(meta_path, "temporal model metadata")
        meta["fusion"] = fusion.to_dict()
        meta["fusion_check"] = check["auc"]
        # Alone, the temporal detector flags a video only above (the quantile of) every real video's score.
        meta["threshold"] = temporal_threshold([temporal[k] for k in real], temporal_quantile)
        meta["threshold_rule"] = f"max(0.5, {temporal_quantile} quantile of {len(real)} real videos) + 0.005"
        meta_path.write_text(json.dumps(meta, indent=1))
        console.print(json.dumps(fusion.to_dict()), highlight=False)
        console.print(f"temporal threshold {meta['threshold']}", highlight=False)

    @app.command("temporal-evaluate")
    def temporal_evaluate(
        dataset: Annotated[Path, typer.Argument(help="a dataset `deepshield evaluate` reads, or the face corpus")],
        model: Annotated[Path, typer.Option(help="folder with temporal.onnx and temporal.json")],
        out: Annotated[Path, typer.Option(help="report JSON to write")] = Path("temporal_scores.json"),
        baseline_scores: Annotated[
            Path | None, typer.Option(help="a `deepshield evaluate` scores.json: its video scores printed beside")
        ] = None,
        windows: Annotated[int, typer.Option(help="runs of consecutive frames per video", min=1)] = 4,
        corpus: Annotated[
            bool, typer.Option("--corpus", help="DATASET is the shared face corpus: score its real videos, per split")
        ] = False,
        boot: Annotated[int, typer.Option(help="bootstrap resamples for the 95% intervals", min=10)] = 1000,
    ) -> None:
        """Video-level AUC overall and per method (and the real videos flagged) of the temporal detector."""
        from deepshield.detect.training.datasets import EvalItem, discover
        from deepshield.detect.training.temporal.detector import TemporalDetector
        from deepshield.detect.training.temporal.evaluate import attach_baseline, format_lines, score_videos, summary

        det = TemporalDetector(model)
        if corpus:
            from deepshield.detect.training.identities import list_corpus

            items = [EvalItem(i.path, 0, "real", i.split) for i in list_corpus(dataset) if i.is_video]
        else:
            items = discover(dataset).items
        with _item_bar("videos", len(items)) as progress:
            results = score_videos(items, det, windows, progress=progress)
        if baseline_scores is not None:
            console.print(f"baseline scores for {attach_baseline(results, baseline_scores)} of {len(results)} videos")
        rep = summary(results, det.threshold, boot)
        if corpus:
            for split in sorted({r.real_pool for r in results}):
                s = [r.score for r in results if r.real_pool == split and r.score is not None]
                flagged = sum(v >= det.threshold for v in s)
                rep[f"real_flagged_{split}"] = [flagged, len(s)]
                console.print(f"{split}: {flagged} of {len(s)} real videos flagged", highlight=False)
        for line in format_lines(rep):
            console.print(line, highlight=False)
        out.write_text(json.dumps(rep, indent=1))
        console.print(f"wrote {out}")
