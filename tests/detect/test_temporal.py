"""The temporal detector: clips of stable crops, fake clips that change only what and when they should, a tiny
training run that exports, and ONNX that computes what torch computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepshield.detect.training.degrade import h264_clip
from deepshield.detect.training.temporal.clips import (
    CLIP_CACHE_SIZE,
    VideoFrames,
    WindowSampling,
    build_clip_cache,
    input_crop,
    load_clip_cache,
    smooth_geometry,
)
from deepshield.detect.training.temporal.synth import (
    KINDS,
    SynthParams,
    flicker_blend,
    frozen_texture,
    lower_face_from_frames,
    make_fake,
    make_pair,
    mouth_jitter,
    source_frames,
    window,
)
from deepshield.faces.landmarks import LEFT_EYE, NOSE_TIP, RIGHT_EYE
from tests.cli import run_cli

VIDEOS = ["real_videos/vr_face5.mp4", "real_videos/lp_d19.mp4"]


@pytest.fixture(scope="module")
def clip_cache(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 24 frames of two real videos, one per split (enough for clips of 4 and lower-face sources), found
    in two worker processes; a second build finds both cached and extracts nothing."""
    out = tmp_path_factory.mktemp("clips")
    items = [(shared_faces / rel, rel, rel, split) for rel, split in zip(VIDEOS, ("train", "val"), strict=True)]
    counts = build_clip_cache(items, out, max_frames=24, jobs=2)
    assert counts.keys() == {"train", "val"} and min(counts.values()) >= 16
    assert build_clip_cache(items, out, max_frames=24) == counts
    assert len((out / "index.jsonl").read_text().splitlines()) == 2
    return out


@pytest.fixture(scope="module")
def video(clip_cache: Path) -> VideoFrames:
    return load_clip_cache(clip_cache, ["train"])[0]


def test_window_sampling_gives_runs_of_consecutive_frame_times() -> None:
    times = WindowSampling(count=None, windows=3, length=4, frame_rate=25.0).target_times(10.0)
    assert len(times) == 12
    runs = np.array(times).reshape(3, 4)
    assert np.allclose(np.diff(runs, axis=1), 1 / 25)  # consecutive frames inside a run
    assert (np.diff(runs[:, 0]) > 1.0).all()  # runs spread over the video
    # A video shorter than one run gives one run from its start.
    assert len(WindowSampling(count=None, windows=3, length=4, frame_rate=25.0).target_times(0.1)) == 4


def test_smoothing_keeps_a_steady_track_and_damps_jitter() -> None:
    rng = np.random.default_rng(0)
    steady = np.tile([100.0, 80.0, 60.0, 2.0], (20, 1))
    assert np.allclose(smooth_geometry(steady), steady)
    noisy = steady + rng.normal(0, 2, steady.shape)
    assert np.abs(np.diff(smooth_geometry(noisy), axis=0)).mean() < np.abs(np.diff(noisy, axis=0)).mean() / 2


def test_cache_holds_consecutive_stable_crops(video: VideoFrames) -> None:
    n = len(video)
    assert n >= 16 and video.images.shape == (n, CLIP_CACHE_SIZE, CLIP_CACHE_SIZE, 3)
    assert video.landmarks.shape == (n, 478, 2)
    # The face stays put from frame to frame: no crop jumps (stable crops, a talking head).
    nose = video.landmarks[:, NOSE_TIP]
    assert np.linalg.norm(np.diff(nose, axis=0), axis=1).max() < CLIP_CACHE_SIZE * 0.05
    assert len(video.starts(8)) == n - 7 or video.segment.max() > 0


def _upper_face_rows(lm: np.ndarray) -> int:
    """Rows above the eyes: no lower-face edit may touch them."""
    return int(min(lm[RIGHT_EYE, 1].min(), lm[LEFT_EYE, 1].min()))


def _assert_only_masked(real: np.ndarray, fake: np.ndarray, masks: np.ndarray) -> None:
    diff = np.abs(fake.astype(int) - real.astype(int)).max(axis=3)
    assert (diff[masks <= 1e-6] == 0).all(), "pixels outside the mask must stay untouched"
    assert diff[masks > 0.5].mean() > 1.0, "inside the mask the face must change"


