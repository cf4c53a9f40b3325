"""Training the warped-turn detector (`liveness/warp.py`): `deepshield liveness train-warp`.

Examples come from real photos only (the corpus' LFW, real and more photos):
- **real turns:** every photo whose main face is turned at least `MIN_YAW` degrees, as it is;
- **warps:** every near-frontal photo (|yaw| and |pitch| small) turned by the attacker's own 2.5-D warp
  (`attacks.crafted.warp_pose`) to 25 to 60 degrees either way, with a random ring size, then measured again: the
  detector is scored at the yaw the verifier reads, not the yaw asked of the warp.
Both kinds then go through the same JPEG re-coding and rescaling, so compression tells neither apart.

Features are frozen ImageNet MobileNetV2 (the detector's pretrained start, `detect.training.mobilenet`): the
outputs of two mid-level blocks pooled to their mean and spread (`TAPS`). The head is an L2 logistic regression
weighted so that real turns and warps have the same yaw distribution (`yaw_balanced_weights`). Folds are by photo
(LFW holds one photo per person). The real video frames and the crafted replays of an attack suite are never
trained on: they are the held-out check the command prints (photos to video is the change of domain a verifier
meets).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deepshield.detect.onnx_detector import calibrate
from deepshield.detect.training.metrics import auc
from deepshield.detect.training.sbi import jpeg_roundtrip
from deepshield.errors import DeepshieldError
from deepshield.faces import Face
from deepshield.faces.align import align_face
from deepshield.faces.analyzer import FaceAnalyzer
from deepshield.filehash import sha256_file
from deepshield.liveness.analysis import scale_to_side
from deepshield.liveness.warp import MODEL_NAME

#: Faces turned less than this are neither trained on nor scored.
MIN_YAW = 15.0
#: A photo is "frontal" (a source for warps) under these.
FRONTAL_YAW, FRONTAL_PITCH = 10.0, 20.0
INPUT_SIZE, MARGIN = 160, 0.4
WORK_SIDE = 640  # the verifier's working size (`SessionAnalyzer.work_side`)
PHOTO_DIRS = ("lfw_1000", "real_photos", "more_photos")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

Progress = Callable[[int, int], None]


@dataclass
class WarpExamples:
    """Aligned crops with their label (1: a warp), the yaw the analyser measured and a group (the source file,
    so folds never split a photo from its warps)."""

    crops: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    yaws: list[float] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def add(self, crop: np.ndarray, label: int, yaw: float, group: str) -> None:
        self.crops.append(crop)
        self.labels.append(label)
        self.yaws.append(yaw)
        self.groups.append(group)

    def __len__(self) -> int:
        return len(self.labels)


def save_examples(path: Path, sets: dict[str, WarpExamples]) -> None:
    """Examples in one .npz (no pickle), so a re-fit skips the face analysis."""
    arrays: dict[str, np.ndarray] = {}
    for name, ex in sets.items():
        arrays[f"{name}_crops"] = np.stack(ex.crops) if ex.crops else np.zeros((0, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        arrays[f"{name}_labels"] = np.asarray(ex.labels, np.int64)
        arrays[f"{name}_yaws"] = np.asarray(ex.yaws, np.float64)
        arrays[f"{name}_groups"] = np.asarray(ex.groups, dtype=str)
    with path.open("wb") as f:
        np.savez(f, **arrays)


def load_examples(path: Path, names: tuple[str, ...]) -> dict[str, WarpExamples]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {
                n: WarpExamples(
                    list(z[f"{n}_crops"]),
                    [int(v) for v in z[f"{n}_labels"]],
                    [float(v) for v in z[f"{n}_yaws"]],
                    [str(v) for v in z[f"{n}_groups"]],
                )
                for n in names
            }
    except (OSError, ValueError, KeyError) as e:
        raise DeepshieldError(f"{path}: not a warp training cache ({e})") from e


def main_face(analyzer: FaceAnalyzer, rgb: np.ndarray) -> Face | None:
    faces = [f for f in analyzer.analyze(rgb) if f.landmarks is not None and f.pose is not None]
    return max(faces, key=lambda f: f.width) if faces else None


def recode(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    """The same loss for both kinds: rescaled (0.6 to 1) and JPEG-coded at quality 60 to 95."""
    s = rng.uniform(0.6, 1.0)
    h, w = rgb.shape[:2]
    if s < 0.98:
        rgb = cv2.resize(rgb, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(jpeg_roundtrip(rgb, rng.randint(60, 95)))


def photo_files(faces_root: Path) -> list[Path]:
    return sorted(p for d in PHOTO_DIRS for p in (faces_root / d).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def photo_examples(
    faces_root: Path, seed: int = 7, warps_per_photo: int = 2, progress: Progress | None = None
) -> WarpExamples:
    from deepshield.liveness.attacks.crafted import warp_pose

    rng = random.Random(seed)
    files = photo_files(faces_root)
    ex = WarpExamples()
    analyzer = FaceAnalyzer(max_faces=4, tiled=False)
    try:
        for n, path in enumerate(files):
            if progress:
                progress(n, len(files))
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            face = main_face(analyzer, rgb)
            if face is None or face.pose is None or face.landmarks is None or face.width < 60:
                continue
            group = path.name
            if abs(face.pose.yaw) >= MIN_YAW - 3:  # a little below, so the head sees the edge of its range
                real = recode(rgb, rng)
                f2 = main_face(analyzer, real)
                if f2 is not None and f2.pose is not None:
                    ex.add(align_face(real, f2, INPUT_SIZE, MARGIN).image, 0, f2.pose.yaw, group)
            if abs(face.pose.yaw) < FRONTAL_YAW and abs(face.pose.pitch) < FRONTAL_PITCH:
                for _ in range(warps_per_photo):
                    yaw = rng.choice((-1.0, 1.0)) * rng.uniform(25.0, 60.0)
                    ring = (rng.uniform(1.3, 2.0), rng.uniform(1.3, 1.8))
                    warped, _ = warp_pose(rgb, face.landmarks, yaw, 0.0, ring=ring)
                    warped = recode(warped, rng)
                    wf = main_face(analyzer, warped)
                    if wf is not None and wf.pose is not None:
                        ex.add(align_face(warped, wf, INPUT_SIZE, MARGIN).image, 1, wf.pose.yaw, group)
    finally:
        analyzer.close()
    return ex


def _frames(path: Path, times: list[float] | None) -> Iterator[np.ndarray]:
    """Decoded RGB frames (through the project's one way in for media): 4 a second, or those nearest `times`."""
    from deepshield.media import FrameSampling, open_media

    want = sorted(times) if times is not None else None
    media = open_media(path)
    try:
        for f in media.frames(FrameSampling.rate(4.0 if want is None else 8.0, max_frames=2000)):
            if want is None:
                yield f.rgb
                continue
            while want and f.time_s >= want[0] - 0.0625:
                want.pop(0)
                yield f.rgb
            if not want:
                break
    finally:
        media.close()


def video_examples(
    real_videos: list[Path], crafted: list[tuple[Path, list[float]]], progress: Progress | None = None
) -> WarpExamples:
    """Held-out frames: every turned face in the real videos (4 a second), and the crafted replays' faces in the
    middle of their turn and profile steps (`crafted`: video and the times to look at)."""
    ex = WarpExamples()
    jobs: list[tuple[Path, list[float] | None, int]] = [(v, None, 0) for v in real_videos]
    jobs += [(v, t, 1) for v, t in crafted]
    analyzer = FaceAnalyzer(max_faces=4, tiled=False)
    try:
        for n, (video, times, label) in enumerate(jobs):
            if progress:
                progress(n, len(jobs))
            for rgb in _frames(video, times):
                rgb = scale_to_side(rgb, WORK_SIDE)
                f = main_face(analyzer, rgb)
                if f is None or f.pose is None or abs(f.pose.yaw) < MIN_YAW:
                    continue
                ex.add(align_face(rgb, f, INPUT_SIZE, MARGIN).image, label, f.pose.yaw, video.name)
    finally:
        analyzer.close()
    return ex


def crafted_turn_times(suite: Path, limit: int = 0) -> list[tuple[Path, list[float]]]:
    """The crafted replays of a suite and, for each, three times in the hold of every turn and profile step."""
    from deepshield.liveness.attacks.suite import load_manifest

    out: list[tuple[Path, list[float]]] = []
    for trial in load_manifest(suite):
        if trial.kind != "crafted_replay":
            continue
        times: list[float] = []
        for s in trial.script["steps"]:
            if str(s["kind"]).startswith(("turn_", "profile_")):
                a, b = float(s["start_s"]) + 0.9, float(s["end_s"]) - 0.9
                times += [float(t) for t in np.linspace(a, b, 3)] if b > a else [(a + b) / 2]
        video = Path(trial.video)
        out.append((video if video.is_absolute() else suite / video, times))
        if limit and len(out) >= limit:
            break
    return out


#: The MobileNetV2 blocks whose outputs are pooled (mean and standard deviation per channel): block 10 ends the
#: stride-16 stage at 64 channels, block 13 the next at 96. These mid-level texture features separate warps
#: from real turns much better than the pooled 1,280 top features, which mostly encode the face's shape and pose
#: (out-of-fold on the photos: AUC 0.990 against 0.974; see models/MODEL_CARD_warp.md).
TAPS = (10, 13)


def tap_features_net() -> Any:
    """ImageNet MobileNetV2 up to the last tap, returning the pooled taps (2 x (64 + 96) = 320 features)."""
    import torch

    from deepshield.detect.training.mobilenet import load_imagenet

    class TapFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.ModuleList(list(load_imagenet().features)[: max(TAPS) + 1])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pooled = []
            for i, layer in enumerate(self.features):
                x = layer(x)
                if i in TAPS:
                    mean = x.mean(dim=(2, 3))
                    std = ((x - mean[:, :, None, None]) ** 2).mean(dim=(2, 3)).clamp_min(1e-12).sqrt()
                    pooled += [mean, std]
            return torch.cat(pooled, dim=1)

    return TapFeatures().eval()


def tap_features(crops: list[np.ndarray], batch: int = 64, progress: Progress | None = None) -> np.ndarray:
    """Pooled tap features (`TAPS`) of each crop and, after them, of each crop's mirror image."""
    import torch

    from deepshield.detect.training.mobilenet import IMAGENET_MEAN, IMAGENET_STD

    net = tap_features_net()
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    allc = crops + [c[:, ::-1] for c in crops]
    out = []
    with torch.inference_mode():
        for i in range(0, len(allc), batch):
            x = (np.stack(allc[i : i + batch]).astype(np.float32) / 255.0 - mean) / std
            out.append(net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy())
            if progress:
                progress(min(i + batch, len(allc)), len(allc))
    return np.concatenate(out) if out else np.zeros((0, 320), np.float32)


def yaw_balanced_weights(labels: np.ndarray, yaws: np.ndarray, bin_deg: float = 5.0, bins: int = 10) -> np.ndarray:
    """Sample weights under which real turns and warps have the same yaw distribution (5-degree bins of |yaw|,
    the last one open): warps come out of the warp more turned than most real photos are, and without this the
    head learns "far turned, so warped". Warps in a bin with no real turn get no weight."""
    b = np.minimum((np.abs(yaws) // bin_deg).astype(int), bins - 1)
    w = np.ones(len(labels))
    for k in range(bins):
        real, warp = (b == k) & (labels == 0), (b == k) & (labels == 1)
        w[warp] = real.sum() / warp.sum() if warp.any() else 0.0
    return w


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float = 0.1) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression, the objective of scikit-learn's `LogisticRegression(C=c)` (the sum of
    weighted losses plus half the squared weights over C), fitted by L-BFGS; returns the weights and bias."""
    import torch

    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    sw = torch.from_numpy(weights.astype(np.float32))
    total = float(sw.sum())
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=1000, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = xt @ w + b
        loss = (sw * torch.nn.functional.binary_cross_entropy_with_logits(z, yt, reduction="none")).sum()
        loss = (loss + 0.5 * (w * w).sum() / c) / total  # scaled by the total weight: the same minimum
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().astype(np.float32), float(b.detach().numpy()[0])


def fit_head(feats: np.ndarray, ex: WarpExamples, idx: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """The head on examples `idx` and their mirror images (features as `tap_features` lays them out), as
    weights and bias on the raw features."""
    n = len(ex)
    y, yaws = np.asarray(ex.labels)[idx], np.asarray(ex.yaws)[idx]
    wts = yaw_balanced_weights(y, yaws)
    x = np.concatenate([feats[idx], feats[n + idx]])
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6  # standardised, so one C suits features of any scale
    w, b = fit_logistic((x - mu) / sd, np.concatenate([y, y]), np.concatenate([wts, wts]), c)
    w_raw = (w / sd).astype(np.float32)
    return w_raw, float(b - (w_raw * mu).sum())


def mirrored_logits(feats: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """Mean logit of each crop and its mirror (features laid out as `tap_features` returns them)."""
    n = len(feats) // 2
    z = feats @ w + b
    return np.asarray((z[:n] + z[n:]) / 2, np.float64)


def out_of_fold(feats: np.ndarray, ex: WarpExamples, folds: int = 5, c: float = 0.01) -> np.ndarray:
    """Each photo's warp probability from a head fitted without its group."""
    n = len(ex)
    keys = sorted(set(ex.groups))
    rng = random.Random(11)
    rng.shuffle(keys)
    fold_of = {g: i % folds for i, g in enumerate(keys)}
    fold = np.array([fold_of[g] for g in ex.groups])
    p = np.zeros(n)
    for k in range(folds):
        tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
        w, b = fit_head(feats, ex, tr, c)
        p[te] = calibrate(mirrored_logits(np.concatenate([feats[te], feats[n + te]]), w, b), 1.0, 0.0)
    return p


def summarize(labels: np.ndarray, probs: np.ndarray, thresholds: dict[str, float]) -> dict[str, Any]:
    real, warp = probs[labels == 0], probs[labels == 1]
    return {
        "real": len(real),
        "warps": len(warp),
        "auc": round(auc(labels, probs), 4),
        "real_max": round(float(real.max()), 4) if len(real) else None,
        "warp_median": round(float(np.median(warp)), 4) if len(warp) else None,
        "over": {
            name: {"real": int((real >= t).sum()), "warps": int((warp >= t).sum())} for name, t in thresholds.items()
        },
    }


def export_onnx(w: np.ndarray, b: float, out_dir: Path) -> Path:
    """Tap features and head as one ONNX graph (float NCHW input, ImageNet-normalised; one logit per crop),
    checked against torch."""
    import torch

    from deepshield.detect.training.onnx_import import onnx_logit_difference
    from deepshield.detect.training.temporal.export import to_onnx

    class WarpNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.taps = tap_features_net()
            self.head = torch.nn.Linear(len(w), 1)
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(w)[None])
                self.head.bias.fill_(b)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.taps(x)).squeeze(1)

    net = WarpNet().eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{MODEL_NAME}.onnx"
    to_onnx(net, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), path, ("input", "logit"), {0: "batch"})
    x = np.random.default_rng(0).standard_normal((4, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    diff = onnx_logit_difference(net, path, x)
    if diff > 1e-3:  # as the face-forgery detector's export checks
        path.unlink()
        raise DeepshieldError(f"warp model export refused: ONNX output differs from torch (max {diff:.2e})")
    return path


def write_meta(onnx_path: Path, version: str, training: dict[str, Any]) -> Path:
    from deepshield.detect.training.mobilenet import IMAGENET_MEAN, IMAGENET_STD

    meta = {
        "name": MODEL_NAME,
        "version": version,
        "input_size": INPUT_SIZE,
        "margin": MARGIN,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "min_yaw_deg": MIN_YAW,
        "onnx_sha256": sha256_file(onnx_path),
        "training": training,
    }
    path = onnx_path.with_suffix(".json")
    path.write_text(json.dumps(meta, indent=1) + "\n")
    return path
