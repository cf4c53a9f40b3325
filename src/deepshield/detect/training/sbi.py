"""Self-blended images (Shiohara and Yamasaki, CVPR 2022), written from the paper and the field notes.

A real face is blended with a slightly altered copy of itself inside a mesh-based mask, so a detector learns
the generic traces of blending (boundary, colour and frequency mismatch) without any fake training data.
The real half of each pair is the untouched face; both halves then share the same crop, flip, colour and
JPEG augmentation, so the pair differs only where the mask is non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deepshield.faces.align import apply_affine
from deepshield.faces.landmarks import (
    FACE_OVAL,
    LEFT_BROW,
    LEFT_EYE,
    LIPS_OUTER,
    NOSE,
    RIGHT_BROW,
    RIGHT_EYE,
    lower_face,
)

OPACITIES = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

#: Normalisation applied to network input (shared by training, export and inference).
MEAN = np.array([0.5, 0.5, 0.5], np.float32)
STD = np.array([0.25, 0.25, 0.25], np.float32)


@dataclass
class SbiParams:
    input_size: int = 160
    margin_min: float = 0.12  # crop margin (fraction of the face extent each side), drawn per pair
    margin_max: float = 0.38
    jpeg_min: int = 40
    jpeg_max: int = 100
    jpeg_prob: float = 0.8
    downscale_prob: float = 0.2  # shared resolution loss (small faces in video) ...
    downscale_min: float = 0.4  # ... to a scale of downscale_min..0.8 (lower: background faces in group photos)
    inner_mask_prob: float = 0.35
    cross_prob: float = 0.0  # share of fakes blended from another identity (`xblend.py`) rather than self-blended
    cross_soft_prob: float = 0.3  # share of those whose donor is softened first, to a scale of cross_soft_min..0.8
    cross_soft_min: float = 0.4
    # Photometric changes shared by both halves of a pair (0 = off, and then no random draw, so older configs
    # reproduce their data stream): harsh light (gamma and strong contrast), sensor noise, greyscale (after
    # the noise, so a grey image stays grey), sharpening.
    light_prob: float = 0.0
    grey_prob: float = 0.0
    noise_prob: float = 0.0
    sharpen_prob: float = 0.0
    # Shared defocus (Gaussian blur of sigma 0.5..blur_max crop pixels, before the resolution loss): version 4
    # scores blurred or small real faces as more fake, because a blurred inside is a fake cue of self-blends.
    blur_prob: float = 0.0
    blur_max: float = 2.5
    # Shared occluder across the face-oval edge (a patch of the same photo, hard-edged or feathered, sometimes
    # see-through like a visor): version 4's worst false alarms are real faces whose outline meets a visor,
    # headscarf or a neighbour's head, sharp edges that read as blend boundaries. The mask target is cleared
    # under it, since what is hidden shows no blend.
    occlude_prob: float = 0.0
    # Share of blend masks that cover face parts (an eye and brow, both eyes, the nose, the mouth, the lower face)
    # instead of the whole face: edits confined to a region (lip-sync, eye or mouth retouching) and swaps whose
    # interior misfits leave boundaries inside the face, which a face-outline mask never shows.
    part_mask_prob: float = 0.0
    # Share of pairs rescaled (to video_scale_min..1) and H.264-coded at CRF video_crf_min..video_crf_max, both
    # halves alike, in place of the resolution loss and JPEG below (`degrade.py`): deepfakes arrive as video.
    video_prob: float = 0.0
    video_crf_min: int = 23
    video_crf_max: int = 40
    video_scale_min: float = 0.4


def _chance(rng: np.random.Generator, prob: float) -> bool:
    """True with probability `prob`, drawing nothing when `prob` is 0 (an option switched off leaves the random
    stream, and so an older config's data, unchanged)."""
    return bool(prob) and rng.random() < prob


def _odd(k: float) -> int:
    k = max(1, int(k))
    return k if k % 2 else k + 1


def hull_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(m, hull, (1.0,))
    return m


#: Face parts for part masks: mesh points, and the range of growth about their centre (so the boundary falls on
#: skin, as an edit of that part would leave it).
FACE_PARTS: tuple[tuple[list[int], float, float], ...] = (
    (RIGHT_EYE + RIGHT_BROW, 1.15, 1.45),
    (LEFT_EYE + LEFT_BROW, 1.15, 1.45),
    (RIGHT_EYE + RIGHT_BROW + LEFT_EYE + LEFT_BROW, 1.05, 1.3),
    (NOSE, 1.1, 1.4),
    (LIPS_OUTER, 1.2, 1.7),
)


def part_regions(landmarks: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """One face part, or two (30%), as the point sets whose hulls make a part mask. The last choice is the lower
    face (lips and the face oval below the nose), the region a lip-sync model rewrites."""
    pts = landmarks[:, :2]
    parts = [*FACE_PARTS, (lower_face(pts), 0.8, 0.95)]
    count = 2 if rng.random() < 0.3 else 1
    regions = []
    for k in rng.choice(len(parts), size=count, replace=False):
        idx, lo, hi = parts[int(k)]
        c = pts[idx].mean(axis=0)
        regions.append(c + (pts[idx] - c) * rng.uniform(lo, hi))
    return regions


def blend_mask(
    landmarks: np.ndarray,
    shape: tuple[int, int],
    rng: np.random.Generator,
    inner_prob: float = 0.35,
    part_prob: float = 0.0,
) -> np.ndarray:
    """Face-oval hull (or a shrunken inner face, or face parts), elastically deformed, eroded/dilated and
    blurred."""
    h, w = shape
    pts = landmarks[:, :2]
    if _chance(rng, part_prob):
        regions = part_regions(landmarks, rng)
        m = np.maximum.reduce([hull_mask((h, w), r) for r in regions])
        pts = np.concatenate(regions)
    else:
        if rng.random() < inner_prob:
            c = pts[:468].mean(axis=0)
            pts = c + (pts[:468] - c) * rng.uniform(0.7, 0.92)
        else:
            pts = pts[FACE_OVAL]
        m = hull_mask((h, w), pts)
    ext = float(np.ptp(pts[:, 0]) + np.ptp(pts[:, 1])) / 2
    # Elastic deformation: a smooth random displacement field.
    if rng.random() < 0.8:
        amp = ext * rng.uniform(0.02, 0.07)
        sigma = ext * rng.uniform(0.08, 0.2)
        k = _odd(sigma * 3)
        dx = np.asarray(cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (k, k), sigma))
        dy = np.asarray(cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (k, k), sigma))
        dx = dx * (amp / (np.abs(dx).max() + 1e-6))
        dy = dy * (amp / (np.abs(dy).max() + 1e-6))
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        m = cv2.remap(m, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # Random erosion or dilation, then a blur from hard to soft.
    r = rng.random()
    if r < 0.5:
        ks = _odd(ext * rng.uniform(0.02, 0.12))
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ks, ks)))
    elif r < 0.7:
        ks = _odd(ext * rng.uniform(0.02, 0.06))
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ks, ks)))
    if rng.random() < 0.9:
        ks = _odd(ext * rng.uniform(0.03, 0.25))
        m = cv2.GaussianBlur(m, (ks, ks), 0)
        peak = float(m.max())
        if peak > 0:
            m = np.clip(m / peak, 0, 1) if rng.random() < 0.5 else m
    return m


