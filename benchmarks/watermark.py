"""Watermark benchmark: Deepshield's tiled watermark beside invisible-watermark's dwtDctSvd, same images, same run.

Prints, per attack, bit accuracy and detection rate for both, plus PSNR and embed/detect time per megapixel.
The attacks run on photos centre-cropped to --size, except the face250_* rows, which embed in 250 px LFW
faces as they are (then, e.g., halve and JPEG-compress them).
`--fpr` instead runs our detector on unmarked images (every shared photo plus generated images) and
counts false detections against the designed rate.

    PYTHONPATH=src python benchmarks/watermark.py [--n 40] [--size 512] [--rows face250_none,face250_0.5x_q50]
    PYTHONPATH=src python benchmarks/watermark.py --fpr [--generated 3000]

Needs the dev extra `invisible-watermark` (installed with --no-deps) and PyWavelets for the baseline.
Detection rules: ours = CRC-32 matches and the payload is the embedded one; dwtDctSvd (no error check of
its own) = at least 29 of 32 bits right, whose chance rate on a random image is ~5.5e-6.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from corpus import faces_dir
from PIL import Image

from deepshield.labels.watermark import DESIGNED_FPR, PAYLOAD_BITS, TileWatermark, psnr

Attack = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.array(Image.open(buf).convert("RGB"))


def _resize(a: np.ndarray, f: float) -> np.ndarray:
    h, w = a.shape[:2]
    return cv2.resize(a, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def _crop(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep 90% of each side (19% of the area removed) at a random position."""
    h, w = a.shape[:2]
    ch, cw = round(h * 0.9), round(w * 0.9)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return a[y : y + ch, x : x + cw]


def _bc(a: np.ndarray, brightness: float = 1.0, contrast: float = 1.0) -> np.ndarray:
    f = a.astype(np.float32)
    m = float(f.mean())
    return np.clip((f - m) * contrast + m * brightness, 0, 255).astype(np.uint8)


def _screenshot(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Displayed at a random zoom (0.6x-1.5x, bilinear), captured as PNG with an 8-bit round trip."""
    f = float(rng.uniform(0.6, 1.5))
    h, w = a.shape[:2]
    s = cv2.resize(a, (round(w * f), round(h * f)), interpolation=cv2.INTER_LINEAR)
    buf = io.BytesIO()
    Image.fromarray(s).save(buf, "PNG")
    return np.array(Image.open(buf).convert("RGB"))


def _rotate(a: np.ndarray, rng: np.random.Generator, degrees: float) -> np.ndarray:
    """Turned about the centre by +-`degrees` (random sign), same size, black corners, bilinear."""
    h, w = a.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees * float(rng.choice([-1.0, 1.0])), 1.0)
    return cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def _webp(a: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "WEBP", quality=q)
    return np.array(Image.open(buf).convert("RGB"))


def _letterbox(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shown in a 9:16 portrait frame: black bars above and below (split at random), as a story post."""
    h, w = a.shape[:2]
    pad = max(0, round(w * 16 / 9) - h)
    top = int(rng.integers(0, pad + 1))
    return cv2.copyMakeBorder(a, top, pad - top, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))


ATTACKS: dict[str, Attack] = {
    "none": lambda a, r: a,
    "jpeg_q75": lambda a, r: _jpeg(a, 75),
    "jpeg_q50": lambda a, r: _jpeg(a, 50),
    "resize_0.5": lambda a, r: _resize(a, 0.5),
    "crop_10pct": _crop,
    "brightness_+20": lambda a, r: _bc(a, brightness=1.2),
    "brightness_-20": lambda a, r: _bc(a, brightness=0.8),
    "contrast_+20": lambda a, r: _bc(a, contrast=1.2),
    "contrast_-20": lambda a, r: _bc(a, contrast=0.8),
    "screenshot": _screenshot,
    "flip_h": lambda a, r: np.ascontiguousarray(a[:, ::-1]),
    "rotate_90": lambda a, r: np.ascontiguousarray(np.rot90(a)),
    "rotate_1deg": lambda a, r: _rotate(a, r, 1.0),
    "rotate_2deg": lambda a, r: _rotate(a, r, 2.0),
    "rotate_3deg": lambda a, r: _rotate(a, r, 3.0),
    "webp_q60": lambda a, r: _webp(a, 60),
    "letterbox": _letterbox,
}
# Applied to 250 px faces (LFW, as they are) instead of the centre-cropped photos.
FACE_ATTACKS: dict[str, Attack] = {
    "face250_none": lambda a, r: a,
    "face250_0.5x_q50": lambda a, r: _jpeg(_resize(a, 0.5), 50),
}


