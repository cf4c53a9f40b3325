"""The scan pipeline, `deepshield scan` and the detector interface."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from deepshield.detect import (
    Detector,
    DetectorInfo,
    FaceEvidence,
    FaceScore,
    ScoredFace,
    aggregate_scores,
    pick_frame_face,
)
from deepshield.detect.pipeline import NO_DETECTOR, Scanner, ScanOptions, scan_file
from deepshield.faces.types import Face
from deepshield.scan_result import FaceResult, ScanResult, Scores, TrackResult
from tests.cli import run_cli
from tests.foundation.media_factory import hostile_corpus, write_video

FACE = FaceResult((0.0, 0.0, 10.0, 10.0), 0.9, None, False, 0, 0.0, 0, 1.0, 0.5)


class BrightnessDetector(Detector):
    """A test double with a real, checkable rule: the score is the mean brightness of the face box."""

    info = DetectorInfo(name="brightness", version="test", threshold=0.5, input_size=0)

    def score_faces(self, rgb: np.ndarray, faces: list[Face], explain: bool = False) -> list[FaceScore]:
        out = []
        for f in faces:
            x0, y0, x1, y1 = (int(v) for v in f.box)
            patch = rgb[y0:y1, x0:x1]
            ev: FaceEvidence = {"heatmap": patch.mean(axis=2) / 255.0, "crop": patch} if explain else {}
            out.append(FaceScore(float(patch.mean() / 255.0), ev))
        return out


def test_aggregation_is_max_over_faces_then_mean_over_frames() -> None:
    agg = aggregate_scores(
        [ScoredFace(0, 0.0, 0, 0.2), ScoredFace(0, 0.0, 1, 0.8), ScoredFace(5, 1.0, 0, 0.4), ScoredFace(5, 1.0, 1, 0.6)]
    )
    assert [f.score for f in agg.frames] == [0.8, 0.6]
    assert agg.video == pytest.approx(0.7)
    assert agg.tracks == {0: pytest.approx(0.3), 1: pytest.approx(0.7)}
    assert aggregate_scores([]).video is None


def test_a_smaller_face_cut_by_the_frame_edge_does_not_count_for_its_frame() -> None:
    # whole faces and the largest face count; a smaller cut face does not, however high it scores
    assert pick_frame_face([0.2, 0.9, 0.4], [False, True, False], [100, 60, 80]) == 2
    # the largest face counts even when cut: a close-up with the chin outside the frame is still the subject
    assert pick_frame_face([0.2, 0.9], [False, True], [60, 140]) == 1
    assert pick_frame_face([0.2, 0.9, 0.5], [True, True, True], [140, 60, 50]) == 0
    agg = aggregate_scores(
        [
            ScoredFace(0, 0.0, 0, 0.2, size=100),
            ScoredFace(0, 0.0, 1, 0.9, partial=True, size=70),  # a background head at the edge: outvoted
            ScoredFace(5, 1.0, 1, 0.7, partial=True, size=70),  # alone in its frame: it is the largest there
            ScoredFace(9, 2.0, 0, 0.4, size=100),
            ScoredFace(9, 2.0, 1, 0.3, size=70),
        ]
    )
    assert [f.score for f in agg.frames] == [0.2, 0.7, 0.4]
    assert agg.video == pytest.approx((0.2 + 0.7 + 0.4) / 3)
    # Track 1 has a whole face (frame 9), so its cut ones do not count; track 0 is all whole.
    assert agg.tracks == {0: pytest.approx(0.3), 1: pytest.approx(0.3)}


def test_scan_of_a_photo_with_a_face_cut_by_the_edge_scores_the_whole_face(shared_faces: Path) -> None:
    # An LFW news photo: the subject, and behind her a man whose face the 250 px frame cuts at the left edge.
    photo = shared_faces / "lfw_1000" / "cflfw_Marissa_Jaret_Winokur_0001.jpg"
    out = scan_file(photo, ScanOptions(keep_artifacts=True), detector=BrightnessDetector())
    r = out.result
    assert r.ok and r.face_count == 2
    whole, cut = sorted(r.faces, key=lambda f: -f.in_frame)
    assert whole.in_frame == 1.0 and cut.in_frame < 0.9
    assert whole.score is not None and cut.score is not None and whole.score != cut.score
    assert r.video_score == pytest.approx(whole.score, abs=1e-4)
    from deepshield.reports.html import render_report

    html = render_report(r, out.artifacts)
    assert html.count("cut by the frame edge (") == 1 and "only if it is the largest face there" in html
    assert f"({round(100 * cut.in_frame)}% inside)" in html


def test_detector_scores_must_be_probabilities() -> None:
    with pytest.raises(ValueError):
        FaceScore(1.5)
    with pytest.raises(ValueError):
        FaceScore(float("nan"))


def test_scan_without_detector_gives_no_score(shared_faces: Path) -> None:
    scanner = Scanner(ScanOptions(use_detector=False))
    r = scanner.scan(shared_faces / "real_photos" / "fr_two_people.jpg").result
    assert r.ok and r.face_count == 2
    assert r.scores is None and r.verdict is None and r.detector is None
    assert r.detector_status == NO_DETECTOR
    assert all(f.score is None for f in r.faces)


def test_scan_video_with_a_detector_aggregates_per_track(shared_faces: Path) -> None:
    det = BrightnessDetector()
    scanner = Scanner(ScanOptions(frames=8, keep_artifacts=True), detector=det)
    out = scanner.scan(shared_faces / "real_videos" / "vr_face1.mp4")
    r = out.result
    assert r.ok and r.frames_sampled == 8 and len(r.tracks) == 1
    face_scores = [f.score for f in r.faces if f.score is not None]
    assert len(face_scores) == r.face_count
    assert r.video_score == pytest.approx(np.mean(face_scores), abs=1e-3)
    assert r.tracks[0].score == pytest.approx(r.video_score, abs=1e-3)
    assert r.verdict in ("manipulated", "no manipulation found")
    assert len(out.artifacts) == 1 and out.artifacts[0].heatmap is not None


def test_bad_files_become_results_not_exceptions(tmp_path: Path) -> None:
    good = write_video(tmp_path / "good.mp4", n=30)
    for name, p in hostile_corpus(tmp_path / "bad", good).items():
        r = scan_file(p, ScanOptions(use_detector=False)).result
        assert r.ok is False and r.error is not None, name
        assert r.error.code and "\n" not in r.error.message


def test_cli_scan_folder_json_report_and_exit_code(shared_faces: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "two.jpg").write_bytes((shared_faces / "real_photos" / "fr_two_people.jpg").read_bytes())
    write_video(folder / "grey.mp4", n=20)
    (folder / "notes.mp4").write_text("not a video")
    res = run_cli("scan", str(folder), "--json", "--report", str(tmp_path / "rep"), "--workers", "2", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    by_name = {Path(r["file"]).name: r for r in rows}
    assert set(by_name) == {"two.jpg", "grey.mp4", "notes.mp4"}
    assert by_name["two.jpg"]["face_count"] == 2
    assert by_name["grey.mp4"]["ok"] and by_name["grey.mp4"]["face_count"] == 0
    assert by_name["notes.mp4"]["error"]["code"] == "unsupported_media_type"
    report = Path(by_name["two.jpg"]["report"]).read_text()
    assert report.count('<img src="data:image/png;base64,') >= 2 and "yaw" in report


def test_cli_all_good_exits_zero_and_missing_path_fails(shared_faces: Path, tmp_path: Path) -> None:
    ok = run_cli("scan", str(shared_faces / "real_photos" / "lp_s1.jpg"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = run_cli("scan", str(tmp_path / "nope.jpg"), cwd=tmp_path)
    assert bad.returncode == 1
    assert "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_hostile_corpus(tmp_path: Path) -> None:
    good = write_video(tmp_path / "good.mp4", n=30)
    corpus = hostile_corpus(tmp_path / "bad", good)
    res = run_cli("scan", *[str(p) for p in corpus.values()], "--json", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr + res.stdout
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == len(corpus) and not any(r["ok"] for r in rows)


def test_cli_prints_file_names_with_brackets_as_they_are(shared_faces: Path, tmp_path: Path) -> None:
    """Square brackets in a file name are rich markup to the console; the name must still print verbatim."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo [bold]1.jpg").write_bytes((shared_faces / "real_photos" / "lp_s1.jpg").read_bytes())
    (folder / "bad [red]x.jpg").write_text("not an image")
    res = run_cli("scan", str(folder), cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    shown = res.stdout + res.stderr  # the per-file lines go to the progress console (stderr)
    assert "photo [bold]1.jpg: 1 face(s)" in shown
    assert "FAILED" in shown and "bad [red]x.jpg: " in shown


def test_cli_a_folder_that_cannot_be_made_is_one_line_not_a_traceback(shared_faces: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    res = run_cli("scan", str(shared_faces / "real_photos" / "lp_s1.jpg"), "--report", "a_file/reports", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "a_file/reports: Not a directory" in res.stderr


def test_cli_usage_errors_are_clean(tmp_path: Path) -> None:
    res = run_cli("apikey", "create", "--scope", "bogus", cwd=tmp_path)
    assert res.returncode == 2 and "unknown or missing scope" in res.stderr and "Traceback" not in res.stderr


def test_video_report_shows_a_score_timeline(shared_faces: Path) -> None:
    from deepshield.reports.html import render_report

    scanner = Scanner(ScanOptions(frames=6, keep_artifacts=True), detector=BrightnessDetector())
    out = scanner.scan(shared_faces / "real_videos" / "vr_face2.mp4")
    html = render_report(out.result, out.artifacts)
    assert 'id="timeline"' in html and "heat map" in html and 'id="heat-caption"' in html
    assert 'id="heat-legend"' in html and "not a verdict" in html  # the colours explained beside the maps
    thresholds = re.findall(r"threshold (\d+\.\d+)", html)
    assert thresholds and all(len(t.split(".")[1]) == 2 for t in thresholds), thresholds
    assert out.result.scores is not None and len(out.result.scores.frame_scores) == 6
    timing = out.result.timing_s
    assert timing is not None and timing.waited_for_frames >= 0 and timing.decode > 0
    assert "in a second thread" in html
    progress: list[float] = []
    scanner.scan(shared_faces / "real_videos" / "vr_face2.mp4", progress.append)
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) == 6


def test_timeline_draws_the_temporal_runs_beside_the_frame_scores() -> None:
    """The temporal detector's runs are drawn where they happened, with its own threshold; without runs the
    timeline is the frame detector's alone."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from deepshield.reports.html import TEMPORAL_COLOUR, timeline_figure
    from deepshield.scan_result import ClipScore, FrameScore, TemporalScores

    frames = [FrameScore(i, i * 0.5, 0.2) for i in range(8)]
    runs = (ClipScore(1.0, 0, 0.9), ClipScore(3.0, 0, 0.4))
    temporal = TemporalScores("temporal", "3", 0.935, 0.65, {0: 0.65}, 2, clip_scores=runs)

    def legend(fig: Figure) -> list[str]:
        box = fig.axes[0].get_legend()
        assert box is not None
        return [t.get_text() for t in box.get_texts()]

    fig = timeline_figure(frames, 0.78, 4.0, temporal)
    ax = fig.axes[0]
    (points,) = ax.collections
    assert np.asarray(points.get_offsets()).tolist() == [[1.0, 0.9], [3.0, 0.4]]
    assert set(legend(fig)) == {
        "frame detector",
        "frame threshold 0.78",
        "temporal detector (run of frames)",
        "temporal threshold 0.94",
    }
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1 and np.asarray(dotted[0].get_ydata())[0] == 0.935
    assert dotted[0].get_color() == TEMPORAL_COLOUR
    plt.close(fig)
    plain = timeline_figure(frames, 0.78, 4.0, replace(temporal, clip_scores=()))
    assert not plain.axes[0].collections
    assert legend(plain) == ["frame detector", "threshold 0.78"]
    plt.close(plain)


def test_report_points_to_a_track_over_the_threshold_that_the_video_score_hides(shared_faces: Path) -> None:
    from deepshield.reports.html import render_report

    video = shared_faces / "real_videos" / "vr_face2.mp4"
    out = Scanner(ScanOptions(frames=6, keep_artifacts=True), detector=BrightnessDetector()).scan(video)
    top_score = max(t.score for t in out.result.tracks if t.score is not None)
    for margin, flagged in ((-1e-3, True), (1e-3, False)):

        class AtThreshold(BrightnessDetector):
            info = DetectorInfo(name="brightness", version="test", threshold=top_score + margin, input_size=0)

        again = Scanner(ScanOptions(frames=6), detector=AtThreshold()).scan(video)
        over = tuple(t.track_id for t in again.result.tracks if t.score == top_score)
        assert again.result.tracks_over_threshold == (over if flagged else ())
    r, det = out.result, out.result.detector
    assert det is not None
    top = max(out.result.tracks, key=lambda t: t.score or 0.0)
    assert top.score is not None
    r = replace(r, detector=replace(det, threshold=top.score), verdict="no manipulation found")
    r = replace(r, tracks_over_threshold=(top.track_id,))
    html = render_report(r, out.artifacts)
    assert html.count('class="note tracks-over"') == 1 and f"Track {top.track_id} scores" in html
    assert 'class="over">track score' in html
    # No note once the video as a whole is flagged, or when no track reaches the threshold.
    assert "tracks-over" not in render_report(replace(r, verdict="manipulated"), out.artifacts)
    highest = max([top.score] + [f.score for f in r.faces if f.score is not None])
    r = replace(r, detector=replace(det, threshold=highest + 0.01), tracks_over_threshold=())
    html = render_report(r, out.artifacts)
    assert "tracks-over" not in html and 'class="over"' not in html


def test_photos_are_judged_by_the_photo_threshold_and_videos_by_the_general_one(shared_faces: Path) -> None:
    photo = shared_faces / "real_photos" / "fr_two_people.jpg"
    video = shared_faces / "real_videos" / "vr_face2.mp4"
    scores = {}
    for path in (photo, video):
        r = Scanner(ScanOptions(frames=4), detector=BrightnessDetector()).scan(path).result
        assert r.scores is not None and r.scores.video_score is not None
        scores[path] = r.scores.video_score

    class PhotoThreshold(BrightnessDetector):
        # Between the two: the general threshold flags both files, the photo threshold spares the photo.
        info = DetectorInfo(
            name="brightness",
            version="test",
            threshold=min(scores.values()) - 0.01,
            photo_threshold=scores[photo] + 0.01,
            input_size=0,
        )

    on_photo = Scanner(ScanOptions(frames=4), detector=PhotoThreshold()).scan(photo).result
    on_video = Scanner(ScanOptions(frames=4), detector=PhotoThreshold()).scan(video).result
    assert on_photo.verdict == "no manipulation found" and on_video.verdict == "manipulated"
    assert on_photo.detector is not None and on_photo.detector.threshold == PhotoThreshold.info.photo_threshold
    assert on_video.detector is not None and on_video.detector.threshold == PhotoThreshold.info.threshold


def test_worker_that_dies_fails_its_file_not_the_scan() -> None:
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from deepshield.cli.scan import _worker_result

    ok: Future[ScanResult] = Future()
    ok.set_result(ScanResult(file="a.jpg"))
    assert _worker_result(ok, Path("a.jpg")).ok is True
    died: Future[ScanResult] = Future()
    died.set_exception(BrokenProcessPool("terminated abruptly"))
    res = _worker_result(died, Path("b.mp4"))
    assert res.ok is False and res.file == "b.mp4" and res.error is not None
    assert res.error.code == "worker_died" and "terminated abruptly" in res.error.message
    # The line it prints is the one it always printed: no elapsed time, since no clock ran.
    assert json.loads(res.to_json()) == {"file": "b.mp4", "ok": False, "error": asdict(res.error)}


def test_cli_summary_names_tracks_over_the_threshold_under_a_clean_verdict() -> None:
    from deepshield.cli.scan import _summary_line

    r = ScanResult(
        file="clip.mp4",
        faces=(FACE,) * 21,
        tracks=tuple(TrackResult(k, 7, 0.0, 1.0, 0.5) for k in range(3)),
        scores=Scores(video_score=0.56),
        verdict="no manipulation found",
        tracks_over_threshold=(2,),
    )
    line = _summary_line(r).plain
    assert line.endswith(
        "clip.mp4: 21 face(s), 3 track(s) score=0.560 (no manipulation found; but track 2 at or over the threshold)"
    )
    r = replace(r, tracks_over_threshold=(0, 2))
    assert _summary_line(r).plain.endswith("(no manipulation found; but tracks 0, 2 at or over the threshold)")
    assert _summary_line(replace(r, verdict="manipulated")).plain.endswith("(manipulated)")


def test_decoding_ahead_changes_nothing_but_the_time(shared_faces: Path) -> None:
    video = shared_faces / "real_videos" / "vr_face2.mp4"
    ahead, in_line = (
        Scanner(ScanOptions(frames=8, decode_ahead=on), detector=BrightnessDetector()).scan(video).result
        for on in (True, False)
    )
    assert replace(ahead, timing_s=None, elapsed_s=None) == replace(in_line, timing_s=None, elapsed_s=None)
    assert ahead.face_count >= 8