def _colour_change(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32)
    if rng.random() < 0.6:
        out += rng.uniform(-20, 20, size=3).astype(np.float32)
    if rng.random() < 0.6:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
        hsv[..., 1] *= rng.uniform(0.75, 1.25)
        hsv[..., 2] *= rng.uniform(0.8, 1.2)
        out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.random() < 0.5:
        a, b = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
        out = (out - 128) * a + 128 + b
    return np.clip(out, 0, 255).astype(np.uint8)


def _frequency_change(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = rng.random()
    h, w = img.shape[:2]
    if r < 0.45:
        f = 2 if rng.random() < 0.6 else 4
        small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if r < 0.7:
        sigma = rng.uniform(0.8, 2.0)
        return unsharp(img, sigma, rng.uniform(0.5, 1.5))
    return img


def unsharp(img: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp masking: the image pushed away from its Gaussian blur by `amount`."""
    blur = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img.astype(np.float32) * (1 + amount) - blur.astype(np.float32) * amount, 0, 255).astype(np.uint8)


def _shift(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.03, 0.03) * w, rng.uniform(-0.03, 0.03) * h
    m = np.array([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]], np.float32)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def self_blend(
    img: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    inner_prob: float = 0.35,
    part_prob: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(fake, mask): `img` blended with an altered copy of itself; mask is the effective blend weight."""
    source = img.copy()
    if rng.random() < 0.5:
        source = _colour_change(source, rng)
        if rng.random() < 0.5:
            source = _frequency_change(source, rng)
    else:
        source = _frequency_change(source, rng)
        if rng.random() < 0.5 or np.array_equal(source, img):
            source = _colour_change(source, rng)
    if rng.random() < 0.7:
        source = _shift(source, rng)
    shape = (img.shape[0], img.shape[1])
    mask = blend_mask(landmarks, shape, rng, inner_prob, part_prob) * float(rng.choice(OPACITIES))
    m3 = mask[..., None]
    fake = np.clip(m3 * source.astype(np.float32) + (1 - m3) * img.astype(np.float32) + 0.5, 0, 255)
    return fake.astype(np.uint8), mask


def face_crop_matrix(
    landmarks: np.ndarray,
    margin: float,
    size: int,
    jitter: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """2x3 affine that crops the face oval with `margin` on each side into `size` pixels."""
    oval = landmarks[FACE_OVAL, :2]
    c = (oval.min(axis=0) + oval.max(axis=0)) / 2
    extent = float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1])))
    if rng is not None and jitter:
        c = c + rng.uniform(-jitter, jitter, size=2) * extent
    s = size / max(extent * (1 + 2 * margin), 4.0)
    return np.array([[s, 0, size / 2 - s * c[0]], [0, s, size / 2 - s * c[1]]], np.float32)