def shared_root() -> Path:
    root = faces_dir()
    if not root.is_dir():
        sys.exit(f"shared photos not found at {root}: set DEEPSHIELD_SHARED_FACES")
    return root


def photo_paths(root: Path) -> list[Path]:
    exts = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and "LICENSES" not in p.parts)


def load_square(p: Path, size: int) -> np.ndarray | None:
    im = Image.open(p).convert("RGB")
    w, h = im.size
    if min(w, h) < size // 2:
        return None
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.LANCZOS)
    return np.array(im)


class DwtDctSvd:
    """invisible-watermark's dwtDctSvd with its usual 32-bit payload (it works on BGR)."""

    bits = 32

    def __init__(self) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self._enc_cls, self._dec_cls = WatermarkEncoder, WatermarkDecoder

    def embed(self, rgb: np.ndarray, bits: list[int]) -> np.ndarray:
        enc = self._enc_cls()
        enc.set_watermark("bits", bits)
        return np.ascontiguousarray(enc.encode(rgb[..., ::-1].copy(), "dwtDctSvd")[..., ::-1])

    def decode(self, rgb: np.ndarray) -> list[int]:
        dec = self._dec_cls("bits", self.bits)
        return [int(b) for b in dec.decode(rgb[..., ::-1].copy(), "dwtDctSvd")]


def bit_acc(a: int, b: int | None, n: int) -> float:
    if b is None:
        return 0.5
    return 1.0 - bin((a ^ b) & ((1 << n) - 1)).count("1") / n


