"""The scan pipeline: safe decode -> sampled frames -> faces -> tracks -> detector -> aggregated scores.

Every entry point (CLI, API, batch, upload screening) calls `scan_file`; it returns a typed `ScanResult`, whose
JSON (`ScanResult.to_json`) is the same everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray

from deepshield.config import DEFAULT_SCAN_FRAMES
from deepshield.detect.aggregate import AggregateScores, ScoredFace, aggregate_scores
from deepshield.detect.base import Detector, FaceHeatmap
from deepshield.detect.registry import available_detectors, get_detector
from deepshield.detect.temporal import TemporalDetector, shipped_temporal
from deepshield.detect.temporal_scan import (
    BackgroundWindows,
    TemporalOutcome,
    assign_clips,
    decode_windows_now,
    score_tracks,
)
from deepshield.errors import DeepshieldError
from deepshield.faces.align import align_face
from deepshield.faces.analyzer import FaceAnalyzer
from deepshield.faces.tracking import frame_signature, link_tracks, shot_cuts
from deepshield.faces.types import Face, FaceTrack
from deepshield.media import Frame, FrameSampling, MediaInfo, MediaKind, MediaLimits, open_media
from deepshield.media.prefetch import Prefetcher, decode_ahead
from deepshield.media.types import RGBImage
from deepshield.scan_result import (
    DETECTOR_OK,
    NO_DETECTOR,
    DetectorRef,
    FaceArtifact,
    FaceResult,
    ScannedMedia,
    ScanResult,
    Scores,
    TemporalScores,
    Timing,
    TrackResult,
    Verdict,
)

__all__ = ["NO_DETECTOR", "FaceArtifact", "ScanOptions", "ScanOutcome", "Scanner", "scan_file"]

ProgressFn = Callable[[float], None]


@dataclass
class ScanOptions:
    #: Frames sampled per video; the service takes it from `Settings.scan_frames`.
    frames: int = DEFAULT_SCAN_FRAMES
    detector: str | None = None
    use_detector: bool = True
    #: Keep face thumbnails and heat maps for an HTML report (costs extra work per face).
    keep_artifacts: bool = False
    thumbnail_size: int = 160
    limits: MediaLimits = field(default_factory=MediaLimits)
    #: Decode a video's next frames in a second thread while faces are found in this one (`media.prefetch`).
    decode_ahead: bool = True
    #: Score videos with the temporal detector too, when one is installed, from this many extra windows of
    #: consecutive frames (`detect.temporal_scan`).
    use_temporal: bool = True
    temporal_windows: int = 4
    #: The temporal windows' speed-ups: each face found in a window's first frame only and followed by its mesh,
    #: and the windows decoded in a background thread during the sampled frames (with `decode_ahead`). False
    #: scores them as first shipped (the face detector on every window frame, decoded afterwards): the
    #: benchmark's baseline.
    temporal_fast: bool = True


@dataclass
class ScanOutcome:
    result: ScanResult
    artifacts: list[FaceArtifact] = field(default_factory=list)


class Scanner:
    """Holds the face analyzer and detector for many files (both are costly to build)."""

    def __init__(
        self,
        options: ScanOptions | None = None,
        detector: Detector | None = None,
        temporal: TemporalDetector | None = None,
    ) -> None:
        self.options = options or ScanOptions()
        self.analyzer = FaceAnalyzer()
        self.temporal = temporal
        if temporal is None and self.options.use_detector and self.options.use_temporal:
            self.temporal = shipped_temporal()
        if detector is not None:
            self.detector: Detector | None = detector
        elif self.options.use_detector:
            self.detector = get_detector(self.options.detector)
            if self.detector is None and self.options.detector:
                raise DeepshieldError(
                    f"detector {self.options.detector!r} is not available (installed: "
                    f"{', '.join(available_detectors()) or 'none'})"
                )
        else:
            self.detector = None
        # A second face analyzer follows faces through the temporal windows in a thread of its own.
        self.window_analyzer = (
            FaceAnalyzer()
            if self.temporal is not None and self.detector is not None and self.options.temporal_fast
            else None
        )

    def close(self) -> None:
        self.analyzer.close()
        if self.window_analyzer is not None:
            self.window_analyzer.close()

    def scan(
        self, path: str | Path, progress: ProgressFn | None = None, keep_artifacts: bool | None = None
    ) -> ScanOutcome:
        """`keep_artifacts` overrides the options' for this file (the service keeps no pictures of screenings)."""
        options = self.options if keep_artifacts is None else replace(self.options, keep_artifacts=keep_artifacts)
        return scan_file(path, options, self.analyzer, self.detector, progress, self.temporal, self.window_analyzer)


