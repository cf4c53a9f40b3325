"""A classic face-swap evaluation set, as FaceForensics++ "FaceSwap": real swaps between different people.

The donor's face is warped onto the target by Delaunay triangulation of the 468-point mesh (one affine per
triangle), its colour is matched to the target in Lab space inside the face, and it is blended in with
Poisson seamless cloning. Photos are written as JPEG and video targets are written back as H.264 videos with
PyAV. The real counterparts are re-encoded the same way, so codec and quality never give the answer away.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from deepshield.errors import DeepshieldError
from deepshield.faces import Face, FaceAnalyzer, align_face
from deepshield.faces.landmarks import FACE_OVAL, lower_face
from deepshield.media import FrameSampling, MediaLimits, open_media, representative_frame

JPEG_QUALITY = 92
VIDEO_CRF = 23
#: What a swap replaces: the whole face (FaceForensics++ "FaceSwap"), or only the lower face (lips, jaw and chin
#: below the nose), the region a lip-sync model rewrites, as a stand-in for edits confined to part of a face.
SWAP_REGIONS = ("face", "lower-face")


def delaunay(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Triangles (T x 3 indices into `points`) of the Delaunay triangulation of 2-D points."""
    pts = points[:, :2].astype(np.float64)
    lo = np.floor(pts.min(axis=0)) - 4
    hi = np.ceil(pts.max(axis=0)) + 4
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    for x, y in pts:
        subdiv.insert((float(x), float(y)))
    tl = np.asarray(subdiv.getTriangleList(), np.float64).reshape(-1, 3, 2)
    # Map vertices back to point indices by nearest neighbour (exact float matching drops triangles).
    d = np.linalg.norm(tl.reshape(-1, 1, 2) - pts[None], axis=2)
    idx = d.argmin(axis=1).reshape(-1, 3)
    ok = (d.min(axis=1).reshape(-1, 3) < 0.5).all(axis=1)
    ok &= (idx[:, 0] != idx[:, 1]) & (idx[:, 1] != idx[:, 2]) & (idx[:, 0] != idx[:, 2])
    return idx[ok].astype(np.int32)