def run_robustness(n: int, size: int, seed: int, only: list[str] | None = None) -> None:
    rng = np.random.default_rng(seed)
    paths = photo_paths(shared_root() / "real_photos") + photo_paths(shared_root() / "more_photos")
    rng.shuffle(paths)  # type: ignore[arg-type]
    faces = photo_paths(shared_root() / "lfw_1000")
    rng.shuffle(faces)  # type: ignore[arg-type]
    ours = TileWatermark()
    try:
        base: DwtDctSvd | None = DwtDctSvd()
    except ImportError:
        base = None
        print(
            "invisible-watermark not installed: baseline column skipped "
            "(pip install --no-deps invisible-watermark; pip install PyWavelets)"
        )
    names = list(ATTACKS) + list(FACE_ATTACKS)
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        sys.exit(f"unknown --rows {', '.join(unknown)}; rows: {', '.join(names)}")
    # --rows: only these attacks run, on the same images with the same payloads and attack randomness
    # (every random draw still happens), so each row reads as it would in the full table.
    selected = set(only or names)
    names = [k for k in names if k in selected]
    rows: dict[str, dict[str, list[float]]] = {k: {"ob": [], "od": [], "bb": [], "bd": []} for k in names}
    ps_o: list[float] = []
    ps_b: list[float] = []
    t_o: dict[str, list[float]] = {"embed": [], "detect": []}
    t_b: dict[str, list[float]] = {"embed": [], "detect": []}

    def trial(img: np.ndarray, attacks: dict[str, Attack], record_psnr: bool) -> None:
        """Embed both marks in `img`, apply every attack, record bit accuracy, detection and timings."""
        mp = img.shape[0] * img.shape[1] / 1e6
        payload = int(rng.integers(0, 2**63)) | (int(rng.integers(0, 2)) << 63)
        if not selected & set(attacks):
            if base is not None:
                rng.integers(0, 2, base.bits)
            for _ in attacks:
                rng.integers(0, 2**31)
            return
        t = time.perf_counter()
        mo = ours.embed(img, payload)
        if record_psnr:
            t_o["embed"].append((time.perf_counter() - t) / mp)
            ps_o.append(psnr(img, mo))
        mb = None
        bbits: list[int] = []
        if base is not None:
            bbits = [int(b) for b in rng.integers(0, 2, base.bits)]
            t = time.perf_counter()
            try:
                mb = base.embed(img, bbits)
            except RuntimeError:  # dwtDctSvd refuses images under 256x256 (the 250 px faces): n/a
                mb = None
            if record_psnr and mb is not None:
                t_b["embed"].append((time.perf_counter() - t) / mp)
                ps_b.append(psnr(img, mb))
        for name, attack in attacks.items():
            arng = np.random.default_rng(int(rng.integers(0, 2**31)))
            if name not in selected:
                continue
            ao = attack(mo, arng)
            t = time.perf_counter()
            d = ours.detect(ao)
            if record_psnr:
                t_o["detect"].append((time.perf_counter() - t) / (ao.shape[0] * ao.shape[1] / 1e6))
            rows[name]["ob"].append(bit_acc(payload, d.payload if d.detected else d.best_guess, PAYLOAD_BITS))
            rows[name]["od"].append(float(d.detected and d.payload == payload))
            if base is not None and mb is not None:
                ab = attack(mb, np.random.default_rng(int(arng.integers(0, 2**31))))
                t = time.perf_counter()
                got = base.decode(ab)
                if record_psnr:
                    t_b["detect"].append((time.perf_counter() - t) / (ab.shape[0] * ab.shape[1] / 1e6))
                acc = float(np.mean(np.array(got) == np.array(bbits)))
                rows[name]["bb"].append(acc)
                rows[name]["bd"].append(float(acc >= 29 / 32))

    used = 0
    for p in paths:
        if used >= n:
            break
        img = load_square(p, size)
        if img is None:
            continue
        trial(img, ATTACKS, True)
        trial(np.array(Image.open(faces[used % len(faces)]).convert("RGB")), FACE_ATTACKS, False)
        used += 1
        print(f"  {used}/{n} {p.name}", file=sys.stderr, flush=True)
    print(f"\n{used} photos from the shared corpus, centre-cropped to {size}x{size}, and {used} 250 px LFW faces")
    print(f"(face250_* rows; dwtDctSvd refuses images under 256x256, hence n/a); seed {seed}")
    print(f"ours: {PAYLOAD_BITS} payload bits + CRC-32, rate-1/3 code; dwtDctSvd: 32 bits, no ECC\n")
    hdr = f"{'attack':16} {'ours bit acc':>12} {'ours detect':>11} {'dwtDctSvd bit acc':>17} {'dwtDctSvd detect':>16}"
    print(hdr)
    print("-" * len(hdr))
    for name, r in rows.items():
        bb = f"{statistics.mean(r['bb']):.3f}" if r["bb"] else "n/a"
        bd = f"{statistics.mean(r['bd']):.3f}" if r["bd"] else "n/a"
        print(f"{name:16} {statistics.mean(r['ob']):12.3f} {statistics.mean(r['od']):11.3f} {bb:>17} {bd:>16}")
    print()
    if not ps_o:  # --rows named face rows only
        return
    print(f"PSNR dB (median / min, {size} px photos): ours {statistics.median(ps_o):.2f} / {min(ps_o):.2f}", end="")
    print(f"; dwtDctSvd {statistics.median(ps_b):.2f} / {min(ps_b):.2f}" if ps_b else "")
    for k in ("embed", "detect"):
        line = f"{k} time per megapixel (median, {size} px photos): ours {statistics.median(t_o[k]) * 1e3:.0f} ms"
        if t_b[k]:
            line += f"; dwtDctSvd {statistics.median(t_b[k]) * 1e3:.0f} ms"
            line += f" (ratio ours/dwtDctSvd {statistics.median(t_o[k]) / statistics.median(t_b[k]):.2f})"
        print(line)
    per_image = statistics.median(t_o["detect"]) * mp_size(size)
    print(f"detect time per image (median, {size} px photos): ours {per_image:.0f} ms")


