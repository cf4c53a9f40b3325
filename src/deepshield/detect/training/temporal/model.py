"""A temporal-coherence network in the spirit of FTCN (Zheng et al., "Exploring Temporal Coherence for More
General Video Face Forgery Detection", ICCV 2021), written from the paper's description, small enough to train
on two CPU cores.

Why this shape: a frame detector learns spatial texture (blend boundaries); reenactment, lip-sync and one-photo
talking heads leave little of that but are incoherent over time. So the early stages are 3-D convolutions whose
spatial kernel is 1 (kernel T x 1 x 1): each unit sees one pixel position across neighbouring frames and can only
learn how it changes from frame to frame, not what texture it holds. Between stages the spatial resolution is
halved by average pooling (no learned spatial filter). Only the last stage, at 1/16 of the input size, mixes
neighbouring positions (3 x 3 x 3), so that a mouth that moves differently from the cheeks around it can be told
apart. A small temporal transformer (the paper's second half) then reads the per-frame features, pooled over
space by learned attention (so the lower face can dominate), and a class token gives the clip's logit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class TemporalNetConfig:
    frames: int = 8  # K consecutive frames per clip
    size: int = 112  # crop side in pixels
    widths: tuple[int, ...] = (24, 32, 48, 64)  # stem, then one stage per width after the first
    last_width: int = 96  # the spatio-temporal stage
    heads: int = 4
    dropout: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TemporalNetConfig:
        known: dict[str, Any] = {k: v for k, v in d.items() if k in TemporalNetConfig.__dataclass_fields__}
        if "widths" in known:
            known["widths"] = tuple(int(w) for w in known["widths"])
        return TemporalNetConfig(**known)


class TemporalBlock(nn.Module):
    """Residual block of two 3-D convolutions with kernel (3, s, s): s = 1 in the temporal-only stages."""

    def __init__(self, cin: int, cout: int, spatial: int = 1) -> None:
        super().__init__()
        pad = (1, spatial // 2, spatial // 2)
        k = (3, spatial, spatial)
        self.conv1 = nn.Conv3d(cin, cout, k, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = nn.Conv3d(cout, cout, k, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.short: nn.Module = (
            nn.Sequential(nn.Conv3d(cin, cout, 1, bias=False), nn.BatchNorm3d(cout)) if cin != cout else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + self.short(x))


class TemporalTransformer(nn.Module):
    """One pre-norm self-attention layer over [class token, frame 1..K], written with plain Linear and softmax so
    that the ONNX export needs no fused attention kernel."""

    def __init__(self, dim: int, frames: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, frames + 1, dim) * 0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x K x C -> B x C (the class token)
        b, k, c = x.shape
        x = torch.cat([self.cls.expand(b, 1, c), x], dim=1) + self.pos
        h = self.norm1(x)
        qkv = self.qkv(h).reshape(b, k + 1, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, kk, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ kk.transpose(-2, -1) / math.sqrt(c // self.heads), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, k + 1, c)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x[:, 0]


class TemporalNet(nn.Module):
    """B x 3 x K x S x S (normalised like the frame detector's input) -> B clip logits (fake > 0)."""

    def __init__(self, cfg: TemporalNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or TemporalNetConfig()
        w = cfg.widths
        self.stem = nn.Sequential(
            nn.Conv3d(3, w[0], (5, 1, 1), padding=(2, 0, 0), bias=False), nn.BatchNorm3d(w[0]), nn.ReLU(inplace=True)
        )
        stages: list[nn.Module] = []
        for cin, cout in zip(w[:-1], w[1:], strict=True):
            stages += [nn.AvgPool3d((1, 2, 2)), TemporalBlock(cin, cout, spatial=1)]
        stages += [nn.AvgPool3d((1, 2, 2)), TemporalBlock(w[-1], cfg.last_width, spatial=3)]
        self.stages = nn.Sequential(*stages)
        self.attn = nn.Conv3d(cfg.last_width, 1, 1)  # where to look, per frame
        self.temporal = TemporalTransformer(cfg.last_width, cfg.frames, cfg.heads, cfg.dropout)
        self.head = nn.Sequential(nn.LayerNorm(cfg.last_width), nn.Dropout(cfg.dropout), nn.Linear(cfg.last_width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stages(self.stem(x))  # B x C x K x h x w
        b, c, k, h, w = f.shape
        a = torch.softmax(self.attn(f).reshape(b, 1, k, h * w), dim=-1)
        tokens = (f.reshape(b, c, k, h * w) * a).sum(-1).transpose(1, 2)  # B x K x C
        return self.head(self.temporal(tokens)).squeeze(1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
