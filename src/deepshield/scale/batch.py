"""Run a `FileTask` over a stream of paths: on a Ray cluster (one long-lived actor per worker slot, each holding
its task's models) or, as the baseline, on this machine's process pool.

Work is fed lazily: each worker has at most `per_worker` files in flight (one running, one waiting so it never
idles between files), and the next path is taken from the iterator only when a result comes back, so an archive
of a million paths is never held in memory. Results are handed on in the order they finish. A task that raises or
a worker that dies fails its file; Ray restarts a dead actor and the batch goes on.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepshield.errors import DeepshieldError
from deepshield.scale.task import FileOutcome, FileTask
from deepshield.workers import spawn_pool

OnResult = Callable[[FileOutcome], None]


@dataclass
class BatchStats:
    done: int = 0
    failed: int = 0
    workers: int = 0
    elapsed_s: float = 0.0
    #: Peak resident memory of each worker process (MiB), task and models loaded.
    worker_memory_mb: tuple[float, ...] = ()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DeepshieldError("--ray needs Ray: pip install 'deepshield[scale]'") from None
    return ray


def _first_line(e: BaseException) -> str:
    """Ray's errors carry the remote traceback: the cause is its last line, the summary its first."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[-1] if len(lines) > 1 else lines[0] if lines else type(e).__name__)[:300]


def connect(address: str) -> None:
    """Join a running Ray cluster (`auto`: the one on this machine or named by RAY_ADDRESS)."""
    ray = _import_ray()
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise DeepshieldError(f"cannot join the Ray cluster at {address!r}: {e}") from None


def disconnect() -> None:
    """Leave the cluster (before stopping a cluster this process started: a driver left behind exits with it)."""
    ray = _import_ray()
    if ray.is_initialized():
        ray.shutdown()


def cluster_cpus() -> int:
    return max(1, int(_import_ray().cluster_resources().get("CPU", 1)))


def _peak_memory_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class FileWorker:
    """What each worker holds: the task, set up once. The Ray actor class, and the pool workers' global."""

    def __init__(self, task: FileTask) -> None:
        self.task = task
        task.setup()

    def run(self, path: str) -> FileOutcome:
        try:
            return self.task(path)
        except Exception as e:  # noqa: BLE001 - one file's crash is that file's result, not the batch's end
            return FileOutcome.crashed(path, f"{type(e).__name__}: {e}")

    def memory_mb(self) -> float:
        return _peak_memory_mb()


def _feed(paths: Iterator[Path], skip: Callable[[Path], bool] | None) -> Iterator[str]:
    for p in paths:
        if skip is None or not skip(p):
            yield str(p)


def run_on_ray(
    paths: Iterable[Path],
    task: FileTask,
    on_result: OnResult,
    *,
    workers: int | None = None,
    per_worker: int = 2,
    skip: Callable[[Path], bool] | None = None,
) -> BatchStats:
    """On the cluster `connect` joined; `workers` actors (default: one per CPU of the cluster)."""
    ray = _import_ray()
    n = workers or cluster_cpus()
    actor_class = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(FileWorker)
    actors = [actor_class.remote(task) for _ in range(n)]
    try:  # every actor set up (models loaded) before the first file, or one clear error
        ray.get([a.memory_mb.remote() for a in actors])
    except ray.exceptions.RayError as e:
        for a in actors:
            ray.kill(a)
        raise DeepshieldError(
            f"the Ray workers could not start (is deepshield installed on every node?): {_first_line(e)}"
        ) from None
    stats = BatchStats(workers=n)
    t0 = time.perf_counter()
    todo = _feed(iter(paths), skip)
    pending: dict[Any, tuple[int, str]] = {}
    load = [0] * n

    def fill(i: int) -> None:
        while load[i] < per_worker:
            path = next(todo, None)
            if path is None:
                return
            pending[actors[i].run.remote(path)] = (i, path)
            load[i] += 1

    try:
        for i in range(n):
            fill(i)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, path = pending.pop(ref)
            load[i] -= 1
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as e:
                outcome = FileOutcome.crashed(path, f"worker died: {_first_line(e)}")
            stats.done += 1
            stats.failed += not outcome.ok
            on_result(outcome)
            fill(i)
        stats.elapsed_s = time.perf_counter() - t0
        with contextlib.suppress(ray.exceptions.RayError):
            stats.worker_memory_mb = tuple(ray.get([a.memory_mb.remote() for a in actors], timeout=60))
    finally:
        for a in actors:
            ray.kill(a)
    return stats


_pool_worker: FileWorker | None = None


def _pool_init(task: FileTask) -> None:
    global _pool_worker
    _pool_worker = FileWorker(task)


def _pool_run(path: str) -> FileOutcome:
    assert _pool_worker is not None
    return _pool_worker.run(path)


def _pool_memory(_: int) -> float:
    time.sleep(0.2)  # keep this worker busy so the next call lands on another
    return _peak_memory_mb()


def run_on_pool(
    paths: Iterable[Path],
    task: FileTask,
    on_result: OnResult,
    *,
    workers: int,
    per_worker: int = 2,
    skip: Callable[[Path], bool] | None = None,
) -> BatchStats:
    """The same batch on this machine's spawned process pool (the baseline Ray is measured against); like the
    actors, every worker is started and set up before the clock starts."""
    stats = BatchStats(workers=workers)
    todo = _feed(iter(paths), skip)
    with spawn_pool(workers, initializer=_pool_init, initargs=(task,)) as pool:
        list(pool.map(_pool_memory, range(workers)))
        t0 = time.perf_counter()
        pending: dict[Future[FileOutcome], str] = {}

        def fill() -> None:
            while len(pending) < workers * per_worker:
                path = next(todo, None)
                if path is None:
                    return
                pending[pool.submit(_pool_run, path)] = path

        fill()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                path = pending.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as e:  # noqa: BLE001 - a dead pool worker fails its file
                    outcome = FileOutcome.crashed(path, f"worker died: {e}")
                stats.done += 1
                stats.failed += not outcome.ok
                on_result(outcome)
            fill()
        stats.elapsed_s = time.perf_counter() - t0
        stats.worker_memory_mb = tuple(pool.map(_pool_memory, range(workers)))
    return stats
