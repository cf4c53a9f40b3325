"""Temporal detector backbones compared: the same head trained on feature pools made with different frozen
backbones (`temporal-pool --backbone imagenet|forgery`), over several seeds, scored on the same clips of the
same videos. The figures of the model card's "Why this backbone" table.

    PYTHONPATH=src python benchmarks/temporal_backbones.py --pool POOL_IMAGENET --pool POOL_FORGERY \\
        --dataset /work/devset --frame-scores eval_dev/scores.json \\
        [--corpus ../shared/data/faces --frame-scores eval_corpus/scores.json] \\
        [--unseen-reals DIR] [--seeds 0,1,2] [--windows 8] [--clips-cache clips.npz]

Both pools must be made from the same videos with the same seeds (then their synthetic pairs are the same);
each pool folder holds `frame_features.onnx`, through which its clips are described. Per pool and seed: the
synthetic validation AUC, the video-level AUC of the temporal score alone on the dataset, of the dataset's fakes
against the dataset's and the corpus' real videos, and against the `--unseen-reals` videos (real videos no pool
was made from), and the fusion with the frame detector left one out (`fusion.leave_one_out`; needs the frame
detector's `deepshield evaluate` scores of the same files). Printed as the mean and range over seeds.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepshield.detect.training.datasets import EvalItem, discover  # noqa: E402
from deepshield.detect.training.identities import VIDEO_SUFFIXES, list_corpus  # noqa: E402
from deepshield.detect.training.metrics import auc  # noqa: E402
from deepshield.errors import DeepshieldError  # noqa: E402


@dataclass
class Video:
    path: str  # resolved
    label: int
    group: str  # "dataset", "corpus" or "unseen"


def _videos(dataset: Path, corpus: Path | None, unseen: Path | None) -> list[tuple[Video, EvalItem]]:
    out = [(Video(str(i.path.resolve()), i.label, "dataset"), i) for i in discover(dataset).items]
    if corpus is not None:
        out += [
            (Video(str(i.path.resolve()), 0, "corpus"), EvalItem(i.path, 0, "real", i.split))
            for i in list_corpus(corpus)
            if i.is_video
        ]
    if unseen is not None:
        out += [
            (Video(str(p.resolve()), 0, "unseen"), EvalItem(p, 0, "real", "unseen"))
            for p in sorted(unseen.rglob("*"))
            if p.suffix.lower() in VIDEO_SUFFIXES
        ]
    return [(v, i) for v, i in out if i.path.suffix.lower() in VIDEO_SUFFIXES]


def _clips(videos: list[tuple[Video, EvalItem]], windows: int, cache: Path | None) -> dict[str, np.ndarray]:
    """Each video's clips (N x 8 x S x S x 3), found once: every pool scores the same pixels."""
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    from deepshield.detect.training.temporal.clips import video_clips
    from deepshield.faces import FaceAnalyzer

    out: dict[str, np.ndarray] = {}
    with FaceAnalyzer() as analyzer:
        for k, (v, item) in enumerate(videos):
            print(f"  clips {k + 1}/{len(videos)} {item.path.name}", file=sys.stderr, flush=True)
            try:
                clips = [c for c, _ in video_clips(analyzer, item.path, windows, 8)]
            except DeepshieldError as e:
                print(f"  {item.path.name}: {e.message}", file=sys.stderr)
                continue
            if clips:
                out[v.path] = np.stack(clips)
    if cache is not None:
        np.savez(cache, **out)
    return out


