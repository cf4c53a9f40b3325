"""Rebuild a trainable forgery network from a shipped ONNX file, so training can resume from the weights we ship.

Checkpoints live outside the repository and can be lost; the ONNX file cannot. The exporter folds each
BatchNorm into its convolution (W' = W * g / s, b' = beta - g * mu / s), which loses g and s separately. We
restore an equivalent network: each folded convolution gets its BatchNorm back with statistics measured on real
crops (mean m, variance v of the folded convolution's output), weight sqrt(v + eps) and bias m + b'. In eval
mode that is exactly the shipped function; in train mode the batch statistics start where the data puts them,
so fine-tuning does not begin with a jolt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepshield.detect.training.mobilenet import ForgeryMobileNet
from deepshield.detect.training.model import ForgeryNet, build_model
from deepshield.detect.training.sbi import to_input
from deepshield.errors import DeepshieldError


def _conv_bn_pairs(model: ForgeryNet) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Every (conv, the BatchNorm after it) in execution order: the order the exporter writes Conv nodes. The
    training-only auxiliary head is not in the exported graph."""
    layers = list(model.features.modules()) if isinstance(model, ForgeryMobileNet) else list(model.modules())
    convs = [m for m in layers if isinstance(m, nn.Conv2d) and m is not model.aux]
    norms = [m for m in layers if isinstance(m, nn.BatchNorm2d)]
    # Module order is registration order: in each block conv1, bn1, conv2, bn2, then the shortcut's conv and
    # BatchNorm, which is also the order the block runs them in (MobileNetV2: each conv's own BatchNorm).
    return list(zip(convs, norms, strict=True))


def _set_norm(
    bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> None:
    assert bn.running_mean is not None and bn.running_var is not None
    bn.running_mean.copy_(mean)
    bn.running_var.copy_(var)
    bn.weight.copy_(weight)
    bn.bias.copy_(bias)


def _read_graph(onnx_path: Path) -> tuple[dict[str, np.ndarray], list[Any]]:
    """The initialisers and the Conv nodes (in execution order) of an ONNX file; a missing or damaged file is one
    clear error."""
    import onnx
    from onnx import numpy_helper

    if not onnx_path.is_file():
        raise DeepshieldError(f"no ONNX model at {onnx_path}")
    try:
        graph = onnx.load(str(onnx_path)).graph
    except Exception as e:  # onnx raises protobuf's DecodeError and others on a damaged file
        raise DeepshieldError(f"{onnx_path} is not an ONNX model ({type(e).__name__})") from None
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return init, [n for n in graph.node if n.op_type == "Conv"]


def _load_folded(
    onnx_path: Path,
    init: dict[str, np.ndarray],
    convs: list[Any],
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]],
    head: nn.Linear,
) -> list[torch.Tensor]:
    """Each folded convolution's weight into its conv, with an identity BatchNorm that adds the folded bias (the
    network is then the shipped function in eval mode), and the head; returns the folded biases."""
    folded_bias: list[torch.Tensor] = []
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs, strict=True):
            w = torch.from_numpy(init[node.input[1]].copy())
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise DeepshieldError(f"{onnx_path}: weight {tuple(w.shape)} where {tuple(conv.weight.shape)} fits")
            conv.weight.copy_(w)
            n = w.shape[0]
            folded_bias.append(torch.from_numpy(init[node.input[2]].copy()) if len(node.input) > 2 else torch.zeros(n))
            _set_norm(bn, torch.zeros(n), torch.full((n,), 1.0 - bn.eps), torch.ones(n), folded_bias[-1])
        head.weight.copy_(torch.from_numpy(init["head.weight"].copy()).reshape(head.weight.shape))
        head.bias.copy_(torch.from_numpy(init["head.bias"].copy()).reshape(head.bias.shape))
    return folded_bias


def model_from_onnx(onnx_path: Path, model_cfg: dict[str, Any], calib_crops: np.ndarray) -> ForgeryNet:
    """The network of config `model_cfg` with the weights of `onnx_path`; `calib_crops` (N x S x S x 3 uint8,
    real faces) set the restored BatchNorm statistics. The auxiliary training head starts fresh."""
    init, convs = _read_graph(onnx_path)
    model = build_model(model_cfg, start=False)  # every weight comes from the file: no ImageNet start to read
    pairs = _conv_bn_pairs(model)
    if len(convs) != len(pairs) or "head.weight" not in init or "head.bias" not in init:
        raise DeepshieldError(f"{onnx_path}: {len(convs)} convolutions, the config's network has {len(pairs)}")
    folded_bias = _load_folded(onnx_path, init, convs, pairs, model.head)

    # So one pass measures every convolution's true output statistics; restoring each BatchNorm from them
    # keeps the function (eval mode: (y - m) / sqrt(v + eps) * sqrt(v + eps) + m + b' = y + b').
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for k, (conv, _) in enumerate(pairs):

        def hook(_m: nn.Module, _i: Any, out: torch.Tensor, k: int = k) -> None:
            stats[k] = (out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3), unbiased=False))

        hooks.append(conv.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        model(torch.from_numpy(to_input(calib_crops)))
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for k, ((_, bn), fb) in enumerate(zip(pairs, folded_bias, strict=True)):
            mean, var = stats[k]
            _set_norm(bn, mean, var, torch.sqrt(var + bn.eps), mean + fb)
    return model


def mobilenet_from_onnx(onnx_path: Path) -> ForgeryMobileNet:
    """The forgery MobileNetV2 of a shipped ONNX file (version 5's `sbi_small.onnx`), for inference only.

    Why: the temporal detector reads version 5's fine-tuned features, and the shipped file is the one copy of
    those weights that cannot be lost. The identity BatchNorms of `_load_folded` are exactly the shipped function
    in eval mode (fine-tuning it would need `model_from_onnx`'s measured statistics).
    """
    init, convs = _read_graph(onnx_path)
    model = ForgeryMobileNet()
    pairs = _conv_bn_pairs(model)
    if len(convs) != len(pairs) or "head.weight" not in init or "head.bias" not in init:
        raise DeepshieldError(f"{onnx_path} is not a forgery MobileNetV2: {len(convs)} convolutions, want {len(pairs)}")
    _load_folded(onnx_path, init, convs, pairs, model.head)
    return model.eval()


def check_against_onnx(model: ForgeryNet, onnx_path: Path, crops: np.ndarray) -> float:
    """Largest logit difference between the rebuilt model (eval mode) and onnxruntime on `crops` (uint8 RGB)."""
    return onnx_logit_difference(model, onnx_path, to_input(crops))


def onnx_logit_difference(model: nn.Module, onnx_path: Path, x: np.ndarray) -> float:
    """Largest difference between the torch model's logits (eval mode) and onnxruntime's on network input `x`."""
    import onnxruntime as ort

    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy().reshape(-1)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)
    return float(np.abs(ref - got).max())
