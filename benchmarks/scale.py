"""Scale-out benchmark: the same files through this machine's process pool and through Ray, and scan jobs through
service worker processes on one PostgreSQL; every figure beside its baseline from the same run.

  PYTHONPATH=src python benchmarks/scale.py                      # 20 photos, a throwaway Ray cluster and PostgreSQL
  PYTHONPATH=src python benchmarks/scale.py --files 40 --ray 10.0.0.5:6379 --database-url postgresql+psycopg://...

Sections
  batch    files/s of `scan_file` on the same files: process pool with 1 and 2 workers, Ray with 1 and 2 actors
           (workers started and models loaded before the clock starts), the 1-to-2 speed-ups, Ray's overhead per
           file against the pool, and peak memory per worker / actor.
  jobs     scan jobs/s through 1 and 2 `deepshield worker` processes claiming from one PostgreSQL database (after
           one warm-up job per worker, so model loading is not counted).
  retro    retroactive search of --stored random PDQ hashes (a Parquet output like `hash --ray` writes) with 100
           copies planted at distances 0-31: recall and time, one process (one shard) beside 2 shards on Ray.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from deepshield.detect.archive import ScanTask  # noqa: E402
from deepshield.detect.pipeline import ScanOptions  # noqa: E402
from deepshield.scale.batch import BatchStats, connect, disconnect, run_on_pool, run_on_ray  # noqa: E402
from deepshield.scale.task import FileOutcome  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "faces"
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("DEEPSHIELD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAY_USAGE_STATS_ENABLED": "0", "GLOG_minloglevel": "2"}


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        time.sleep(1)


@contextmanager
def ray_head(cpus: int) -> Iterator[str]:
    """A throwaway one-node cluster in its own process group (stopped by signalling that group only)."""
    tmp = Path(tempfile.mkdtemp(prefix="dsbray-", dir="/tmp"))
    port = _port()
    log = tmp / "head.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", "--head", "--num-cpus", str(cpus), "--port", str(port),
             "--node-ip-address", "127.0.0.1", "--temp-dir", str(tmp), "--include-dashboard", "false",
             "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
        )  # fmt: skip
    try:
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        _stop_group(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server from Debian's binaries on a loopback port."""
    tmp = Path(tempfile.mkdtemp(prefix="dsbpg-"))
    user_cmd: Callable[[list[str]], list[str]] = lambda c: c  # noqa: E731
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
        user_cmd = lambda c: ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{x}'" for x in c)]  # noqa: E731
    port, data = _port(), tmp / "data"
    subprocess.run(user_cmd([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "ds"]), check=True,
                   capture_output=True)  # fmt: skip
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(user_cmd([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w", "-o", opts,
                             "start"]), check=True, capture_output=True)  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=ds dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE bench")
        yield f"postgresql+psycopg://ds@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(user_cmd([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)


def _batch(run: Callable[..., BatchStats], files: list[Path], task: ScanTask, **kw: object) -> BatchStats:
    outcomes: list[FileOutcome] = []
    stats = run(files, task, outcomes.append, **kw)
    assert len(outcomes) == len(files), (len(outcomes), len(files))
    return stats


@contextmanager
def _cluster(ray_address: str | None) -> Iterator[None]:
    """Connected to the given cluster, or to a throwaway 2-CPU head started (and stopped) here."""
    if ray_address is None:
        with ray_head(cpus=2) as address:
            connect(address)
            try:
                yield
            finally:
                disconnect()
    else:
        connect(ray_address)
        try:
            yield
        finally:
            disconnect()