def _features(pool: Path, clips: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from deepshield.detect.training.temporal.pool import OnnxFrameFeatures

    extract = OnnxFrameFeatures(None, pool / "frame_features.onnx")
    return {path: extract(c) for path, c in clips.items()}


def _frame_scores(files: list[Path]) -> dict[str, float]:
    from deepshield.textfiles import read_json_file

    out = {}
    for f in files:
        for item in read_json_file(f, "scores file").get("items", []):
            if item.get("video_score") is not None:
                out[str(Path(item["path"]).resolve())] = float(item["video_score"])
    return out


def _auc(videos: list[Video], score: dict[str, float], reals: set[str]) -> float:
    """The dataset's fakes against the real videos of the `reals` groups."""
    rows = [
        v
        for v in videos
        if v.path in score and ((v.label == 1 and v.group == "dataset") or (v.label == 0 and v.group in reals))
    ]
    return auc(np.array([v.label for v in rows]), np.array([score[v.path] for v in rows]))


def _seed_row(
    pool: Path, feats: dict[str, np.ndarray], videos: list[Video], frame: dict[str, float], seed: int, epochs: int
) -> dict[str, float]:
    import torch

    from deepshield.detect.training.temporal.features import HeadConfig
    from deepshield.detect.training.temporal.fusion import leave_one_out
    from deepshield.detect.training.temporal.pool import FeaturePool, train_head

    train, val = FeaturePool.load(pool / "pool_train.npz"), FeaturePool.load(pool / "pool_val.npz")
    head, best = train_head(train, val, HeadConfig(features=train.real.shape[-1]), epochs=epochs, seed=seed)
    with torch.no_grad():
        t = {p: float(torch.sigmoid(head(torch.from_numpy(f))).mean()) for p, f in feats.items()}
    row = {
        "synthetic validation": float(best["val_auc"]["all"]),
        "dataset videos, temporal alone": _auc(videos, t, {"dataset"}),
        "dataset fakes vs dataset + corpus reals": _auc(videos, t, {"dataset", "corpus"}),
    }
    if any(v.group == "unseen" for v in videos):
        row["dataset fakes vs unseen reals"] = _auc(videos, t, {"unseen"})
    # The fusion as `temporal-fuse` fits it (dataset and corpus videos), each video scored by a fit on the others.
    rows = [v for v in videos if v.path in t and v.path in frame and v.group in ("dataset", "corpus")]
    labels = np.array([v.label for v in rows])
    if min(int(labels.sum()), int((1 - labels).sum())) >= 2:
        fused = leave_one_out([frame[v.path] for v in rows], [t[v.path] for v in rows], labels.tolist())
        alone = np.array([frame[v.path] for v in rows])
        on_dataset = np.array([v.group == "dataset" for v in rows])
        row["dataset videos, fusion left one out"] = auc(labels[on_dataset], fused[on_dataset])
        row["dataset videos, frame detector alone"] = auc(labels[on_dataset], alone[on_dataset])
        row["dataset + corpus, fusion left one out"] = auc(labels, fused)
        row["dataset + corpus, frame detector alone"] = auc(labels, alone)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=Path, action="append", required=True, help="a feature pool folder (repeat)")
    ap.add_argument("--dataset", type=Path, required=True, help="a labelled dataset `deepshield evaluate` reads")
    ap.add_argument("--corpus", type=Path, default=None, help="the shared face corpus: its real videos")
    ap.add_argument(
        "--unseen-reals", type=Path, default=None, help="a folder of real videos only, none of them in a pool"
    )
    ap.add_argument("--frame-scores", type=Path, action="append", default=[], help="`deepshield evaluate` scores")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--clips-cache", type=Path, default=None, help="npz of the videos' clips, written once")
    args = ap.parse_args()
    for pool in args.pool:
        missing = [n for n in ("frame_features.onnx", "pool_train.npz", "pool_val.npz") if not (pool / n).is_file()]
        if missing:
            sys.exit(f"error: {pool} is not a feature pool of `deepshield temporal-pool` (no {', '.join(missing)})")
    try:
        pairs = _videos(args.dataset, args.corpus, args.unseen_reals)
        clips = _clips(pairs, args.windows, args.clips_cache)
        videos = [v for v, _ in pairs if v.path in clips]
        frame = _frame_scores(args.frame_scores)
        seeds = [int(s) for s in args.seeds.split(",")]
        table: dict[str, dict[str, list[float]]] = {}
        for pool in args.pool:
            feats = _features(pool, {v.path: clips[v.path] for v in videos})
            for seed in seeds:
                for k, value in _seed_row(pool, feats, videos, frame, seed, args.epochs).items():
                    table.setdefault(k, {}).setdefault(str(pool), []).append(value)
    except DeepshieldError as e:
        sys.exit(f"error: {e.message}")
    print(f"{len(videos)} videos, seeds {seeds}; mean (min-max) over seeds")
    print(f"{'':44}" + "".join(f"{p.name[:30]:>32}" for p in args.pool))
    for k, per_pool in table.items():
        cells = []
        for p in args.pool:
            v = per_pool.get(str(p), [])
            cells.append(f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" if v else "-")
        print(f"{k:44}" + "".join(f"{c:>32}" for c in cells))


if __name__ == "__main__":
    main()
