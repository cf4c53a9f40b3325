"""Video matching in the vPDQ manner: PDQ of sampled frames; a video is a bag of frame hashes.

Frames are sampled at 2 per second, not vPDQ's 1: a re-encode or a clip rarely keeps the original's frame
times (here ffmpeg shifted a file by 0.85 s), and at 1 frame/s a fast-moving video then shares no frame with
its banked copy. On 17 shared videos, 5 s clips matched 11 at 1 frame/s and 15 at 2 frames/s.

Two videos match when enough frames match (<= 31 bits): at least `VIDEO_MATCH_FRACTION` of the query's
frames, or of the banked video's frames. The first catches re-encodes and clips cut from a banked video, the
second a banked video spliced into a longer upload. Both fractions and the matching time ranges on each side
are reported. Frames below PDQ quality 50 (black, flat) never count: they would match any other flat frame.

Text form (stored, exchanged): python-threatexchange's, a JSON list of "hex,quality,timestamp" strings, so
HMA clients and python-threatexchange's tools read ours and we read theirs. A received frame keeps its
timestamp's text (python-threatexchange writes 3 significant digits, e.g. "1.5e+02"), so a hash imported and
exported again is the same bytes. The earlier form, a JSON list of {"hash", "quality", "timestamp"} objects,
is still read (rows stored before the change).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from deepshield.errors import MediaError
from deepshield.matching.bits import InvalidHash, hex_to_words, hexes_to_words, normalise_hex, popcount_rows
from deepshield.matching.index import HammingIndex
from deepshield.matching.signals.base import (
    REVIEW_MARGIN,
    BankThresholds,
    Comparison,
    ContentType,
    IndexHit,
    SignalHash,
    SignalIndex,
    SignalType,
    VideoDetail,
)
from deepshield.matching.signals.pdq import PDQ_MIN_QUALITY, PDQ_THRESHOLD, pdq_from_rgb
from deepshield.matching.signals.registry import register_signal
from deepshield.media import FrameSampling, Media, MediaKind

FRAMES_PER_SECOND = 2.0
VIDEO_MATCH_FRACTION = 0.8
MIN_MATCHED_FRAMES = 2


@dataclass(frozen=True)
class FrameHash:
    timestamp: float
    hash: str
    quality: int
    #: The timestamp as received (python-threatexchange's text), written back unchanged; None: ours.
    timestamp_text: str | None = None

    def __str__(self) -> str:
        ts = self.timestamp_text if self.timestamp_text is not None else repr(round(self.timestamp, 3))
        return f"{self.hash},{self.quality},{ts}"


def format_vpdq(frames: list[FrameHash]) -> str:
    """python-threatexchange's `vpdq_to_json` layout (json.dumps' default separators), byte for byte."""
    return json.dumps([str(f) for f in frames])


_VPDQ_FORM = 'a JSON list of "hex,quality,timestamp" strings (python-threatexchange\'s form)'


def _frame(item: object) -> FrameHash:
    if isinstance(item, str):
        parts = item.split(",")
        if len(parts) != 3:
            raise ValueError(f"frame {item[:80]!r} is not hex,quality,timestamp")
        h, q, ts = (p.strip() for p in parts)
        return FrameHash(float(ts), normalise_hex(h, 64, "vPDQ frame hash"), int(q), ts)
    if isinstance(item, dict):  # the earlier form
        ts_value = float(item["timestamp"])
        return FrameHash(ts_value, normalise_hex(str(item["hash"]), 64, "vPDQ frame hash"), int(item["quality"]))
    raise ValueError("a frame must be a string")


def parse_vpdq(value: str) -> list[FrameHash]:
    try:
        raw = json.loads(value)
    except ValueError:
        raise InvalidHash(f"a vPDQ hash must be {_VPDQ_FORM}: this is not JSON") from None
    try:
        if not isinstance(raw, list):
            raise ValueError("not a list")
        frames = [_frame(d) for d in raw]
    except (ValueError, TypeError, KeyError) as e:
        raise InvalidHash(f"a vPDQ hash must be {_VPDQ_FORM}: {e}") from None
    if not frames:
        raise InvalidHash("vPDQ hash has no frames")
    for f in frames:
        if not 0 <= f.quality <= 100 or not f.timestamp >= 0 or f.timestamp == float("inf"):
            raise InvalidHash(f"a vPDQ frame needs a quality from 0 to 100 and a finite timestamp >= 0: {f}")
    return frames


def usable(frames: list[FrameHash]) -> list[FrameHash]:
    return [f for f in frames if f.quality >= PDQ_MIN_QUALITY]


def time_ranges(times: list[float], step: float = 1.0 / FRAMES_PER_SECOND) -> list[tuple[float, float]]:
    """Merge sampled frame times into [start, end) ranges (a gap of more than one sample splits a range)."""
    out: list[tuple[float, float]] = []
    for t in sorted(set(times)):
        if out and t - out[-1][1] <= step * 0.5 + 1e-6:
            out[-1] = (out[-1][0], t + step)
        else:
            out.append((t, t + step))
    return [(round(a, 3), round(b, 3)) for a, b in out]


@dataclass
class VideoMatch:
    matched: bool
    query_fraction: float
    bank_fraction: float
    query_ranges: list[tuple[float, float]] = field(default_factory=list)
    bank_ranges: list[tuple[float, float]] = field(default_factory=list)
    matched_frames: int = 0
    best_frame_distance: int = 256


def score_video_match(
    query_times: list[float],
    n_query: int,
    bank_times: list[float],
    n_bank: int,
    best_distance: int,
    fraction: float = VIDEO_MATCH_FRACTION,
) -> VideoMatch:
    """Decide a video match from which usable frames matched on each side."""
    q_matched, b_matched = len(set(query_times)), len(set(bank_times))
    qf = q_matched / n_query if n_query else 0.0
    bf = b_matched / n_bank if n_bank else 0.0
    enough = min(q_matched, b_matched) >= min(MIN_MATCHED_FRAMES, n_query, n_bank)
    return VideoMatch(
        matched=enough and (qf >= fraction or bf >= fraction),
        query_fraction=round(qf, 4),
        bank_fraction=round(bf, 4),
        query_ranges=time_ranges(query_times),
        bank_ranges=time_ranges(bank_times),
        matched_frames=q_matched,
        best_frame_distance=best_distance,
    )


def compare_frames(query: list[FrameHash], bank: list[FrameHash], threshold: int = PDQ_THRESHOLD) -> VideoMatch:
    """Brute-force frame comparison of two videos (for `/m/compare` and tests; lookups use the index)."""
    q, b = usable(query), usable(bank)
    if not q or not b:
        return VideoMatch(False, 0.0, 0.0)
    qw, bw = hexes_to_words([f.hash for f in q]), hexes_to_words([f.hash for f in b])
    d = np.stack([popcount_rows(bw ^ row[None, :]) for row in qw])  # (len(q), len(b))
    hit = d <= threshold
    qt = [q[i].timestamp for i in np.flatnonzero(hit.any(axis=1))]
    bt = [b[j].timestamp for j in np.flatnonzero(hit.any(axis=0))]
    return score_video_match(qt, len(q), bt, len(b), int(d.min()))


def hash_video(media: Media, fps: float = FRAMES_PER_SECOND) -> list[FrameHash]:
    if media.info.kind is not MediaKind.VIDEO:
        raise MediaError(f"vPDQ hashes videos; {media.info.path} is a {media.info.kind.value}")
    frames = []
    for fr in media.frames(FrameSampling.rate(fps)):
        r = pdq_from_rgb(fr.rgb)
        frames.append(FrameHash(fr.time_s, r.hash, r.quality))
    if not frames:
        raise MediaError(f"{media.info.path}: no decodable video frames")
    return frames


class VideoIndex(SignalIndex):
    """vPDQ: every usable frame hash in one Hamming index (key = signal id, aux = frame time in ms)."""

    def __init__(self) -> None:
        self.frames = HammingIndex()
        self.n_frames: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.n_frames)

    def add(self, key: int, group: int, value: str) -> None:
        good = usable(parse_vpdq(value))
        if not good:
            return
        self.frames.add_many(
            hexes_to_words([f.hash for f in good]),
            np.full(len(good), key, dtype=np.int64),
            group,
            np.array([round(f.timestamp * 1000) for f in good], dtype=np.int32),
        )
        self.n_frames[key] = len(good)

    def remove(self, key: int) -> None:
        if self.n_frames.pop(key, None) is not None:
            self.frames.remove(key)

    def search(self, values: Sequence[str], thresholds: BankThresholds) -> list[IndexHit]:
        """Banked videos enough of whose frames match the query's (the first value) on either side."""
        q = usable(parse_vpdq(values[0]))
        per_key: dict[int, tuple[int, set[float], set[float], list[int]]] = {}
        for f in q:
            for h in self.frames.search(hex_to_words(f.hash), thresholds.max, thresholds.per_group):
                g, qt, bt, best = per_key.setdefault(h.key, (h.group, set(), set(), [256]))
                qt.add(f.timestamp)
                bt.add(h.aux / 1000.0)
                best[0] = min(best[0], h.distance)
        out = []
        for key, (g, qt, bt, best) in per_key.items():
            m = score_video_match(sorted(qt), len(q), sorted(bt), self.n_frames.get(key, len(bt)), best[0])
            if m.matched:
                out.append(IndexHit(key, g, video_distance(m), video=video_detail(m)))
        return out

    def stats(self) -> dict[str, float | int]:
        return {"videos": len(self), **self.frames.stats()}