def section_batch(files: list[Path], ray_address: str | None, rounds: int) -> None:
    """Each round runs the four set-ups back to back, so the machine's changing load hits all of them alike;
    the median of the rounds is printed."""
    task = ScanTask(ScanOptions())
    setups: dict[tuple[str, int], Callable[[], BatchStats]] = {}
    for k in (1, 2):
        setups[("process pool", k)] = lambda k=k: _batch(run_on_pool, files, task, workers=k)  # type: ignore[misc]
        setups[("Ray", k)] = lambda k=k: _batch(run_on_ray, files, task, workers=k)  # type: ignore[misc]
    runs: dict[tuple[str, int], list[BatchStats]] = {key: [] for key in setups}
    with _cluster(ray_address):
        for _ in range(rounds):
            for key, run in setups.items():
                runs[key].append(run())
    n = len(files)
    rate = {key: statistics.median(n / s.elapsed_s for s in r) for key, r in runs.items()}
    print(f"\n== batch: {n} files, scan_file (photos), files/s with workers started and models loaded; median of "
          f"{rounds} interleaved round(s) ==")  # fmt: skip
    for key, r in sorted(runs.items()):
        mem = ", ".join(f"{m:.0f}" for m in r[-1].worker_memory_mb)
        each = " ".join(f"{n / s.elapsed_s:.2f}" for s in r)
        print(f"{key[0]:13s} {key[1]} worker(s): {rate[key]:6.2f} files/s  (rounds: {each}; "
              f"{sum(s.failed for s in r)} failed; peak MiB per worker: {mem})")  # fmt: skip
    p1, p2, r1, r2 = (rate[(name, k)] for name in ("process pool", "Ray") for k in (1, 2))
    print(f"speed-up 1 -> 2 workers: process pool {p2 / p1:.2f}x, Ray {r2 / r1:.2f}x "
          f"(Ray's speed-up / pool's: {(r2 / r1) / (p2 / p1):.2f})")  # fmt: skip
    print(f"Ray 2 workers / pool 2 workers: {r2 / p2:.2f} of the pool's files/s")
    for k in (1, 2):
        over = (k / rate[("Ray", k)] - k / rate[("process pool", k)]) * 1000
        print(f"Ray overhead per file with {k} worker(s): {over:+.1f} ms of worker time (median rates)")


def _worker(url: str, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**_env(), "DATABASE_URL": url, "DEEPSHIELD_HOME": str(home)}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "deepshield.cli.main", "worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


def _jobs_per_s(url: str, files: list[Path], workers: int, home: Path) -> float:
    from sqlalchemy import func, select

    from deepshield.config import Settings
    from deepshield.detect.models import ScanRecord
    from deepshield.detect.service import ScanService
    from deepshield.store.db import session_scope, upgrade_schema

    st = Settings(home=home, database_url=url, scan_workers=0)
    upgrade_schema(st)
    recorder = ScanService(st)

    def run(batch: list[Path]) -> float:
        t0 = time.perf_counter()
        ids = [recorder.create(p.name, p, None, "bench", report=False) for p in batch]
        while True:
            with session_scope(st) as s:
                left = s.scalar(
                    select(func.count()).where(ScanRecord.id.in_(ids), ScanRecord.status.in_(("queued", "running")))
                )
            if not left:
                return time.perf_counter() - t0
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise RuntimeError(f"worker {i} exited:\n" + logs[i].read_text(errors="replace")[-3000:])
            time.sleep(0.05)

    logs = [home / f"worker-{workers}-{i}.log" for i in range(workers)]
    procs = [_worker(url, home, log) for log in logs]
    try:
        run(files[:workers] * 2)  # warm-up: every worker loads its models
        return len(files) / run(files)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        recorder.shutdown()


def section_jobs(files: list[Path], database_url: str | None) -> None:
    home = Path(tempfile.mkdtemp(prefix="dsbjobs-"))
    try:
        if database_url is None:
            with postgres() as url:
                rates = {k: _jobs_per_s(url, files, k, home) for k in (1, 2)}
        else:
            rates = {k: _jobs_per_s(database_url, files, k, home) for k in (1, 2)}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n== jobs: {len(files)} scan jobs (photos, no report) through `deepshield worker` on PostgreSQL ==")
    for k, r in rates.items():
        print(f"{k} worker process(es): {r:6.2f} jobs/s")
    print(f"speed-up 1 -> 2 worker processes: {rates[2] / rates[1]:.2f}x")


