"""Rebuild a trainable `CompactNet` from a shipped ONNX file, so training can resume from the weights we ship.

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

from deepshield.detect.training.model import CompactNet, build_model
from deepshield.detect.training.sbi import to_input
from deepshield.errors import DeepshieldError


def _conv_bn_pairs(model: CompactNet) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Every (conv, the BatchNorm after it) in execution order: the order the exporter writes Conv nodes."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m is not model.aux]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    # Module order is registration order: in each block conv1, bn1, conv2, bn2, then the shortcut's conv and
    # BatchNorm, which is also the order the block runs them in.
    return list(zip(convs, norms, strict=True))


def _set_norm(
    bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> None:
    assert bn.running_mean is not None and bn.running_var is not None
    bn.running_mean.copy_(mean)
    bn.running_var.copy_(var)
    bn.weight.copy_(weight)
    bn.bias.copy_(bias)


def model_from_onnx(onnx_path: Path, model_cfg: dict[str, Any], calib_crops: np.ndarray) -> CompactNet:
    """A CompactNet (config `model_cfg`) with the weights of `onnx_path`; `calib_crops` (N x S x S x 3 uint8,
    real faces) set the restored BatchNorm statistics. The auxiliary training head starts fresh."""
    import onnx
    from onnx import numpy_helper

    if not onnx_path.is_file():
        raise DeepshieldError(f"no ONNX model at {onnx_path}")
    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    model = build_model(model_cfg)
    if not isinstance(model, CompactNet):
        raise DeepshieldError(f"{onnx_path}: starting from an ONNX file works for the compact network only")
    pairs = _conv_bn_pairs(model)
    if len(convs) != len(pairs) or "head.weight" not in init:
        raise DeepshieldError(f"{onnx_path}: {len(convs)} convolutions, the config's network has {len(pairs)}")
    folded_bias: list[torch.Tensor] = []
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs, strict=True):
            w = torch.from_numpy(init[node.input[1]].copy())
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise DeepshieldError(f"{onnx_path}: weight {tuple(w.shape)} where {tuple(conv.weight.shape)} fits")
            conv.weight.copy_(w)
            bias = init[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            folded_bias.append(torch.from_numpy(bias.copy()))
            # An identity BatchNorm that adds the folded bias: the network is now the shipped function.
            n = w.shape[0]
            _set_norm(bn, torch.zeros(n), torch.full((n,), 1.0 - bn.eps), torch.ones(n), folded_bias[-1])
        model.head.weight.copy_(torch.from_numpy(init["head.weight"].copy()).reshape(model.head.weight.shape))
        model.head.bias.copy_(torch.from_numpy(init["head.bias"].copy()).reshape(model.head.bias.shape))

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


def check_against_onnx(model: CompactNet, onnx_path: Path, crops: np.ndarray) -> float:
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
