"""`deepshield temporal-train`: the temporal-coherence network trained on pairs of real clips and their synthetic
fakes (`synth.py`), from the clip cache of real videos only, on CPU, within a wall-clock budget.

Each step draws balanced pairs (a real clip of K consecutive frames and a fake made from it, degraded alike) from
the training identities' videos; the learning rate warms up and then follows a cosine over the time budget (a
shared CPU's speed is unknown in advance). Every `eval_every_min` minutes the AUC on a fixed set of pairs from
validation identities is logged (overall and per kind of fake) to `metrics.jsonl`, and `last.pt` and `best.pt`
(highest validation AUC, then lowest loss) are written. The data stream is fixed by the seed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from deepshield.detect.training.metrics import auc
from deepshield.detect.training.temporal.clips import VideoFrames, load_clip_cache
from deepshield.detect.training.temporal.model import TemporalNet, TemporalNetConfig
from deepshield.detect.training.temporal.synth import KINDS, SynthParams, make_pair, to_clip_input
from deepshield.detect.training.train import lr_factor
from deepshield.errors import DeepshieldError


@dataclass
class TrainSettings:
    cache_dir: Path
    seed: int = 0
    batch_pairs: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 40
    time_budget_min: float = 20.0
    max_steps: int = 100_000
    threads: int = 2
    num_workers: int = 1  # processes synthesising pairs beside the training step
    val_pairs: int = 96
    eval_every_min: float = 3.0
    init_from: Path | None = None  # a checkpoint to go on from (its weights; a fresh schedule)
    net: TemporalNetConfig = field(default_factory=TemporalNetConfig)
    synth: SynthParams = field(default_factory=SynthParams)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cache_dir"] = str(self.cache_dir)
        d["init_from"] = str(self.init_from) if self.init_from else None
        d["net"] = self.net.to_dict()
        d["synth"]["weights"] = list(self.synth.weights)
        return d


class ClipPairs(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Pair i: a random window of a random video (videos equally likely, so a long video does not dominate) and
    a fake made from it, drawn from a generator seeded by (seed, i): the same stream in any worker layout."""

    def __init__(self, videos: list[VideoFrames], params: SynthParams, seed: int, length: int) -> None:
        self.videos = [v for v in videos if len(v.starts(params.frames))]
        if not self.videos:
            raise DeepshieldError(f"no cached video has {params.frames} consecutive tracked frames")
        self.starts = [v.starts(params.frames) for v in self.videos]
        self.params, self.seed, self.length = params, seed, length

    def __len__(self) -> int:
        return self.length

    def pair(self, i: int, kind: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        rng = np.random.default_rng([self.seed, i])
        v = int(rng.integers(len(self.videos)))
        start = int(rng.choice(self.starts[v]))
        return make_pair(self.videos[v], start, rng, self.params, kind)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake, _ = self.pair(i)
        return torch.from_numpy(to_clip_input(np.stack([real, fake]))), torch.tensor([0.0, 1.0])


def _collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([b[0] for b in batch]), torch.cat([b[1] for b in batch])


def fixed_pairs(ds: ClipPairs, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A deterministic validation set: n pairs, the kinds of fake in turn; (clips, labels, kind per clip)."""
    xs, ys, kinds = [], [], []
    for i in range(n):
        real, fake, kind = ds.pair(i, KINDS[i % len(KINDS)])
        xs += [real, fake]
        ys += [0, 1]
        kinds += [kind, kind]
    return np.stack(xs), np.array(ys), kinds


@torch.no_grad()
def predict(model: nn.Module, clips: np.ndarray, batch: int = 16) -> np.ndarray:
    """Logits of B x K x H x W x 3 uint8 clips."""
    model.eval()
    out = [model(torch.from_numpy(to_clip_input(clips[i : i + batch]))).numpy() for i in range(0, len(clips), batch)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def validation_metrics(logits: np.ndarray, labels: np.ndarray, kinds: list[str]) -> dict[str, float]:
    """Loss and AUC over all validation pairs, and AUC per kind of fake (each kind's fakes against their own
    reals)."""
    z = logits.astype(np.float64)
    loss = float(np.mean(np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z)))))
    out = {"val_loss": loss, "val_auc": auc(labels, logits)}
    k = np.array(kinds)
    for kind in KINDS:
        sel = k == kind
        if sel.any():
            out[f"val_auc_{kind}"] = auc(labels[sel], logits[sel])
    return out


def train(s: TrainSettings, out_dir: Path, log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train from scratch until the time budget or `max_steps` ends; returns the last validation record."""
    torch.manual_seed(s.seed)
    torch.set_num_threads(s.threads)
    if s.synth.frames != s.net.frames or s.synth.size != s.net.size:
        raise DeepshieldError("the synthesis and the network must agree on frames and size")
    train_videos = load_clip_cache(s.cache_dir, ["train"])
    val_videos = load_clip_cache(s.cache_dir, ["val"])
    ds = ClipPairs(train_videos, s.synth, s.seed, s.max_steps * s.batch_pairs)
    val_x, val_y, val_kinds = fixed_pairs(ClipPairs(val_videos, s.synth, s.seed + 1, s.val_pairs), s.val_pairs)
    model = TemporalNet(s.net)
    if s.init_from is not None:
        from deepshield.detect.training.checkpoint import load_checkpoint

        model.load_state_dict(load_checkpoint(s.init_from)["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    budget_s = s.time_budget_min * 60
    t_start = time.time()

    def lr_at(step: int) -> float:
        return lr_factor(step, 0, s.warmup_steps, s.max_steps, (time.time() - t_start) / budget_s)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "settings.json").write_text(json.dumps(s.to_dict(), indent=1))
    log_path = out_dir / "metrics.jsonl"
    loader = DataLoader(
        ds, batch_size=s.batch_pairs, shuffle=False, num_workers=s.num_workers, collate_fn=_collate, drop_last=True
    )
    best: tuple[float, float] = (-1.0, 0.0)
    rec: dict[str, Any] = {}
    seen, loss_sum, nb = 0, 0.0, 0
    t_eval = time.time()
    for step, (x, y) in enumerate(loader, start=1):
        model.train()
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        seen += len(x)
        loss_sum += float(loss.detach())
        nb += 1
        elapsed = time.time() - t_start
        done = elapsed >= budget_s or step >= s.max_steps
        if done or time.time() - t_eval >= s.eval_every_min * 60:
            metrics = validation_metrics(predict(model, val_x), val_y, val_kinds)
            rec = {
                "step": step,
                "clips_seen": seen,
                "train_loss": round(loss_sum / max(nb, 1), 4),
                **{k: round(v, 4) for k, v in metrics.items()},
                "elapsed_s": round(elapsed, 1),
                "clips_per_s": round(seen / max(elapsed, 1e-6), 2),
                "lr": opt.param_groups[0]["lr"],
            }
            loss_sum, nb = 0.0, 0
            with log_path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            if log:
                log(rec)
            state = {"model": model.state_dict(), "config": s.to_dict(), "step": step, **metrics}
            torch.save(state, out_dir / "last.pt")
            # Best AUC, then lowest loss among equal AUCs (synthetic fakes can saturate the AUC). Not the loss
            # alone: in a short run it rises while the ranking improves (the logits' scale is still settling).
            if (metrics["val_auc"], -metrics["val_loss"]) > best:
                best = (metrics["val_auc"], -metrics["val_loss"])
                torch.save(state, out_dir / "best.pt")
            t_eval = time.time()
        if done:
            break
    return rec


def settings_from(d: dict[str, Any]) -> tuple[TemporalNetConfig, SynthParams]:
    """The network and synthesis settings a checkpoint was trained with."""
    syn = {k: v for k, v in d.get("synth", {}).items() if k in SynthParams.__dataclass_fields__}
    if "weights" in syn:
        syn["weights"] = tuple(syn["weights"])
    return TemporalNetConfig.from_dict(d.get("net", {})), SynthParams(**syn)
