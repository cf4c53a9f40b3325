"""Detector training throughput: what bounds `deepshield train`, the pair synthesis or the network?

Times, on the same face crops and in the same run:
- pair synthesis in one process, for self-blends, cross-identity blends and the shipped recipe's mix;
- the shipped recipe through a DataLoader with N worker processes, beside the same loader in-process (the
  baseline), so the scaling over cores is measured rather than assumed;
- one training step (forward, backward, AdamW) of the network on batches of the same size, on 1 and 2 threads.

Then it says which of the two bounds training here, and what that projects for a machine with more cores
and an accelerator (where the network step is nearly free, so the synthesis rate over all cores is the bound).

    PYTHONPATH=src python benchmarks/training.py [--cache $DEEPSHIELD_WORK/detect/faces] [--workers N]

`--workers` defaults to the machine's core count. Without `--cache` (or the work folder's face cache) it builds a
small temporary cache from `--photos` LFW photos of the shared corpus, as `deepshield detect-cache` does (a few
seconds), so the rates are those of fewer crops than a real run's.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from corpus import faces_dir  # noqa: E402
from timing import timed, timed_alternately  # noqa: E402

from deepshield.detect.training.facecache import CachedFaces, build_cache, load_cache  # noqa: E402
from deepshield.detect.training.sbi import SbiParams  # noqa: E402
from deepshield.detect.training.train import (  # noqa: E402
    SelfBlendDataset,
    collate_pairs,
    load_config,
    sbi_params,
    training_step,
)
from deepshield.errors import DeepshieldError  # noqa: E402

SHIPPED_CONFIG = ROOT / "configs" / "sbi_small_ft3.toml"  # version 4's recipe (the config in sbi_small.json)


def faces_for_benchmark(cache: Path | None, photos: int, tmp: Path) -> CachedFaces | None:
    """The training crops of a face cache, or those of a small cache built now from the corpus's LFW photos."""
    if cache is not None:
        return load_cache(cache, ["train"])
    lfw = faces_dir() / "lfw_1000"
    if not lfw.is_dir():
        return None
    files = sorted(lfw.glob("*.jpg"))[:photos]
    build_cache([(p, p.name, p.stem, "train") for p in files], tmp / "faces", frames_per_video=1)
    return load_cache(tmp / "faces", ["train"])


def synthesis_rate(faces: CachedFaces, params: SbiParams, n: int, repeats: int) -> float:
    """Pairs per second drawn in this process (each repeat a fresh epoch, so no pair is drawn twice)."""
    ds = SelfBlendDataset(faces, params, seed=7)
    count = min(n, len(ds))

    def draw() -> None:
        ds.epoch += 1
        for i in range(count):
            ds[i]

    return count / timed(draw, repeats)


def loader_rates(
    faces: CachedFaces, params: SbiParams, workers: int, batch: int, pairs: int, repeats: int
) -> tuple[float, float]:
    """Pairs per second through the training DataLoader in-process and with `workers` worker processes, over the
    first `pairs` crops (donors still drawn from all of them)."""
    from torch.utils.data import DataLoader, Subset

    ds = SelfBlendDataset(faces, params, seed=11)
    subset = Subset(ds, range(min(pairs, len(ds))))

    def run(num_workers: int) -> Callable[[], None]:
        def go() -> None:
            ds.epoch += 1
            loader = DataLoader(subset, batch_size=batch, num_workers=num_workers, collate_fn=collate_pairs)
            for _ in loader:
                pass

        return go

    n_pairs = len(subset)
    t_in, t_workers = timed_alternately([run(0), run(workers)], repeats)
    return n_pairs / t_in, n_pairs / t_workers


def network_rate(
    model_cfg: dict[str, object],
    params: SbiParams,
    faces: CachedFaces,
    batch: int,
    threads: int,
    steps: int,
    repeats: int,
) -> float:
    """Images per second through training steps of the network on real synthesised batches."""
    import torch

    from deepshield.detect.training.model import build_model

    torch.set_num_threads(threads)
    ds = SelfBlendDataset(faces, params, seed=13)
    batches = [collate_pairs([ds[(s * batch + k) % len(ds)] for k in range(batch)]) for s in range(2)]
    model = build_model(model_cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def go() -> None:
        for s in range(steps):
            x, y, dense = batches[s % 2]
            training_step(model, opt, x, y, dense, aux_weight=1.0)

    return steps * batch * 2 / timed(go, repeats)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=None, help="face cache (default: the work folder's, if built)")
    ap.add_argument("--photos", type=int, default=96, help="LFW photos for a temporary cache when there is none")
    ap.add_argument("--config", type=Path, default=SHIPPED_CONFIG)
    ap.add_argument("--pairs", type=int, default=200, help="pairs per timing of the in-process synthesis")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--steps", type=int, default=8, help="training steps per timing of the network")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--project-cores", type=int, default=16, help="cores of the machine to project for")
    args = ap.parse_args()

    from deepshield.config import get_settings

    cfg = load_config(args.config)
    params = sbi_params(cfg)
    batch = int(cfg["train"].get("batch_pairs", 16))
    cache = args.cache
    if cache is None and (get_settings().face_cache_dir / "index.jsonl").is_file():
        cache = get_settings().face_cache_dir
    with tempfile.TemporaryDirectory() as tmp:
        try:
            faces = faces_for_benchmark(cache, args.photos, Path(tmp))
        except DeepshieldError as e:  # a --cache that is not a face cache, a corrupt index
            sys.exit(f"error: {e}")
        if faces is None:
            print(f"skipped: no face cache and no corpus at {faces_dir()} to build one from")
            return
        where = str(cache) if cache else f"a temporary cache of {args.photos} LFW photos"
        print(f"{len(faces)} training crops from {where}; recipe {args.config.name}, {params.input_size} px")

        self_only = synthesis_rate(faces, dataclasses.replace(params, cross_prob=0.0), args.pairs, args.repeats)
        cross_only = synthesis_rate(faces, dataclasses.replace(params, cross_prob=1.0), args.pairs, args.repeats)
        mix = synthesis_rate(faces, params, args.pairs, args.repeats)
        print(
            f"synthesis, one process: self-blends {self_only:.0f} pairs/s, cross-identity blends {cross_only:.0f}, "
            f"the recipe's mix (cross_prob {params.cross_prob}) {mix:.0f} ({2 * mix:.0f} images/s)"
        )
        in_process, with_workers = loader_rates(faces, params, args.workers, batch, 2 * args.pairs, args.repeats)
        print(
            f"DataLoader, {args.workers} worker processes: {with_workers:.0f} pairs/s; baseline in-process "
            f"{in_process:.0f} pairs/s ({with_workers / in_process:.2f}x on {os.cpu_count()} cores)"
        )
        nets = {t: network_rate(cfg["model"], params, faces, batch, t, args.steps, args.repeats) for t in (1, 2)}
        print(
            f"network training step, batches of {batch} pairs: {nets[1]:.0f} images/s on 1 thread, "
            f"{nets[2]:.0f} on 2 threads"
        )

    per_core = 2 * mix
    bound = "the synthesis" if per_core < nets[1] else "the network"
    print(
        f"one core synthesises {per_core:.0f} images/s and one thread trains {nets[1]:.0f}: on a CPU, {bound} "
        f"bounds training"
    )
    projected = per_core * (args.project_cores - 1)
    print(
        f"projection (an estimate, not a measurement): with {args.project_cores} cores synthesising and the "
        f"network on an accelerator, about {projected:.0f} images/s, {projected * 600 / 1e6:.2f} M images in "
        f"10 min; if the workers scale as they did here"
    )


if __name__ == "__main__":
    main()
