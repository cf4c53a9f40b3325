"""Medians of repeated timings, shared by the benchmarks: machines here are noisy, so every figure is a median,
and figures compared with each other are taken in turn so that a machine slowing down weighs on all alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def timed_alternately(fns: list[Callable[[], object]], repeats: int, warm_up: bool = True) -> list[float]:
    """Median time of each function, run in turn `repeats` times (after one warm-up each, unless told not to)."""
    for fn in fns if warm_up else []:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]