def scan_file(
    path: str | Path,
    options: ScanOptions | None = None,
    analyzer: FaceAnalyzer | None = None,
    detector: Detector | None = None,
    progress: ProgressFn | None = None,
    temporal: TemporalDetector | None = None,
    window_analyzer: FaceAnalyzer | None = None,
) -> ScanOutcome:
    """Scan one file. Bad input gives a result with a typed error (`ok` false) instead of raising. `temporal`
    scores videos from extra windows of consecutive frames (only beside a frame detector: the fusion needs both)."""
    options = options or ScanOptions()
    t0 = time.perf_counter()
    own_analyzer = analyzer is None
    analyzer = analyzer or FaceAnalyzer()
    try:
        return _scan(path, options, analyzer, detector, progress, t0, temporal, window_analyzer)
    except DeepshieldError as e:
        elapsed = round(time.perf_counter() - t0, 3)
        return ScanOutcome(result=ScanResult.failure(str(path), e.code, e.message, elapsed))
    finally:
        if own_analyzer:
            analyzer.close()


def _scan(
    path: str | Path,
    options: ScanOptions,
    analyzer: FaceAnalyzer,
    detector: Detector | None,
    progress: ProgressFn | None,
    t0: float,
    temporal: TemporalDetector | None = None,
    window_analyzer: FaceAnalyzer | None = None,
) -> ScanOutcome:
    media = open_media(path, options.limits)
    info = media.info
    if info.kind is MediaKind.AUDIO:
        raise DeepshieldError("audio-only file: there are no faces to scan (use `deepshield verify` for labels)")
    wants_temporal = (
        temporal is not None and detector is not None and info.kind is MediaKind.VIDEO and options.use_temporal
    )
    fast = temporal is not None and wants_temporal and options.temporal_fast and options.decode_ahead
    windows: Prefetcher[list[Frame]] | BackgroundWindows | None = None
    if fast and temporal is not None:
        # With a second face analyzer the windows are followed and scored beside the sampled frames; without
        # one, they are at least decoded from now on, in a thread the sampled frames leave idle most of the time.
        windows = (
            BackgroundWindows(media, window_analyzer, temporal, options.temporal_windows)
            if window_analyzer is not None
            else decode_windows_now(media, temporal.frames, options.temporal_windows)
        )
    try:
        sampling = FrameSampling.evenly(options.frames)
        expected = 1 if info.kind is MediaKind.IMAGE else len(sampling.target_times(info.duration_s or 0.0))
        frames_faces: list[list[Face]] = []
        frame_rgbs: dict[int, RGBImage] = {}
        per_face_scores: list[ScoredFace] = []
        face_scores: dict[int, float] = {}
        frame_times: list[float] = []
        signatures: list[NDArray[np.float32]] = []
        is_video = info.kind is MediaKind.VIDEO

        decode_s = wait_s = faces_s = detect_s = 0.0

        def sampled() -> Generator[tuple[Frame, NDArray[np.float32] | None], None, None]:
            nonlocal decode_s
            t = time.perf_counter()
            for frame in media.frames(sampling):
                decode_s += time.perf_counter() - t
                yield frame, frame_signature(frame.rgb) if is_video else None
                t = time.perf_counter()

        # A video's frames are decoded (and their shot signatures taken) ahead, while faces are found in this one:
        # `decode` is the decoder's own time, `waited_for_frames` the part of it the scan had to wait for.
        t_dec = time.perf_counter()
        with closing(decode_ahead(media, sampled, enabled=options.decode_ahead)) as source:
            for i, (frame, signature) in enumerate(source):
                wait_s += time.perf_counter() - t_dec
                t1 = time.perf_counter()
                faces = analyzer.analyze(frame.rgb, frame_index=frame.index, time_s=frame.time_s)
                faces_s += time.perf_counter() - t1
                frames_faces.append(faces)
                frame_times.append(frame.time_s)
                if signature is not None:
                    signatures.append(signature)
                if options.keep_artifacts and faces:
                    frame_rgbs[len(frames_faces) - 1] = frame.rgb
                if detector is not None and faces:
                    t2 = time.perf_counter()
                    # Heat maps cost many extra inferences per face: made later, for the faces a report shows.
                    scores = detector.score_faces(frame.rgb, faces, explain=False)
                    detect_s += time.perf_counter() - t2
                    for f, s in zip(faces, scores, strict=True):
                        face_scores[id(f)] = s.score
                if progress:
                    progress(min(1.0, (i + 1) / max(expected, 1)))
                t_dec = time.perf_counter()
        tracks = link_tracks(frames_faces, shot_cuts(signatures)) if is_video else []
        if info.kind is MediaKind.IMAGE:
            for k, f in enumerate(frames_faces[0] if frames_faces else []):
                f.track_id = k
        all_faces = [f for ff in frames_faces for f in ff]
        for f in all_faces:
            if id(f) in face_scores:
                per_face_scores.append(
                    ScoredFace(
                        f.frame_index,
                        f.time_s,
                        f.track_id,
                        face_scores[id(f)],
                        f.is_partial,
                        size=max(f.width, f.height),
                    )
                )
        agg = aggregate_scores(per_face_scores) if detector is not None else None
        temporal_out: TemporalOutcome | None = None
        temporal_s = None
        if temporal is not None and detector is not None and is_video and options.use_temporal and tracks:
            t3 = time.perf_counter()
            if isinstance(windows, BackgroundWindows):
                temporal_out = assign_clips(windows.result(), tracks)
                # Its own time in its thread (as `decode` is the decoder's), most of it beside the sampled frames.
                temporal_s = round(temporal_out.decode_s + temporal_out.faces_s + temporal_out.detector_s, 3)
            else:
                temporal_out = score_tracks(
                    media, analyzer, temporal, tracks, options.temporal_windows, options.temporal_fast, windows
                )
                temporal_s = round(time.perf_counter() - t3, 3)
        timing = Timing(
            decode=round(decode_s, 3),
            waited_for_frames=round(wait_s, 3),
            faces=round(faces_s, 3),
            detector=round(detect_s, 3),
            total=round(time.perf_counter() - t0, 3),
            temporal=temporal_s,
        )
        result = _result(path, info, frame_times, all_faces, face_scores, tracks, detector, agg, timing)
        if temporal is not None and temporal_out is not None:
            result = _with_temporal(result, temporal, temporal_out)
        artifacts = (
            _artifacts(frames_faces, frame_rgbs, tracks, face_scores, detector, options)
            if options.keep_artifacts
            else []
        )
        media.close()
        return ScanOutcome(result=result, artifacts=artifacts)

    finally:
        if windows is not None:
            windows.close()


