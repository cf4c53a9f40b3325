"""Many worker processes on one database: scan jobs claimed under a lease, a SIGKILLed worker's job claimed again
and completed once, and the match index in step across processes. Real PostgreSQL (the shared `postgres_url`
server, a database of its own per test) and real worker processes."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from deepshield.config import Settings
from deepshield.detect.jobs import ScanJobQueue
from deepshield.detect.models import ScanRecord
from deepshield.detect.service import ScanService
from deepshield.store.db import reset_engines, session_scope, upgrade_schema

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def pg_db(postgres_url: str) -> Iterator[str]:
    """A fresh database on the shared server, so no other test's queued scans reach these workers."""
    name = "jobs_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        reset_engines()
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _record(st: Settings, path: Path) -> str:
    scans = ScanService(st.model_copy(update={"scan_workers": 0}))
    try:
        return scans.create(path.name, path, None, "test")
    finally:
        scans.shutdown()


def _rows(st: Settings) -> dict[str, ScanRecord]:
    with session_scope(st) as s:
        return {r.id: r for r in s.scalars(sa.select(ScanRecord))}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_lease_lapses_and_only_the_holder_completes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_db") if backend == "postgres" else None
    st = Settings(home=tmp_path, database_url=url)
    upgrade_schema(st)
    scan_id = _record(st, tmp_path / "x.png")
    a, b = ScanJobQueue(st, "worker-a", lease_s=0.5), ScanJobQueue(st, "worker-b", lease_s=30)
    job_a = a.claim()
    assert job_a is not None and job_a.scan_id == scan_id and job_a.attempt == 1
    assert b.claim() is None  # held under a live lease
    assert a.renew(job_a, 0.5)
    deadline = time.monotonic() + 30
    job_b = None
    while job_b is None and time.monotonic() < deadline:  # a renews no more: its lease lapses
        time.sleep(0.1)
        job_b = b.claim()
    assert job_b is not None and job_b.scan_id == scan_id and job_b.attempt == 2
    assert not a.renew(job_a) and not a.complete(job_a, "done", result_json="{}")  # a lost the job
    assert b.complete(job_b, "done", result_json="{}")
    assert not b.complete(job_b, "done", result_json="{}")  # completes once
    row = _rows(st)[scan_id]
    assert (row.status, row.lease_owner, row.attempts) == ("done", None, 2)
    reset_engines()


def _worker(st: Settings, log: Path, lease_s: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DEEPSHIELD_HOME": str(st.home),
        "DATABASE_URL": str(st.database_url),
        "DEEPSHIELD_SCAN_FRAMES": str(st.scan_frames),
        "PYTHONPATH": str(REPO / "src"),
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "deepshield.cli.main", "worker", "--lease", str(lease_s)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _wait(what: str, ok: object, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigkilled_worker_loses_no_job_and_none_completes_twice(tmp_path: Path, pg_db: str, shared_faces: Path) -> None:
    st = Settings(home=tmp_path / "home", database_url=pg_db, scan_frames=48)
    upgrade_schema(st)
    video = shared_faces / "real_videos" / "vr_face1.mp4"  # first in line, and long enough to be killed in
    photos = sorted((shared_faces / "real_photos").glob("fr_*.jpg"))[:4]
    ids = [_record(st, p) for p in [video, *photos]]
    victim = _worker(st, tmp_path / "victim.log", lease_s=2)
    try:
        # Kill it as soon as it holds the video's job (it claims before it even loads its models).
        _wait("the first worker to claim a job", lambda: _rows(st)[ids[0]].status == "running")
        owner = _rows(st)[ids[0]].lease_owner or ""
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert f":{victim.pid}:" in owner
    assert _rows(st)[ids[0]].status == "running", "the worker finished the job before it was killed"
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [_worker(st, log, lease_s=2) for log in logs]
    try:
        _wait("every job to finish", lambda: all(r.status in ("done", "failed") for r in _rows(st).values()))
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(60)
    rows = _rows(st)
    completions = Counter(
        m for log in logs for m in re.findall(r"scan ([0-9a-f]{32}) completed by", log.read_text(errors="replace"))
    )
    print(f"jobs {len(ids)}, completed {sum(completions.values())}, killed job attempts {rows[ids[0]].attempts}")
    assert set(rows) == set(ids) and all(r.status == "done" for r in rows.values()), [
        (r.filename, r.status, r.error) for r in rows.values()
    ]
    assert completions == Counter(ids), completions  # every job completed, each exactly once
    # Claimed again after the killed worker's lease lapsed. More than 2 is allowed: on a loaded machine a live
    # worker can miss a renewal of this 2 s lease and lose the job to the other (seen in a fresh-clone run: 3);
    # the assertions above are the guarantee (every job done, each completed exactly once).
    assert rows[ids[0]].attempts >= 2
    assert all(rows[i].attempts == 1 for i in ids[1:])
    assert all(r.result_json and r.finished_at is not None for r in rows.values())
    assert all(w.returncode == 0 for w in workers)


def test_match_index_in_step_across_processes(tmp_path: Path, pg_db: str) -> None:
    """A hash banked by another process is found by this process's very next lookup (its index is already
    loaded: the change log carries the add)."""
    from deepshield.matching import service as svc

    st = Settings(home=tmp_path, database_url=pg_db)
    upgrade_schema(st)
    value = "f0" * 16 + "0f" * 16
    with session_scope(st) as s:
        svc.create_bank(s, "VIRAL")
        assert svc.lookup_signal(s, "pdq", value, settings=st) == ([], [])  # loads this process's index
    env = {**os.environ, "DATABASE_URL": pg_db, "DEEPSHIELD_HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    added = subprocess.run(
        [sys.executable, "-m", "deepshield.cli.main", "bank", "add-hash", "VIRAL", "pdq", value],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    banked_at = dt.datetime.now(dt.UTC)
    with session_scope(st) as s:
        matches, _ = svc.lookup_signal(s, "pdq", value, settings=st)
    print(f"found {(dt.datetime.now(dt.UTC) - banked_at).total_seconds():.3f} s after the other process banked it")
    assert [(m.bank, m.distance) for m in matches] == [("VIRAL", 0)]
    from deepshield.matching.indexes import reset_indexes

    reset_indexes()
