"""Worker processes for the commands that analyse many files at once (scan, evaluate, the liveness suite), and
the service's periodic threads (webhook outbox, audit checkpoints, exchange fetches).

Every such pool is spawned, never forked: a fork of a process that already holds MediaPipe's graphs (or an
onnxruntime session) corrupts its heap, and the parent usually holds them by the time it starts workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Self

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """Unique per worker and readable in the tables that name a job's process: host, process id, random tail."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def spawn_pool(
    workers: int, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer, initargs=initargs
    )


class PeriodicThread:
    """A daemon thread calling `tick` every `interval_s` until `stop()`: at once when `at_once`, else first after
    one interval; `kick()` runs the next round now. A round that raises is logged and the next one still runs,
    so one bad round never ends a service's worker; `stopping` lets a long round give up early on shutdown."""

    def __init__(self, name: str, interval_s: float, tick: Callable[[], object], *, at_once: bool = True) -> None:
        self.name, self.interval_s, self.tick, self.at_once = name, interval_s, tick, at_once
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def kick(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to end and wait for the round in progress (at most `timeout_s`: it is a daemon)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        if not self.at_once:
            self._sleep()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep the thread alive; the next round tries again
                log.exception("%s: round failed", self.name)
            self._sleep()

    def _sleep(self) -> None:
        self._wake.wait(self.interval_s)
        self._wake.clear()
