"""Self-blending: the fake differs from the real face only inside the blend mask."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deepshield.detect.training.facecache import CachedFaces
from deepshield.detect.training.samples import write_sample_grid
from deepshield.detect.training.sbi import SbiParams, blend_mask, make_pair, self_blend, to_input
from deepshield.faces.landmarks import FACE_OVAL


def test_cache_holds_aligned_crops_with_landmarks_in_crop_space(train_faces: CachedFaces) -> None:
    n, s = len(train_faces), train_faces.images.shape[1]
    assert train_faces.images.shape == (n, s, s, 3) and train_faces.landmarks.shape == (n, 478, 2)
    oval = train_faces.landmarks[:, FACE_OVAL]
    # The face oval sits inside the crop, roughly centred (alignment with a generous margin).
    assert (oval > 0).all() and (oval < s).all()
    centre = (oval.min(axis=1) + oval.max(axis=1)) / 2
    assert np.abs(centre - s / 2).max() < s * 0.1


def test_self_blend_changes_only_the_masked_face(train_faces: CachedFaces, rng: np.random.Generator) -> None:
    img, lm = train_faces.images[0], train_faces.landmarks[0]
    for _ in range(5):
        fake, mask = self_blend(img, lm, rng)
        diff = np.abs(fake.astype(int) - img.astype(int)).max(axis=2)
        assert (diff[mask <= 1e-6] <= 1).all(), "pixels outside the mask must stay untouched"
        assert diff[mask > 0.2].mean() > 0.5, "the face must actually change"
        # The mask covers the face, not the background corners.
        assert mask[:10, :10].max() == 0 and mask[int(lm[FACE_OVAL, 1].mean()), :].max() > 0


def test_mask_follows_the_face_oval(train_faces: CachedFaces, rng: np.random.Generator) -> None:
    lm = train_faces.landmarks[0]
    s = train_faces.images.shape[1]
    hull = np.zeros((s, s), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm[FACE_OVAL]).astype(np.int32)), (1,))
    m = blend_mask(lm, (s, s), rng, inner_prob=0.0)
    inside = m[hull == 1].mean()
    outside = m[hull == 0].mean()
    assert inside > 0.4 and outside < 0.1


def test_pairs_are_input_sized_and_deterministic(train_faces: CachedFaces) -> None:
    p = SbiParams(input_size=96)
    a = make_pair(train_faces.images[1], train_faces.landmarks[1], np.random.default_rng(3), p)
    b = make_pair(train_faces.images[1], train_faces.landmarks[1], np.random.default_rng(3), p)
    assert a[0].shape == (96, 96, 3) and a[1].shape == (96, 96, 3) and a[2].shape == (96, 96)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], a[1])
    x = to_input(np.stack([a[0], a[1]]))
    assert x.shape == (2, 3, 96, 96) and x.dtype == np.float32 and abs(float(x.mean())) < 3


def test_sample_grid_png(train_faces: CachedFaces, tmp_path: Path) -> None:
    out = write_sample_grid(train_faces, SbiParams(input_size=64), tmp_path / "grid.png", n=3, seed=1)
    img = cv2.imread(str(out))
    assert img.shape[1] == 4 * 64 and img.shape[0] == 24 + 3 * 64


def test_cross_blend_puts_another_face_inside_the_mask(train_faces: CachedFaces, rng: np.random.Generator) -> None:
    from deepshield.detect.training.xblend import cross_blend

    img, lm = train_faces.images[0], train_faces.landmarks[0]
    donor, dlm = train_faces.images[1], train_faces.landmarks[1]
    for _ in range(6):
        got = cross_blend(img, lm, donor, dlm, rng)
        assert got is not None
        fake, mask = got
        diff = np.abs(fake.astype(int) - img.astype(int)).max(axis=2)
        s = img.shape[0]
        hull = np.zeros((s, s), np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm[FACE_OVAL]).astype(np.int32)), (1,))
        grown = cv2.dilate(hull, np.ones((25, 25), np.uint8))
        # Poisson cloning may shift colours slightly up to the mask's edge; nothing changes far outside the face.
        assert (diff[grown == 0] <= 1).all()
        assert diff[mask > 0.5].mean() > 4, "the face must be replaced, not just retouched"


def test_training_pairs_mix_self_and_cross_blends_deterministically(train_faces: CachedFaces) -> None:
    from deepshield.detect.training.pairs import TrainingPairs

    p = SbiParams(input_size=64, cross_prob=1.0)
    a, b = TrainingPairs(train_faces, p, seed=2), TrainingPairs(train_faces, p, seed=2)
    for i in range(len(train_faces)):
        j = a.donor_for(i, np.random.default_rng(i))
        assert j is None or train_faces.groups[j] != train_faces.groups[i]
        x, y = a.pair(i), b.pair(i)
        assert all(np.array_equal(u, v) for u, v in zip(x, y, strict=True))
        assert x[1].shape == (64, 64, 3) and not np.array_equal(x[0], x[1])


def _fine_detail(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel fine detail: the absolute Laplacian of the grey image (blur and resolution loss lower it)."""
    return np.abs(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F))


