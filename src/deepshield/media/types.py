"""Value types shared by every consumer of decoded media."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from deepshield.jsontypes import JsonObject

#: An H x W x 3 RGB picture, one byte a channel: what every decoder yields and every detector reads.
RGBImage: TypeAlias = NDArray[np.uint8]
#: Audio samples, shape (n, channels), in [-1, 1].
AudioSamples: TypeAlias = NDArray[np.float32]
#: A value in `MediaInfo.extra` (EXIF orientation, rotation, audio sample rate and channels, truncated).
MediaExtra: TypeAlias = str | int | float | bool | None


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True)
class FrameSampling:
    """Which frames to decode: `count` evenly spaced frames, or `fps` frames per second (not both).

    Both are served by seeking to keyframes, never by decoding the whole stream.
    """

    count: int | None = 32
    fps: float | None = None
    max_frames: int = 10_000

    @staticmethod
    def evenly(count: int) -> FrameSampling:
        return FrameSampling(count=count, fps=None)

    @staticmethod
    def rate(fps: float, max_frames: int = 10_000) -> FrameSampling:
        return FrameSampling(count=None, fps=fps, max_frames=max_frames)

    def target_times(self, duration_s: float) -> list[float]:
        if duration_s <= 0:
            return [0.0]
        if self.fps is not None:
            step = 1.0 / self.fps
            n = min(self.max_frames, max(1, int(duration_s / step + 1e-9)))
            return [i * step for i in range(n)]
        n = max(1, min(self.count or 1, self.max_frames))
        return [(i + 0.5) * duration_s / n for i in range(n)]


@dataclass
class Frame:
    index: int  # position in the stream (0 for a still image)
    time_s: float
    rgb: RGBImage

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


@dataclass
class AudioTrack:
    sample_rate: int
    samples: AudioSamples

    @property
    def duration_s(self) -> float:
        return float(self.samples.shape[0]) / float(self.sample_rate) if self.sample_rate else 0.0


@dataclass
class MediaInfo:
    """Facts about a file, read from its headers before any heavy decoding."""

    path: str
    kind: MediaKind
    format: str
    mime: str
    size_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    has_audio: bool = False
    extra: dict[str, MediaExtra] = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        d: JsonObject = asdict(self)
        d["kind"] = self.kind.value
        return d


class Media(Protocol):
    """An opened, validated media file."""

    info: MediaInfo

    def frames(self, sampling: FrameSampling | None = None) -> Iterator[Frame]: ...

    def audio(self) -> AudioTrack | None: ...

    def close(self) -> None: ...


def media_path(m: Media) -> Path:
    return Path(m.info.path)
