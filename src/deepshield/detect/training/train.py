"""`deepshield train`: self-blended training from the face cache, on CPU, resumable.

Each epoch draws one self-blended pair per training crop (identities of the train split only), logs loss,
throughput and the validation AUC on a fixed set of self-blended pairs from validation identities to a JSONL
file, and writes `last.pt` (resume point) and `best.pt` (best validation AUC). Seeds fix the data stream.
"""

from __future__ import annotations

import json
import math
import random
import time
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from deepshield.config import get_settings, work_path
from deepshield.detect.training.checkpoint import load_checkpoint
from deepshield.detect.training.facecache import CachedFaces, load_cache
from deepshield.detect.training.metrics import auc
from deepshield.detect.training.model import CompactNet, ForgeryNet, build_model, deepen
from deepshield.detect.training.pairs import TrainingPairs
from deepshield.detect.training.sbi import SbiParams, to_input
from deepshield.errors import DeepshieldError


def lr_factor(step: int, aux_warm: int, warm: int, total: int, budget_used: float = 0.0) -> float:
    """Learning-rate multiplier at `step`: the full rate while a fresh auxiliary head trains alone (`aux_warm`
    steps), a linear warm-up (`warm` steps), then a cosine down to 2% over whichever ends first, the remaining
    steps or the wall-clock budget (`budget_used`: the share of it spent; a shared CPU's speed is unknown in
    advance, and the budget keeps the schedule complete when it binds)."""
    if step < aux_warm:
        return 1.0
    if step < aux_warm + warm:
        return (step - aux_warm + 1) / warm
    frac = max((step - aux_warm - warm) / max(1, total - aux_warm - warm), budget_used)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, frac))) * 0.98 + 0.02


def _number_kind(name: str, annotation: object) -> str:
    """The config kind of an SbiParams field; a field of another kind fails at import until CONFIG_KEYS learns it."""
    kind = str(getattr(annotation, "__name__", annotation))
    if kind not in ("int", "float"):
        raise TypeError(f"SbiParams.{name} is {kind}: give CONFIG_KEYS a kind for it")
    return kind


#: What each config section may hold and the kind of each value ([sbi] is `SbiParams`): a misspelt key or a
#: value of the wrong kind is refused when the file is read, not met as a traceback an hour into training.
#: "path" values may start with `{work}/`, the detector work folder (`config.work_path`), or `{models}/`, the
#: shipped weights folder (`config_path`).
CONFIG_KEYS: dict[str, dict[str, str]] = {
    "data": {"cache_dir": "path", "max_frames_per_video": "int", "val_limit": "int", "val_swaps": "path"},
    "model": {
        "arch": "str",
        "pretrained": "str",
        "freeze_blocks": "int",
        "widths": "int list",
        "blocks": "int list",
        "stem": "int",
        "dropout": "float",
    },
    "train": {
        "seed": "int",
        "epochs": "int",
        "batch_pairs": "int",
        "lr": "float",
        "weight_decay": "float",
        "warmup_steps": "int",
        "aux_warmup_steps": "int",
        "num_workers": "int",
        "threads": "int",
        "aux_weight": "float",
        "time_budget_min": "float",
        "init_from": "path",
        "init_blocks": "int list",
        "out_dir": "path",
    },
    "sbi": {f.name: _number_kind(f.name, f.type) for f in fields(SbiParams)},
}


_KIND_NAMES = {
    "int": "an integer",
    "float": "a number",
    "int list": "a list of integers",
    "path": "a non-empty string",
    "str": "a non-empty string",
}


def _kind_ok(value: Any, kind: str) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int":
        return is_int
    if kind == "float":
        return is_int or isinstance(value, float)
    if kind == "int list":
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return isinstance(value, str) and bool(value)  # path, str