def test_lower_face_swap_changes_only_the_lower_face_from_other_frames(video: VideoFrames) -> None:
    rng = np.random.default_rng(1)
    idx = np.arange(4, 12)
    for _ in range(4):
        src = source_frames(len(video), idx, rng, 4)
        assert src is not None and (np.abs(src - idx) >= 4).all(), "sources must be non-adjacent frames"
        out = lower_face_from_frames(video, idx, rng, 4)
        assert out is not None
        fake, masks = out
        _assert_only_masked(video.images[idx], fake, masks)
        for m, lm in zip(masks, video.landmarks[idx], strict=True):
            assert m[: _upper_face_rows(lm)].max() < 0.01, "the eyes and above stay untouched"
            assert m[int(lm[NOSE_TIP, 1]) + 2 :].max() > 0.9, "the mouth is replaced"


def test_mouth_jitter_changes_only_the_lower_face(video: VideoFrames) -> None:
    idx = np.arange(0, 8)
    fake, masks = mouth_jitter(video.images[idx], video.landmarks[idx], np.random.default_rng(2))
    _assert_only_masked(video.images[idx], fake, masks)
    for m, lm in zip(masks, video.landmarks[idx], strict=True):
        assert m[: _upper_face_rows(lm)].max() < 0.01


def test_flicker_blend_changes_the_face_differently_in_each_frame(video: VideoFrames) -> None:
    idx = np.arange(0, 8)
    real = video.images[idx]
    for seed in range(4):
        fake, masks = flicker_blend(real, video.landmarks[idx], np.random.default_rng(seed))
        diff = np.abs(fake.astype(int) - real.astype(int)).max(axis=3)
        assert (diff[masks <= 1e-6] <= 1).all()
        assert masks[:, :6, :6].max() == 0, "the background corner is never blended"
        # What changes the face is not the same from frame to frame: that is the inconsistency to learn.
        per_frame = [float(np.abs(fake[k].astype(int) - real[k].astype(int)).mean()) for k in range(len(idx))]
        assert np.ptp(per_frame) > 0.1 or np.abs(np.diff(masks, axis=0)).max() > 0.05


def test_frozen_texture_moves_one_still_with_the_landmarks(video: VideoFrames) -> None:
    idx = np.arange(8, 16)
    real, lms = video.images[idx], video.landmarks[idx]
    ref, ref_lm = video.images[0], video.landmarks[0]
    for seed in range(4):
        fake, masks = frozen_texture(real, lms, ref, ref_lm, np.random.default_rng(seed))
        diff = np.abs(fake.astype(int) - real.astype(int)).max(axis=3)
        assert (diff[masks <= 1e-6] == 0).all()
        assert masks.max() > 0.99
    # Warping the still to its own landmarks gives the still back (up to resampling) inside the face.
    same, m = frozen_texture(ref[None], ref_lm[None], ref, ref_lm, np.random.default_rng(0))
    inner = m[0] > 0.99
    assert np.abs(same[0].astype(int) - ref.astype(int))[inner].mean() < 3


def test_make_pair_gives_aligned_input_clips_of_every_kind(video: VideoFrames) -> None:
    p = SynthParams(frames=8, size=64)
    rng = np.random.default_rng(3)
    for kind in KINDS:
        real, fake, got = make_pair(video, 2, rng, p, kind)
        assert got == kind and real.shape == fake.shape == (8, 64, 64, 3) and real.dtype == np.uint8
        assert not np.array_equal(real, fake)
    with pytest.raises(ValueError, match="unknown kind"):
        make_fake("nope", video, np.arange(8), rng, p)


def test_windows_are_consecutive_strided_or_hold_one_frame(video: VideoFrames) -> None:
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        idx = window(video, 0, 8, rng)
        steps = tuple(sorted(set(np.diff(idx).tolist())))
        assert len(idx) == 8 and idx[0] == 0 and steps in {(1,), (2,), (0, 1)}
        assert steps != (0, 1) or (np.diff(idx) == 0).sum() == 1
        seen.add(steps)
    assert seen == {(1,), (2,), (0, 1)}


def test_h264_clip_codes_every_frame() -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    # A smooth pattern drifting by a pixel a frame: what the codec predicts well, as it does faces.
    clip = np.stack(
        [np.stack([(xx + k) * 6, yy * 7, (xx + yy) * 3], axis=2).clip(0, 255).astype(np.uint8) for k in range(6)]
    )
    coded = h264_clip(clip, 30)
    assert coded.shape == clip.shape and not np.array_equal(coded, clip)
    assert np.abs(coded.astype(int) - clip.astype(int)).mean() < 8


