"""How the field turns per-face scores into frame, track and video scores (as in the SBI evaluation protocol):
max over faces within a frame, mean over frames for a track and for the video."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class AggregateScores:
    video: float | None
    frames: list[dict[str, Any]]  # [{"frame_index", "time_s", "score"}] for frames with at least one face
    tracks: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "video_score": None if self.video is None else round(self.video, 4),
            "frame_scores": self.frames,
            "track_scores": {str(k): round(v, 4) for k, v in self.tracks.items()},
        }


def aggregate_scores(per_face: list[tuple[int, float, int | None, float]]) -> AggregateScores:
    """`per_face`: (frame_index, time_s, track_id, score) for every scored face."""
    if not per_face:
        return AggregateScores(video=None, frames=[])
    by_frame: dict[int, tuple[float, float]] = {}
    by_track: dict[int, list[float]] = {}
    for fi, t, tid, s in per_face:
        prev = by_frame.get(fi)
        by_frame[fi] = (t, s if prev is None else max(prev[1], s))
        if tid is not None:
            by_track.setdefault(tid, []).append(s)
    frames = [
        {"frame_index": fi, "time_s": round(t, 3), "score": round(s, 4)} for fi, (t, s) in sorted(by_frame.items())
    ]
    video = float(np.mean([f["score"] for f in frames]))
    tracks = {tid: float(np.mean(v)) for tid, v in sorted(by_track.items())}
    return AggregateScores(video=video, frames=frames, tracks=tracks)