def jpeg_roundtrip(img: np.ndarray, q: int) -> np.ndarray:
    """An RGB image JPEG-coded at quality `q` and decoded again (unchanged when coding fails)."""
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(q)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else img


def shared_augment(images: list[np.ndarray], rng: np.random.Generator, p: SbiParams) -> list[np.ndarray]:
    """The same colour jitter, resolution loss and JPEG quality applied to every image of a pair."""
    out = [im.astype(np.float32) for im in images]
    if rng.random() < 0.5:
        a, b = rng.uniform(0.8, 1.2), rng.uniform(-15, 15)
        g = rng.uniform(-10, 10, size=3).astype(np.float32)
        out = [(im - 128) * a + 128 + b + g for im in out]
    if rng.random() < 0.3:
        sat = rng.uniform(0.7, 1.3)
        out = [(im - im.mean(axis=2, keepdims=True)) * sat + im.mean(axis=2, keepdims=True) for im in out]
    if _chance(rng, p.light_prob):
        gamma, a = rng.uniform(0.55, 1.7), rng.uniform(0.6, 1.5)
        out = [(255 * (np.clip(im, 0, 255) / 255) ** gamma - 128) * a + 128 for im in out]
    if _chance(rng, p.noise_prob):
        noise = rng.normal(0, rng.uniform(2, 8), size=out[0].shape).astype(np.float32)
        out = [im + noise for im in out]
    if _chance(rng, p.grey_prob):
        grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in out]
        out = [np.asarray(cv2.cvtColor(g, cv2.COLOR_GRAY2RGB), np.float32) for g in grey]
    res: list[np.ndarray] = [np.clip(im, 0, 255).astype(np.uint8) for im in out]
    if _chance(rng, p.sharpen_prob):
        amount = rng.uniform(0.3, 1.2)
        res = [unsharp(im, 1.0, amount) for im in res]
    if _chance(rng, p.blur_prob):
        sigma = rng.uniform(0.5, p.blur_max)
        res = [np.asarray(cv2.GaussianBlur(im, (0, 0), sigma)) for im in res]
    if _chance(rng, p.video_prob):
        from deepshield.detect.training.degrade import video_degrade

        return video_degrade(res, rng, p.video_crf_min, p.video_crf_max, p.video_scale_min)
    size = res[0].shape[0]
    if rng.random() < p.downscale_prob:
        small = max(8, int(size * rng.uniform(p.downscale_min, 0.8)))
        res = [
            np.asarray(
                cv2.resize(
                    cv2.resize(im, (small, small), interpolation=cv2.INTER_AREA),
                    (size, size),
                    interpolation=cv2.INTER_LINEAR,
                )
            )
            for im in res
        ]
    if rng.random() < p.jpeg_prob:
        q = int(rng.integers(p.jpeg_min, p.jpeg_max + 1))
        res = [jpeg_roundtrip(im, q) for im in res]
    return res


