"""Self-contained HTML scan reports: every picture is embedded, so a report is one file that can be mailed.

Reports read only `deepshield.scan_result`, never `detect`, so the scan service can render them without a loop.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import cv2
import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from deepshield.faces.types import Points
from deepshield.media.types import RGBImage
from deepshield.scan_result import FaceArtifact, FrameScore, ScanResult, TemporalScores, TrackResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: A report is self-contained (inline data only): nothing fetched, nothing run. Written into the report as a
#: meta tag, so it holds for a report opened from disk too; the service adds frame-ancestors as a header.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

#: The timeline's colours: the frame detector's line, the temporal detector's runs (told apart by shape too).
FRAME_COLOUR = "#b3261e"
TEMPORAL_COLOUR = "#1f5fa8"

_env = Environment(loader=PackageLoader("deepshield.reports", "templates"), autoescape=select_autoescape(["html"]))


def png_data_uri(rgb: RGBImage) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def draw_landmarks(crop: RGBImage, pts: Points | None) -> RGBImage:
    img = crop.copy()
    if pts is None:
        return img
    r = max(1, img.shape[0] // 200)
    for x, y in pts[:, :2]:
        if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]:
            cv2.circle(img, (int(x), int(y)), r, (0, 255, 120), -1, lineType=cv2.LINE_AA)
    return img


def heatmap_overlay(crop: RGBImage, heat: ArrayLike) -> RGBImage:
    h = cast(  # resizing keeps the dtype
        NDArray[np.float32],
        cv2.resize(np.asarray(heat, dtype=np.float32), (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_CUBIC),
    )
    lo, hi = float(h.min()), float(h.max())
    h = (h - lo) / (hi - lo) if hi > lo else np.zeros_like(h)
    colour = cv2.applyColorMap((h * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    blend: RGBImage = (0.55 * crop.astype(np.float32) + 0.45 * colour.astype(np.float32)).astype(np.uint8)
    return blend


def timeline_figure(
    frame_scores: Sequence[FrameScore],
    threshold: float | None,
    duration: float | None,
    temporal: TemporalScores | None = None,
) -> Figure:
    """Score per sampled frame over time with the decision threshold; with the temporal detector's runs, each
    run's score at its time and that detector's own threshold, in a second colour, so a reviewer sees where in
    the video either detector reacted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 2.6), dpi=110)
    t = [f.time_s for f in frame_scores]
    s = [f.score for f in frame_scores]
    ax.plot(t, s, marker="o", markersize=3, linewidth=1.5, color=FRAME_COLOUR, label="frame detector")
    runs = temporal is not None and bool(temporal.clip_scores)
    if threshold is not None:
        name = "frame threshold" if runs else "threshold"
        ax.axhline(threshold, linestyle="--", color="#555", linewidth=1, label=f"{name} {threshold:.2f}")
    if temporal is not None and runs:
        ax.scatter(
            [c.time_s for c in temporal.clip_scores],
            [c.score for c in temporal.clip_scores],
            marker="s",
            s=22,
            color=TEMPORAL_COLOUR,
            zorder=3,
            clip_on=False,  # a run scored 1.0 sits on the top edge, whole
            label="temporal detector (run of frames)",
        )
        ax.axhline(
            temporal.threshold,
            linestyle=":",
            color=TEMPORAL_COLOUR,
            linewidth=1.2,
            label=f"temporal threshold {temporal.threshold:.2f}",
        )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=4, fontsize=7, frameon=False)
    ax.set_ylim(0, 1)
    if duration:
        ax.set_xlim(0, duration)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("manipulation score")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def figure_png(fig: Figure) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _tracks_over(result: ScanResult) -> list[TrackResult]:
    """Tracks at or over the threshold when the video as a whole is not: a reviewer should look at them."""
    if result.verdict == "manipulated":
        return []
    over = set(result.tracks_over_threshold)
    return [t for t in result.tracks if t.track_id in over]


def render_report(result: ScanResult, artifacts: list[FaceArtifact]) -> str:
    threshold = result.detector.threshold if result.detector is not None else None
    track_scores = {t.track_id: t.score for t in result.tracks}
    faces_view = []
    for a in artifacts:
        track_score = track_scores.get(a.face.track_id) if a.face.track_id is not None else None  # None: a still
        faces_view.append(
            {
                "label": a.label,
                "thumb": png_data_uri(draw_landmarks(a.crop, a.crop_landmarks)),
                "heat": None
                if a.heatmap is None
                else png_data_uri(heatmap_overlay(a.crop if a.heatmap_crop is None else a.heatmap_crop, a.heatmap)),
                "pose": a.face.pose.to_dict() if a.face.pose else None,
                "confidence": round(a.face.confidence, 3),
                "score": a.score,
                "score_over": a.score is not None and threshold is not None and a.score >= threshold,
                "track_score": track_score,
                "track_over": track_score is not None and threshold is not None and track_score >= threshold,
                "time_s": round(a.face.time_s, 2),
                "mesh": a.face.landmarks is not None,
                "in_frame_pct": None if not a.face.is_partial else round(100 * a.face.in_frame),
            }
        )
    timeline = None
    media, scores = result.media, result.scores
    if scores is not None and scores.frame_scores and media is not None and media.kind == "video":
        timeline = figure_png(timeline_figure(scores.frame_scores, threshold, media.duration_s, result.temporal))
    tpl = _env.get_template("report.html")
    return tpl.render(
        csp=REPORT_CSP, r=result, faces=faces_view, timeline=timeline, tracks_over=_tracks_over(result), esc=html.escape
    )