def _result(
    path: str | Path,
    info: MediaInfo,
    frame_times: list[float],
    faces: list[Face],
    face_scores: dict[int, float],
    tracks: list[FaceTrack],
    detector: Detector | None,
    agg: AggregateScores | None,
    timing: Timing,
) -> ScanResult:
    """The typed result, with the verdict against the detector's documented threshold."""
    det = None
    verdict: Verdict | None = None
    tracks_over: list[int] = []
    if detector is not None:
        threshold = detector.info.threshold_for(info.kind)
        det = DetectorRef(detector.info.name, detector.info.version, threshold)
        if agg is not None and agg.video is not None:
            verdict = "manipulated" if agg.video >= threshold else "no manipulation found"
        else:
            verdict = "no face to score"
        if agg is not None and tracks:
            tracks_over = [tid for tid, s in agg.tracks.items() if s >= threshold]
    scores = None
    if agg is not None:
        scores = Scores(
            video_score=None if agg.video is None else round(agg.video, 4),
            frame_scores=tuple(agg.frames),
            track_scores={k: round(v, 4) for k, v in agg.tracks.items()},
        )
    return ScanResult(
        file=str(path),
        media=ScannedMedia.from_info(info, Path(info.path).name),
        frames_sampled=len(frame_times),
        frame_times_s=tuple(round(t, 3) for t in frame_times),
        faces=tuple(FaceResult.from_face(f, face_scores.get(id(f))) for f in faces),
        tracks=tuple(
            TrackResult(
                track_id=t.track_id,
                detections=len(t.faces),
                first_time_s=round(t.first_time_s, 3),
                last_time_s=round(t.last_time_s, 3),
                score=round(agg.tracks[t.track_id], 4) if agg and t.track_id in agg.tracks else None,
            )
            for t in tracks
        ),
        tracks_over_threshold=tuple(tracks_over),
        detector=det,
        detector_status=DETECTOR_OK if detector is not None else NO_DETECTOR,
        scores=scores,
        verdict=verdict,
        timing_s=timing,
        elapsed_s=timing.total,
    )


