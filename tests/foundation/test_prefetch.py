"""media.prefetch: decoding ahead in a thread keeps the order, the errors and the clean-up of decoding in line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext
from pathlib import Path

import numpy as np
import pytest

from deepshield.errors import CorruptMedia
from deepshield.media import FrameSampling, open_media
from deepshield.media.prefetch import AHEAD_BUDGET_BYTES, Prefetcher, depth_for_frames, prefetch
from tests.foundation.media_factory import write_video


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "deepshield-prefetch"]


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_items_arrive_in_order_from_another_thread() -> None:
    producers: set[str] = set()

    def source() -> Iterator[int]:
        for i in range(50):
            producers.add(threading.current_thread().name)
            yield i

    assert list(prefetch(source, depth=3)) == list(range(50))
    assert producers == {"deepshield-prefetch"}
    assert _wait_for(lambda: not _prefetch_threads())


def test_background_false_runs_in_the_callers_thread() -> None:
    seen: list[str] = []

    def source() -> Iterator[int]:
        seen.append(threading.current_thread().name)
        yield 1

    assert list(prefetch(source, background=False)) == [1]
    assert seen == [threading.current_thread().name]


def test_a_source_error_is_raised_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise CorruptMedia("video decoding failed: broken packet")

    got: list[int] = []
    with pytest.raises(CorruptMedia, match="broken packet"):
        for item in prefetch(source):
            got.append(item)
    assert got == [1, 2]


def test_a_source_that_fails_to_start_is_an_error_not_a_hang() -> None:
    def source() -> Iterator[int]:
        raise CorruptMedia("cannot open video container: Invalid data found when processing input")

    # source() raises before it yields (a plain function, not a generator). Consumed in a thread so that a
    # regression shows as a failure here rather than a suite that never ends.
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            list(prefetch(source))
        except CorruptMedia as e:
            errors.append(e)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(10)
    assert not consumer.is_alive(), "prefetch hung on a source that failed to start"
    assert len(errors) == 1 and "cannot open" in str(errors[0])


def test_the_producer_stays_at_most_depth_ahead() -> None:
    produced = 0

    def source() -> Iterator[int]:
        nonlocal produced
        for i in range(1000):
            produced += 1
            yield i

    it = prefetch(source, depth=4)
    assert next(it) == 0
    time.sleep(0.3)  # time for the producer to run as far ahead as the queue lets it
    # One taken, four queued, one more in the producer's hand waiting for room.
    assert produced <= 1 + 4 + 1
    it.close()


@pytest.mark.parametrize("how", ["break", "error"])
def test_stopping_early_closes_the_source_in_its_thread(how: str) -> None:
    closed_in: list[str] = []

    def source() -> Iterator[int]:
        try:
            yield from range(10_000)
        finally:
            closed_in.append(threading.current_thread().name)

    expected = pytest.raises(RuntimeError, match="analysis failed") if how == "error" else nullcontext()
    with expected, closing(prefetch(source, depth=2)) as items:
        for i in items:
            if i == 3 and how == "break":
                break
            if i == 3:
                raise RuntimeError("analysis failed")
    assert closed_in == ["deepshield-prefetch"], "the source was not closed, or not by the producer"
    assert _wait_for(lambda: not _prefetch_threads())


def test_frames_held_ahead_stay_within_the_memory_budget() -> None:
    assert depth_for_frames(1280, 720) == 4  # the default depth for ordinary video
    assert depth_for_frames(3840, 2160) == 4 and depth_for_frames(5120, 2880) == 2
    assert depth_for_frames(7680, 4320) == 1 and depth_for_frames(10_000, 8_000) == 1  # never zero
    assert depth_for_frames(None, None) == 4
    for w, h in ((1920, 1080), (3840, 2160), (5120, 2880)):
        assert depth_for_frames(w, h) * w * h * 3 <= AHEAD_BUDGET_BYTES


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        next(prefetch(lambda: [1], depth=0))


def test_real_video_frames_are_the_same_as_decoding_in_line(tmp_path: Path) -> None:
    p = write_video(tmp_path / "v.mp4", n=120, fps=25, gop=12)
    media = open_media(p)
    sampling = FrameSampling.evenly(9)
    plain = list(media.frames(sampling))
    ahead = list(prefetch(lambda: media.frames(sampling), depth=2))
    assert [f.index for f in ahead] == [f.index for f in plain] and len(ahead) == 9
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(ahead, plain, strict=True))


def test_a_video_corrupted_part_way_gives_its_frames_then_a_typed_error(tmp_path: Path) -> None:
    """Damage to the later packets (the index stays whole): whatever the decoder makes of them, the caller sees
    frames in order and then either the end or a CorruptMedia, never a hang or an error from the wrong thread."""
    p = write_video(tmp_path / "v.mp4", n=200, fps=25, gop=10, size=(320, 240))
    data = bytearray(p.read_bytes())
    mdat, moov = data.find(b"mdat"), data.find(b"moov")
    assert 0 < mdat < moov, "expected the index (moov) after the packets (mdat)"
    rng = np.random.default_rng(1)
    for pos in rng.integers(mdat + (moov - mdat) // 2, moov - 8, 400):
        data[pos] = rng.integers(0, 256)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    media = open_media(bad)
    got = []
    try:
        for f in prefetch(lambda: media.frames(FrameSampling.evenly(20)), depth=2):
            got.append(f.index)
    except CorruptMedia:
        pass
    assert got == sorted(got) and len(got) >= 5, got  # the undamaged first half still decodes
    assert _wait_for(lambda: not _prefetch_threads())


def test_a_prefetcher_produces_before_it_is_read_and_stops_when_closed_unread() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    ahead = Prefetcher(source, depth=2)
    try:
        # Started when made: the queue fills (2 items, a third waiting to be put) with nobody reading yet.
        assert _wait_for(lambda: len(produced) >= 3)
        time.sleep(0.1)
        assert len(produced) == 3
    finally:
        ahead.close()
    assert not ahead._worker.is_alive()
    ahead2 = Prefetcher(source, depth=2)
    assert list(ahead2)[:3] == [0, 1, 2]
    ahead2.close()
