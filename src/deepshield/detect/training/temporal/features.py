"""The second temporal detector: frozen ImageNet MobileNetV2 features per frame, a small temporal head over them.

Why: the FTCN-style network trained from scratch on 13 real videos learned which video a clip came from, not how
it was manipulated (docs/detect.md). A pretrained, frozen backbone gives every frame a description it cannot
overfit to our few identities, and only a small head (tens of thousands of weights) learns from them, in the
manner of CNN-features-plus-recurrent-head detectors (Güera and Delp, "Deepfake Video Detection Using Recurrent
Neural Networks", AVSS 2018), trained here on real video only with synthetic temporal inconsistencies (`synth.py`,
after FTCN and SBI) instead of fakes.

Per frame, three stages of the backbone (stride 8 for fine texture, 16, and 32) are mean-pooled over the whole
crop and over the lower face (a fixed box: the crops are geometry-stabilised with the roll removed, so the mouth
sits in the same place), 896 numbers. The head standardises them, embeds each frame, and reads both the
embeddings and their frame-to-frame differences with 1-D convolutions over time: a mouth whose texture flickers,
a lower face that jumps, a face that moves while its texture stays frozen all show up in the differences.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from deepshield.detect.training.mobilenet import IMAGENET_MEAN, IMAGENET_STD, MobileNetV2, load_imagenet
from deepshield.detect.training.sbi import MEAN, STD

#: Backbone layers whose outputs are pooled (strides 8, 16, 32; 32 + 96 + 320 channels).
TAPS = (6, 13, 17)
TAP_CHANNELS = (32, 96, 320)
#: The lower face in a crop of margin ~0.25 (fractions of the crop side: x0, y0, x1, y1).
LOWER_FACE_BOX = (0.28, 0.56, 0.72, 0.9)
FEATURE_DIM = 2 * sum(TAP_CHANNELS)


@dataclass(frozen=True)
class HeadConfig:
    frames: int = 8
    size: int = 112
    embed: int = 64
    hidden: int = 64
    dropout: float = 0.3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _box_slices(h: int, w: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = LOWER_FACE_BOX
    r0, c0 = min(int(y0 * h), h - 1), min(int(x0 * w), w - 1)
    return slice(r0, max(r0 + 1, min(h, math.ceil(y1 * h)))), slice(c0, max(c0 + 1, min(w, math.ceil(x1 * w))))


class FrameFeatures(nn.Module):
    """Frozen MobileNetV2 (ImageNet) up to its last inverted-residual block: N x 3 x S x S crops in the project's
    normalisation -> N x FEATURE_DIM pooled features (whole crop and lower face, three strides)."""

    in_scale: torch.Tensor
    in_shift: torch.Tensor

    def __init__(self, base: MobileNetV2) -> None:
        super().__init__()
        self.layers = nn.Sequential(*list(base.features)[: TAPS[-1] + 1])
        in_mean, in_std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("in_scale", (torch.from_numpy(STD).float() / in_std).view(1, 3, 1, 1))
        self.register_buffer("in_shift", ((torch.from_numpy(MEAN).float() - in_mean) / in_std).view(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x * self.in_scale + self.in_shift
        whole, lower = [], []
        for i, layer in enumerate(self.layers):
            f = layer(f)
            if i in TAPS:
                rows, cols = _box_slices(int(f.shape[2]), int(f.shape[3]))
                whole.append(f.mean(dim=(2, 3)))
                lower.append(f[:, :, rows, cols].mean(dim=(2, 3)))
        return torch.cat(whole + lower, dim=1)


class TemporalHead(nn.Module):
    """B x K x FEATURE_DIM frame features -> B logits, from the features and their frame-to-frame changes."""

    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feat_std", torch.ones(FEATURE_DIM))
        self.drop = nn.Dropout(cfg.dropout)
        self.embed = nn.Linear(FEATURE_DIM, cfg.embed)
        self.level = nn.Conv1d(cfg.embed, cfg.hidden, 3, padding=1)
        self.change = nn.Conv1d(2 * cfg.embed, cfg.hidden, 3, padding=1)
        self.out = nn.Linear(4 * cfg.hidden, 1)

    def set_standardisation(self, feats: torch.Tensor) -> None:
        """Per-feature mean and spread of the training pool (N x FEATURE_DIM)."""
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
