"""A fixed pool of frame features of real clips and their synthetic fakes, computed once through the frozen
backbone, and the temporal head trained on it in seconds.

The backbone never changes, so a pair's features never change either: synthesising pairs and running them through
MobileNetV2 (the slow part on two cores) is done once per pool (`build_pool`, onnxruntime), and the head
(`features.TemporalHead`) is then trained for many epochs on the stored features (`train_head`). Pairs are drawn
evenly over videos, so no one long video dominates, and both clips of a pair share crop and degradation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepshield.detect.training.metrics import auc
from deepshield.detect.training.temporal.clips import VideoFrames
from deepshield.detect.training.temporal.export import to_onnx
from deepshield.detect.training.temporal.features import FrameFeatures, HeadConfig, TemporalHead
from deepshield.detect.training.temporal.synth import KINDS, SynthParams, make_pair, to_clip_input
from deepshield.errors import DeepshieldError


class OnnxFrameFeatures:
    """`FrameFeatures` through onnxruntime (about 4 times torch eager's speed on two cores)."""

    def __init__(self, frames: FrameFeatures | None, path: Path, threads: int = 2) -> None:
        """Exports `frames` to `path` first; with `frames` None, reads the features a pool was made with (its
        `frame_features.onnx`)."""
        import onnxruntime as ort

        if frames is not None:
            to_onnx(frames, torch.zeros(2, 3, 112, 112), path, ("x", "f"), {0: "n", 2: "h", 3: "w"})
        elif not path.is_file():
            raise DeepshieldError(f"no frame features model at {path}: build the pool with `temporal-pool`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """B x K x S x S x 3 uint8 clips -> B x K x (the backbone's feature size) float32."""
        x = to_clip_input(clips)  # B 3 K S S
        b, c, k, h, w = x.shape
        flat = np.ascontiguousarray(x.transpose(0, 2, 1, 3, 4).reshape(b * k, c, h, w))
        f = self.session.run(None, {"x": flat})[0]
        return np.asarray(f, np.float32).reshape(b, k, -1)


@dataclass
class FeaturePool:
    real: np.ndarray  # N x K x D float16
    fake: np.ndarray  # N x K x D float16
    kind: np.ndarray  # N int: index into synth.KINDS
    video: np.ndarray  # N int: index of the source video

    def save(self, path: Path) -> None:
        np.savez(path, real=self.real, fake=self.fake, kind=self.kind, video=self.video)

    @staticmethod
    def load(path: Path) -> FeaturePool:
        try:
            with np.load(path) as z:
                return FeaturePool(z["real"], z["fake"], z["kind"], z["video"])
        except (OSError, KeyError, ValueError) as e:
            raise DeepshieldError(f"{path} is not a feature pool ({e}): build it with `temporal-pool`") from None


def concat_pools(parts: list[FeaturePool]) -> FeaturePool:
    return FeaturePool(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("real", "fake", "kind", "video")))


def build_pool(
    videos: list[VideoFrames],
    extract: Callable[[np.ndarray], np.ndarray],
    n_pairs: int,
    params: SynthParams,
    seed: int,
    batch: int = 16,
    progress: Callable[[int], None] | None = None,
) -> FeaturePool:
    """`n_pairs` (real clip, synthetic fake) pairs from `videos` (video drawn evenly, start at random), each turned
    into per-frame features by `extract`."""
    usable = [i for i, v in enumerate(videos) if len(v.starts(2 * params.frames)) or len(v.starts(params.frames))]
    if not usable:
        raise DeepshieldError(f"no video has {params.frames} consecutive tracked frames")
    rng = np.random.default_rng(seed)
    reals: list[np.ndarray] = []
    fakes: list[np.ndarray] = []
    kinds: list[int] = []
    vids: list[int] = []
    while len(kinds) < n_pairs:
        clips = []
        for _ in range(min(batch, n_pairs - len(kinds))):
            vi = int(rng.choice(usable))
            v = videos[vi]
            starts = v.starts(params.frames)
            real, fake, kind = make_pair(v, int(rng.choice(starts)), rng, params)
            clips += [real, fake]
            kinds.append(KINDS.index(kind))
            vids.append(vi)
        f = extract(np.stack(clips)).astype(np.float16)
        reals.append(f[0::2])
        fakes.append(f[1::2])
        if progress:
            progress(len(kinds))
    return FeaturePool(
        np.concatenate(reals), np.concatenate(fakes), np.array(kinds, np.int16), np.array(vids, np.int32)
    )


def _scores(head: TemporalHead, feats: np.ndarray) -> np.ndarray:
    head.eval()
    with torch.no_grad():
        return head(torch.from_numpy(feats.astype(np.float32))).numpy()


def pool_auc(head: TemporalHead, pool: FeaturePool) -> dict[str, float]:
    """AUC of real against fake clips of a pool, overall and per kind of fake."""
    r, f = _scores(head, pool.real), _scores(head, pool.fake)
    out = {"all": auc(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])}
    for i, k in enumerate(KINDS):
        sel = pool.kind == i
        if sel.any():
            out[k] = auc(np.r_[np.zeros(len(r)), np.ones(int(sel.sum()))], np.r_[r, f[sel]])
    return {k: round(float(v), 4) for k, v in out.items()}


def train_head(
    train: FeaturePool,
    val: FeaturePool | None,
    cfg: HeadConfig,
    epochs: int = 30,
    lr: float = 2e-3,
    weight_decay: float = 1e-2,
    seed: int = 0,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[TemporalHead, dict[str, Any]]:
    """The head trained on a pool (real 0, fake 1, balanced by construction); the epoch with the best validation
    AUC is kept (the last one without a validation pool)."""
    torch.manual_seed(seed)
    head = TemporalHead(cfg)
    x = torch.from_numpy(np.concatenate([train.real, train.fake]).astype(np.float32))
    y = torch.cat([torch.zeros(len(train.real)), torch.ones(len(train.fake))])
    head.set_standardisation(x.reshape(-1, x.shape[-1]))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    best: tuple[float, dict[str, Any], dict[str, torch.Tensor]] | None = None
    t0 = time.perf_counter()
    for epoch in range(epochs):
        head.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), 64):
            sel = order[i : i + 64]
            loss = loss_fn(head(x[sel]), y[sel])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(sel)
        sched.step()
        rec: dict[str, Any] = {"epoch": epoch + 1, "loss": round(total / len(x), 4)}
        if val is not None:
            rec["val_auc"] = pool_auc(head, val)
        rec["elapsed_s"] = round(time.perf_counter() - t0, 1)
        if log:
            log(rec)
        key = rec["val_auc"]["all"] if val is not None else float(epoch)
        if best is None or key > best[0]:
            best = (key, rec, {k: v.clone() for k, v in head.state_dict().items()})
    assert best is not None
    head.load_state_dict(best[2])
    head.eval()
    return head, best[1]
