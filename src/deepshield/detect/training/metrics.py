"""ROC metrics in numpy: AUC, EER, true-positive rate at a fixed false-positive rate, bootstrap intervals."""

from __future__ import annotations

from typing import Any

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), thresholds descending; ties are handled as one step."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    idx = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[idx]
    fps = (idx + 1) - tps
    p, n = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    tpr = np.r_[0.0, tps / p]
    fpr = np.r_[0.0, fps / n]
    return fpr, tpr, np.r_[np.inf, s[idx]]


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (probability a random fake outscores a random real; ties count half)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, target_fpr: float = 0.01) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    ok = fpr <= target_fpr + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def summarize(
    labels: np.ndarray, scores: np.ndarray, threshold: float | None = None, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """AUC, EER, TPR@1%FPR with bootstrap 95% intervals (resampling reals and fakes separately)."""
    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, Any] = {"n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    fns = {"auc": auc, "eer": eer, "tpr_at_1pct_fpr": tpr_at_fpr}
    for k, fn in fns.items():
        out[k] = fn(y, s)
    if threshold is not None:
        out["threshold"] = threshold
        out["fpr_at_threshold"] = float((s[y == 0] >= threshold).mean()) if (y == 0).any() else float("nan")
        out["tpr_at_threshold"] = float((s[y == 1] >= threshold).mean()) if (y == 1).any() else float("nan")
    pos, neg = np.where(y == 1)[0], np.where(y == 0)[0]
    if n_boot and len(pos) > 1 and len(neg) > 1:
        rng = np.random.default_rng(seed)
        boots: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(n_boot):
            idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
            for k, fn in fns.items():
                boots[k].append(fn(y[idx], s[idx]))
        for k, v in boots.items():
            out[k + "_ci95"] = [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
    return out
