"""Deepshield's own invisible image watermark: a tiled spread-spectrum pattern with a sync template.

Why this design (the anchors break on crop and scale because their block grid moves):
- The image is first brought to a *working scale* whose shorter side is 512 px, at embedding and at
  detection, so any uniform rescale (0.5x, screenshot scaling) is undone before detection starts.
- One 128x128 tile, repeated over the whole image, carries a known pseudo-random sync pattern plus the
  payload. A crop anywhere just shifts the tiling: folding the image modulo the tile and correlating the
  fold with the sync pattern by FFT finds the shift. A crop also changes the working scale a little; the
  residual's autocorrelation has peaks at the tile period, which gives the scale, refined by a small search.
- The tile is built from 32x32 random cells smoothed by a Gaussian, so its energy sits at mid frequencies
  that survive JPEG q50 and a 0.5x resize; detection whitens the image by a high-pass and a local-contrast
  normalisation, which also makes brightness/contrast changes irrelevant.
- Flips, right-angle turns and small turns: the autocorrelation's lattice peaks sit at P*s*R(t)*(m, k),
  so one grid search over (scale s, angle t within +-5 degrees) gives both; the residual is turned back
  before folding, and the fold is correlated with the sync template in all 8 flip/turn orientations.
  Fixed guesses (no change, a 10% crop, turns on a half-degree grid) join the lattice's picks, since the
  sync correlation is a matched filter and finds weak marks the blind autocorrelation misses. The
  (s, t, orientation) hypotheses are ranked by sync z-score and the best few refined by it.
- Payload: 64 bits + CRC-32, K=7 rate-1/3 convolutional code (306 coded bits), soft Viterbi decoding.
  However many hypotheses are searched, only the top 3 by sync score are decoded, each from plain and
  from magnitude-clipped soft values: at most 6 CRC-32 checks per image, so the designed false-positive
  rate stays 6 * 2**-32 (about 1.4e-9) per image (a decoded word of an unmarked image is random, and
  each check passes with probability 2**-32).
- Small images (shorter side < 384 px) carry a coarser variant (256 px working side, 35 dB) so a halved
  250 px face keeps 2 px cells; on images under 576 px the detector searches both variants and decodes
  only the top 3 hypotheses of the two searches together, so the CRC-check count above holds. The variant
  whitens with a finer high-pass (what survives a halving and JPEG q50 is the finest detail) and keeps
  its pattern off pixels with no headroom (black bars, blown highlights), where clipping would erase it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from deepshield.errors import DeepshieldError
from deepshield.labels import ecc
from deepshield.labels.watermark_grid import bilinear_many, dihedral, undihedral

PAYLOAD_BITS = 64
TILE = 128
CELLS = 32
CELL = TILE // CELLS
WORK_SIDE = 512
MAX_HYPOTHESES = 3  # geometric hypotheses decoded (the top ones by sync score, however many are searched)
N_LATTICE = 4  # (scale, angle) picks from the autocorrelation's lattice peaks
N_REFINED = 3  # of all first-pass hypotheses (picks plus fixed guesses), how many the sync search refines
# Working-scale ratios searched: below 1 the content got smaller than its shorter side implies (letterboxed
# or padded, e.g. a 16:9 photo in a square frame is 0.5625), above 1 a crop took part of the shorter side.
MIN_SCALE, MAX_SCALE = 0.5, 1.5
MAX_ANGLE = 5.0  # degrees of turn the lattice search covers beyond the 8 orientations (the lattice is square)
# Fixed turn guesses without rescale, for weak marks whose lattice peaks are lost: +-0.25 ... +-3.75 degrees.
TURN_GRID = tuple(sgn * (0.25 + 0.5 * i) for i in range(8) for sgn in (-1.0, 1.0))
_LATTICE = [(1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2), (2, 1), (1, 2), (2, -1), (1, -2), (3, 0), (0, 3)]
_ALL = tuple(range(8))
DECODES_PER_HYPOTHESIS = 2  # plain soft values, then magnitude-clipped ones (robust to heavy-tailed noise)
DESIGNED_FPR = MAX_HYPOTHESES * DECODES_PER_HYPOTHESIS * 2.0**-32
DEFAULT_KEY = "deepshield-watermark-v1"
DEFAULT_PSNR = 41.0
# Small images (shorter side under SMALL_SIDE) get a coarser variant: working side 256 instead of 512, so a
# 250 px face keeps 4 px cells (2 px once halved, not 1); sharper cells, no masking and more energy, since
# the few tile copies average less of the host away. The detector also tries it on images under
# SMALL_DETECT_SIDE (a small image shown up to 1.5x); both variants' hypotheses share the top-3 decodes.
SMALL_SIDE = 384
SMALL_DETECT_SIDE = 576
SMALL_WORK_SIDE = 256
SMALL_CELL_SIGMA = 1.2
SMALL_PSNR = 35.0
# The small variant whitens with a finer high-pass and local-contrast window (working px; 3 and 8 at 512):
# its working pixel is twice as coarse, and a halved, JPEG'd face keeps most of the mark in the finest detail.
SMALL_WHITEN = (2.0, 3.0)
HEADROOM_RMS = 2.0  # pixels with less headroom to 0 or 255 than this many pattern RMS get a faded pattern


class WatermarkError(DeepshieldError):
    code = "watermark_error"
    http_status = 422


@dataclass
class WatermarkDetection:
    detected: bool
    payload: int | None
    confidence: float  # fraction of raw coded bits agreeing with the decoded code word (0.5 = chance)
    sync_score: float  # peak-to-noise of the sync correlation (z-score)
    scale: float  # working-scale ratio found (1.0 = no crop)
    shift: tuple[int, int]
    angle: float = 0.0  # degrees of turn undone beyond the orientation
    orientation: int = 0  # which of the 8 flips/right-angle turns was undone (0 = as embedded)
    designed_false_positive_rate: float = DESIGNED_FPR
    seconds: float = 0.0
    # Best-effort payload of the strongest hypothesis even when its CRC fails: for bit-accuracy
    # measurements only, never to be reported as a detection.
    best_guess: int | None = None

    @property
    def payload_hex(self) -> str | None:
        return None if self.payload is None else f"{self.payload:016x}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["payload_hex"] = self.payload_hex
        d["payload"] = self.payload_hex
        return d


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.float32)


def _working_size(h: int, w: int, side: int = WORK_SIDE) -> tuple[int, int]:
    s = side / min(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _resize(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    h, w = hw
    interp = cv2.INTER_AREA if h < a.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(a, (w, h), interpolation=interp)


class TileWatermark:
    """Embeds and detects a 64-bit payload. The key selects the patterns; same key to embed and detect."""

    def __init__(
        self,
        key: str = DEFAULT_KEY,
        psnr_db: float = DEFAULT_PSNR,
        sync_weight: float = 0.6,
        mask_exponent: float = 0.3,
        max_boost: float = 2.0,
        work_side: int = WORK_SIDE,
        cell_sigma: float = 1.6,
        small_psnr_db: float | None = SMALL_PSNR,
        whiten_sigmas: tuple[float, float] = (3.0, 8.0),
        headroom_mask: bool = False,
    ) -> None:
        self.key = key
        self.psnr_db = psnr_db
        self.sync_weight = sync_weight
        self.mask_exponent = mask_exponent
        self.max_boost = max_boost
        self.work_side = work_side
        self.whiten_sigmas = whiten_sigmas
        self.headroom_mask = headroom_mask
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
        rng = np.random.default_rng(seed)
        self.salt = hashlib.sha256(b"crc:" + key.encode()).digest()[:8]
        self.n_coded = ecc.coded_length(PAYLOAD_BITS + ecc.CRC_BITS)
        self.sync_cells = rng.choice([-1.0, 1.0], size=(CELLS, CELLS))
        self.chips = rng.choice([-1.0, 1.0], size=CELLS * CELLS)
        self.assign = rng.permutation(CELLS * CELLS) % self.n_coded
        y, x = np.mgrid[0:TILE, 0:TILE]
        dy = np.minimum(y, TILE - y)
        dx = np.minimum(x, TILE - x)
        self.kernel = np.exp(-(dy.astype(float) ** 2 + dx**2) / (2 * cell_sigma**2))
        self.kernel_f = np.fft.fft2(self.kernel)
        self.sync_tile = self._render(self.sync_cells)
        st = self.sync_tile - self.sync_tile.mean()
        st = st / np.linalg.norm(st)
        # The sync template in each of the 8 orientations a flip or right-angle turn can leave the fold in.
        self.sync_f_conj = np.stack([np.conj(np.fft.fft2(dihedral(st, k))) for k in range(8)])
        self._cache_key: tuple[int, int, int] | None = None
        self._cache_pattern: np.ndarray | None = None
        # The small-image variant (None: this is one, or small images get the standard pattern).
        self.small: TileWatermark | None = None
        if small_psnr_db is not None:
            self.small = TileWatermark(
                key,
                small_psnr_db,
                sync_weight,
                0.0,
                max_boost,
                SMALL_WORK_SIDE,
                SMALL_CELL_SIGMA,
                None,
                SMALL_WHITEN,
                headroom_mask=True,
            )

    # -- patterns -------------------------------------------------------------------------------------
    def _render(self, cells: np.ndarray) -> np.ndarray:
        imp = np.zeros((TILE, TILE))
        imp[CELL // 2 :: CELL, CELL // 2 :: CELL] = cells
        return np.real(np.fft.ifft2(np.fft.fft2(imp) * self.kernel_f))

    def _cells_of(self, tile: np.ndarray) -> np.ndarray:
        """Matched filter of a tile against the cell kernel, sampled at the cell centres."""
        filt = np.real(np.fft.ifft2(np.fft.fft2(tile) * np.conj(self.kernel_f)))
        return filt[CELL // 2 :: CELL, CELL // 2 :: CELL]

    def tile_for(self, payload: int, amplitudes: np.ndarray | None = None) -> np.ndarray:
        """The 128x128 tile: sync pattern plus the coded payload, each coded bit at its own amplitude."""
        if not 0 <= payload < 2**PAYLOAD_BITS:
            raise WatermarkError(f"watermark payload must be an unsigned {PAYLOAD_BITS}-bit integer")
        code = ecc.encode_payload(payload, PAYLOAD_BITS, self.salt)
        amp = np.ones(self.n_coded) if amplitudes is None else amplitudes
        msg = (self.chips * (1.0 - 2.0 * code[self.assign].astype(float)) * amp[self.assign]).reshape(CELLS, CELLS)
        return self._render(self.sync_weight * self.sync_cells + msg)

    # -- embed ----------------------------------------------------------------------------------------
    def _full_pattern(self, h: int, w: int, tile: np.ndarray) -> np.ndarray:
        hw, ww = _working_size(h, w, self.work_side)
        reps = (hw // TILE + 1, ww // TILE + 1)
        pattern = np.tile(tile, reps)[:hw, :ww].astype(np.float32)
        interp = cv2.INTER_LINEAR if hw < h else cv2.INTER_AREA
        return cv2.resize(pattern, (w, h), interpolation=interp)

    def _pattern(self, h: int, w: int, payload: int) -> np.ndarray:
        """The uninformed full-size pattern; cached per (size, payload) since every video frame reuses it."""
        key = (h, w, payload)
        if self._cache_key != key:
            self._cache_pattern = self._full_pattern(h, w, self.tile_for(payload))
            self._cache_key = key
        assert self._cache_pattern is not None
        return self._cache_pattern

    def _apply(self, rgb: np.ndarray, pattern: np.ndarray) -> np.ndarray:
        y = _luma(rgb)
        delta = pattern
        if self.headroom_mask:
            # Black bars and blown highlights clip the pattern away (and the detector ignores them): the
            # same energy goes where it survives, fading in over HEADROOM_RMS pattern RMS of headroom.
            f = rgb.astype(np.float32)
            head = np.minimum(f, 255.0 - f).min(axis=2)
            room = np.clip(head / (HEADROOM_RMS * 255.0 / 10 ** (self.psnr_db / 20.0)), 0.0, 1.0)
            delta = pattern * cv2.GaussianBlur(room, (0, 0), 1.0)
        if self.mask_exponent:
            # Perceptual masking: more energy in textured areas, less on flat ones (sky, skin).
            hp = y - cv2.GaussianBlur(y, (0, 0), 2.0)
            act = np.sqrt(cv2.GaussianBlur(hp * hp, (0, 0), 4.0))
            delta = pattern * np.clip(act / (np.median(act) + 1e-3), 0.5, 2.0) ** self.mask_exponent
        target_rms = 255.0 / 10 ** (self.psnr_db / 20.0)
        delta = delta * (target_rms / (float(np.sqrt(np.mean(delta * delta))) + 1e-9))
        return np.clip(np.rint(rgb.astype(np.float32) + delta[..., None]), 0, 255).astype(np.uint8)

    def _bit_soft(self, rgb: np.ndarray, shift: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
        """Unnormalised per-coded-bit correlations at the embedding's own geometry (scale 1)."""
        fold = self._fold(self._residual(rgb))
        _z, _k, sh = self._correlate(fold, (0,))
        sh = shift or sh
        aligned = np.roll(fold, (-sh[0], -sh[1]), axis=(0, 1))
        cells = self._cells_of(aligned).ravel()
        sync = self.sync_cells.ravel()
        cells = cells - sync * (cells @ sync) / (sync @ sync)
        return np.bincount(self.assign, weights=cells * self.chips, minlength=self.n_coded), sh

    def embed(self, rgb: np.ndarray, payload: int, informed: bool = True) -> np.ndarray:
        """RGB uint8 -> watermarked RGB uint8 (same size), PSNR about `psnr_db`.

        Informed embedding: the image itself interferes with some coded bits (its texture happens to
        correlate with their carriers). A first pass measures, per coded bit, the host's correlation and
        the pattern's own response; the second pass gives bits the host works against more amplitude and
        bits it already helps less, so every bit reaches a similar margin for the same PSNR.
        `informed=False` (video frames) skips the measuring pass.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise WatermarkError("watermark needs an H x W x 3 uint8 RGB image")
        h, w = rgb.shape[:2]
        if min(h, w) < 32:
            raise WatermarkError("image too small to carry a watermark (shorter side < 32 px)")
        if self.small is not None and min(h, w) < SMALL_SIDE:
            return self.small.embed(rgb, payload, informed)
        first = self._apply(rgb, self._pattern(h, w, payload))
        if not informed:
            return first
        sign = 1.0 - 2.0 * ecc.encode_payload(payload, PAYLOAD_BITS, self.salt).astype(float)
        soft1, sh = self._bit_soft(first)
        host, _ = self._bit_soft(rgb, sh)
        gain = (soft1 - host) * sign
        gain = np.maximum(gain, 0.1 * max(float(np.median(gain)), 1e-9))
        helped = host * sign
        margin = float(np.median(helped + gain))
        amp = np.clip((margin - helped) / gain, 0.25, self.max_boost)
        return self._apply(rgb, self._full_pattern(h, w, self.tile_for(payload, amp)))

    # -- detect ---------------------------------------------------------------------------------------
    def _residual(self, rgb: np.ndarray) -> np.ndarray:
        y = _luma(rgb)
        y = _resize(y, _working_size(y.shape[0], y.shape[1], self.work_side))
        hp_sigma, local_sigma = self.whiten_sigmas
        hp = y - cv2.GaussianBlur(y, (0, 0), hp_sigma)
        local = np.sqrt(cv2.GaussianBlur(hp * hp, (0, 0), local_sigma))
        r = hp / (local + 1.0)
        # Clipped pixels (over-brightened highlights, crushed shadows) carry no pattern, only edge artefacts.
        sat = ((y >= 254.0) | (y <= 1.0)).astype(np.uint8)
        if sat.any():
            r[cv2.dilate(sat, np.ones((5, 5), np.uint8)) > 0] = 0.0
        return r.astype(np.float32)

    @staticmethod
    def _fold(r: np.ndarray) -> np.ndarray:
        """Mean of the residual over all positions congruent modulo the tile (a crop only shifts it)."""
        h, w = r.shape
        rp = np.zeros((-(-h // TILE) * TILE, -(-w // TILE) * TILE), np.float32)
        rp[:h, :w] = r
        s = rp.reshape(rp.shape[0] // TILE, TILE, rp.shape[1] // TILE, TILE).sum(axis=(0, 2))
        cy = np.bincount(np.arange(h) % TILE, minlength=TILE)
        cx = np.bincount(np.arange(w) % TILE, minlength=TILE)
        return s / np.maximum(np.outer(cy, cx), 1.0)

    def _lattice_candidates(self, r: np.ndarray, n: int) -> list[tuple[float, float]]:
        """(scale, angle) of the tile lattice from the residual's autocorrelation, strongest first.

        The repeated tile puts autocorrelation peaks at P*s*R(t)*(m, k) for integer (m, k): scoring a grid
        of (s, t) by the autocorrelation summed over those points finds a crop's rescale and a small turn
        together (the lattice is square, so t is only known modulo 90 degrees: the orientation search in
        the sync step settles the rest). A coarse grid, then a finer one around each pick.
        """
        h, w = r.shape
        f = np.fft.rfft2(r, s=(2 * h, 2 * w))
        acf = np.fft.irfft2(f * np.conj(f), s=(2 * h, 2 * w)).astype(np.float32)
        acf /= acf[0, 0] + 1e-9
        # Peak prominence, not height: the host's own autocorrelation falls slowly with the lag, which would
        # favour short periods (small s); the mark's lattice peaks are a few pixels wide.
        acf = acf - cv2.GaussianBlur(acf, (0, 0), 4.0)
        mk = np.array(_LATTICE, dtype=np.float64)

        def score(sc: np.ndarray, th: np.ndarray) -> np.ndarray:
            c, sn = np.cos(np.radians(th))[..., None], np.sin(np.radians(th))[..., None]
            ps = TILE * sc[..., None]
            x = ps * (mk[:, 1] * c - mk[:, 0] * sn)
            y = ps * (mk[:, 1] * sn + mk[:, 0] * c)
            inside = (np.abs(y) < h - 8) & (np.abs(x) < w - 8)
            return np.where(inside, bilinear_many(acf, y, x), 0.0).sum(axis=-1)

        sg, tg = np.meshgrid(np.arange(MIN_SCALE, MAX_SCALE, 0.002), np.arange(-MAX_ANGLE, MAX_ANGLE + 1e-9, 0.25))
        coarse = score(sg, tg)
        picked: list[tuple[float, float]] = []
        for i in np.argsort(-coarse, axis=None):
            s0, t0 = float(sg.flat[i]), float(tg.flat[i])
            # Distinct picks only, and no subharmonic of one already picked (at s/2 or 2s/3 every second or
            # third lattice point lands on the true peaks, so it scores well but is the same lattice).
            if all(
                (abs(s0 - ps) > 0.02 and min(abs(ps / s0 - 2.0), abs(ps / s0 - 1.5)) > 0.05) or abs(t0 - pt) > 1.0
                for ps, pt in picked
            ):
                picked.append((s0, t0))
            if len(picked) >= n:
                break
        refined = []
        ds, dt = np.meshgrid(np.arange(-0.002, 0.00201, 0.0005), np.arange(-0.15, 0.151, 0.025))
        for s0, t0 in picked:
            fine = score(s0 + ds, t0 + dt)
            j = int(np.argmax(fine))
            refined.append((s0 + float(ds.flat[j]), t0 + float(dt.flat[j])))
        return refined

    def _canon(self, r: np.ndarray, s: float, angle: float) -> np.ndarray:
        """The residual turned back by `angle` degrees and rescaled by 1/s, folded modulo the tile."""
        h, w = r.shape
        oh, ow = max(TILE, round(h / s)), max(TILE, round(w / s))
        if angle == 0.0:
            canon = cv2.resize(r, (ow, oh), interpolation=cv2.INTER_LINEAR)
        else:
            m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0 / s)
            m[0, 2] += ow / 2.0 - w / 2.0
            m[1, 2] += oh / 2.0 - h / 2.0
            canon = cv2.warpAffine(r, m, (ow, oh), flags=cv2.INTER_LINEAR, borderValue=(0.0,))
        return self._fold(canon)

    def _correlate(self, fold: np.ndarray, orients: tuple[int, ...] = _ALL) -> tuple[float, int, tuple[int, int]]:
        """Best (z-score, orientation, shift) of the fold against the sync template's orientations."""
        ff = np.fft.fft2(fold)
        corr = np.real(np.fft.ifft2(ff[None] * self.sync_f_conj[list(orients)]))
        flat = corr.reshape(len(orients), -1)
        idx = np.argmax(flat, axis=1)
        z = (flat[np.arange(len(orients)), idx] - flat.mean(axis=1)) / (flat.std(axis=1) + 1e-12)
        j = int(np.argmax(z))
        return float(z[j]), orients[j], divmod(int(idx[j]), TILE)

    def _decode(self, fold: np.ndarray, shift: tuple[int, int]) -> tuple[int, bool, float]:
        aligned = np.roll(fold, (-shift[0], -shift[1]), axis=(0, 1))
        cells = self._cells_of(aligned).ravel()
        sync = self.sync_cells.ravel()
        cells = cells - sync * (cells @ sync) / (sync @ sync)
        contrib = cells * self.chips
        soft = np.bincount(self.assign, weights=contrib, minlength=self.n_coded).astype(np.float64)
        soft = soft / (float(np.std(soft)) + 1e-12)
        payload, ok = ecc.decode_payload_guess(soft, PAYLOAD_BITS, self.salt)
        if not ok:
            # A few coded bits with large wrong values (edges, clipped highlights) can outvote the rest;
            # clipping magnitudes at one standard deviation caps their say.
            payload2, ok2 = ecc.decode_payload_guess(np.clip(soft, -1.0, 1.0), PAYLOAD_BITS, self.salt)
            if ok2:
                payload, ok = payload2, ok2
        code = 1.0 - 2.0 * ecc.encode_payload(payload, PAYLOAD_BITS, self.salt).astype(float)
        agree = float(np.mean(np.sign(soft) == code))
        return payload, ok, agree

    def _hypotheses(self, r: np.ndarray) -> list[_Hypothesis]:
        """Geometric hypotheses (scale, angle, orientation) ranked by sync score; the best few refined."""
        cands = self._lattice_candidates(r, N_LATTICE)
        # Beside the lattice's picks, fixed guesses: no change, a 10% crop, and turns without rescale on a
        # half-degree grid. The sync correlation is a matched filter and finds a weak mark that the blind
        # autocorrelation misses; 0.25 degree off still keeps most of its score.
        fixed = [(1.0, 0.0), (1.0 / 0.9, 0.0)] + [(1.0, float(t)) for t in TURN_GRID]
        for base in fixed:
            if all(abs(base[0] - c[0]) > 0.004 or abs(base[1] - c[1]) > 0.1 for c in cands):
                cands.append(base)
        first = []
        for c_s, c_t in cands:
            fold = self._canon(r, c_s, c_t)
            z, k, sh = self._correlate(fold)
            first.append(_Hypothesis(z, c_s, c_t, k, sh, fold, self))
        first.sort(key=lambda h: -h.z)
        hyps = [self._refine(r, h) for h in first[:N_REFINED]] + first[N_REFINED:]
        hyps.sort(key=lambda h: -h.z)
        return hyps

    def _refine(self, r: np.ndarray, h: _Hypothesis) -> _Hypothesis:
        """Hill-climb scale, then angle, on the sync score with the orientation found.

        A crop's scale change and the autocorrelation's angle error both smear the fold; the sync peak is
        sharpest when both are right. Steps halve: 0.6/0.3/0.15 % in scale, 0.16/0.08/0.04 degrees in angle
        (a grid guess is up to 0.25 degree off; JPEG's block grid pulls the autocorrelation's by about 0.1).
        """
        best = h
        for step in (0.006, 0.003, 0.0015):
            for s in (best.scale * (1 - step), best.scale * (1 + step)):
                fold = self._canon(r, s, best.angle)
                z, _k, sh = self._correlate(fold, (h.orient,))
                if z > best.z:
                    best = _Hypothesis(z, s, best.angle, h.orient, sh, fold, self)
        for step in (0.16, 0.08, 0.04):
            center = best.angle
            for t in (center - step, center + step):
                fold = self._canon(r, best.scale, t)
                z, _k, sh = self._correlate(fold, (h.orient,))
                if z > best.z:
                    best = _Hypothesis(z, best.scale, t, h.orient, sh, fold, self)
        return best

    def detect(self, rgb: np.ndarray) -> WatermarkDetection:
        t0 = time.perf_counter()
        rgb = np.asarray(rgb)
        if rgb.ndim not in (2, 3) or min(rgb.shape[:2]) < 32:
            raise WatermarkError("image too small or not an image")
        hyps = self._hypotheses(self._residual(rgb))
        if self.small is not None and min(rgb.shape[:2]) < SMALL_DETECT_SIDE:
            # Ranked together by sync score: still only MAX_HYPOTHESES decodes, so the designed rate holds.
            hyps = sorted(hyps + self.small._hypotheses(self.small._residual(rgb)), key=lambda h: -h.z)
        hit: tuple[_Hypothesis, int, float] | None = None
        guess: int | None = None
        for h in hyps[:MAX_HYPOTHESES]:
            fold = undihedral(h.fold, h.orient)
            _z, _k, sh = h.wm._correlate(fold, (0,))
            payload, ok, agree = h.wm._decode(fold, sh)
            guess = payload if guess is None else guess
            if ok:
                hit = (h, payload, agree)
                break
        h, found, agree = hit if hit is not None else (hyps[0], None, 0.0)
        return WatermarkDetection(
            hit is not None,
            found,
            agree,
            h.z,
            h.scale,
            h.shift,
            h.angle,
            h.orient,
            seconds=time.perf_counter() - t0,
            best_guess=found if hit is not None else guess,
        )


@dataclass
class _Hypothesis:
    z: float
    scale: float
    angle: float
    orient: int
    shift: tuple[int, int]
    fold: np.ndarray
    wm: TileWatermark  # the variant (standard or small-image) whose geometry and patterns it is in


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def payload_for(content_id: str) -> int:
    """A 64-bit watermark payload derived from a content id (e.g. the GB 45438 ProduceID)."""
    return int.from_bytes(hashlib.sha256(content_id.encode()).digest()[:8], "big")
