"""Worker processes for the commands that analyse many files at once (scan, evaluate, the liveness suite).

Every such pool is spawned, never forked: a fork of a process that already holds MediaPipe's graphs (or an
onnxruntime session) corrupts its heap, and the parent usually holds them by the time it starts workers.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def spawn_pool(
    workers: int, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer, initargs=initargs
    )