def test_harsh_photometric_augmentation_is_shared_by_both_halves(train_faces: CachedFaces) -> None:
    """Gamma, greyscale, noise and sharpening hit real and fake alike: outside the mask they stay equal."""
    from deepshield.detect.training.sbi import shared_augment

    img, lm = train_faces.images[0], train_faces.landmarks[0]
    fake, mask = self_blend(img, lm, np.random.default_rng(5))
    every = SbiParams(
        jpeg_prob=0.0, downscale_prob=0.0, light_prob=1.0, grey_prob=1.0, noise_prob=1.0, sharpen_prob=1.0
    )
    real_a, fake_a = shared_augment([img, fake], np.random.default_rng(9), every)
    assert real_a.shape == img.shape and real_a.dtype == np.uint8
    # Greyscale: the three channels agree (up to the uint8 rounding of sharpening, which is per channel alike).
    assert np.abs(real_a.astype(int) - real_a[..., :1].astype(int)).max() <= 1
    assert np.abs(real_a.astype(int) - img.astype(int)).mean() > 2, "the augmentation must change the image"
    # Sharpening spreads a pixel's change one blur radius out; beyond that, the halves are identical.
    far = cv2.dilate((mask > 1e-6).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert far.any() and (real_a[far] == fake_a[far]).all()


def test_defocus_and_deep_resolution_loss_are_shared_and_remove_detail(train_faces: CachedFaces) -> None:
    """Blur and a downscale to 20% hit both halves alike (no cue on their own) and do remove fine detail."""
    from deepshield.detect.training.sbi import shared_augment

    img, lm = train_faces.images[0], train_faces.landmarks[0]
    fake, mask = self_blend(img, lm, np.random.default_rng(5))

    def detail(im: np.ndarray) -> float:
        return float(_fine_detail(im).mean())

    blur = SbiParams(jpeg_prob=0.0, downscale_prob=0.0, blur_prob=1.0, blur_max=2.5)
    real_b, fake_b = shared_augment([img, fake], np.random.default_rng(3), blur)
    far = cv2.dilate((mask > 1e-6).astype(np.uint8), np.ones((17, 17), np.uint8)) == 0
    assert far.any() and (real_b[far] == fake_b[far]).all()
    assert detail(real_b) < 0.8 * detail(img)
    deep = SbiParams(jpeg_prob=0.0, downscale_prob=1.0, downscale_min=0.2)
    shallow = SbiParams(jpeg_prob=0.0, downscale_prob=1.0, downscale_min=0.79)
    deep_detail = np.mean([detail(shared_augment([img], np.random.default_rng(s), deep)[0]) for s in range(6)])
    shallow_detail = np.mean([detail(shared_augment([img], np.random.default_rng(s), shallow)[0]) for s in range(6)])
    assert deep_detail < shallow_detail


def test_a_softened_donor_leaves_a_blurrier_face_than_a_sharp_one(train_faces: CachedFaces) -> None:
    """`soft_prob` = 1 with a low `soft_min` pastes a visibly lower-resolution face (less fine detail inside)."""
    from deepshield.detect.training.xblend import cross_blend

    img, lm = train_faces.images[0], train_faces.landmarks[0]
    donor, dlm = train_faces.images[1], train_faces.landmarks[1]

    def detail(soft_prob: float, seed: int) -> float:
        got = cross_blend(img, lm, donor, dlm, np.random.default_rng(seed), 0.0, soft_prob, 0.15)
        assert got is not None
        fake, mask = got
        inside = cv2.erode((mask > 0.5).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert inside.sum() > 500
        return float(_fine_detail(fake)[inside].mean())

    soft = np.mean([detail(1.0, seed) for seed in range(4)])
    sharp = np.mean([detail(0.0, seed) for seed in range(4)])
    assert soft < 0.8 * sharp


def test_an_occluder_is_shared_by_both_halves_crosses_the_face_edge_and_clears_the_mask(
    train_faces: CachedFaces,
) -> None:
    from deepshield.detect.training.sbi import face_crop_matrix, occlude
    from deepshield.faces.align import apply_affine

    img, lm = train_faces.images[0], train_faces.landmarks[0]
    fake, mask = self_blend(img, lm, np.random.default_rng(5))
    m = face_crop_matrix(lm, 0.25, 160)
    size = (160, 160)
    real_c = cv2.warpAffine(img, m, size, flags=cv2.INTER_AREA)
    fake_c = cv2.warpAffine(fake, m, size, flags=cv2.INTER_AREA)
    mask_c = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR)
    oval = apply_affine(m, lm[FACE_OVAL])
    face = cv2.fillConvexPoly(np.zeros((160, 160), np.uint8), cv2.convexHull(np.round(oval).astype(np.int32)), (1,))
    crossings = 0
    for seed in range(8):
        (real_o, fake_o), mask_o = occlude([real_c, fake_c], mask_c, oval, np.random.default_rng(seed))
        covered = (real_o != real_c).any(axis=2)
        assert covered.any(), "the occluder must change the image"
        # The same pixels are pasted over both halves: where the occluder is opaque, the halves agree.
        opaque = covered & (mask_o < 1e-6) & (mask_c > 0.05)
        assert (np.abs(real_o[opaque].astype(int) - fake_o[opaque].astype(int)) <= 1).all()
        assert (mask_o <= mask_c + 1e-6).all() and mask_o[covered].sum() < mask_c[covered].sum() + 1e-6
        crossings += bool(covered[face == 1].any() and covered[face == 0].any())
    assert crossings == 8, "each occluder sits across the face outline"
    # Off (the default), a config's data stream is untouched; on, pairs differ from it.
    plain = make_pair(img, lm, np.random.default_rng(1), SbiParams())
    again = make_pair(img, lm, np.random.default_rng(1), SbiParams(occlude_prob=0.0))
    assert all(np.array_equal(a, b) for a, b in zip(plain, again, strict=True))
    hidden = make_pair(img, lm, np.random.default_rng(1), SbiParams(occlude_prob=1.0))
    assert not np.array_equal(plain[0], hidden[0])


def test_part_masks_cover_a_face_part_and_leave_the_rest_of_the_face(train_faces: CachedFaces) -> None:
    from deepshield.detect.training.sbi import FACE_PARTS
    from deepshield.detect.training.xblend import cross_blend

    img, lm = train_faces.images[0], train_faces.landmarks[0]
    s = img.shape[0]
    face = cv2.fillConvexPoly(
        np.zeros((s, s), np.uint8), cv2.convexHull(np.round(lm[FACE_OVAL]).astype(np.int32)), (1,)
    )
    parts = np.zeros((s, s), np.uint8)
    lower = [i for i in FACE_OVAL if lm[i, 1] > lm[1, 1]]
    for idx in [p[0] for p in FACE_PARTS] + [lower]:
        pts = lm[idx]
        grown = pts.mean(axis=0) + (pts - pts.mean(axis=0)) * 1.8
        cv2.fillConvexPoly(parts, cv2.convexHull(np.round(grown).astype(np.int32)), (1,))
    whole = blend_mask(lm, (s, s), np.random.default_rng(0), inner_prob=0.0)
    for seed in range(12):
        m = blend_mask(lm, (s, s), np.random.default_rng(seed), inner_prob=0.0, part_prob=1.0)
        assert m.max() > 0.2, "a part mask must blend something"
        assert m.sum() < 0.6 * whole.sum(), "a part is smaller than the whole face"
        # Blurred edges may spill a little; the weight sits on the parts, inside the face.
        assert m[parts == 1].sum() > 0.9 * m.sum() and m[face == 1].sum() > 0.9 * m.sum()
    # Cross-identity blends take the same masks: the donor shows only inside the part's neighbourhood.
    got = cross_blend(img, lm, train_faces.images[1], train_faces.landmarks[1], np.random.default_rng(2), part_prob=1.0)
    assert got is not None
    fake, mask = got
    changed = np.abs(fake.astype(int) - img.astype(int)).max(axis=2) > 1
    assert changed.any() and (mask > 0).sum() < 0.6 * (whole > 0).sum()
    # Off (the default), a config's data stream is untouched; on, pairs differ from it.
    plain = make_pair(img, lm, np.random.default_rng(1), SbiParams())
    again = make_pair(img, lm, np.random.default_rng(1), SbiParams(part_mask_prob=0.0))
    assert all(np.array_equal(a, b) for a, b in zip(plain, again, strict=True))
    partly = make_pair(img, lm, np.random.default_rng(1), SbiParams(part_mask_prob=1.0))
    assert not np.array_equal(plain[2], partly[2])