def _hex_rows(codes: object) -> object:
    """(n, 32) uint8 -> an Arrow string array of n 64-digit hex hashes, without a Python loop."""
    import numpy as np
    import pyarrow as pa

    table = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    c = np.asarray(codes, dtype=np.uint8)
    digits = np.empty((c.shape[0], 64), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = table[c >> 4], table[c & 15]
    offsets = np.arange(0, 64 * c.shape[0] + 1, 64, dtype=np.int32)
    return pa.StringArray.from_buffers(c.shape[0], pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()))


def section_retro(stored: int, ray_address: str | None) -> None:
    """Stored hashes in the layout `hash --ray --out X.parquet` writes (file, sha256, error, json, pdq columns,
    parts of 500,000 rows), written straight from random arrays so that 10 million take seconds."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deepshield.matching.retro import ArchiveQuery, search_archive
    from deepshield.scale.outputs import BASE_COLUMNS

    rng = np.random.default_rng(28)
    query = rng.integers(0, 256, 32, dtype=np.uint8)
    planted: dict[str, int] = {}
    tmp = Path(tempfile.mkdtemp(prefix="dsbretro-"))
    folder = tmp / "hashes.parquet"
    folder.mkdir()
    try:
        t0 = time.perf_counter()
        part_rows, every = 500_000, max(1, stored // 100)
        for part, first in enumerate(range(0, stored, part_rows)):
            n = min(part_rows, stored - first)
            codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
            for i in range(first + (-first) % every, first + n, every):
                if len(planted) < 100:
                    d = len(planted) % 32
                    bits = np.unpackbits(query)
                    bits[rng.choice(256, size=d, replace=False)] ^= 1
                    codes[i - first] = np.packbits(bits)
                    planted[f"/a/{i}"] = d
            files = pa.array([f"/a/{i}" for i in range(first, first + n)])
            nulls = pa.nulls(n, pa.string())
            columns = {"file": files, "sha256": nulls, "error": nulls, "json": nulls, "pdq": _hex_rows(codes)}
            assert tuple(columns)[: len(BASE_COLUMNS)] == BASE_COLUMNS
            pq.write_table(pa.table(columns), folder / f"part-bench-{part:05d}.parquet")
        print(f"\n== retro: {stored:,} stored PDQ hashes, {len(planted)} planted copies (distance 0-31); "
              f"written in {time.perf_counter() - t0:.1f} s ==")  # fmt: skip
        queries = [ArchiveQuery.parse("pdq", query.tobytes().hex())]
        local = search_archive(folder, queries, shards=1)
        with _cluster(ray_address):
            on_ray = search_archive(folder, queries, shards=2, on_ray=True)
        for name, r in (("one process, 1 shard", local), ("Ray, 2 shards", on_ray)):
            found = {c.file: c.distance for c in r.copies}
            recall = sum(1 for f, d in planted.items() if found.get(f) == d) / len(planted)
            extra = len(set(found) - set(planted))
            print(f"{name:22s}: recall {recall:.0%}, {extra} other rows listed, {r.elapsed_s:6.2f} s "
                  f"({r.rows / r.elapsed_s / 1e6:.2f} M hashes/s, {r.rows:,} read)")  # fmt: skip
        print(f"Ray 2 shards / one process: {local.elapsed_s / on_ray.elapsed_s:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--sections", default="batch,jobs,retro")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the batch section")
    ap.add_argument("--stored", type=int, default=1_000_000, help="stored hashes for the retro section")
    ap.add_argument("--ray", help="an existing cluster's address (default: a throwaway 2-CPU head on this machine)")
    ap.add_argument("--database-url", help="PostgreSQL for the jobs section (default: a throwaway server)")
    args = ap.parse_args()
    photos = sorted((FACES / "real_photos").glob("*.jpg"))[: args.files]
    if len(photos) < args.files:
        print(f"need {args.files} photos in {FACES / 'real_photos'}", file=sys.stderr)
        return 2
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; run {uuid.uuid4().hex[:6]}")
    sections = set(args.sections.split(","))
    if "batch" in sections:
        section_batch(photos, args.ray, args.rounds)
    if "jobs" in sections:
        section_jobs(photos, args.database_url)
    if "retro" in sections:
        section_retro(args.stored, args.ray)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
