"""Decoding ahead in a background thread, so the next frames are ready while the caller analyses this one.

A scan spends about as long decoding its sampled frames as it spends finding faces in them; FFmpeg, OpenCV,
mediapipe and onnxruntime all release the GIL, so on two cores the two halves overlap instead of adding up.
The queue is small (a few decoded frames), so memory stays bounded however long the video is.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TypeVar

from deepshield.media.types import Media, MediaKind

T = TypeVar("T")

#: Seconds between checks of the stop flag while the producer waits for room in the queue.
_POLL_S = 0.05


#: Memory for decoded frames queued ahead of the caller: four 4K frames. Frames so large that one alone exceeds it
#: (8K and up, to the 80 MP limit) are still queued one at a time, never held back entirely.
AHEAD_BUDGET_BYTES = 96 * 1024 * 1024


def depth_for_frames(width: int | None, height: int | None, most: int = 4) -> int:
    """How many RGB frames of this size to decode ahead within `AHEAD_BUDGET_BYTES` (at least one)."""
    frame_bytes = max(1, int(width or 0) * int(height or 0) * 3)
    return max(1, min(most, AHEAD_BUDGET_BYTES // frame_bytes))


def decode_ahead(media: Media, items: Callable[[], Iterable[T]], enabled: bool = True) -> Generator[T, None, None]:
    """`items()` (frames of `media`, or what is made from them) decoded ahead when `media` is a video, as deep as
    its frame size allows; a still image, or `enabled=False`, runs in the caller's thread."""
    info = media.info
    background = enabled and info.kind is MediaKind.VIDEO
    return prefetch(items, depth=depth_for_frames(info.width, info.height), background=background)


class _Done:
    """End of the source; carries the exception that ended it, if one did."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Callable[[], Iterable[T]], depth: int = 4, background: bool = True) -> Generator[T, None, None]:
    """Yield what `items()` yields, in order, produced up to `depth` items ahead in another thread.

    `items` is a callable so that the source is created (and, for a generator, closed) in the thread that runs
    it. An exception in the source is raised here, after the items produced before it. Stopping early (break,
    an exception in the caller, or closing this generator) stops the producer and waits for it to finish.
    `background=False` runs the source in the caller's thread instead (a still image has one frame: a thread
    would only add its start-up), so callers keep one code path.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    if not background:
        yield from items()
        return
    ready: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: T | _Done) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source: Iterator[T] | None = None
        try:
            source = iter(items())
            for item in source:
                if not put(item):
                    return
            put(_Done())
        except BaseException as e:  # handed to the consumer, which raises it in its own thread
            put(_Done(e))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="deepshield-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        worker.join()
