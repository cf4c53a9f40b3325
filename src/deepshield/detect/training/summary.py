"""What a person reads of an evaluation: the summary lines, two versions side by side, and the ROC picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepshield.detect.training.datasets import describe_selection
from deepshield.detect.training.evaluate import NO_FACE_SCORE, method_rows
from deepshield.detect.training.metrics import roc_curve


def _item_key(i: dict[str, Any]) -> tuple[int, str, str]:
    return int(i["label"]), str(i["method"]), str(i.get("real_pool", ""))


def plot_roc(report: dict[str, Any], out_png: Path) -> Path:
    """Video- and frame-level ROC with the default threshold's operating point; beside it, one video-level
    curve per method when there are several (each against its own reals, as in the summary)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [i for i in report["items"] if i["video_score"] is not None]
    methods = [m for m, fig in report.get("by_method", {}).items() if "auc" in fig.get("video", {})]
    per_method = len(methods) > 1
    fig, axes = plt.subplots(1, 2 if per_method else 1, figsize=(10 if per_method else 5, 5), dpi=110, squeeze=False)
    ax = axes[0][0]
    vy = np.array([i["label"] for i in items])
    if len(set(vy.tolist())) == 2:
        fpr, tpr, _ = roc_curve(vy, np.array([i["video_score"] for i in items]))
        auc_v = report["all"]["video"]["auc"]
        ax.plot(fpr, tpr, label=f"video level (AUC {auc_v:.3f})")
        fy = np.array([i["label"] for i in items for _ in i["frames"]])
        fs = np.array([f["score"] for i in items for f in i["frames"]])
        fpr, tpr, _ = roc_curve(fy, fs)
        ax.plot(fpr, tpr, label=f"frame level (AUC {report['all']['frame']['auc']:.3f})")
        video = report["all"]["video"]
        if video.get("fpr_at_threshold") is not None and video.get("tpr_at_threshold") is not None:
            # Where the shipped decision threshold sits on the video-level curve: what a deployment gets.
            ax.plot(
                [video["fpr_at_threshold"]],
                [video["tpr_at_threshold"]],
                "o",
                color="#8c1d18",
                label=f"default threshold {report['threshold']:.3g} (FPR {video['fpr_at_threshold']:.1%}, "
                f"TPR {video['tpr_at_threshold']:.1%})",
            )
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no ROC: needs scored real and fake items", ha="center", va="center")
    ax.set_title(f"{report['detector']} {report['detector_version']} on {Path(report['dataset']).name}")
    if per_method:
        mx = axes[0][1]
        for m in methods:
            rows = method_rows(items, m, _item_key)
            fpr, tpr, _ = roc_curve(np.array([i["label"] for i in rows]), np.array([i["video_score"] for i in rows]))
            mx.plot(fpr, tpr, lw=1.2, label=f"{m} (AUC {report['by_method'][m]['video']['auc']:.3f})")
        mx.legend(loc="lower right", fontsize=8)
        mx.set_title("video level, per method")
    for a in axes[0]:
        a.plot([0, 1], [0, 1], "k:", lw=0.8)
        a.set_xlabel("false-positive rate")
        a.set_ylabel("true-positive rate")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def format_summary(report: dict[str, Any]) -> list[str]:
    """Human-readable lines: the headline figures with intervals."""

    def fmt(m: dict[str, Any], name: str) -> str:
        if "auc" not in m:
            return (
                f"{name}: no AUC (needs scored real and fake items; real {m.get('n_real')}, fake {m.get('n_fake')}), "
                f"flagged at threshold {m.get('flagged_at_threshold', 0):.3f}"
            )
        ci = m.get("auc_ci95", [float("nan")] * 2)
        return (
            f"{name}: AUC {m['auc']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]  EER {m['eer']:.3f}  "
            f"TPR@1%FPR {m['tpr_at_1pct_fpr']:.3f}  FPR@thr {m.get('fpr_at_threshold', float('nan')):.3f}  "
            f"TPR@thr {m.get('tpr_at_threshold', float('nan')):.3f}  (real {m['n_real']}, fake {m['n_fake']})"
        )

    chosen = describe_selection(report.get("selection", {}))
    layout = f"{report['layout']} ({chosen})" if chosen else report["layout"]
    lines = [
        f"{layout} {report['dataset']}: {report['n_items']} items, {report['n_no_face']} without a "
        f"face, {report['n_errors']} errors; threshold {report['threshold']:.3f}"
    ]
    for level in ("video", "frame"):
        if level in report["all"]:
            lines.append(fmt(report["all"][level], f"{level}-level"))
    undecided = report.get("all_no_face_undecided", {}).get("video")
    if undecided:
        lines.append(
            fmt(undecided, f"  every item, the {report['n_no_face']} without a face at {NO_FACE_SCORE}, video-level")
        )
    for kind, m in report["by_kind"].items():
        if "video" in m:
            lines.append(fmt(m["video"], f"  {kind}s only, video-level"))
    for meth, m in report["by_method"].items():
        if "video" in m:
            lines.append(fmt(m["video"], f"  method {meth}, video-level"))
    return lines


def compare_versions(report: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """The two versions' video-level AUCs side by side: over all items, per kind of media and per method."""

    def auc_text(m: dict[str, Any] | None) -> str:
        if not m or "auc" not in m:
            return "     -"
        ci = m.get("auc_ci95", [float("nan")] * 2)
        return f"{m['auc']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"

    def flagged(r: dict[str, Any]) -> str:
        m = r["all"].get("video", {})
        return f"TPR {m.get('tpr_at_threshold', float('nan')):.2f} FPR {m.get('fpr_at_threshold', float('nan')):.2f}"

    new, old = report["detector_version"], baseline["detector_version"]
    rows = [("all items", report["all"].get("video"), baseline["all"].get("video"))]
    rows += [
        (f"{k}s only", m.get("video"), baseline["by_kind"].get(k, {}).get("video"))
        for k, m in report["by_kind"].items()
    ]
    rows += [
        (f"method {k}", m.get("video"), baseline["by_method"].get(k, {}).get("video"))
        for k, m in report["by_method"].items()
    ]
    lines = [f"video-level AUC            version {new:<18} version {old}"]
    lines += [f"  {name:<24} {auc_text(a):<26} {auc_text(b)}" for name, a, b in rows]
    lines.append(f"  {'at each threshold':<24} {flagged(report):<26} {flagged(baseline)}")
    return lines