def video_distance(m: VideoMatch) -> float:
    """1 - the larger matched fraction: 0 when every frame of one video is found in the other."""
    return round(1.0 - max(m.query_fraction, m.bank_fraction), 4)


def video_detail(m: VideoMatch) -> VideoDetail:
    return {
        "query_fraction": m.query_fraction,
        "bank_fraction": m.bank_fraction,
        "query_ranges": m.query_ranges,
        "bank_ranges": m.bank_ranges,
        "matched_frames": m.matched_frames,
        "best_frame_distance": m.best_frame_distance,
    }


class VpdqSignal(SignalType):
    name = "vpdq"
    content_types = (ContentType.VIDEO,)
    default_threshold = PDQ_THRESHOLD  # per frame
    perceptual = True

    def hash_media(self, media: Media) -> SignalHash:
        frames = hash_video(media)
        q = usable(frames)
        quality = int(np.median([f.quality for f in frames])) if frames else 0
        return SignalHash(self.name, format_vpdq(frames), quality if q else 0)

    def validate(self, value: str) -> str:
        return format_vpdq(parse_vpdq(value))

    def distance(self, a: str, b: str) -> float:
        """1 - the larger matched fraction: 0 when every frame of one video is found in the other."""
        return video_distance(compare_frames(parse_vpdq(a), parse_vpdq(b)))

    def compare(self, a: str, b: str, threshold: int | None = None) -> Comparison:
        m = compare_frames(parse_vpdq(a), parse_vpdq(b), self.default_threshold if threshold is None else threshold)
        return Comparison(
            matched=m.matched,
            distance=video_distance(m),
            detail={
                "query_match_percent": round(100 * m.query_fraction, 2),
                "compared_match_percent": round(100 * m.bank_fraction, 2),
                "query_ranges": [list(r) for r in m.query_ranges],
                "compared_ranges": [list(r) for r in m.bank_ranges],
            },
        )

    def make_index(self) -> VideoIndex:
        return VideoIndex()

    def needs_review(self, hit: IndexHit, threshold: float) -> bool:
        """Partial matches, and matches whose best frame is near the threshold."""
        if hit.video is None:
            return False
        best = max(hit.video["query_fraction"], hit.video["bank_fraction"])
        return best < 0.9 or hit.video["best_frame_distance"] > threshold - REVIEW_MARGIN


register_signal(VpdqSignal())