def test_input_crop_is_one_geometry_for_every_frame(video: VideoFrames) -> None:
    clip = video.images[:4]
    a = input_crop(clip, 0.25, 48)
    assert a.shape == (4, 48, 48, 3)
    assert np.array_equal(input_crop(clip[:1], 0.25, 48)[0], a[0])
    assert np.array_equal(input_crop(clip, 0.25, 48, flip=True), a[:, :, ::-1])


@pytest.mark.slow
def test_tiny_training_run_exports_an_onnx_that_matches_torch(clip_cache: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
    from deepshield.detect.training.checkpoint import load_checkpoint
    from deepshield.detect.training.temporal.detector import TemporalDetector
    from deepshield.detect.training.temporal.export import export_onnx, val_real_probs
    from deepshield.detect.training.temporal.model import TemporalNet, TemporalNetConfig
    from deepshield.detect.training.temporal.train import TrainSettings, settings_from, train

    net = TemporalNetConfig(frames=4, size=32, widths=(8, 8, 8, 8), last_width=16, heads=2)
    s = TrainSettings(
        cache_dir=clip_cache,
        batch_pairs=2,
        max_steps=3,
        time_budget_min=5,
        threads=1,
        num_workers=0,
        val_pairs=4,
        net=net,
        synth=SynthParams(frames=4, size=32),
    )
    run = tmp_path / "run"
    rec = train(s, run)
    assert rec["step"] == 3 and 0.0 <= rec["val_auc"] <= 1.0
    assert {f"val_auc_{k}" for k in KINDS} <= rec.keys()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 3

    # Going on from a checkpoint runs, and the run records where it started.
    from dataclasses import replace

    more = train(replace(s, init_from=run / "best.pt", max_steps=1), tmp_path / "run2")
    assert more["step"] == 1 and json.loads((tmp_path / "run2" / "settings.json").read_text())["init_from"]

    onnx_path = export_onnx(run / "best.pt", tmp_path / "model", "test")
    assert onnx_path.stat().st_size < 5_000_000
    det = TemporalDetector(tmp_path / "model", threads=1)
    assert (det.frames, det.size) == (4, 32)

    # onnxruntime's logits equal torch's on real clips, through the detector's own preprocessing.
    clips = [v.images[:4] for v in load_clip_cache(clip_cache, ["train", "val"])]
    ck = load_checkpoint(run / "best.pt")
    model = TemporalNet(settings_from(ck["config"])[0])
    model.load_state_dict(ck["model"])
    model.eval()
    inputs = det.inputs(clips)
    x = (inputs.astype(np.float32) / 255.0 - det._mean) / det._std
    with torch.no_grad():
        ref = model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3)))).numpy()
    assert np.abs(det.logits(inputs) - ref).max() < 1e-4
    score = det.score_clips(clips)
    assert 0.0 <= score <= 1.0
    with pytest.raises(ValueError):
        det.score_clips([])
    with pytest.raises(ValueError, match="clip is 4"):
        det.score_clips([clips[0][:3]])

    probs = val_real_probs(tmp_path / "model", clip_cache)
    assert len(probs) >= 4
    export_onnx(run / "best.pt", tmp_path / "model", "test", real_probs=probs)
    assert json.loads((tmp_path / "model" / "temporal.json").read_text())["threshold"] >= 0.5


def test_cli_registers_the_temporal_commands() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    for cmd in (
        "temporal-cache",
        "temporal-train",
        "temporal-evaluate",
        "temporal-pool",
        "temporal-head",
        "temporal-fuse",
    ):
        assert cmd in res.stdout


def test_baseline_scores_match_a_file_scored_through_a_link(tmp_path: Path) -> None:
    """The corpus' real videos are scored by `evaluate` through a real/ folder of links; the temporal report
    reads them from the corpus itself: both name one file, so the frame score must attach."""
    from deepshield.detect.training.temporal.evaluate import VideoResult, attach_baseline

    video = tmp_path / "corpus" / "a.mp4"
    video.parent.mkdir()
    video.write_bytes(b"x")
    (tmp_path / "real").mkdir()
    link = tmp_path / "real" / "a.mp4"
    link.symlink_to(video)
    other = tmp_path / "corpus" / "b.mp4"
    other.write_bytes(b"y")
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"items": [{"path": str(link), "video_score": 0.25}]}))
    results = [VideoResult(str(p), 0, "real", "train", 0.1, [0.1], 0.0) for p in (video, other)]
    assert attach_baseline(results, scores) == 1
    assert results[0].baseline == 0.25 and results[1].baseline is None