def occlude(
    images: list[np.ndarray], mask: np.ndarray, oval: np.ndarray, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """Paste one occluder over every image of a pair, centred on a random point of the face oval `oval`
    (N x 2, crop pixels). The patch is the first image shifted by a random offset and tinted, so it carries the
    photo's own texture and colours rather than a synthetic fill that would be a cue of its own."""
    h, w = mask.shape
    centre = oval[int(rng.integers(len(oval)))]
    ext = float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1])))
    shape = np.zeros((h, w), np.float32)
    if rng.random() < 0.5:  # a rotated ellipse: a head, a hand, a microphone
        axes = (int(ext * rng.uniform(0.12, 0.35)), int(ext * rng.uniform(0.06, 0.25)))
        cv2.ellipse(shape, (int(centre[0]), int(centre[1])), axes, float(rng.uniform(0, 180)), 0, 360, (1.0,), -1)
    else:  # a band through the point: a scarf edge, a visor, a collar
        angle = rng.uniform(0, np.pi)
        along = np.array([np.cos(angle), np.sin(angle)])
        d = along * ext
        n = np.array([-along[1], along[0]]) * ext * rng.uniform(0.05, 0.2)
        quad = np.array([centre - d - n, centre + d - n, centre + d + n, centre - d + n])
        cv2.fillConvexPoly(shape, np.round(quad).astype(np.int32), (1.0,))
    if rng.random() < 0.5:
        shape = np.asarray(cv2.GaussianBlur(shape, (0, 0), rng.uniform(0.5, 2.0)))
    if rng.random() < 0.25:
        shape *= rng.uniform(0.3, 0.7)  # see-through
    dx, dy = (int(v) for v in rng.integers(-w // 2, w // 2 + 1, size=2))
    src = images[0].astype(np.float32)
    patch = np.roll(src, (dy, dx), axis=(0, 1)) * rng.uniform(0.6, 1.3, size=3).astype(np.float32)
    a = shape[..., None]
    out = [np.clip(a * patch + (1 - a) * im.astype(np.float32) + 0.5, 0, 255).astype(np.uint8) for im in images]
    return out, (mask * (1 - shape)).astype(np.float32)


def make_pair(
    img: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    p: SbiParams,
    donor: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real, fake, mask) at `p.input_size`, ready for the network after `to_input`. With a `donor` (image,
    landmarks of another identity) the fake is a cross-identity blend, else a self-blend."""
    lm = landmarks
    if rng.random() < 0.5:  # horizontal flip (mesh indices stay valid for hulls: the oval is symmetric)
        img = img[:, ::-1].copy()
        lm = lm.copy()
        lm[:, 0] = img.shape[1] - 1 - lm[:, 0]
    blended = None
    if donor is not None:
        from deepshield.detect.training.xblend import cross_blend

        blended = cross_blend(
            img, lm, donor[0], donor[1], rng, p.inner_mask_prob, p.cross_soft_prob, p.cross_soft_min, p.part_mask_prob
        )
    fake, mask = blended if blended is not None else self_blend(img, lm, rng, p.inner_mask_prob, p.part_mask_prob)
    margin = rng.uniform(p.margin_min, p.margin_max)
    m = face_crop_matrix(lm, margin, p.input_size, jitter=0.03, rng=rng)
    size = (p.input_size, p.input_size)
    real_c = cv2.warpAffine(img, m, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101)
    fake_c = cv2.warpAffine(fake, m, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101)
    mask_c = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR)
    if _chance(rng, p.occlude_prob):
        (real_c, fake_c), mask_c = occlude([real_c, fake_c], mask_c, apply_affine(m, lm[FACE_OVAL]), rng)
    real_c, fake_c = shared_augment([real_c, fake_c], rng, p)
    return real_c, fake_c, mask_c


def to_input(crops: np.ndarray) -> np.ndarray:
    """N x H x W x 3 uint8 RGB -> N x 3 x H x W float32, normalised."""
    x = crops.astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
