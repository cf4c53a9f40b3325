"""Decoding ahead in a background thread, so the next frames are ready while the caller analyses this one.

A scan spends about as long decoding its sampled frames as it spends finding faces in them; FFmpeg, OpenCV,
mediapipe and onnxruntime all release the GIL, so on two cores the two halves overlap instead of adding up.
The queue is small (a few decoded frames), so memory stays bounded however long the video is.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Generic, TypeVar

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
    ahead = Prefetcher(items, depth)
    try:
        yield from ahead
    finally:
        ahead.close()


class Prefetcher(Generic[T]):
    """`prefetch`'s producer, started when made rather than when first read: work queued now (a scan's temporal
    windows) is decoded while the caller is busy with something else. Iterate it once; always `close` it."""

    def __init__(self, items: Callable[[], Iterable[T]], depth: int = 4) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._ready: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._items = items
        self._worker = threading.Thread(target=self._produce, name="deepshield-prefetch", daemon=True)
        self._worker.start()

    def _put(self, item: T | _Done) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        source: Iterator[T] | None = None
        try:
            source = iter(self._items())
            for item in source:
                if not self._put(item):
                    return
            self._put(_Done())
        except BaseException as e:  # handed to the consumer, which raises it in its own thread
            self._put(_Done(e))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._ready.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        """Stop the producer and wait for it (idempotent)."""
        self._stop.set()
        self._worker.join()