def _with_temporal(result: ScanResult, temporal: TemporalDetector, out: TemporalOutcome) -> ScanResult:
    """The result with the temporal scores and the fused score; when the model's fusion is `in_verdict`, the
    verdict is flagged by the fused or the temporal score reaching its threshold too (the frame detector's own
    threshold already set it)."""
    video = out.video_score
    fused = fused_threshold = None
    frame = result.video_score
    if temporal.fusion is not None and video is not None and frame is not None:
        fused = round(temporal.fusion.probability(frame, video), 4)
        fused_threshold = temporal.fusion.threshold
    scores = TemporalScores(
        name=temporal.name,
        version=temporal.version,
        threshold=temporal.threshold,
        video_score=None if video is None else round(video, 4),
        track_scores={k: round(v, 4) for k, v in out.track_scores.items()},
        clips=out.clips,
        fused_score=fused,
        fused_threshold=fused_threshold,
        in_verdict=temporal.fusion is not None and temporal.fusion.in_verdict,
        clip_scores=tuple(replace(c, score=round(c.score, 4)) for c in out.clip_scores),
    )
    verdict = result.verdict
    if scores.flagged and scores.in_verdict:
        verdict = "manipulated"
    return replace(result, temporal=scores, verdict=verdict)


def _artifacts(
    frames_faces: list[list[Face]],
    frame_rgbs: dict[int, RGBImage],
    tracks: list[FaceTrack],
    face_scores: dict[int, float],
    detector: Detector | None,
    options: ScanOptions,
) -> list[FaceArtifact]:
    """One picture per track (the most confident face), or per face for a still image."""
    chosen: list[tuple[str, int, Face]] = []
    if tracks:
        for t in tracks:
            best = max(t.faces, key=lambda f: f.confidence)
            fi = next(i for i, ff in enumerate(frames_faces) if any(x is best for x in ff))
            chosen.append((f"track {t.track_id}", fi, best))
    else:
        for fi, ff in enumerate(frames_faces):
            for k, f in enumerate(ff):
                chosen.append((f"face {k}", fi, f))
            if chosen:
                break
    out = []
    for label, fi, f in chosen[:24]:
        rgb = frame_rgbs.get(fi)
        if rgb is None:
            continue
        crop = align_face(rgb, f, size=options.thumbnail_size, margin=0.3, rotate=False)
        lms = crop.map_points(f.landmarks) if f.landmarks is not None else None
        hm = hm_crop = None
        if detector is not None and id(f) in face_scores:
            evidence = detector.score_faces(rgb, [f], explain=True)[0].evidence
            if evidence.get("heatmap") is not None:
                # asarray: a detector outside this tree may hand back lists; the types say what it should be
                hm = cast(FaceHeatmap, np.asarray(evidence["heatmap"]))
                hm_crop = None if evidence.get("crop") is None else cast(RGBImage, np.asarray(evidence["crop"]))
        out.append(
            FaceArtifact(
                label=label,
                face=f,
                crop=crop.image,
                crop_landmarks=lms,
                score=face_scores.get(id(f)),
                heatmap=hm,
                heatmap_crop=hm_crop,
            )
        )
    return out
