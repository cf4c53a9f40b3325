"""The pretrained-feature temporal detector: frozen ImageNet features, the temporal head and its feature pool, the
fusion with the frame detector, the export, and its place in `scan`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deepshield.detect.temporal import SHIPPED_DIR, Fusion, TemporalDetector, shipped_temporal
from deepshield.detect.training.temporal.fusion import fit_fusion, fused_threshold
from deepshield.errors import DeepshieldError
from deepshield.scan_result import ClipScore, ScanResult, TemporalScores

torch = pytest.importorskip("torch", reason="the head and the export need the 'train' extra (torch)")

from deepshield.detect.training.temporal.features import (  # noqa: E402
    FEATURE_DIM,
    FORGERY,
    FeatureTemporalNet,
    FrameFeatures,
    HeadConfig,
    TemporalHead,
    _box_slices,
)
from deepshield.detect.training.temporal.pool import FeaturePool, concat_pools, pool_auc, train_head  # noqa: E402

VIDEO = "real_videos/lp_d13.mp4"


def _random_backbone() -> FrameFeatures:
    from deepshield.detect.training.mobilenet import MobileNetV2

    torch.manual_seed(0)
    return FrameFeatures(MobileNetV2())


def test_lower_face_box_lies_inside_every_feature_map_and_below_the_middle() -> None:
    for h in (4, 7, 8, 14, 16):
        rows, cols = _box_slices(h, h)
        assert 0 <= rows.start < rows.stop <= h and 0 <= cols.start < cols.stop <= h
        assert rows.start >= h // 2 - 1  # the lower half of the crop


def test_frame_features_are_frozen_and_pool_whole_crop_and_lower_face() -> None:
    ff = _random_backbone()
    assert not any(p.requires_grad for p in ff.parameters())
    x = torch.zeros(2, 3, 112, 112)
    x[1, :, 70:, 30:80] = 2.0  # only the second crop's lower face changes
    f = ff(x)
    assert f.shape == (2, FEATURE_DIM)
    half = FEATURE_DIM // 2
    assert float((f[0, half:] - f[1, half:]).abs().max()) > 0
    # The lower-face half responds more than the whole-crop half (the change covers part of the crop only).
    assert float((f[0, half:] - f[1, half:]).abs().mean()) > float((f[0, :half] - f[1, :half]).abs().mean())


def _shipped_frame_model() -> Path:
    from deepshield.detect.training.temporal.features import forgery_onnx_path

    path = forgery_onnx_path()
    if not path.is_file():
        pytest.skip("no frame detector shipped in src/deepshield/models")
    return path


def test_the_frame_detectors_network_is_read_back_from_its_onnx_file_exactly(tmp_path: Path) -> None:
    from deepshield.detect.training.onnx_import import mobilenet_from_onnx, onnx_logit_difference

    pytest.importorskip("onnx", reason="reading an ONNX graph needs the 'train' extra (onnx)")
    path = _shipped_frame_model()
    net = mobilenet_from_onnx(path)
    x = np.random.default_rng(4).normal(size=(3, 3, 160, 160)).astype(np.float32)
    assert onnx_logit_difference(net, path, x) < 1e-4
    bad = tmp_path / "sbi_small.onnx"
    bad.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DeepshieldError, match="not an ONNX model|not a forgery MobileNetV2"):
        mobilenet_from_onnx(bad)
    with pytest.raises(DeepshieldError, match="no ONNX model"):
        mobilenet_from_onnx(tmp_path / "absent.onnx")


def test_forgery_backbone_features_resize_clips_to_its_size_and_include_the_frame_heads_input() -> None:
    from deepshield.detect.training.onnx_import import mobilenet_from_onnx

    pytest.importorskip("onnx", reason="reading an ONNX graph needs the 'train' extra (onnx)")
    net = mobilenet_from_onnx(_shipped_frame_model())
    ff = FrameFeatures(net, FORGERY)
    assert not any(p.requires_grad for p in ff.parameters())
    x = torch.from_numpy(np.random.default_rng(5).normal(size=(2, 3, 160, 160)).astype(np.float32))
    f = ff(x)
    assert f.shape == (2, FORGERY.feature_dim) == (2, 3456)
    # The whole-crop mean of the last tap is what the frame detector's head reads: same logit.
    last = f[:, sum(FORGERY.channels) - 1280 : sum(FORGERY.channels)]
    with torch.no_grad():
        assert torch.allclose(net.head(last).squeeze(1), net(x), atol=1e-4)
    # 112 px clips are resized inside the graph to the 160 px the network was trained at.
    small = torch.nn.functional.interpolate(x, size=(112, 112), mode="bilinear", align_corners=False)
    up = torch.nn.functional.interpolate(small, size=(160, 160), mode="bilinear", align_corners=False)
    assert torch.allclose(ff(small), ff(up), atol=1e-5)


def test_a_pool_made_with_another_frame_detector_file_is_refused() -> None:
    from deepshield.detect.training.temporal.features import backbone_record, pool_frame_features

    pytest.importorskip("onnx", reason="reading an ONNX graph needs the 'train' extra (onnx)")
    _shipped_frame_model()
    record = backbone_record("forgery")
    assert len(record["sha256"]) == 64 and record["file"] == "sbi_small.onnx"
    assert pool_frame_features(record).backbone == FORGERY
    with pytest.raises(DeepshieldError, match="rebuild the pool"):
        pool_frame_features(record | {"sha256": "0" * 64})
    with pytest.raises(DeepshieldError, match="unknown temporal backbone"):
        pool_frame_features({"name": "resnet"})


def _pool(n: int, rng: np.random.Generator, flicker: float) -> FeaturePool:
    """Real clips: a smooth drift of features over 8 frames; fakes: the same clips with frame-to-frame flicker
    in part of the features (no change of their mean level)."""
    base = rng.standard_normal((n, 1, FEATURE_DIM)) + 0.05 * np.cumsum(rng.standard_normal((n, 8, FEATURE_DIM)), 1)
    fake = base.copy()
    fake[:, :, :64] += flicker * rng.choice([-1.0, 1.0], size=(n, 8, 64))
    return FeaturePool(
        base.astype(np.float16),
        fake.astype(np.float16),
        rng.integers(0, 4, n).astype(np.int16),
        rng.integers(0, 3, n).astype(np.int32),
    )


def test_head_learns_a_flicker_that_the_mean_over_frames_hides() -> None:
    rng = np.random.default_rng(0)
    train, val = _pool(256, rng, 1.0), _pool(64, rng, 1.0)
    assert abs(float(train.real.mean()) - float(train.fake.mean())) < 0.02
    head, best = train_head(train, val, HeadConfig(), epochs=20)
    assert best["val_auc"]["all"] > 0.9
    assert pool_auc(head, val)["all"] == best["val_auc"]["all"]  # the best epoch's weights are the ones kept
    both = concat_pools([train, val])
    assert len(both.kind) == 320 and both.real.shape == (320, 8, FEATURE_DIM)


def test_pool_round_trips_and_a_wrong_file_is_a_clear_error(tmp_path: Path) -> None:
    pool = _pool(4, np.random.default_rng(1), 0.1)
    pool.save(tmp_path / "p.npz")
    back = FeaturePool.load(tmp_path / "p.npz")
    assert np.array_equal(back.fake, pool.fake) and np.array_equal(back.kind, pool.kind)
    (tmp_path / "bad.npz").write_bytes(b"not a pool")
    with pytest.raises(DeepshieldError, match="not a feature pool"):
        FeaturePool.load(tmp_path / "bad.npz")


def test_fusion_weights_follow_the_detector_that_separates() -> None:
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    frame = rng.uniform(0.2, 0.8, 40)  # no information
    temporal = np.where(y == 1, rng.uniform(0.6, 0.9, 40), rng.uniform(0.1, 0.4, 40))
    w_f, w_t, b = fit_fusion(frame.tolist(), temporal.tolist(), y.tolist())
    assert w_t > 0.5 and w_f >= 0.0 and w_t > 3 * w_f
    fusion = Fusion(w_f, w_t, b, 0.5)
    fused = [fusion.probability(a, c) for a, c in zip(frame, temporal, strict=True)]
    assert min(f for f, t in zip(fused, y, strict=True) if t) > max(f for f, t in zip(fused, y, strict=True) if not t)
    # Monotone: a higher score from either detector never lowers the fused one.
    assert fusion.probability(0.5, 0.9) >= fusion.probability(0.5, 0.3)
    assert fusion.probability(0.9, 0.5) >= fusion.probability(0.3, 0.5)
    thr = fused_threshold(fusion, frame[y == 0].tolist(), temporal[y == 0].tolist(), 1.0)
    assert thr > max(f for f, t in zip(fused, y, strict=True) if not t) and thr >= 0.5
    assert Fusion.from_dict(fusion.to_dict()).threshold == fusion.threshold
    with pytest.raises(DeepshieldError, match="one class"):
        fit_fusion([0.1, 0.2], [0.3, 0.4], [0, 0])
    with pytest.raises(DeepshieldError, match="incomplete"):
        Fusion.from_dict({"w_frame": 1.0})


def test_temporal_threshold_sits_above_real_videos_and_never_below_one_half() -> None:
    from deepshield.detect.training.temporal.fusion import temporal_threshold

    real = [0.1, 0.3, 0.63, 0.2]
    assert temporal_threshold(real) == 0.635  # above every real video
    assert temporal_threshold([0.1, 0.2]) == 0.505
    assert temporal_threshold(real, 0.5) == 0.505  # the median, 0.25, is below one half
    with pytest.raises(DeepshieldError, match="real videos"):
        temporal_threshold([])


def test_leave_one_out_fusion_scores_each_video_without_it_and_the_check_reports_per_source() -> None:
    from deepshield.detect.training.temporal.fusion import fusion_check, leave_one_out

    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(12), np.ones(12)].astype(int)
    frame = np.where(y == 1, rng.uniform(0.5, 0.9, 24), rng.uniform(0.1, 0.6, 24))
    temporal = rng.uniform(0.2, 0.8, 24)
    loo = leave_one_out(frame.tolist(), temporal.tolist(), y.tolist())
    # Video 0 left out: the fit without it, applied to it.
    w_f, w_t, b = fit_fusion(frame[1:].tolist(), temporal[1:].tolist(), y[1:].tolist())
    assert loo[0] == pytest.approx(Fusion(w_f, w_t, b, 0.5).probability(frame[0], temporal[0]))
    # An outlier fake the others cannot explain scores lower left out than in sample.
    frame[-1], temporal[-1] = 0.15, 0.2
    full = fit_fusion(frame.tolist(), temporal.tolist(), y.tolist())
    fused_in = Fusion(*full, 0.5).probability(frame[-1], temporal[-1])
    assert leave_one_out(frame.tolist(), temporal.tolist(), y.tolist())[-1] < fused_in
    source = ["dev"] * 6 + ["corpus"] * 6 + ["dev"] * 12  # the corpus part holds real videos only
    check = fusion_check(frame.tolist(), temporal.tolist(), y.tolist(), source, Fusion(*full, 0.5))
    assert set(check["auc"]) == {"all", "dev"}
    assert set(check["auc"]["all"]) == {"frame", "temporal", "fused", "fused_loo"}
    assert check["auc"]["all"]["fused_loo"] <= check["auc"]["all"]["fused"]
    assert len(check["lines"]) == 3
    # One fake only: no fit can leave it out, so the check reports the other columns.
    one = fusion_check([0.2, 0.3, 0.9], [0.4, 0.5, 0.6], [0, 0, 1], ["dev"] * 3, Fusion(*full, 0.5))
    assert set(one["auc"]["all"]) == {"frame", "temporal", "fused"}


@pytest.mark.slow
def test_export_of_backbone_and_head_matches_torch_and_loads_as_a_temporal_detector(tmp_path: Path) -> None:
    from deepshield.detect.training.temporal.export import MAX_BYTES_FEATURES, write_meta, write_onnx

    cfg = HeadConfig(frames=4, size=64)
    head = TemporalHead(cfg)
    net = FeatureTemporalNet(_random_backbone(), head)
    path, diff = write_onnx(net, cfg.frames, cfg.size, tmp_path, MAX_BYTES_FEATURES)
    assert diff < 1e-3 and path.stat().st_size < MAX_BYTES_FEATURES
    write_meta(tmp_path, {"version": "t", "frames": 4, "input_size": 64, "margin": 0.25, "threshold": 0.7})
    det = TemporalDetector(tmp_path, threads=1)
    assert (det.frames, det.size, det.threshold, det.fusion) == (4, 64, 0.7, None)
    clips = [np.random.default_rng(k).integers(0, 255, (4, 128, 128, 3)).astype(np.uint8) for k in range(3)]
    inputs = det.inputs(clips)
    x = (inputs.astype(np.float32) / 255.0 - det._mean) / det._std
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3)))).numpy()
    assert np.abs(det.logits(inputs) - ref).max() < 1e-3
    with pytest.raises(ValueError, match="clip is 4"):
        det.clip_scores([clips[0][:3]])


def test_a_temporal_model_folder_without_its_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeepshieldError, match="no temporal model"):
        TemporalDetector(tmp_path)
    (tmp_path / "temporal.onnx").write_bytes(b"x")
    (tmp_path / "temporal.json").write_text("{}")
    with pytest.raises(DeepshieldError, match="metadata"):
        TemporalDetector(tmp_path)


def test_temporal_scores_round_trip_in_the_scan_json_and_flag_by_either_threshold() -> None:
    runs = (ClipScore(0.5, 0, 0.25), ClipScore(2.0, -1, 0.2))
    t = TemporalScores("temporal", "2", 0.8, 0.3, {0: 0.3, -1: 0.2}, 4, 0.71, 0.7, True, runs)
    assert t.flagged  # the fused score alone reaches its threshold
    r = ScanResult(file="x.mp4", temporal=t)
    back = ScanResult.from_json(r.to_json())
    assert back == r and json.loads(r.to_json())["temporal"]["track_scores"] == {"0": 0.3, "-1": 0.2}
    assert json.loads(r.to_json())["temporal"]["clip_scores"][1] == {"time_s": 2.0, "track_id": -1, "score": 0.2}
    # A result stored before runs were kept still loads, with none.
    old = json.loads(r.to_json())
    del old["temporal"]["clip_scores"]
    assert ScanResult.from_json(json.dumps(old)).temporal == replace(t, clip_scores=())
    assert not TemporalScores("temporal", "2", 0.8, 0.3, {}, 1, 0.5, 0.7).flagged
    from deepshield.cli.scan import _summary_line
    from deepshield.scan_result import Scores

    line = _summary_line(ScanResult(file="x.mp4", scores=Scores(0.56), temporal=t, verdict="manipulated")).plain
    assert line.endswith("x.mp4: 0 face(s) score=0.560 temporal=0.300 fused=0.710 (manipulated)")
    assert TemporalScores("temporal", "2", 0.8, 0.85, {}, 1, None, None).flagged


@pytest.mark.skipif(shipped_temporal() is None, reason="no temporal model shipped in src/deepshield/models/temporal")
def test_shipped_model_is_small_documented_and_fused() -> None:
    assert (SHIPPED_DIR / "temporal.onnx").stat().st_size < 25_000_000
    det = shipped_temporal()
    assert det is not None and det.meta["method"].endswith("-mobilenetv2-features+temporal-head")
    backbone = det.meta.get("train_data", {}).get("backbone", {"name": "imagenet"})
    if backbone["name"] == "forgery":  # read from the frame detector's file: the one shipped beside it
        from deepshield.detect.training.temporal.features import forgery_onnx_path
        from deepshield.filehash import sha256_file

        assert backbone["sha256"] == sha256_file(forgery_onnx_path())
    assert 0.5 <= det.threshold < 1.0


@pytest.mark.skipif(shipped_temporal() is None, reason="no temporal model shipped in src/deepshield/models/temporal")
def test_scan_of_a_real_video_shows_both_detectors_and_the_report_shows_them(shared_faces: Path) -> None:
    from deepshield.detect.pipeline import Scanner, ScanOptions
    from deepshield.reports.html import render_report

    scanner = Scanner(ScanOptions(frames=8, keep_artifacts=True, temporal_windows=2))
    try:
        out = scanner.scan(shared_faces / VIDEO)
        plain = Scanner(ScanOptions(frames=8, use_temporal=False), detector=scanner.detector).scan(shared_faces / VIDEO)
    finally:
        scanner.close()
    r = out.result
    assert r.temporal is not None and r.temporal.clips >= 1 and r.temporal.video_score is not None
    assert set(r.temporal.track_scores) <= {t.track_id for t in r.tracks} | {-1}
    # Every scored run is kept, in time order, inside the video; a track's score is the mean of its runs.
    runs = r.temporal.clip_scores
    assert len(runs) == r.temporal.clips and [c.time_s for c in runs] == sorted(c.time_s for c in runs)
    assert r.media is not None and r.media.duration_s is not None
    assert all(0 <= c.time_s <= r.media.duration_s for c in runs)
    for tid, score in r.temporal.track_scores.items():
        assert np.mean([c.score for c in runs if c.track_id == tid]) == pytest.approx(score, abs=1e-3)
    assert r.timing_s is not None and r.timing_s.temporal is not None and r.timing_s.temporal > 0
    assert plain.result.temporal is None and plain.result.video_score == r.video_score
    if r.temporal.fused_score is not None:
        det = shipped_temporal()
        assert det is not None and det.fusion is not None and r.video_score is not None
        assert r.temporal.fused_score == round(det.fusion.probability(r.video_score, r.temporal.video_score), 4)
    assert ScanResult.from_json(r.to_json()) == r
    page = render_report(r, out.artifacts)
    assert 'id="temporal-score"' in page and 'id="fused-score"' in page
    assert f"{r.temporal.video_score:.2f}" in page
    assert 'id="timeline-caption"' in page and f"({len(runs)} runs)" in page
    # The shipped fusion is for review: the verdict is the frame detector's alone.
    assert not r.temporal.in_verdict and 'id="fusion-note"' in page
    assert r.verdict == plain.result.verdict
