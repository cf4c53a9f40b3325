"""The one safe way in for media: every entry point (CLI, API, batch jobs) opens files through `open_media`.

The type is sniffed from the bytes, never the name; limits on size, pixels, duration, frames and decode time
raise typed errors from `deepshield.errors` before a hostile file can exhaust the machine.
"""

from deepshield.media.limits import MediaLimits
from deepshield.media.open import open_media, open_upload, read_audio, representative_frame
from deepshield.media.sniff import sniff_bytes, sniff_file
from deepshield.media.types import AudioTrack, Frame, FrameSampling, Media, MediaInfo, MediaKind

__all__ = [
    "AudioTrack",
    "Frame",
    "FrameSampling",
    "Media",
    "MediaInfo",
    "MediaKind",
    "MediaLimits",
    "open_media",
    "open_upload",
    "read_audio",
    "representative_frame",
    "sniff_bytes",
    "sniff_file",
]