def load_config(path: Path) -> dict[str, Any]:
    """Read a training config. A top-level `extends = "other.toml"` (relative to this file) starts from that
    config's sections and overrides them key by key, so a training stage states only what it changes."""
    cfg = _read_config(path, ())
    unknown = [name for name in cfg if name not in CONFIG_KEYS]
    for section, table in cfg.items():
        if section not in CONFIG_KEYS:
            continue
        if not isinstance(table, dict):
            raise DeepshieldError(f"{path}: {section} must be a [{section}] table")
        unknown += [f"[{section}] {k}" for k in table if k not in CONFIG_KEYS[section]]
    if unknown:
        raise DeepshieldError(f"{path}: unknown config keys: {', '.join(unknown)}")
    wrong = [
        f"[{section}] {key} must be {_KIND_NAMES[kind]}, got {value!r}"
        for section, table in cfg.items()
        for key, value in table.items()
        if not _kind_ok(value, kind := CONFIG_KEYS[section][key])
    ]
    if wrong:
        raise DeepshieldError(f"{path}: {'; '.join(wrong)}")
    for section in CONFIG_KEYS:
        cfg.setdefault(section, {})
    return cfg


def _read_config(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise DeepshieldError(f"no config file at {path}")
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise DeepshieldError(f"config files extend each other in a loop: {chain}")
    try:
        with path.open("rb") as f:
            cfg = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DeepshieldError(f"{path} is not valid TOML: {e}") from None
    base_name = cfg.pop("extends", None)
    if base_name is None:
        return cfg
    if not isinstance(base_name, str):
        raise DeepshieldError(f"{path}: extends must be a file name, got {base_name!r}")
    merged = _read_config(path.parent / base_name, (*seen, path.resolve()))
    for key, value in cfg.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def face_cache_of(cfg: dict[str, Any]) -> Path:
    """The face cache a config trains on: `[data] cache_dir`, or the work folder's default cache."""
    cache_dir = cfg.get("data", {}).get("cache_dir")
    return work_path(cache_dir) if cache_dir else get_settings().face_cache_dir


def sbi_params(cfg: dict[str, Any]) -> SbiParams:
    known = {f.name for f in fields(SbiParams)}
    return SbiParams(**{k: v for k, v in cfg.get("sbi", {}).items() if k in known})


class SelfBlendDataset(TrainingPairs, Dataset):
    """Real crops -> (real, fake) pairs generated on the fly (see `pairs.TrainingPairs`), as torch tensors."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        real, fake, mask = self.pair(i)
        x = to_input(np.stack([real, fake]))
        return torch.from_numpy(x), torch.tensor([0.0, 1.0]), torch.from_numpy(dense_targets(mask))


def dense_targets(mask: np.ndarray, stride: int = 8) -> np.ndarray:
    """2 x 2 x h x w targets for (real, fake): blend weight and blend boundary 4m(1-m), at 1/stride size."""
    s = mask.shape[0] // stride
    m = cv2.resize(mask.astype(np.float32), (s, s), interpolation=cv2.INTER_AREA)
    boundary = 4 * m * (1 - m)
    peak = float(boundary.max())
    if peak > 0:
        boundary = boundary / peak
    out = np.zeros((2, 2, s, s), np.float32)
    out[1, 0], out[1, 1] = m, boundary
    return out


def collate_pairs(
    batch: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.cat([b[0] for b in batch]),
        torch.cat([b[1] for b in batch]),
        torch.cat([b[2] for b in batch]),
    )


def fixed_pairs(
    faces: CachedFaces, params: SbiParams, seed: int, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic set of (crops, labels) for validation: every crop once real, once self-blended."""
    ds = SelfBlendDataset(faces, params, seed=seed)
    ds.epoch = 10_000
    n = len(ds) if limit is None else min(limit, len(ds))
    xs, ys = [], []
    for i in range(n):
        real, fake, _ = ds.pair(i)
        xs += [real, fake]
        ys += [0, 1]
    return np.stack(xs), np.array(ys)


@torch.no_grad()
def predict(model: nn.Module, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(crops), batch):
        out.append(model(torch.from_numpy(to_input(crops[i : i + batch]))).float().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def training_step(
    model: ForgeryNet,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    dense: torch.Tensor,
    aux_weight: float,
) -> float:
    """One optimiser step on a batch of pairs: the real/fake loss plus the auxiliary blend-mask loss."""
    logits, aux = model.forward_with_aux(x)
    if aux.shape[-1] != dense.shape[-1]:
        dense = nn.functional.adaptive_avg_pool2d(dense, (int(aux.shape[-2]), int(aux.shape[-1])))
    loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
    loss = loss + aux_weight * nn.functional.binary_cross_entropy_with_logits(aux, dense)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


#: The prefix of a training-config path that lies in the shipped weights folder (`onnx_detector.models_dir`).
MODELS_PREFIX = "{models}/"


def config_path(value: str) -> Path:
    """A training-config path: `{models}/...` names a shipped weights file (a fine-tune of what ships, whose
    checkpoints may be gone), anything else is `config.work_path`'s."""
    if value.startswith(MODELS_PREFIX):
        from deepshield.detect.onnx_detector import models_dir

        return models_dir() / value[len(MODELS_PREFIX) :]
    return work_path(value)


def _initial_model(
    init_from: Path, mcfg: dict[str, Any], ds: SelfBlendDataset, model: ForgeryNet, init_blocks: list[int] | None
) -> ForgeryNet:
    """The weights to fine-tune from: a training checkpoint, or a shipped ONNX file (its BatchNorms restored
    from real training crops, see `onnx_import`). With `init_blocks`, those weights are of a shallower network
    (blocks per stage), deepened to the config's by identity blocks (`model.deepen`)."""
    src_cfg = {**mcfg, "blocks": init_blocks} if init_blocks else mcfg
    if init_from.suffix == ".onnx":
        from deepshield.detect.training.onnx_import import model_from_onnx

        calib = np.stack([ds.pair(i)[0] for i in range(min(len(ds), 256))])
        src: ForgeryNet = model_from_onnx(init_from, src_cfg, calib)
    else:
        src = build_model(src_cfg) if init_blocks else model
        try:
            src.load_state_dict(load_checkpoint(init_from, need=("model",))["model"])
        except RuntimeError as e:
            what = "init_blocks and [model]" if init_blocks else "[model]"
            raise DeepshieldError(f"init_from {init_from}: its weights do not fit {what}: {e}") from e
    if not init_blocks:
        return src
    if not (isinstance(src, CompactNet) and isinstance(model, CompactNet)):
        raise DeepshieldError("init_blocks deepens the compact network only")
    try:
        return deepen(src, into=model)
    except ValueError as e:
        raise DeepshieldError(f"init_blocks: {e}") from e


def _freeze_backbone(model: ForgeryNet, frozen: bool, fixed_blocks: int = 0) -> None:
    """Only the auxiliary head learns while `frozen` (its BatchNorm statistics keep adapting). The first
    `fixed_blocks` feature blocks of a pretrained network never learn: generic ImageNet edges and colours, and
    the blocks at the highest resolution, whose backward pass costs most on a CPU."""
    fixed = tuple(f"features.{i}." for i in range(fixed_blocks))
    for name, p in model.named_parameters():
        if not name.startswith("aux."):
            p.requires_grad_(not frozen and not name.startswith(fixed))


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: dict[str, Any], out_dir: Path, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) training; returns the last epoch's metrics."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    data, tr, mcfg = cfg["data"], cfg["train"], cfg["model"]
    seed = int(tr.get("seed", 1234))
    _seed_all(seed)
    torch.set_num_threads(int(tr.get("threads", 2)))
    params = sbi_params(cfg)
    cache = face_cache_of(cfg)
    train_faces = load_cache(cache, ["train"], max_per_source=data.get("max_frames_per_video"))
    val_faces = load_cache(cache, ["val"], max_per_source=data.get("max_frames_per_video"))
    val_x, val_y = fixed_pairs(val_faces, params, seed + 1, limit=data.get("val_limit"))
    ds = SelfBlendDataset(train_faces, params, seed=seed)
    bs = int(tr.get("batch_pairs", 16))
    workers = int(tr.get("num_workers", 1))
    epochs = int(tr.get("epochs", 30))
    model = build_model(mcfg)
    last = out_dir / "last.pt"
    init_from = tr.get("init_from")
    if init_from and not (resume and last.is_file()):
        # Fine-tuning: start from another run's weights (e.g. self-blend pre-training), with a fresh schedule.
        model = _initial_model(config_path(init_from), mcfg, ds, model, tr.get("init_blocks"))
    # Channels-last memory: depthwise convolutions (MobileNetV2) train about 2.5x faster on this CPU.
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # (missing in torch's stubs)
    fixed_blocks = int(mcfg.get("freeze_blocks", 0))
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(tr.get("lr", 2e-3)), weight_decay=float(tr.get("weight_decay", 5e-4))
    )
    steps_per_epoch = math.ceil(len(ds) / bs)
    total = epochs * steps_per_epoch
    warm = int(tr.get("warmup_steps", 200))
    # Fine-tuning from weights without an auxiliary head (a shipped ONNX file): train that fresh head alone
    # first, so its first large gradients do not knock the backbone off what it learned.
    aux_warm = int(tr.get("aux_warmup_steps", 0)) if init_from else 0
    frozen: bool | None = None

    budget_s = float(tr.get("time_budget_min", 0)) * 60 or math.inf
    clock = {"start": time.time(), "offset": 0.0}

    def lr_at(step: int) -> float:
        used = (clock["offset"] + time.time() - clock["start"]) / budget_s if budget_s < math.inf else 0.0
        return lr_factor(step, aux_warm, warm, total, used)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2))
    start_epoch, best, best_swap = 0, -1.0, -1.0
    if resume and last.is_file():
        ck = load_checkpoint(last, need=("model", "opt", "sched", "epoch", "best", "torch_rng"))
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start_epoch, best = int(ck["epoch"]) + 1, float(ck["best"])
        clock["offset"] = float(ck.get("elapsed_s", 0.0))
        best_swap = float(ck.get("best_swap", -1.0))
        torch.set_rng_state(ck["torch_rng"])
    aux_weight = float(tr.get("aux_weight", 1.0))
    log_path = out_dir / "metrics.jsonl"
    rec: dict[str, Any] = {}
    swap_path = work_path(data["val_swaps"]) if data.get("val_swaps") else None
    for epoch in range(start_epoch, epochs):
        ds.epoch = epoch
        g = torch.Generator()
        g.manual_seed(seed * 1000 + epoch)
        loader = DataLoader(
            ds,
            batch_size=bs,
            shuffle=True,
            generator=g,
            num_workers=workers,
            collate_fn=collate_pairs,
            drop_last=True,
            persistent_workers=False,
        )
        model.train()
        t0, seen, loss_sum, nb = time.time(), 0, 0.0, 0
        with Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not progress,
        ) as bar:
            task = bar.add_task("train", total=len(loader), loss=0.0)
            for x, y, dense in loader:
                want_frozen = sched.last_epoch < aux_warm
                if want_frozen != frozen:
                    frozen = want_frozen
                    _freeze_backbone(model, frozen, fixed_blocks)
                x = x.contiguous(memory_format=torch.channels_last)
                loss_sum += training_step(model, opt, x, y, dense, aux_weight)
                sched.step()
                seen += len(x)
                nb += 1
                bar.update(task, advance=1, loss=loss_sum / nb)
        train_s = time.time() - t0
        val_scores = predict(model, val_x)
        val_auc = auc(val_y, val_scores)
        swap_auc = None
        if swap_path is not None and swap_path.is_file():  # crops of validation-identity face swaps
            with np.load(swap_path) as z:
                swap_auc = auc(z["labels"], predict(model, z["crops"]))
        elapsed = clock["offset"] + time.time() - clock["start"]
        rec = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(nb, 1),
            "val_sbi_auc": val_auc,
            "val_swap_auc": swap_auc,
            "elapsed_s": round(elapsed, 1),
            "lr": opt.param_groups[0]["lr"],
            "images_per_s": seen / max(train_s, 1e-6),
            "epoch_s": time.time() - t0,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with log_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        if progress:
            print(json.dumps(rec), flush=True)
        state = {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "epoch": epoch,
            "best": max(best, val_auc),
            "torch_rng": torch.get_rng_state(),
            "config": cfg,
            "elapsed_s": elapsed,
            "best_swap": max(best_swap, swap_auc or -1.0),
        }
        torch.save({**state}, out_dir / "last.tmp")
        (out_dir / "last.tmp").replace(last)
        torch.save({"model": model.state_dict(), "config": cfg, "epoch": epoch}, out_dir / f"epoch{epoch + 1:03d}.pt")
        if swap_auc is not None and swap_auc > best_swap:
            best_swap = swap_auc
            torch.save(
                {"model": model.state_dict(), "config": cfg, "epoch": epoch, "val_swap_auc": swap_auc},
                out_dir / "best_swap.pt",
            )
        if val_auc > best:
            best = val_auc
            torch.save(
                {"model": model.state_dict(), "config": cfg, "epoch": epoch, "val_sbi_auc": val_auc},
                out_dir / "best.pt",
            )
        if elapsed > budget_s:
            break
    return rec
