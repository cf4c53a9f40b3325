"""The result of scanning one file, as typed values, and its JSON form, written and read only here.

It sits below both `detect` (which builds it) and `reports` (which renders it), and the CLI, the API, cases and the
scan store read its attributes, so no domain reads a scan back by string keys and the JSON of a scan (the CLI's
`--json` line, the API's body, the stored record) has one writer. Values are rounded when the result is built,
so `ScanResult.from_json(r.to_json()) == r`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Self, cast

import numpy as np
from numpy.typing import NDArray

from deepshield.faces.types import Face, HeadPose, Points
from deepshield.jsontypes import JsonValue
from deepshield.media.types import MediaExtra, MediaInfo, MediaKind, RGBImage

Verdict = Literal["manipulated", "no manipulation found", "no face to score"]
DETECTOR_OK = "ok"
NO_DETECTOR = "no detector installed: faces were found but no manipulation score was computed"


@dataclass(frozen=True)
class ScanError:
    """Why a file could not be scanned: a stable code for machines, a one-line message for people."""

    code: str
    message: str


@dataclass(frozen=True)
class ScannedMedia:
    """The file's facts from `media.MediaInfo`; `path` is the name shown to people, never a path on this machine."""

    path: str
    kind: MediaKind
    format: str
    mime: str
    size_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    has_audio: bool = False
    extra: Mapping[str, MediaExtra] = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: MediaInfo, name: str) -> Self:
        """Every field of `info`, with the name people see in place of its path."""
        facts = {f.name: getattr(info, f.name) for f in fields(cls)}
        return cls(**{**facts, "path": name, "extra": dict(info.extra)})