def mp_size(size: int) -> float:
    """Milliseconds per image from seconds per megapixel, for a size x size image."""
    return size * size / 1e6 * 1e3


def generated_images(count: int, seed: int) -> list[np.ndarray]:
    """Synthetic unmarked images: noise of several spectra, gradients, shapes, text-like strokes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        h, w = int(rng.integers(200, 700)), int(rng.integers(200, 700))
        kind = i % 5
        if kind == 0:  # white noise
            img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        elif kind == 1:  # 1/f-like noise (natural-image spectrum)
            f = np.fft.fft2(rng.normal(size=(h, w)))
            fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
            g = np.real(np.fft.ifft2(f / (np.hypot(fy, fx) + 1e-3)))
            g = (g - g.min()) / (np.ptp(g) + 1e-9) * 255
            img = np.repeat(g[..., None], 3, axis=2).astype(np.uint8)
        elif kind == 2:  # gradients
            y, x = np.mgrid[0:h, 0:w]
            img = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + rng.uniform(0, 128)], axis=2)
            img = img.astype(np.uint8)
        elif kind == 3:  # shapes
            img = np.full((h, w, 3), rng.integers(0, 256, 3), dtype=np.uint8)
            for _ in range(int(rng.integers(5, 40))):
                c = tuple(int(v) for v in rng.integers(0, 256, 3))
                cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(5, 120)), c, -1)
                cv2.rectangle(
                    img,
                    (int(rng.integers(0, w)), int(rng.integers(0, h))),
                    (int(rng.integers(0, w)), int(rng.integers(0, h))),
                    c,
                    int(rng.integers(-1, 4)),
                )
        else:  # periodic textures (a worst case for a tiled scheme's autocorrelation search)
            y, x = np.mgrid[0:h, 0:w]
            per = float(rng.uniform(4, 200))
            g = 127 + 100 * np.sin(2 * np.pi * x / per) * np.cos(2 * np.pi * y / (per * rng.uniform(0.5, 2)))
            g = g + rng.normal(0, 10, g.shape)
            img = np.clip(np.repeat(g[..., None], 3, axis=2), 0, 255).astype(np.uint8)
        out.append(img)
    return out


def run_fpr(n_generated: int, seed: int) -> None:
    """Every shared photo, then generated images; a progress line every 100 images so a cut-short run
    still states what it measured."""
    ours = TileWatermark()
    fp = 0
    checked = 0
    n_photos = 0
    zs: list[float] = []
    t0 = time.perf_counter()

    def sources() -> Iterator[tuple[str, np.ndarray]]:
        for p in photo_paths(shared_root()):
            try:
                yield "photo", np.array(Image.open(p).convert("RGB"))
            except Exception:  # noqa: BLE001 - an unreadable corpus file is not a detector result
                continue
        for img in generated_images(n_generated, seed):
            yield "generated", img

    for kind, img in sources():
        if min(img.shape[:2]) < 32:
            continue
        d = ours.detect(img)
        checked += 1
        n_photos += kind == "photo"
        fp += int(d.detected)
        zs.append(d.sync_score)
        if checked % 100 == 0:
            print(
                f"  {checked} checked ({n_photos} photos), false detections {fp}, "
                f"max sync score {max(zs):.2f}, {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    print(f"unmarked images checked: {checked} ({n_photos} shared photos, {checked - n_photos} generated)")
    print(
        f"false detections: {fp}  (designed rate {DESIGNED_FPR:.1e} per image; expected {DESIGNED_FPR * checked:.1e})"
    )
    print(f"sync score on unmarked images: median {statistics.median(zs):.2f}, max {max(zs):.2f}")
    print(f"time {time.perf_counter() - t0:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="photos for the robustness table")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fpr", action="store_true", help="measure false detections on unmarked images")
    ap.add_argument("--generated", type=int, default=3000)
    ap.add_argument("--rows", help="comma-separated attack rows to run (same images and payloads as the full table)")
    a = ap.parse_args()
    if a.fpr:
        run_fpr(a.generated, a.seed)
    else:
        run_robustness(a.n, a.size, a.seed, a.rows.split(",") if a.rows else None)


if __name__ == "__main__":
    main()
