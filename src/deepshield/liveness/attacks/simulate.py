"""Faithful-as-we-can simulations on real footage where no real capture exists.

* Screen flash reflected by a face: the phone screen, a few tens of centimetres away, adds light of the flashed
  colour in proportion to the skin's own reflectance (a multiplicative gain), shaded by the head's 3-D shape
  (`screen_light_field`: strongest where the face looks at the screen, weaker on the cheeks' sides, part of it
  on the hair and neck just outside the outline, a few percent on the far background), with a camera latency,
  exposure smoothing, partial automatic white balance that pulls the whole frame back, and sensor noise.
* Screen re-capture: a recording shown on a monitor and filmed again: perspective, a colour cast, moire from the
  pixel grid beating with the sensor, gamma, blur and noise; the new session's flashes reflect off the glass
  uniformly, face and background alike.
* A still photo presented as a video: small smooth hand-held motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

import cv2
import numpy as np

from deepshield.faces import quiet_native_stderr
from deepshield.faces.landmarks import FACE_OVAL
from deepshield.liveness.script import FLASH_COLOURS, Flash


@dataclass(frozen=True)
class FlashModel:
    gain: float  # reflected screen light relative to the ambient light on the face
    background_gain: float
    latency_s: float
    smoothing_s: float  # exposure / sensor integration time constant
    awb: float  # fraction of the frame's mean colour shift undone by automatic white balance
    noise: float
    near: float = 0.5  # light on the hair and neck just outside the face outline, relative to the face's front

    @staticmethod
    def random(rng: Random) -> FlashModel:
        return FlashModel(
            gain=rng.uniform(0.06, 0.2),
            background_gain=rng.uniform(0.0, 0.02),
            latency_s=rng.uniform(0.03, 0.15),
            smoothing_s=rng.uniform(0.02, 0.06),
            awb=rng.uniform(0.0, 0.5),
            noise=rng.uniform(0.5, 2.0),
            near=rng.uniform(0.3, 0.7),
        )


class NoiseBank:
    """Sensor noise: a few Gaussian fields drawn once and reused with random shifts (drawing a fresh field per
    frame costs more than everything else in the simulation)."""

    def __init__(self, shape: tuple[int, ...], sigma: float, seed: int, count: int = 4) -> None:
        rng = np.random.default_rng(seed)
        self.fields = [rng.normal(0, sigma, shape).astype(np.float32) for _ in range(count)]
        self.rng = rng

    def next(self) -> np.ndarray:
        f = self.fields[int(self.rng.integers(len(self.fields)))]
        return np.roll(f, (int(self.rng.integers(f.shape[0])), int(self.rng.integers(f.shape[1]))), axis=(0, 1))


def flash_colour_at(flashes: tuple[Flash, ...], t: float) -> np.ndarray:
    for f in flashes:
        if f.start_s <= t < f.end_s:
            return np.asarray(FLASH_COLOURS[f.colour], dtype=np.float32) / 255.0
    return np.zeros(3, dtype=np.float32)


class FaceMasker:
    """Soft face masks from MediaPipe's mesh in tracking mode (one per clip)."""

    def __init__(self) -> None:
        from mediapipe.python.solutions import face_mesh

        self._mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False)
        self._last: np.ndarray | None = None
        self._started = False

    def close(self) -> None:
        self._mesh.close()

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        lm = self.landmarks3d(rgb)
        return None if lm is None else lm[:, :2]

    def landmarks3d(self, rgb: np.ndarray) -> np.ndarray | None:
        """Mesh points in pixels, with MediaPipe's relative depth in pixels of width (negative: nearer)."""
        if not self._started:  # a new graph logs on its first frame
            self._started = True
            with quiet_native_stderr():
                res = self._mesh.process(np.ascontiguousarray(rgb))
        else:
            res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h, p.z * w) for p in res.multi_face_landmarks[0].landmark], np.float32)

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        lm = self.landmarks(rgb)
        if lm is None:
            return self._last if self._last is not None and self._last.shape == (h, w) else np.zeros((h, w), np.float32)
        oval = lm[FACE_OVAL]
        c = oval.mean(axis=0)
        grown = (oval - c) * 1.12 + c
        m = np.zeros((h, w), np.float32)
        cv2.fillConvexPoly(m, grown.astype(np.int32), (1.0,))
        fw = float(oval[:, 0].max() - oval[:, 0].min())
        k = int(max(3, fw * 0.15)) | 1
        blurred = np.asarray(cv2.GaussianBlur(m, (k, k), 0), dtype=np.float32)
        self._last = blurred
        return blurred


