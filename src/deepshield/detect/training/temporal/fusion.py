"""The fusion of the frame and temporal detectors: a class-balanced logistic regression on their video-level
logits, fitted on labelled videos (the public dev set), with a threshold set on real videos.

Two inputs and a dozen videos: the fit is regularised (L2 on the weights, not the bias) and its weights are kept
non-negative, so a higher score from either detector can never lower the fused one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepshield.detect.temporal import Fusion
from deepshield.detect.training.metrics import auc
from deepshield.errors import DeepshieldError


def _logits(p: Sequence[float]) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def fit_fusion(
    frame: Sequence[float],
    temporal: Sequence[float],
    labels: Sequence[int],
    l2: float = 0.1,
    steps: int = 3000,
    fitted_on: str = "",
) -> tuple[float, float, float]:
    """(w_frame, w_temporal, bias) of the class-balanced, L2-regularised logistic regression (projected gradient
    descent keeps the weights at or above zero)."""
    y = np.asarray(labels, np.float64)
    if len(y) != len(frame) or len(y) != len(temporal):
        raise DeepshieldError("fusion: the frame scores, temporal scores and labels differ in length")
    if y.min() == y.max():
        raise DeepshieldError("fusion needs real and fake videos (got one class)")
    x = np.stack([_logits(frame), _logits(temporal)], axis=1)
    weight = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    w, b = np.array([1.0, 0.0]), 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ w + b, -40, 40)))
        g = weight * (p - y)
        w = np.maximum(0.0, w - lr * (x.T @ g + l2 * w))
        b -= lr * float(g.sum())
    return float(w[0]), float(w[1]), float(b)


def fused_threshold(fusion: Fusion, real_frame: Sequence[float], real_temporal: Sequence[float], q: float) -> float:
    """At least 0.5, and above the `q` quantile of the fused scores of real videos."""
    fused = [fusion.probability(a, b) for a, b in zip(real_frame, real_temporal, strict=True)]
    if not fused:
        return 0.5
    return round(max(0.5, float(np.quantile(fused, q))) + 1e-4, 4)


def temporal_threshold(real_temporal: Sequence[float], q: float = 1.0) -> float:
    """The temporal detector's own threshold: at least 0.5, and above the `q` quantile of real videos' scores.

    Why video scores and not clips: a video's score is the mean of its clips, and one real validation video whose
    clips the frame detector's features read as fake (version 3: `lp_d20`, clips up to 0.99999) puts the clip
    quantile at 1.0, a threshold no video can reach."""
    if len(real_temporal) == 0:
        raise DeepshieldError("the temporal threshold needs the scores of real videos")
    return round(max(0.5, float(np.quantile(np.asarray(real_temporal, np.float64), q))) + 0.005, 3)


def leave_one_out(
    frame: Sequence[float], temporal: Sequence[float], labels: Sequence[int], l2: float = 0.1
) -> np.ndarray:
    """Each video's fused probability from a fusion fitted on all the other videos: with a few dozen videos the
    in-sample fit flatters itself, and this is the figure that decides whether the fusion may flag."""
    n = len(labels)
    out = np.zeros(n)
    for k in range(n):
        rest = [i for i in range(n) if i != k]
        w_f, w_t, b = fit_fusion(
            [frame[i] for i in rest], [temporal[i] for i in rest], [labels[i] for i in rest], l2=l2
        )
        out[k] = Fusion(w_f, w_t, b, 0.5, "").probability(frame[k], temporal[k])
    return out


def fusion_check(
    frame: Sequence[float],
    temporal: Sequence[float],
    labels: Sequence[int],
    source: Sequence[str],
    fusion: Fusion,
) -> dict[str, Any]:
    """Video-level AUC of the frame detector, the temporal detector, the fusion in sample and the fusion left
    one out, over all videos and over each source report that holds both classes (the dev set)."""
    y = np.asarray(labels)
    fused = np.array([fusion.probability(a, b) for a, b in zip(frame, temporal, strict=True)])
    columns = {"frame": np.asarray(frame), "temporal": np.asarray(temporal), "fused": fused}
    if min(int(y.sum()), int((1 - y).sum())) >= 2:  # leaving out a class's only video leaves nothing to fit
        columns["fused_loo"] = leave_one_out(frame, temporal, labels)
    groups = {"all": np.ones(len(y), bool)} | {s: np.asarray(source) == s for s in dict.fromkeys(source)}
    table: dict[str, dict[str, float]] = {}
    lines = ["video-level AUC           " + "".join(f"{c:>11}" for c in columns)]
    for name, sel in groups.items():
        if len(set(y[sel].tolist())) < 2:
            continue
        table[name] = {c: round(auc(y[sel], v[sel]), 4) for c, v in columns.items()}
        lines.append(f"  {name:<24}" + "".join(f"{table[name][c]:>11.3f}" for c in columns))
    return {"auc": table, "lines": lines}
