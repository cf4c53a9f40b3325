"""The second temporal detector: frozen MobileNetV2 features per frame, a small temporal head over them.

Why: the FTCN-style network trained from scratch on 13 real videos learned which video a clip came from, not how
it was manipulated (docs/detect.md). A pretrained, frozen backbone gives every frame a description it cannot
overfit to our few identities, and only a small head (tens of thousands of weights) learns from them, in the
manner of CNN-features-plus-recurrent-head detectors (Güera and Delp, "Deepfake Video Detection Using Recurrent
Neural Networks", AVSS 2018), trained here on real video only with synthetic temporal inconsistencies (`synth.py`,
after FTCN and SBI) instead of fakes.

Two backbones (`Backbone`): torchvision's ImageNet weights (version 2), and the frame detector's own fine-tuned
MobileNetV2 read back from its shipped ONNX file (version 3), whose features already respond to blending and
re-rendering, so the head sees how that evidence changes from frame to frame. Per frame, stages of the backbone
(stride 8 for fine texture, 16, 32, and for version 3 the 1,280 channels the frame detector's head reads) are
mean-pooled over the whole crop and over the lower face (a fixed box: the crops are geometry-stabilised with the
roll removed, so the mouth sits in the same place). The head standardises them, embeds each frame, and reads both
the embeddings and their frame-to-frame differences with 1-D convolutions over time: a mouth whose texture
flickers, a lower face that jumps, a face that moves while its texture stays frozen all show up in the differences.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepshield.detect.training.mobilenet import IMAGENET_MEAN, IMAGENET_STD, MobileNetV2, load_imagenet
from deepshield.detect.training.sbi import MEAN, STD
from deepshield.errors import DeepshieldError

#: The lower face in a crop of margin ~0.25 (fractions of the crop side: x0, y0, x1, y1).
LOWER_FACE_BOX = (0.28, 0.56, 0.72, 0.9)


@dataclass(frozen=True)
class Backbone:
    """Which frozen MobileNetV2 describes each frame, which of its layers are pooled, and at what size."""

    name: str
    taps: tuple[int, ...]  # indices into `features` whose outputs are pooled
    channels: tuple[int, ...]  # their channel counts
    input_size: int | None  # crops resized to this inside the graph (None: used at the clip size)

    @property
    def feature_dim(self) -> int:
        return 2 * sum(self.channels)  # whole crop and lower face


#: torchvision's ImageNet weights, strides 8, 16 and 32 (version 2).
IMAGENET = Backbone("imagenet", (6, 13, 17), (32, 96, 320), None)
#: The frame detector's fine-tuned network (version 5 of `sbi_small`), the same strides and its 1,280 final
#: channels, at the 160 px it was trained on (version 3).
FORGERY = Backbone("forgery", (6, 13, 17, 18), (32, 96, 320, 1280), 160)
BACKBONES = {b.name: b for b in (IMAGENET, FORGERY)}
#: Version 2's feature size, kept for readers of its pools.
FEATURE_DIM = IMAGENET.feature_dim


@dataclass(frozen=True)
class HeadConfig:
    frames: int = 8
    size: int = 112
    embed: int = 64
    hidden: int = 64
    dropout: float = 0.3
    features: int = FEATURE_DIM  # per-frame feature size (`Backbone.feature_dim`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _box_slices(h: int, w: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = LOWER_FACE_BOX
    r0, c0 = min(int(y0 * h), h - 1), min(int(x0 * w), w - 1)
    return slice(r0, max(r0 + 1, min(h, math.ceil(y1 * h)))), slice(c0, max(c0 + 1, min(w, math.ceil(x1 * w))))


class FrameFeatures(nn.Module):
    """A frozen MobileNetV2 up to its last tapped layer: N x 3 x S x S crops in the project's normalisation ->
    N x `backbone.feature_dim` pooled features (whole crop and lower face at each tap)."""

    in_scale: torch.Tensor
    in_shift: torch.Tensor

    def __init__(self, base: MobileNetV2 | nn.Module, backbone: Backbone = IMAGENET) -> None:
        super().__init__()
        self.backbone = backbone
        features = base.features
        assert isinstance(features, nn.Sequential)
        self.layers = nn.Sequential(*list(features)[: backbone.taps[-1] + 1])
        in_mean, in_std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("in_scale", (torch.from_numpy(STD).float() / in_std).view(1, 3, 1, 1))
        self.register_buffer("in_shift", ((torch.from_numpy(MEAN).float() - in_mean) / in_std).view(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.backbone.input_size
        if size is not None and (x.shape[2] != size or x.shape[3] != size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        f = x * self.in_scale + self.in_shift
        whole, lower = [], []
        for i, layer in enumerate(self.layers):
            f = layer(f)
            if i in self.backbone.taps:
                rows, cols = _box_slices(int(f.shape[2]), int(f.shape[3]))
                whole.append(f.mean(dim=(2, 3)))
                lower.append(f[:, :, rows, cols].mean(dim=(2, 3)))
        return torch.cat(whole + lower, dim=1)


class TemporalHead(nn.Module):
    """B x K x `cfg.features` frame features -> B logits, from the features and their frame-to-frame changes."""

    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(cfg.features))
        self.register_buffer("feat_std", torch.ones(cfg.features))
        self.drop = nn.Dropout(cfg.dropout)
        self.embed = nn.Linear(cfg.features, cfg.embed)
        self.level = nn.Conv1d(cfg.embed, cfg.hidden, 3, padding=1)
        self.change = nn.Conv1d(2 * cfg.embed, cfg.hidden, 3, padding=1)
        self.out = nn.Linear(4 * cfg.hidden, 1)

    def set_standardisation(self, feats: torch.Tensor) -> None:
        """Per-feature mean and spread of the training pool (N x `cfg.features`)."""
        self.feat_mean.copy_(feats.mean(dim=0))
        self.feat_std.copy_(feats.std(dim=0).clamp_min(1e-4))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        z = self.drop((feats - self.feat_mean) / self.feat_std)
        e = self.embed(z)  # B K E
        d = e[:, 1:] - e[:, :-1]
        # The change between neighbours and between frames two apart: a one-frame glitch and a slow drift.
        d2 = torch.cat([d[:, :-1], e[:, 2:] - e[:, :-2]], dim=2)
        a = torch.relu(self.level(e.transpose(1, 2)))
        b = torch.relu(self.change(d2.transpose(1, 2)))
        pooled = torch.cat([a.mean(dim=2), a.amax(dim=2), b.mean(dim=2), b.amax(dim=2)], dim=1)
        return self.out(self.drop(pooled)).squeeze(1)


class FeatureTemporalNet(nn.Module):
    """The exported model: B x 3 x K x S x S clips (the `TemporalDetector` input) -> B logits."""

    def __init__(self, frames: FrameFeatures, head: TemporalHead) -> None:
        super().__init__()
        self.frames = frames
        self.head = head

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, c, k, h, w = clips.shape
        x = clips.permute(0, 2, 1, 3, 4).reshape(b * k, c, h, w)
        return self.head(self.frames(x).reshape(b, k, -1))


def imagenet_frame_features() -> FrameFeatures:
    return FrameFeatures(load_imagenet())


def frame_features(backbone: str) -> FrameFeatures:
    """The frozen per-frame features of a backbone by name; `forgery` reads the frame detector's shipped ONNX
    file."""
    if backbone not in BACKBONES:
        raise DeepshieldError(f"unknown temporal backbone {backbone!r}: one of {', '.join(BACKBONES)}")
    if backbone == IMAGENET.name:
        return imagenet_frame_features()
    from deepshield.detect.training.onnx_import import mobilenet_from_onnx

    return FrameFeatures(mobilenet_from_onnx(forgery_onnx_path()), FORGERY)


def forgery_onnx_path() -> Path:
    """The frame detector's ONNX file whose network the `forgery` backbone reads."""
    from deepshield.detect.onnx_detector import MODEL_NAME, models_dir

    return models_dir() / f"{MODEL_NAME}.onnx"


def backbone_record(backbone: str) -> dict[str, Any]:
    """What a pool's features were computed with, for its `pool_sources.json` and the model's metadata."""
    record: dict[str, Any] = {"name": backbone}
    if backbone == FORGERY.name:
        from deepshield.filehash import sha256_file

        path = forgery_onnx_path()
        record |= {"file": path.name, "sha256": sha256_file(path)}
    return record


def pool_frame_features(record: dict[str, Any] | None) -> FrameFeatures:
    """The backbone a pool was made with (a pool without a record is version 2's ImageNet one). A head trained on
    one network's features is meaningless on another's, so a changed frame detector file is an error."""
    name = str((record or {}).get("name", IMAGENET.name))
    if name == FORGERY.name:
        from deepshield.filehash import sha256_file

        digest = sha256_file(forgery_onnx_path())
        if record is None or digest != record.get("sha256"):
            raise DeepshieldError(
                f"the pool's features come from a frame detector file with sha256 {(record or {}).get('sha256')}, "
                f"the installed one has {digest}: rebuild the pool with `temporal-pool`"
            )
    return frame_features(name)