def screen_light_field(lm: np.ndarray, shape: tuple[int, int], near: float, step: int = 4) -> np.ndarray:
    """Share of the screen's light each pixel receives (1: skin facing the screen) for a head whose mesh is `lm`.

    The head is taken as a rounded block fitted to the face outline: across the face the surface turns away as
    a cylinder does (cos of the angle to the screen, which sits by the camera), up and down more gently; skin at
    grazing angles keeps a floor (the screen is wide and near). Beyond the outline, hair, ears and neck at about
    the face's distance get `near` of the front's light, falling off over half a face width. Computed on a grid
    `step` times coarser and scaled up (the field is smooth).
    """
    h, w = shape
    oval = lm[FACE_OVAL, :2]
    c = oval.mean(axis=0)
    half = np.maximum((oval.max(axis=0) - oval.min(axis=0)) / 2, 1.0)
    ys = (np.arange(0, h, step, dtype=np.float32) - c[1]) / half[1]
    xs = (np.arange(0, w, step, dtype=np.float32) - c[0]) / half[0]
    v, u = np.meshgrid(ys, xs, indexing="ij")
    r = np.sqrt(u * u + v * v)
    facing = np.sqrt(np.clip(1 - u * u, 0, 1)) * np.sqrt(np.clip(1 - 0.25 * v * v, 0, 1))
    inside = 0.3 + 0.7 * facing
    outside = near * np.exp(-(((r - 1) / 0.5) ** 2))
    field: np.ndarray = np.where(r <= 1, inside, outside).astype(np.float32)
    field = np.asarray(cv2.GaussianBlur(field, (5, 5), 0), dtype=np.float32)
    return np.asarray(cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)


def apply_flash_response(
    frames: list[np.ndarray], fps: float, flashes: tuple[Flash, ...], model: FlashModel, seed: int = 0
) -> list[np.ndarray]:
    """The reflection of `flashes` on the face in real footage (see module doc)."""
    noise = NoiseBank(frames[0].shape, model.noise, seed) if frames else None
    masker = FaceMasker()
    out: list[np.ndarray] = []
    light = np.zeros(3, dtype=np.float32)
    prev_mean: np.ndarray | None = None
    field: np.ndarray | None = None
    try:
        for i, fr in enumerate(frames):
            t = i / fps
            target = flash_colour_at(flashes, t - model.latency_s)
            a = 1.0 - np.exp(-(1.0 / fps) / model.smoothing_s)
            light = light + a * (target - light)
            lm = masker.landmarks(fr)
            if lm is not None:
                field = screen_light_field(lm, (fr.shape[0], fr.shape[1]), model.near)
            elif field is None or field.shape != fr.shape[:2]:
                field = np.zeros(fr.shape[:2], np.float32)
            m = field[..., None]
            gain = 1.0 + (model.gain * m + model.background_gain * (1 - np.minimum(m, 1))) * light[None, None, :]
            img = fr.astype(np.float32) * gain
            mean = np.asarray(cv2.mean(img)[:3], dtype=np.float32)
            base = np.asarray(cv2.mean(fr)[:3], dtype=np.float32)
            if model.awb > 0:
                img *= (1 + model.awb * (base / np.maximum(mean, 1) - 1))[None, None, :]
            assert noise is not None
            img += noise.next()
            out.append(np.clip(img, 0, 255).astype(np.uint8))
            prev_mean = mean
    finally:
        masker.close()
    del prev_mean
    return out


