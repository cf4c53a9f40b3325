from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from deepshield.faces import FaceAnalyzer, align_face, frame_signature, link_tracks, shot_cuts
from deepshield.faces.landmarks import LEFT_EYE, RIGHT_EYE
from deepshield.media import FrameSampling, open_media
from tests.foundation.media_factory import write_video

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# The single-person talking-head clips: exactly one track each.
SINGLE_PERSON_VIDEOS = ["lp_d0.mp4", "lp_d10.mp4", "st_WDA_KatieHill_000.mp4", "vr_face1.mp4", "vr_face3.mp4"]


@pytest.fixture(scope="module")
def analyzer() -> Iterator[FaceAnalyzer]:
    a = FaceAnalyzer()
    yield a
    a.close()


def _rgb(path: Path) -> np.ndarray:
    return next(open_media(path).frames()).rgb


def test_every_shared_photo_yields_a_face(shared_faces: Path, analyzer: FaceAnalyzer) -> None:
    photos = sorted(p for p in (shared_faces / "real_photos").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    assert len(photos) >= 100
    missing = [p.name for p in photos if not analyzer.analyze(_rgb(p))]
    assert missing == [], f"no face found in {missing}"


def test_counts_on_group_photos(shared_faces: Path, analyzer: FaceAnalyzer) -> None:
    two = analyzer.analyze(_rgb(shared_faces / "real_photos" / "fr_two_people.jpg"))
    assert len(two) == 2
    # fp_multiface.jpg is the six-person cast photo: all six faces, each with a mesh and a pose.
    six = analyzer.analyze(_rgb(shared_faces / "real_photos" / "fp_multiface.jpg"))
    assert len(six) == 6
    assert all(f.landmarks is not None and f.landmarks.shape == (478, 3) and f.pose is not None for f in six)


def test_face_fields_and_mirror_symmetric_pose(shared_faces: Path, analyzer: FaceAnalyzer) -> None:
    rgb = _rgb(shared_faces / "real_photos" / "fr_knn_examples_test_obama1.jpg")
    faces = analyzer.analyze(rgb)
    assert len(faces) == 1
    f = faces[0]
    x0, y0, x1, y1 = f.box
    assert 0 <= x0 < x1 <= rgb.shape[1] and 0 <= y0 < y1 <= rgb.shape[0]
    assert 0.5 <= f.confidence <= 1.0
    assert f.landmarks is not None
    inside = (f.landmarks[:, 0] >= x0 - 0.3 * f.width) & (f.landmarks[:, 0] <= x1 + 0.3 * f.width)
    assert inside.mean() > 0.95
    assert f.pose is not None and abs(f.pose.yaw) > 5
    mirrored = analyzer.analyze(np.ascontiguousarray(rgb[:, ::-1]))[0]
    assert mirrored.pose is not None
    # A mirror image turns the other way by about the same angle; pitch is unchanged.
    assert np.sign(mirrored.pose.yaw) == -np.sign(f.pose.yaw)
    assert abs(abs(mirrored.pose.yaw) - abs(f.pose.yaw)) < 6
    assert abs(mirrored.pose.pitch - f.pose.pitch) < 6


def test_faces_cut_by_the_frame_edge_are_partial(shared_faces: Path, analyzer: FaceAnalyzer) -> None:
    rgb = _rgb(shared_faces / "real_photos" / "fr_knn_examples_test_obama1.jpg")
    (whole,) = analyzer.analyze(rgb)
    assert whole.in_frame == 1.0 and not whole.is_partial
    # Cut a quarter of the face off at the left edge and the top: the mesh still describes the whole face.
    x0, y0 = int(whole.box[0] + 0.25 * whole.width), int(whole.box[1] + 0.25 * whole.height)
    for cut_rgb in (rgb[:, x0:], rgb[y0:]):
        cut = analyzer.analyze(np.ascontiguousarray(cut_rgb))
        assert cut, "the cut face was not found at all"
        assert cut[0].is_partial and 0.5 < cut[0].in_frame < 0.9
    assert cut[0].to_dict()["in_frame"] == round(cut[0].in_frame, 3)


def test_aligned_crop_levels_the_eyes(shared_faces: Path, analyzer: FaceAnalyzer) -> None:
    import cv2

    rgb = _rgb(shared_faces / "real_photos" / "fr_two_people.jpg")
    face = analyzer.analyze(rgb)[0]
    # Tilt the whole photo by 20 degrees: the aligned crop must undo it.
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    tilted = np.asarray(cv2.warpAffine(rgb, m, (w, h)), dtype=np.uint8)
    tface = max(analyzer.analyze(tilted), key=lambda f: f.confidence)
    crop = align_face(tilted, tface, size=224, margin=0.2)
    assert crop.image.shape == (224, 224, 3)
    assert tface.landmarks is not None
    pts = crop.map_points(tface.landmarks)
    re, le = pts[RIGHT_EYE].mean(axis=0), pts[LEFT_EYE].mean(axis=0)
    assert abs(re[1] - le[1]) < 4, "eyes should be level in the aligned crop"
    assert 0.25 * 224 < (le[0] - re[0]) < 0.6 * 224
    assert face.landmarks is not None


@pytest.mark.parametrize("name", SINGLE_PERSON_VIDEOS)
def test_single_person_videos_yield_one_track(shared_faces: Path, analyzer: FaceAnalyzer, name: str) -> None:
    m = open_media(shared_faces / "real_videos" / name)
    frames = list(m.frames(FrameSampling.evenly(16)))
    per_frame = [analyzer.analyze(f.rgb, f.index, f.time_s) for f in frames]
    tracks = link_tracks(per_frame, shot_cuts([frame_signature(f.rgb) for f in frames]))
    assert len(tracks) == 1
    assert len(tracks[0].faces) >= 14


def test_two_people_give_two_tracks(shared_faces: Path, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    """Two different real faces side by side, drifting slowly, encoded as a real H.264 video."""
    import cv2

    a = _rgb(shared_faces / "real_photos" / "lp_s1.jpg")
    b = _rgb(shared_faces / "real_photos" / "lp_s2.jpg")
    a = cv2.resize(a, (320, 240))
    b = cv2.resize(b, (320, 240))
    frames = []
    for i in range(40):
        canvas = np.zeros((240 + 16, 640 + 16, 3), np.uint8)
        dx = i % 16
        canvas[:240, dx : dx + 320] = a
        canvas[16:256, 336 - dx : 656 - dx] = b
        frames.append(canvas)
    p = write_video(tmp_path / "two.mp4", frames=frames, fps=10, size=(656, 256))
    m = open_media(p)
    fr = list(m.frames(FrameSampling.evenly(12)))
    per_frame = [analyzer.analyze(f.rgb, f.index, f.time_s) for f in fr]
    tracks = link_tracks(per_frame, shot_cuts([frame_signature(f.rgb) for f in fr]))
    assert len(tracks) == 2
    xs = sorted(np.mean([f.center[0] for f in t.faces]) for t in tracks)
    assert xs[0] < 328 < xs[1]


def test_tracks_do_not_cross_shot_cuts(shared_faces: Path, analyzer: FaceAnalyzer) -> None:
    """fr_hamilton_clip.mp4 cuts between a stage and the audience: no track may span a cut."""
    m = open_media(shared_faces / "real_videos" / "fr_hamilton_clip.mp4")
    fr = list(m.frames(FrameSampling.evenly(24)))
    sigs = [frame_signature(f.rgb) for f in fr]
    cuts = shot_cuts(sigs)
    assert cuts, "the clip has several shots"
    per_frame = [analyzer.analyze(f.rgb, f.index, f.time_s) for f in fr]
    tracks = link_tracks(per_frame, cuts)
    times = [f.time_s for f in fr]
    cut_times = sorted(times[i] for i in cuts)
    for t in tracks:
        for c in cut_times:
            assert not (t.first_time_s < c <= t.last_time_s), f"track {t.track_id} spans the cut at {c:.2f}s"