@dataclass(frozen=True)
class FaceResult:
    """One face found in one sampled frame, with the detector's score of it (None without a detector)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the frame
    confidence: float
    pose: HeadPose | None
    has_mesh: bool
    frame_index: int
    time_s: float
    track_id: int | None
    #: Share of the face inside the frame; under `faces.types.PARTIAL_FACE_IN_FRAME` it is cut by the edge.
    in_frame: float
    score: float | None

    @classmethod
    def from_face(cls, face: Face, score: float | None) -> Self:
        pose = face.pose
        return cls(
            box=cast(tuple[float, float, float, float], tuple(round(v, 1) for v in face.box)),
            confidence=round(face.confidence, 4),
            pose=None if pose is None else HeadPose(round(pose.yaw, 1), round(pose.pitch, 1), round(pose.roll, 1)),
            has_mesh=face.landmarks is not None,
            frame_index=face.frame_index,
            time_s=round(face.time_s, 3),
            track_id=face.track_id,
            in_frame=round(face.in_frame, 3),
            score=None if score is None else round(score, 4),
        )


@dataclass(frozen=True)
class TrackResult:
    """One person followed across a video's sampled frames, with the mean score of the track's faces."""

    track_id: int
    detections: int
    first_time_s: float
    last_time_s: float
    score: float | None


@dataclass(frozen=True)
class FrameScore:
    """The score that stands for one sampled frame (see `detect.aggregate.pick_frame_face`)."""

    frame_index: int
    time_s: float
    score: float


@dataclass(frozen=True)
class Scores:
    """Frame, track and whole-file scores (`detect.aggregate`); `video_score` is None when no face was scored."""

    video_score: float | None
    frame_scores: tuple[FrameScore, ...] = ()
    track_scores: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DetectorRef:
    """Which detector scored the faces, and the documented threshold the verdict used."""

    name: str
    version: str
    threshold: float


@dataclass(frozen=True)
class ClipScore:
    """The temporal detector's score of one run of consecutive frames, placed at its middle frame's time and given
    to the scan track its face belongs to (-1: none), so a report can draw it on the timeline."""

    time_s: float
    track_id: int
    score: float


@dataclass(frozen=True)
class TemporalScores:
    """The second detector's scores (runs of consecutive frames, `detect.temporal_scan`) and their fusion with the
    frame detector's. `video_score` is None when no face was followed through a whole window; `fused_score` is
    None without both scores or without a fitted fusion. With `in_verdict`, the verdict flags the file when the
    fused score or the temporal score reaches its threshold (besides the frame detector's own); without it the
    scores are shown for a reviewer and the verdict is the frame detector's."""

    name: str
    version: str
    threshold: float
    video_score: float | None
    track_scores: Mapping[int, float] = field(default_factory=dict)
    clips: int = 0
    fused_score: float | None = None
    fused_threshold: float | None = None
    in_verdict: bool = False
    #: Each scored run, in time order (results stored before runs were kept have none).
    clip_scores: tuple[ClipScore, ...] = ()

    @property
    def flagged(self) -> bool:
        """The fused or the temporal score reaches its threshold (whether or not that may change the verdict)."""
        over = self.video_score is not None and self.video_score >= self.threshold
        fused = self.fused_score is not None and self.fused_threshold is not None
        return over or (fused and self.fused_score >= self.fused_threshold)  # type: ignore[operator]


@dataclass(frozen=True)
class Timing:
    """Seconds spent: `decode` is the decoder's own time, `waited_for_frames` the part of it the scan waited for."""

    decode: float
    waited_for_frames: float
    faces: float
    detector: float
    total: float
    #: The temporal detector's share of `total` (its windows' decoding, faces and scoring); None without it.
    temporal: float | None = None


@dataclass(frozen=True)
class ScanResult:
    """One scanned file. A failed scan has `error` and nothing but `file` and (mostly) `elapsed_s` besides."""

    file: str
    error: ScanError | None = None
    media: ScannedMedia | None = None
    frames_sampled: int = 0
    frame_times_s: tuple[float, ...] = ()
    faces: tuple[FaceResult, ...] = ()
    tracks: tuple[TrackResult, ...] = ()
    #: Tracks at or over the threshold: the video score is a mean over frames, so a swap of one person or one
    #: stretch of the video can be flagged here while the verdict stays "no manipulation found".
    tracks_over_threshold: tuple[int, ...] = ()
    detector: DetectorRef | None = None
    detector_status: str = DETECTOR_OK
    scores: Scores | None = None
    verdict: Verdict | None = None
    timing_s: Timing | None = None
    #: The temporal detector's scores and the fused score (videos, when a temporal model is installed).
    temporal: TemporalScores | None = None
    #: None only where no clock ran (a CLI worker process that died); the JSON then has no `elapsed_s`.
    elapsed_s: float | None = None
    #: Where the CLI wrote the HTML report (`deepshield scan --report`).
    report: str | None = None
    #: The service's scan record.
    scan_id: str | None = None

    @classmethod
    def failure(cls, file: str, code: str, message: str, elapsed_s: float | None = None) -> Self:
        return cls(file=file, error=ScanError(code, message), elapsed_s=elapsed_s)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def face_count(self) -> int:
        return len(self.faces)

    @property
    def video_score(self) -> float | None:
        return None if self.scores is None else self.scores.video_score

    def renamed(self, name: str) -> ScanResult:
        """The same result under the name a person gave the file (the service's upload name)."""
        media = None if self.media is None else replace(self.media, path=name)
        return replace(self, file=name, media=media)

    # The JSON form: the key order and the float values below are the scan's public format; keep them.

    def to_dict(self) -> dict[str, JsonValue]:
        d: dict[str, JsonValue]
        if self.error is not None:
            d = {"file": self.file, "ok": False, "error": {"code": self.error.code, "message": self.error.message}}
            if self.elapsed_s is not None:
                d["elapsed_s"] = self.elapsed_s
        else:
            d = {
                "file": self.file,
                "ok": True,
                "error": None,
                "media": None if self.media is None else _media_dict(self.media),
                "frames_sampled": self.frames_sampled,
                "frame_times_s": list(self.frame_times_s),
                "face_count": self.face_count,
                "faces": [_face_dict(f) for f in self.faces],
                "tracks": [
                    {
                        "track_id": t.track_id,
                        "detections": t.detections,
                        "first_time_s": t.first_time_s,
                        "last_time_s": t.last_time_s,
                        "score": t.score,
                    }
                    for t in self.tracks
                ],
                "tracks_over_threshold": list(self.tracks_over_threshold),
                "detector": None
                if self.detector is None
                else {
                    "name": self.detector.name,
                    "version": self.detector.version,
                    "threshold": self.detector.threshold,
                },
                "detector_status": self.detector_status,
                "scores": None if self.scores is None else _scores_dict(self.scores),
                "verdict": self.verdict,
            }
            if self.timing_s is not None:
                t = self.timing_s
                timing: dict[str, JsonValue] = {
                    "decode": t.decode,
                    "waited_for_frames": t.waited_for_frames,
                    "faces": t.faces,
                    "detector": t.detector,
                    "total": t.total,
                }
                if t.temporal is not None:
                    timing["temporal"] = t.temporal
                d["timing_s"] = timing
            if self.temporal is not None:
                d["temporal"] = _temporal_dict(self.temporal)
            if self.elapsed_s is not None:
                d["elapsed_s"] = self.elapsed_s
        if self.report is not None:
            d["report"] = self.report
        if self.scan_id is not None:
            d["scan_id"] = self.scan_id
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Self:
        d = cast(Mapping[str, Any], data)
        common: dict[str, Any] = {
            "file": d["file"],
            "elapsed_s": d.get("elapsed_s"),
            "report": d.get("report"),
            "scan_id": d.get("scan_id"),
        }
        if not d["ok"]:
            return cls(error=ScanError(d["error"]["code"], d["error"]["message"]), **common)
        det, scores, timing = d.get("detector"), d.get("scores"), d.get("timing_s")
        return cls(
            media=None if d.get("media") is None else _media_from(d["media"]),
            frames_sampled=d["frames_sampled"],
            frame_times_s=tuple(d["frame_times_s"]),
            faces=tuple(_face_from(f) for f in d["faces"]),
            tracks=tuple(TrackResult(**t) for t in d.get("tracks") or []),
            tracks_over_threshold=tuple(d.get("tracks_over_threshold") or []),
            detector=None if det is None else DetectorRef(det["name"], det["version"], det["threshold"]),
            detector_status=d["detector_status"],
            scores=None if scores is None else _scores_from(scores),
            verdict=d.get("verdict"),
            timing_s=None if timing is None else Timing(**timing),
            temporal=None if d.get("temporal") is None else _temporal_from(d["temporal"]),
            **common,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        return cls.from_dict(json.loads(text))


@dataclass
class FaceArtifact:
    """Pictures for the report: one representative face per track (or per face for images)."""

    label: str
    face: Face
    crop: RGBImage
    crop_landmarks: Points | None
    score: float | None
    heatmap: NDArray[np.float32] | NDArray[np.float64] | None = None  # as `detect.base.FaceHeatmap`
    #: The detector's own input crop that the heat map refers to.
    heatmap_crop: RGBImage | None = None


def _media_dict(m: ScannedMedia) -> dict[str, JsonValue]:
    return {
        "path": m.path,
        "kind": m.kind.value,
        "format": m.format,
        "mime": m.mime,
        "size_bytes": m.size_bytes,
        "sha256": m.sha256,
        "width": m.width,
        "height": m.height,
        "duration_s": m.duration_s,
        "fps": m.fps,
        "frame_count": m.frame_count,
        "video_codec": m.video_codec,
        "audio_codec": m.audio_codec,
        "has_audio": m.has_audio,
        "extra": dict(m.extra),
    }


def _media_from(d: Mapping[str, Any]) -> ScannedMedia:
    return ScannedMedia(**{**d, "kind": MediaKind(d["kind"]), "extra": dict(d.get("extra") or {})})


def _face_dict(f: FaceResult) -> dict[str, JsonValue]:
    pose = f.pose
    return {
        "box": list(f.box),
        "confidence": f.confidence,
        "pose": None if pose is None else {"yaw": pose.yaw, "pitch": pose.pitch, "roll": pose.roll},
        "has_mesh": f.has_mesh,
        "frame_index": f.frame_index,
        "time_s": f.time_s,
        "track_id": f.track_id,
        "in_frame": f.in_frame,
        "score": f.score,
    }


def _face_from(d: Mapping[str, Any]) -> FaceResult:
    pose = d.get("pose")
    return FaceResult(
        **{
            **d,
            "box": tuple(d["box"]),
            "pose": None if pose is None else HeadPose(pose["yaw"], pose["pitch"], pose["roll"]),
        }
    )


def _scores_dict(s: Scores) -> dict[str, JsonValue]:
    return {
        "video_score": s.video_score,
        "frame_scores": [{"frame_index": f.frame_index, "time_s": f.time_s, "score": f.score} for f in s.frame_scores],
        "track_scores": {str(k): v for k, v in s.track_scores.items()},
    }


def _scores_from(d: Mapping[str, Any]) -> Scores:
    return Scores(
        video_score=d["video_score"],
        frame_scores=tuple(FrameScore(**f) for f in d.get("frame_scores") or []),
        track_scores={int(k): v for k, v in (d.get("track_scores") or {}).items()},
    )


def _temporal_dict(t: TemporalScores) -> dict[str, JsonValue]:
    return {
        "name": t.name,
        "version": t.version,
        "threshold": t.threshold,
        "video_score": t.video_score,
        "track_scores": {str(k): v for k, v in t.track_scores.items()},
        "clips": t.clips,
        "fused_score": t.fused_score,
        "fused_threshold": t.fused_threshold,
        "in_verdict": t.in_verdict,
        "clip_scores": [{"time_s": c.time_s, "track_id": c.track_id, "score": c.score} for c in t.clip_scores],
    }


def _temporal_from(d: Mapping[str, Any]) -> TemporalScores:
    return TemporalScores(
        **{
            **d,
            "track_scores": {int(k): v for k, v in (d.get("track_scores") or {}).items()},
            "clip_scores": tuple(ClipScore(**c) for c in d.get("clip_scores") or ()),
        }
    )
