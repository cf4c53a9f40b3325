"""Fake clips made from real ones: synthetic temporal inconsistencies, so the temporal detector trains on real
video only.

Reenactment (Face2Face, NeuralTextures), lip-sync and one-photo talking heads re-render the mouth and lower face
frame by frame, or animate one still; what they share is that the face does not change over time the way a
filmed face does. Each kind below makes one such inconsistency from a real clip of K consecutive frames and
changes nothing outside its mask, so that the real clip and its fake (a training pair, sharing every later
augmentation) differ only where and when the forgery acts:

- `lower_face_from_frames`: the lower face of each frame replaced by that of other, non-adjacent frames of the
  same video (random frames, a constant offset, or a held mouth): lip-sync-like mismatch of mouth and head.
- `flicker_blend`: a self-blend (`sbi.self_blend`) whose mask, colour change and warp are drawn afresh in each
  frame, or one blend whose opacity flickers from frame to frame.
- `frozen_texture`: one frame's face warped to every frame's landmarks (a one-photo talking head: texture frozen,
  geometry moving), over the whole crop or inside the face only.
- `mouth_jitter`: the lower face shifted, scaled and turned by a small random amount in each frame.

Every function takes and returns crops at the clip cache's size (`clips.CLIP_CACHE_SIZE`); `make_pair` then
crops the network's input and applies the degradation both halves share (colour, rescaling, H.264 or JPEG).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from deepshield.detect.training.degrade import h264_clip
from deepshield.detect.training.sbi import _colour_change, _frequency_change, hull_mask, jpeg_roundtrip, self_blend
from deepshield.detect.training.swaps import delaunay, warp_triangles
from deepshield.detect.training.temporal.clips import VideoFrames, input_crop
from deepshield.detect.training.xblend import WARP_POINTS
from deepshield.faces.landmarks import FACE_OVAL, LIPS_OUTER, NOSE, lower_face

#: The kinds of fake clip, in the order of `SynthParams.weights`.
KINDS = ("lower_face", "flicker_blend", "frozen_texture", "mouth_jitter")

#: Points that move with the head but not with the mouth: the similarity fit that places another frame's lower
#: face onto this frame's head uses them.
_HEAD_POINTS = np.array(sorted(set(NOSE + [33, 133, 263, 362, 168, 6, 197, 195, 234, 454, 93, 323])))


@dataclass(frozen=True)
class SynthParams:
    frames: int = 8
    size: int = 96  # network input side
    margin_min: float = 0.18  # input crop margin, drawn per pair (scoring uses the middle)
    margin_max: float = 0.32
    weights: tuple[float, float, float, float] = (0.35, 0.25, 0.2, 0.2)
    min_gap: int = 4  # source frames of a lower-face swap lie at least this far from the frame they replace
    video_prob: float = 0.7  # share of pairs H.264-coded (as one clip) at CRF video_crf_min..video_crf_max
    video_crf_min: int = 18
    video_crf_max: int = 36
    jpeg_prob: float = 0.15  # else this share JPEG-coded frame by frame
    scale_min: float = 0.45  # shared rescaling to scale_min..1 and back, before the coding

    @property
    def margin(self) -> float:
        return (self.margin_min + self.margin_max) / 2


def _feather(mask: np.ndarray, extent: float, rng: np.random.Generator, grow: float = 0.0) -> np.ndarray:
    """A hard mask dilated by `grow` (fraction of `extent`) and blurred by a random amount: a blend edge from
    hard to soft. One call per clip: its random draws are the clip's."""
    if grow > 0:
        k = max(3, int(extent * grow) | 1)
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    sigma = extent * rng.uniform(0.01, 0.06)
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma)) if sigma > 0.3 else mask


def _blend(base: np.ndarray, other: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    return np.clip(m * other.astype(np.float32) + (1 - m) * base.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def _same_draws(seed: int, fn: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> Callable:
    """`fn` with the same random draws at every call: one colour or frequency change for a whole clip."""

    def apply(img: np.ndarray) -> np.ndarray:
        return fn(img, np.random.default_rng(seed))

    return apply


def _extent(lm: np.ndarray) -> float:
    oval = lm[FACE_OVAL, :2]
    return float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1])))


