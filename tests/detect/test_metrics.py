"""ROC metrics against brute-force definitions."""

from __future__ import annotations

import numpy as np

from deepshield.detect.training.metrics import auc, eer, summarize, tpr_at_fpr


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_auc_matches_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y * 0.8, 1)  # rounding creates ties
    assert abs(auc(y, s) - _pairwise_auc(y, s)) < 1e-12


def test_perfect_and_inverted_scores() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert auc(y, s) == 1.0 and auc(y, -s) == 0.0
    assert eer(y, s) == 0.0
    assert tpr_at_fpr(y, s, 0.01) == 1.0
    assert tpr_at_fpr(y, -s, 0.01) == 0.0


def test_summary_threshold_rates_and_intervals() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(200), np.ones(200)].astype(int)
    s = np.r_[rng.normal(0, 1, 200), rng.normal(2, 1, 200)]
    m = summarize(y, s, threshold=1.0, n_boot=200)
    assert m["fpr_at_threshold"] == float((s[:200] >= 1.0).mean())
    assert m["tpr_at_threshold"] == float((s[200:] >= 1.0).mean())
    lo, hi = m["auc_ci95"]
    assert lo < m["auc"] < hi and hi - lo < 0.1
    assert 0.05 < m["eer"] < 0.3