def warp_triangles(
    src: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, tris: np.ndarray, out_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-affine warp of `src` so its points land on `dst_pts`; returns (image, coverage mask).

    Each output pixel is labelled with the target triangle covering it, mapped back into the source by that
    triangle's affine, and sampled in one `cv2.remap`.
    """
    h, w = out_shape
    out = np.zeros((h, w, 3), np.float32)
    cover = np.zeros((h, w), np.float32)
    d = dst_pts[:, :2].astype(np.float64)
    x0, y0 = max(int(np.floor(d[:, 0].min())) - 1, 0), max(int(np.floor(d[:, 1].min())) - 1, 0)
    x1, y1 = min(int(np.ceil(d[:, 0].max())) + 2, w), min(int(np.ceil(d[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0 or len(tris) == 0:
        return out, cover
    ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
    affines = np.zeros((len(tris), 2, 3), np.float64)
    for t, tri in enumerate(tris):
        dt = d[tri] - [x0, y0]
        st = src_pts[tri, :2].astype(np.float64)
        area = (dt[1, 0] - dt[0, 0]) * (dt[2, 1] - dt[0, 1]) - (dt[2, 0] - dt[0, 0]) * (dt[1, 1] - dt[0, 1])
        if abs(area) < 1e-6:
            continue
        affines[t] = cv2.getAffineTransform(dt.astype(np.float32), st.astype(np.float32))
        cv2.fillConvexPoly(ids, np.round(dt).astype(np.int32), (float(t),))
    yy, xx = np.nonzero(ids >= 0)
    a = affines[ids[yy, xx]]
    mx = a[:, 0, 0] * xx + a[:, 0, 1] * yy + a[:, 0, 2]
    my = a[:, 1, 0] * xx + a[:, 1, 1] * yy + a[:, 1, 2]
    map_x = np.full(ids.shape, -1, np.float32)
    map_y = np.full(ids.shape, -1, np.float32)
    map_x[yy, xx] = mx
    map_y[yy, xx] = my
    warped = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out[y0:y1, x0:x1] = warped
    cover[y0:y1, x0:x1] = (ids >= 0).astype(np.float32)
    return out, cover


def colour_transfer(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab: match the mean and spread of `src` to `dst` inside `mask`."""
    m = mask > 0
    if m.sum() < 10:
        return src
    s = cv2.cvtColor(np.clip(src, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    d = cv2.cvtColor(dst, cv2.COLOR_RGB2LAB).astype(np.float32)
    for c in range(3):
        sm, ss = s[..., c][m].mean(), s[..., c][m].std() + 1e-3
        dm, ds = d[..., c][m].mean(), d[..., c][m].std() + 1e-3
        s[..., c] = (s[..., c] - sm) * (ds / ss) + dm
    return cv2.cvtColor(np.clip(s, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


@dataclass
class Donor:
    image: np.ndarray  # RGB
    landmarks: np.ndarray  # 478 x 2 pixels
    name: str
    yaw: float = 0.0


def check_region(region: str) -> str:
    if region not in SWAP_REGIONS:
        raise DeepshieldError(f"unknown swap region {region!r}; choose one of {', '.join(SWAP_REGIONS)}")
    return region


def region_points(landmarks: np.ndarray, region: str) -> np.ndarray:
    """Mesh points (pixels) whose hull is the swapped region (one of SWAP_REGIONS)."""
    if check_region(region) == "face":
        return landmarks[FACE_OVAL]
    return landmarks[lower_face(landmarks)]


def swap_face(
    target: np.ndarray,
    target_lm: np.ndarray,
    donor: Donor,
    tris: np.ndarray | None = None,
    region: str = "face",
) -> np.ndarray | None:
    """The target frame with the donor's face (or `region` of it) swapped in, or None when the geometry is
    degenerate."""
    h, w = target.shape[:2]
    tpts = target_lm[:468, :2].astype(np.float32)
    dpts = donor.landmarks[:468, :2].astype(np.float32)
    hull_pts = region_points(tpts, region)
    if tris is None:
        tris = delaunay(dpts, (donor.image.shape[0], donor.image.shape[1]))
    warped, cover = warp_triangles(donor.image, dpts, tpts, tris, (h, w))
    mask: np.ndarray = np.zeros((h, w), np.uint8)
    hull = cv2.convexHull(np.round(hull_pts).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, (255,))
    ext = float(max(np.ptp(tpts[:, 0]), np.ptp(tpts[:, 1])))
    k = max(3, int(ext * 0.06) | 1)
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    # Rounding leaves hairline cracks between triangles: close them, inpaint the warp there, and keep the
    # clone mask to what the warp really covers.
    kc = max(3, int(ext * 0.02) | 1)
    closed = cv2.morphologyEx(cover, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kc, kc)))
    mask[closed == 0] = 0
    if mask.sum() < 255 * 50:
        return None
    holes = ((cover == 0) & (mask > 0)).astype(np.uint8)
    warped_u8: np.ndarray = np.clip(warped, 0, 255).astype(np.uint8)
    if holes.any():
        warped_u8 = cv2.inpaint(warped_u8, holes, 3, cv2.INPAINT_TELEA)
    src = colour_transfer(warped_u8, target, mask)
    x, y, bw, bh = cv2.boundingRect(mask)
    # seamlessClone needs the mask's box inside the image with a 1-pixel border.
    if x < 1 or y < 1 or x + bw >= w - 1 or y + bh >= h - 1:
        mask[:1, :] = 0
        mask[-1:, :] = 0
        mask[:, :1] = 0
        mask[:, -1:] = 0
        x, y, bw, bh = cv2.boundingRect(mask)
        if bw < 4 or bh < 4:
            return None
    center = (x + bw // 2, y + bh // 2)
    try:
        out = cv2.seamlessClone(src[..., ::-1].copy(), target[..., ::-1].copy(), mask, center, cv2.NORMAL_CLONE)
    except cv2.error:
        return None
    return np.ascontiguousarray(out[..., ::-1])


def _main_face(analyzer: FaceAnalyzer, rgb: np.ndarray, min_px: float = 60) -> Face | None:
    faces = [f for f in analyzer.analyze(rgb) if f.landmarks is not None and max(f.width, f.height) >= min_px]
    return faces[0] if faces else None


def load_donor(analyzer: FaceAnalyzer, path: Path, name: str) -> Donor | None:
    rgb = representative_frame(path)
    face = _main_face(analyzer, rgb, min_px=80)
    if face is None or face.landmarks is None:
        return None
    # Keep a moderate-resolution donor crop: faster warps, and no more detail than a swap model would have.
    side = int(np.clip(max(face.width, face.height) * 2.0, 128, 512))  # about native resolution
    crop = align_face(rgb, face, size=side, margin=0.5, rotate=False)
    return Donor(
        crop.image,
        crop.map_points(face.landmarks).astype(np.float32),
        name,
        face.pose.yaw if face.pose else 0.0,
    )


def _limit_size(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    return cv2.resize(rgb, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)


def _write_jpeg(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


class VideoWriter:
    """H.264 (yuv420p) writer over PyAV; even frame sizes are enforced by cropping one pixel if needed."""

    def __init__(self, path: Path, fps: float, width: int, height: int, crf: int = VIDEO_CRF) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.w, self.h = width - width % 2, height - height % 2
        self.container = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = self.w, self.h
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: self.h, : self.w]), format="rgb24")
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)

    def close(self) -> None:
        for pkt in self.stream.encode():
            self.container.mux(pkt)
        self.container.close()


#: Generation interleaves decoding with slow per-frame work, so the decode clock gets a generous limit.
GENERATION_LIMITS = MediaLimits(decode_timeout_s=3600.0)


def _video_frames(path: Path, seconds: float, max_fps: float) -> tuple[float, Iterator[np.ndarray]]:
    media = open_media(path, GENERATION_LIMITS)
    fps = float(media.info.fps or 25.0)
    out_fps = min(fps, max_fps)
    dur = float(media.info.duration_s or seconds)
    n = max(1, int(min(seconds, dur) * out_fps))

    def gen() -> Iterator[np.ndarray]:
        try:
            for fr in media.frames(FrameSampling.rate(out_fps, max_frames=n)):
                yield fr.rgb
        finally:
            media.close()

    return out_fps, gen()


def swap_video(
    analyzer: FaceAnalyzer,
    path: Path,
    donor: Donor,
    real_out: Path,
    fake_out: Path,
    seconds: float = 4.0,
    max_fps: float = 25.0,
    max_side: int = 1280,
    region: str = "face",
) -> int:
    """Write the first `seconds` of a video re-encoded (real) and face-swapped (fake); returns swapped frames.

    Frames where no face (or no usable geometry) is found are written unchanged, as a real swap tool does.
    """
    fps, frames = _video_frames(path, seconds, max_fps)
    tris = delaunay(donor.landmarks[:468], (donor.image.shape[0], donor.image.shape[1]))
    rw = fw = None
    swapped = 0
    try:
        for rgb in frames:
            rgb = _limit_size(rgb, max_side)
            if rw is None:
                rw = VideoWriter(real_out, fps, rgb.shape[1], rgb.shape[0])
                fw = VideoWriter(fake_out, fps, rgb.shape[1], rgb.shape[0])
            assert rw is not None and fw is not None
            face = _main_face(analyzer, rgb)
            fake = None
            if face is not None and face.landmarks is not None:
                fake = swap_face(rgb, face.landmarks, donor, tris, region)
            if fake is not None:
                swapped += 1
            rw.write(rgb)
            fw.write(fake if fake is not None else rgb)
    finally:
        if rw is not None:
            rw.close()
        if fw is not None:
            fw.close()
    return swapped


def make_swap_set(
    items: Iterable[tuple[Path, str, str, bool]],
    out_dir: Path,
    seed: int = 0,
    seconds: float = 4.0,
    progress: Callable[[str], None] | None = None,
    max_photos: int | None = None,
    max_photo_side: int = 1600,
    region: str = "face",
) -> dict[str, int]:
    """Build `out_dir/real` and `out_dir/fake` from (path, rel, identity group, is_video) items, swapping
    `region` (one of SWAP_REGIONS) of each main face.

    Every target is paired with a donor of a different identity group (closest head yaw among a random
    handful), so each fake is a real swap between two people. Writes `out_dir/swaps.json` describing pairs.
    """
    check_region(region)  # before any work
    rng = np.random.default_rng(seed)
    items = list(items)
    photos = [i for i in items if not i[3]]
    videos = [i for i in items if i[3]]
    if max_photos is not None and len(photos) > max_photos:
        photos = [photos[k] for k in sorted(rng.choice(len(photos), max_photos, replace=False))]
    records: list[dict[str, object]] = []
    counts = {"real_photos": 0, "fake_photos": 0, "real_videos": 0, "fake_videos": 0, "skipped": 0}
    (out_dir / "fake").mkdir(parents=True, exist_ok=True)
    with FaceAnalyzer() as analyzer:
        donors: list[tuple[Donor, str]] = []
        for path, rel, group, _ in photos:
            try:
                d = load_donor(analyzer, path, rel)
            except DeepshieldError:
                d = None
            if d is not None:
                donors.append((d, group))
        if len(donors) < 2:
            return counts

        def pick(rel: str, group: str, yaw: float) -> Donor | None:
            # A per-target generator: the choice does not depend on order, so a rerun resumes identically.
            r = np.random.default_rng([seed, int(hashlib.sha1(rel.encode()).hexdigest()[:8], 16)])
            cands = [d for d, g in donors if g != group]
            if not cands:
                return None
            sample = [cands[k] for k in r.choice(len(cands), size=min(6, len(cands)), replace=False)]
            return min(sample, key=lambda d: abs(d.yaw - yaw))

        def made(target: str, donor: str, kind: str, **more: object) -> None:
            counts[f"real_{kind}s"] += 1
            counts[f"fake_{kind}s"] += 1
            records.append({"target": target, "donor": donor, "kind": kind, **more})

        def done(rel: str, kind: str) -> bool:
            """Reports `rel` to `progress`; True (counted, recorded) when an earlier run already swapped it."""
            if progress:
                progress(rel)
            stem = Path(rel).stem
            prev = sorted((out_dir / "fake").glob(f"{stem}__from__*"))
            if prev:
                made(stem, prev[0].stem.split("__from__")[1], kind)
            return bool(prev)

        for path, rel, group, _ in photos:
            if done(rel, "photo"):
                continue
            stem = Path(rel).stem
            try:
                rgb = representative_frame(path)
            except DeepshieldError:
                counts["skipped"] += 1
                continue
            rgb = _limit_size(rgb, max_photo_side)
            face = _main_face(analyzer, rgb)
            if face is None or face.landmarks is None:
                continue
            donor = pick(rel, group, face.pose.yaw if face.pose else 0.0)
            if donor is None:
                continue
            fake = swap_face(rgb, face.landmarks, donor, region=region)
            if fake is None:
                continue
            _write_jpeg(rgb, out_dir / "real" / f"{stem}.jpg")
            _write_jpeg(fake, out_dir / "fake" / f"{stem}__from__{Path(donor.name).stem}.jpg")
            made(rel, donor.name, "photo")
        for path, rel, group, _ in videos:
            if done(rel, "video"):
                continue
            stem = Path(rel).stem
            donor = pick(rel, group, 0.0)
            if donor is None:
                continue
            real_out = out_dir / "real" / f"{stem}.mp4"
            fake_out = out_dir / "fake" / f"{stem}__from__{Path(donor.name).stem}.mp4"
            try:
                n = swap_video(analyzer, path, donor, real_out, fake_out, seconds=seconds, region=region)
            except DeepshieldError:
                real_out.unlink(missing_ok=True)
                fake_out.unlink(missing_ok=True)
                counts["skipped"] += 1
                continue
            made(rel, donor.name, "video", swapped_frames=n)
    summary = {"seed": seed, "region": region, "pairs": records, "counts": counts}
    (out_dir / "swaps.json").write_text(json.dumps(summary, indent=1))
    return counts


def swap_set_crops(root: Path, size: int, margin: float, frames_per_video: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """(crops, labels) of the main face in each photo / sampled video frame of a real/ + fake/ folder.

    Used to watch a training run against face swaps of validation identities (model selection), at the
    detector's own input size and margin.
    """
    crops: list[np.ndarray] = []
    labels: list[int] = []
    with FaceAnalyzer() as analyzer:
        for label, sub in ((0, "real"), (1, "fake")):
            for p in sorted((root / sub).glob("*")):
                if not p.is_file():
                    continue
                media = open_media(p, GENERATION_LIMITS)
                try:
                    for fr in media.frames(FrameSampling.evenly(frames_per_video)):
                        face = _main_face(analyzer, fr.rgb, min_px=30)
                        if face is not None:
                            crops.append(align_face(fr.rgb, face, size=size, margin=margin).image)
                            labels.append(label)
                finally:
                    media.close()
    if not crops:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64)
    return np.stack(crops), np.array(labels)
