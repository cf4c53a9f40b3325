"""The compact forgery classifier, in plain torch (no timm/torchvision): a small ResNet trained from scratch.

About 2.4 M parameters and 0.5 GMAC at 160 px, so it trains on a 2-core CPU and serves well over 40 crops/s
through onnxruntime. Output: one logit per image (positive = manipulated).
"""

from __future__ import annotations

import torch
from torch import nn

from deepshield.detect.training.mobilenet import ForgeryMobileNet


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.short: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + self.short(x))


class CompactNet(nn.Module):
    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 192),
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        stem: int = 24,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem // 2 + 8, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem // 2 + 8),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem // 2 + 8, stem, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        cin = stem
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            layers: list[nn.Module] = []
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(cin, 1)
        # Training-only dense head on the 1/8-resolution features: predicts the blend mask and its boundary
        # (as in Face X-ray), a far denser signal than one label per image. Not part of the exported graph.
        self.aux = nn.Conv2d(widths[1] if len(widths) > 1 else widths[0], 2, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)  # each residual block starts as identity

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.stem(x)
        aux = None
        for i, stage in enumerate(self.stages):
            f = stage(f)
            if i == 1 or (i == 0 and len(self.stages) == 1):
                aux = self.aux(f)
        assert aux is not None
        logit = self.head(self.drop(f.mean(dim=(2, 3)))).squeeze(1)
        return logit, aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        for stage in self.stages:
            f = stage(f)
        return self.head(self.drop(f.mean(dim=(2, 3)))).squeeze(1)


def deepen(model: CompactNet, into: CompactNet) -> CompactNet:
    """`into`, a network with the same widths and more residual blocks per stage, set to compute exactly
    `model`'s function.

    `into`'s extra blocks are the ones at the end of each stage; their last BatchNorm starts at zero, so each
    returns relu(0 + x) = x (its input already went through a ReLU) until training moves it. This lets a larger
    network start from the shipped one instead of from scratch, which matters when training runs on a 2-core CPU.
    """
    have, want = ([len(list(s.children())) for s in net.stages] for net in (model, into))
    if len(want) != len(have) or any(n < m for n, m in zip(want, have, strict=True)):
        raise ValueError(f"cannot deepen blocks {have} into {want}")
    try:
        missing, unexpected = into.load_state_dict(model.state_dict(), strict=False)
    except RuntimeError as e:  # a shape that differs: other widths
        raise ValueError(f"deepen: the two networks differ in more than depth: {e}") from e
    new_blocks = {f"stages.{i}.{j}" for i, (n, m) in enumerate(zip(want, have, strict=True)) for j in range(m, n)}
    stray = list(unexpected) + [k for k in missing if ".".join(k.split(".")[:3]) not in new_blocks]
    if stray:
        raise ValueError(f"deepen: weights that do not carry over: {stray[:5]}")
    return into


#: The networks a training config may name in `[model] arch`.
ARCHITECTURES = ("compact", "mobilenet_v2")


#: Either network: both give `forward` (one logit) and `forward_with_aux` (logit, blend-mask maps) for training.
ForgeryNet = CompactNet | ForgeryMobileNet


def build_model(cfg: dict[str, object], start: bool = True) -> ForgeryNet:
    """The network a config's [model] section names: `CompactNet` (from scratch, version 4) or, with
    `arch = "mobilenet_v2"`, MobileNetV2 whose features start from ImageNet when `pretrained = "imagenet"`.
    `start=False` builds the bare network for a checkpoint's weights (the ImageNet file is not read or hashed)."""
    arch = str(cfg.get("arch", "compact"))
    if arch == "mobilenet_v2":
        return ForgeryMobileNet(
            dropout=float(cfg.get("dropout", 0.2)),  # type: ignore[arg-type]
            pretrained=start and cfg.get("pretrained") == "imagenet",
        )
    if arch != "compact":
        raise ValueError(f"[model] arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    return CompactNet(
        widths=tuple(cfg.get("widths", (32, 64, 128, 192))),  # type: ignore[arg-type]
        blocks=tuple(cfg.get("blocks", (2, 2, 2, 2))),  # type: ignore[arg-type]
        stem=int(cfg.get("stem", 24)),  # type: ignore[call-overload]
        dropout=float(cfg.get("dropout", 0.2)),  # type: ignore[arg-type]
    )