def lower_face_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Hard mask of the lower face (lips and the oval below the nose tip) of one face's landmarks."""
    return hull_mask(shape, lm[lower_face(lm)])


def source_frames(video_len: int, idx: np.ndarray, rng: np.random.Generator, min_gap: int) -> np.ndarray | None:
    """For each frame index of a clip, the index of another frame of the video to take the lower face from:
    random frames at least `min_gap` away, the clip shifted by a constant offset of at least `min_gap`, or one
    frame held. None when the video is too short for any."""
    far = [i for i in range(video_len) if np.abs(i - idx).min() >= min_gap]
    if not far:
        return None
    mode = rng.random()
    if mode < 0.45:
        out = []
        for t in idx:
            cand = [i for i in far if abs(i - t) >= min_gap]
            out.append(int(rng.choice(cand)))
        return np.array(out)
    if mode < 0.85:
        offsets = [d for d in range(-video_len, video_len + 1) if abs(d) >= min_gap]
        offsets = [d for d in offsets if idx.min() + d >= 0 and idx.max() + d < video_len]
        if offsets:
            return idx + int(rng.choice(offsets))
    return np.full(len(idx), int(rng.choice(far)))


def lower_face_from_frames(
    video: VideoFrames, idx: np.ndarray, rng: np.random.Generator, min_gap: int = 4
) -> tuple[np.ndarray, np.ndarray] | None:
    """(fake clip, masks): the lower face of frames `idx` replaced by the lower face of other frames of the same
    video, each placed by a similarity fit on head points (so the head stays where it is and only the mouth and
    jaw disagree with it). None when the video has no frame far enough away."""
    src_idx = source_frames(len(video), idx, rng, min_gap)
    if src_idx is None:
        return None
    real = video.images[idx]
    shape = (real.shape[1], real.shape[2])
    # One look for the whole clip: a generator's mouth is often softer, sometimes of slightly different colour.
    seed = int(rng.integers(1 << 31))
    soften = _same_draws(seed, _frequency_change) if rng.random() < 0.5 else None
    tint = _same_draws(seed + 1, _colour_change) if rng.random() < 0.25 else None
    grow = rng.uniform(0.0, 0.08)
    blur_rng_seed = int(rng.integers(1 << 31))
    fakes, masks = [], []
    for t, s in zip(idx, src_idx, strict=True):
        lm_t, lm_s = video.landmarks[t], video.landmarks[s]
        m, _ = cv2.estimateAffinePartial2D(lm_s[_HEAD_POINTS], lm_t[_HEAD_POINTS])
        if m is None:
            m = np.array([[1.0, 0, 0], [0, 1.0, 0]])
        src = video.images[s]
        if soften is not None:
            src = soften(src)
        if tint is not None:
            src = tint(src)
        placed = cv2.warpAffine(src, m, shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        lm_placed = lm_s @ m[:, :2].T + m[:, 2]
        hard = np.maximum(lower_face_mask(lm_t, shape), lower_face_mask(lm_placed, shape))
        mask = _feather(hard, _extent(lm_t), np.random.default_rng(blur_rng_seed), grow)
        fakes.append(_blend(video.images[t], placed, mask))
        masks.append(mask)
    return np.stack(fakes), np.stack(masks).astype(np.float32)


def flicker_blend(clip: np.ndarray, lms: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(fake clip, masks): self-blends (SBI) that change from frame to frame: independent blends (mask, colour,
    frequency and shift drawn afresh), or one blend whose opacity flickers (some frames nearly untouched)."""
    fakes, masks = [], []
    if rng.random() < 0.5:
        for img, lm in zip(clip, lms, strict=True):
            fake, mask = self_blend(img, lm, rng, part_prob=0.5)
            fakes.append(fake)
            masks.append(mask)
    else:
        seed = int(rng.integers(1 << 31))
        alphas = rng.uniform(0.0, 1.0, size=len(clip))
        alphas[int(rng.integers(len(clip)))] = 1.0  # at least one frame fully blended
        for img, lm, a in zip(clip, lms, alphas, strict=True):
            fake, mask = self_blend(img, lm, np.random.default_rng(seed), part_prob=0.5)
            fakes.append(_blend(img, fake, np.full(mask.shape, a, np.float32)))
            masks.append(mask * a)
    return np.stack(fakes), np.stack(masks).astype(np.float32)


def _border_points(size: int) -> np.ndarray:
    e = size - 1
    h = e / 2
    return np.array([[0, 0], [h, 0], [e, 0], [e, h], [e, e], [h, e], [0, e], [0, h]], np.float32)


def frozen_texture(
    clip: np.ndarray, lms: np.ndarray, ref: np.ndarray, ref_lm: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(fake clip, masks): the reference frame `ref` warped (piecewise-affine on mesh points) to each frame's
    landmarks. With the crop's border pinned the whole crop is the animated still (as a talking-head model renders
    it); otherwise only the face is, blended into the real frame inside a feathered face-oval mask."""
    size = clip.shape[1]
    border = _border_points(size)
    src_pts = np.concatenate([ref_lm[WARP_POINTS, :2], border])
    tris = delaunay(src_pts, (size, size))
    whole = rng.random() < 0.5
    grow = rng.uniform(-0.04, 0.04)
    blur_seed = int(rng.integers(1 << 31))
    fakes, masks = [], []
    for img, lm in zip(clip, lms, strict=True):
        dst_pts = np.concatenate([lm[WARP_POINTS, :2], border])
        warped, cover = warp_triangles(ref, src_pts, dst_pts, tris, (size, size))
        warped_u8 = np.clip(warped + 0.5, 0, 255).astype(np.uint8)
        if whole:
            mask = cover
        else:
            ext = _extent(lm)
            hard = hull_mask((size, size), lm[FACE_OVAL, :2])
            if grow < 0:
                k = max(3, int(ext * -grow) | 1)
                hard = cv2.erode(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
            mask = _feather(hard, ext, np.random.default_rng(blur_seed), max(grow, 0.0)) * cover
        fakes.append(_blend(img, warped_u8, mask))
        masks.append(mask)
    return np.stack(fakes), np.stack(masks).astype(np.float32)


def mouth_jitter(clip: np.ndarray, lms: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(fake clip, masks): each frame's lower face moved by its own small similarity transform about the mouth
    (shift up to 3% of the face, scale 0.95..1.05, roll up to 3 degrees), blended back in a feathered mask."""
    size = clip.shape[1]
    grow = rng.uniform(0.0, 0.06)
    blur_seed = int(rng.integers(1 << 31))
    amp = rng.uniform(0.01, 0.03)
    fakes, masks = [], []
    for img, lm in zip(clip, lms, strict=True):
        ext = _extent(lm)
        c = lm[LIPS_OUTER, :2].mean(axis=0)
        m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), rng.uniform(-3, 3), rng.uniform(0.95, 1.05))
        m = m + np.c_[np.zeros((2, 2)), rng.uniform(-amp, amp, size=2) * ext]
        moved = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        hard = np.maximum(lower_face_mask(lm, (size, size)), lower_face_mask(lm @ m[:, :2].T + m[:, 2], (size, size)))
        mask = _feather(hard, ext, np.random.default_rng(blur_seed), grow)
        fakes.append(_blend(img, moved, mask))
        masks.append(mask)
    return np.stack(fakes), np.stack(masks).astype(np.float32)


def make_fake(
    kind: str, video: VideoFrames, idx: np.ndarray, rng: np.random.Generator, p: SynthParams
) -> tuple[np.ndarray, np.ndarray]:
    """(fake clip, masks) of one kind for frames `idx` of `video` (a lower-face swap in a video too short for
    one becomes mouth jitter)."""
    clip, lms = video.images[idx], video.landmarks[idx]
    if kind == "lower_face":
        out = lower_face_from_frames(video, idx, rng, p.min_gap)
        if out is not None:
            return out
        kind = "mouth_jitter"
    if kind == "flicker_blend":
        return flicker_blend(clip, lms, rng)
    if kind == "frozen_texture":
        r = int(rng.integers(len(video)))
        return frozen_texture(clip, lms, video.images[r], video.landmarks[r], rng)
    if kind == "mouth_jitter":
        return mouth_jitter(clip, lms, rng)
    raise ValueError(f"unknown kind of fake clip {kind!r}: one of {', '.join(KINDS)}")


def shared_degrade(clips: list[np.ndarray], rng: np.random.Generator, p: SynthParams) -> list[np.ndarray]:
    """The same colour jitter, rescaling and coding for every clip of a pair (each clip coded on its own, with
    the same settings)."""
    out = [c.astype(np.float32) for c in clips]
    if rng.random() < 0.5:
        a, b = rng.uniform(0.8, 1.2), rng.uniform(-15, 15)
        g = rng.uniform(-8, 8, size=3).astype(np.float32)
        out = [(c - 128) * a + 128 + b + g for c in out]
    res = [np.clip(c + 0.5, 0, 255).astype(np.uint8) for c in out]
    size = res[0].shape[1]
    small = size
    if rng.random() < 0.5:
        small = max(32, int(size * rng.uniform(p.scale_min, 1.0)) // 2 * 2)
    if small != size:
        res = [np.stack([cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA) for f in c]) for c in res]
    r = rng.random()
    if r < p.video_prob:
        crf = int(rng.integers(p.video_crf_min, p.video_crf_max + 1))
        res = [h264_clip(c, crf) for c in res]
    elif r < p.video_prob + p.jpeg_prob:
        q = int(rng.integers(50, 96))
        res = [np.stack([jpeg_roundtrip(f, q) for f in c]) for c in res]
    if small != size:
        res = [np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in c]) for c in res]
    return res


def choose_kind(rng: np.random.Generator, p: SynthParams) -> str:
    w = np.asarray(p.weights, np.float64)
    return KINDS[int(rng.choice(len(KINDS), p=w / w.sum()))]


def window(video: VideoFrames, start: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Frame indices of a clip from `start`: consecutive (70%), every second frame when the run is long enough
    (15%: faster motion, a lower frame rate), or with one frame repeated (15%: frame-rate conversion does this to
    real video). Both halves of a pair use them, so neither speed nor a repeated frame marks a fake."""
    idx = np.arange(start, start + k)
    r = rng.random()
    if r < 0.15:
        j = int(rng.integers(1, k))
        idx[j:] -= 1
    elif r < 0.3:
        end = start + 2 * (k - 1)
        if end < len(video) and video.segment[end] == video.segment[start]:
            idx = start + 2 * np.arange(k)
    return idx


def make_pair(
    video: VideoFrames, start: int, rng: np.random.Generator, p: SynthParams, kind: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(real clip, fake clip, kind) at the network's input size: K frames of `video` from `start` (`window`) and a
    fake made from them, cropped alike (margin, shift, flip drawn once) and degraded alike."""
    kind = kind or choose_kind(rng, p)
    idx = window(video, start, p.frames, rng)
    fake, _ = make_fake(kind, video, idx, rng, p)
    margin = rng.uniform(p.margin_min, p.margin_max)
    shift = (float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03)))
    flip = bool(rng.random() < 0.5)
    real_in = input_crop(video.images[idx], margin, p.size, shift, flip)
    fake_in = input_crop(fake, margin, p.size, shift, flip)
    real_in, fake_in = shared_degrade([real_in, fake_in], rng, p)
    return real_in, fake_in, kind


def to_clip_input(clips: np.ndarray) -> np.ndarray:
    """B x K x H x W x 3 uint8 RGB -> B x 3 x K x H x W float32, normalised as the frame detector's input."""
    from deepshield.detect.training.sbi import MEAN, STD

    x = clips.astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))