def screen_recapture(frames: list[np.ndarray], fps: float, flashes: tuple[Flash, ...], rng: Random) -> list[np.ndarray]:
    """A replayed recording filmed off a monitor (see module doc)."""
    h, w = frames[0].shape[:2]
    cast = np.array([rng.uniform(0.85, 1.1), rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.2)], dtype=np.float32)
    gamma = rng.uniform(0.8, 1.2)
    j = 0.04
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)

    def jit() -> float:
        return rng.uniform(0, j)

    dst = np.array(
        [
            [jit() * w, jit() * h],
            [w - jit() * w, jit() * h],
            [w - jit() * w, h - jit() * h],
            [jit() * w, h - jit() * h],
        ],
        dtype=np.float32,
    )
    persp = cv2.getPerspectiveTransform(src, dst)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f1, f2, ang = rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.35), rng.uniform(0, np.pi)
    moire = np.sin(f1 * (xx * np.cos(ang) + yy * np.sin(ang))) * np.sin(f2 * (xx * np.sin(ang) - yy * np.cos(ang)))
    moire = (1 + rng.uniform(0.04, 0.1) * moire)[..., None]
    del yy, xx
    refl = rng.uniform(0.02, 0.08)
    noise = NoiseBank((h, w, 3), 2.0, rng.getrandbits(32))
    # Colour cast and gamma as one per-channel lookup table.
    v = np.arange(256, dtype=np.float32)[:, None] / 255.0
    lut = np.clip(255.0 * np.power(np.clip(v * cast[None, :], 0, 1), gamma), 0, 255).astype(np.uint8)[None]
    moire32 = moire.astype(np.float32)
    out = []
    for i, fr in enumerate(frames):
        img = cv2.LUT(cv2.warpPerspective(fr, persp, (w, h), borderMode=cv2.BORDER_REPLICATE), lut)
        f = img.astype(np.float32) * moire32
        f += (255.0 * refl) * flash_colour_at(flashes, i / fps)[None, None, :]
        f = cv2.GaussianBlur(f, (3, 3), 0.8)
        f += noise.next()
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def photo_as_video(
    photo: np.ndarray,
    duration_s: float,
    fps: float,
    rng: Random,
    side: int = 640,
    paper_reflection: float = 0.03,
    flashes: tuple[Flash, ...] = (),
) -> list[np.ndarray]:
    """A still photo moved slightly, as if held in front of the camera; the flashes reflect off the whole print."""
    h0, w0 = photo.shape[:2]
    s = side / max(h0, w0)
    base = cv2.resize(photo, (int(w0 * s) // 2 * 2, int(h0 * s) // 2 * 2), interpolation=cv2.INTER_AREA)
    h, w = base.shape[:2]
    ph = [rng.uniform(0, 6.28) for _ in range(4)]
    fr = [rng.uniform(0.2, 0.7) for _ in range(4)]
    noise = NoiseBank((h, w, 3), 1.5, rng.getrandbits(32))
    out = []
    for i in range(int(duration_s * fps)):
        t = i / fps
        dx = 0.02 * w * np.sin(6.28 * fr[0] * t + ph[0])
        dy = 0.02 * h * np.sin(6.28 * fr[1] * t + ph[1])
        ang = 2.0 * np.sin(6.28 * fr[2] * t + ph[2])
        sc = 1.0 + 0.02 * np.sin(6.28 * fr[3] * t + ph[3])
        m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc), dtype=np.float64)
        m[:, 2] += (dx, dy)
        img = np.asarray(cv2.warpAffine(base, m, (w, h), borderMode=cv2.BORDER_REFLECT101), dtype=np.float32)
        img *= 1 + paper_reflection * flash_colour_at(flashes, t)[None, None, :]
        img += noise.next()
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out
