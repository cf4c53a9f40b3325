"""Retroactive search over stored archive hashes: planted copies found at every distance within the PDQ
threshold and none beyond it, the same whatever the sharding, from JSON lines and from Parquet parts; searches as
database rows that any service process reads, and a search whose process died reads as failed."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepshield.config import Settings
from deepshield.matching import retro_jobs
from deepshield.matching.retro import ArchiveQuery, search_archive
from deepshield.matching.retro_jobs import ArchiveSearchJob, ArchiveSearchService
from deepshield.scale.outputs import ParquetSink
from deepshield.scale.task import FileOutcome
from deepshield.store.db import reset_engines, session_scope, upgrade_schema
from deepshield.store.timeutil import utcnow
from tests.conftest import auth

REPO = Path(__file__).resolve().parents[2]


def _flip(value: str, bits: int, rng: np.random.Generator) -> str:
    n = int(value, 16)
    for b in rng.choice(256, size=bits, replace=False):
        n ^= 1 << int(b)
    return f"{n:064x}"


def _archive(rng: np.random.Generator, query: str, n: int = 3000) -> tuple[list[dict[str, str]], dict[str, int]]:
    rows = [
        {"file": f"/archive/{i:05d}.jpg", "pdq": rng.bytes(32).hex(), "sha256": rng.bytes(32).hex()} for i in range(n)
    ]
    planted = {}
    for k, d in enumerate((0, 7, 25, 31)):  # within the threshold (31)
        i = 100 + k * (n // 5)
        rows[i]["pdq"] = _flip(query, d, rng)
        planted[rows[i]["file"]] = d
    rows[50]["pdq"] = _flip(query, 40, rng)  # a near miss that must not be listed
    return rows, planted


def _outcome(row: dict[str, str]) -> FileOutcome:
    return FileOutcome(row["file"], row["sha256"], dict(row), None, {"pdq": row["pdq"], "sha256": row["sha256"]})


@pytest.mark.parametrize("form", ["jsonl", "parquet"])
def test_planted_copies_found_whatever_the_sharding(form: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    query = rng.bytes(32).hex()
    rows, planted = _archive(rng, query)
    exact = rows[2999]["sha256"]
    if form == "jsonl":
        source = tmp_path / "hashes.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"file": "/torn', encoding="utf-8")
    else:
        pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (the scale extra)")
        source = tmp_path / "hashes.parquet"
        sink = ParquetSink(source, ("pdq", "sha256"), rows_per_part=700)
        for row in rows:
            sink.write(_outcome(row))
        sink.close()
    queries = [ArchiveQuery.parse("pdq", query.upper()), ArchiveQuery.parse("sha256", exact)]
    results = [search_archive(source, queries, shards=k) for k in (1, 3, 7)]
    for r in results:
        assert r.rows == len(rows)  # every row read exactly once across the shards
        pdq = {c.file: c.distance for c in r.copies if c.signal_type == "pdq"}
        assert pdq == planted  # recall 100%, and no row beyond the threshold
        assert [c.file for c in r.copies if c.signal_type == "sha256"] == [rows[2999]["file"]]
    assert results[0].copies == results[1].copies == results[2].copies


def test_bank_add_hash_searches_the_archive(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    query = rng.bytes(32).hex()
    rows, planted = _archive(rng, query, n=1000)
    source = tmp_path / "hashes.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    env = {**os.environ, "DEEPSHIELD_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO / "src")}
    env.pop("DATABASE_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deepshield.cli.main", *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert cli("bank", "create", "VIRAL").returncode == 0
    r = cli("bank", "add-hash", "VIRAL", "pdq", query, "--search-archive", str(source))
    assert r.returncode == 0, r.stderr
    found = {json.loads(x)["file"]: json.loads(x)["distance"] for x in r.stdout.splitlines() if x.startswith("{")}
    assert found == planted and f"{len(planted)} copies in 1000 stored hashes" in r.stderr
    r = cli("search-archive", str(source), "--bank", "VIRAL", "--shards", "2")
    assert r.returncode == 0 and {json.loads(x)["file"] for x in r.stdout.splitlines()} == set(planted)
    r = cli("search-archive", str(tmp_path / "missing.jsonl"), "--hash", "pdq:" + query)
    assert r.returncode == 2 and "no such archive output" in r.stderr and "Traceback" not in r.stderr
    r = cli("search-archive", str(source), "--hash", "pdq:xyz")
    assert r.returncode == 2 and "64 hex digits" in r.stderr


def test_archive_search_job_over_the_api(app_client: Any, api_key: Any, ds_home: Path) -> None:
    from deepshield.matching import service as svc
    from deepshield.store.db import session_scope

    rng = np.random.default_rng(5)
    query = rng.bytes(32).hex()
    rows, planted = _archive(rng, query, n=2000)
    (ds_home / "archives").mkdir(parents=True, exist_ok=True)
    (ds_home / "archives" / "june.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with session_scope() as s:
        svc.create_bank(s, "VIRAL")
        svc.add_hash(s, "VIRAL", "pdq", query, svc.EntryMeta())
    key = auth(api_key("curate"))
    r = app_client.post("/v1/banks/VIRAL/archive-searches", json={"archive": "june.jsonl"}, headers=key)
    assert r.status_code == 202, r.text
    url = r.json()["status_url"]
    deadline = time.monotonic() + 60
    while (job := app_client.get(url, headers=key).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["status"] == "done" and job["progress"] == 1.0 and job["stored_hashes"] == 2000, job
    assert {c["file"]: c["distance"] for c in job["copies"]} == planted
    # Paths outside the archives folder, unknown banks and unknown jobs: clear 4xx.
    # A NUL byte or an over-long name is no file name: 404 as well, not a 500 (schemathesis sent "\u0000").
    for archive in ("../deepshield.db", "/etc/passwd", "missing.jsonl", "\x00", "june.jsonl\x00", "a" * 1000):
        r = app_client.post("/v1/banks/VIRAL/archive-searches", json={"archive": archive}, headers=key)
        assert r.status_code == 404, (archive, r.text)
    r = app_client.post("/v1/banks/NOPE/archive-searches", json={"archive": "june.jsonl"}, headers=key)
    assert r.status_code == 404 and "NOPE" in r.text
    assert app_client.get("/v1/archive-searches/nope", headers=key).status_code == 404
    assert app_client.post("/v1/banks/VIRAL/archive-searches", json={"archive": "june.jsonl"}).status_code == 401


def _bank_and_archive(st: Settings, n: int) -> dict[str, int]:
    """Bank VIRAL holding one PDQ hash, and archive `june.jsonl` under the service's archives folder."""
    from deepshield.matching import service as svc

    rng = np.random.default_rng(3)
    query = rng.bytes(32).hex()
    rows, planted = _archive(rng, query, n=n)
    (st.home / "archives").mkdir(parents=True, exist_ok=True)
    (st.home / "archives" / "june.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    upgrade_schema(st)
    with session_scope(st) as s:
        svc.create_bank(s, "VIRAL")
        svc.add_hash(s, "VIRAL", "pdq", query, svc.EntryMeta())
    return planted


def _until(what: str, ok: Callable[[], object]) -> None:
    deadline = time.monotonic() + 120
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _read(service: ArchiveSearchService, search_id: str) -> ArchiveSearchJob:
    job = service.get(search_id)
    assert job is not None, "the other service does not know the search"
    return job


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_search_job_read_through_another_service(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two service objects on one database stand for two service processes: the one running a search writes its
    progress, heartbeat and result to the row, the other reads them; a third (a restart) still has the record."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    st = Settings(home=tmp_path, database_url=url, archive_search_lease_s=3)
    planted = _bank_and_archive(st, n=2000)
    gate, real = threading.Event(), retro_jobs.search_archive

    def held(path: Path, queries: list[ArchiveQuery], **kw: Any) -> Any:
        """The real search, held after its first shard (of 4) until the test has read the progress."""
        report = kw.pop("progress")

        def progress(done: int, total: int) -> None:
            report(done, total)
            gate.wait(120)

        return real(path, queries, progress=progress, **kw)

    monkeypatch.setattr(retro_jobs, "search_archive", held)
    runner, other = ArchiveSearchService(st), ArchiveSearchService(st)
    try:
        search_id = runner.start("VIRAL", "june.jsonl").search_id
        _until("the first shard's progress", lambda: _read(other, search_id).progress > 0)
        job = _read(other, search_id)
        assert (job.status, job.progress, job.copies, job.error) == ("running", 0.25, [], None)
        from deepshield.matching.models import ArchiveSearchRecord

        with session_scope(st) as s:
            row = s.get(ArchiveSearchRecord, search_id)
            assert row is not None and row.worker == runner.worker != other.worker
            beat = row.heartbeat_at

        def renewed() -> bool:  # the runner's heartbeat goes on while its search is held
            with session_scope(st) as s:
                return s.get(ArchiveSearchRecord, search_id).heartbeat_at > beat  # type: ignore[union-attr]

        _until("a heartbeat", renewed)
        assert _read(other, search_id).status == "running"
        gate.set()
        _until("the search to finish", lambda: _read(other, search_id).status not in ("queued", "running"))
        done = _read(other, search_id).to_dict()
        assert done["status"] == "done" and done["progress"] == 1.0 and done["stored_hashes"] == 2000, done
        assert done["copy_count"] == len(planted) and done["error"] is None
        assert {c.file: c.distance for c in _read(other, search_id).copies} == planted
    finally:
        gate.set()
        runner.close()
        other.close()
    restarted = ArchiveSearchService(st)
    try:
        assert _read(restarted, search_id).to_dict() == done
        assert restarted.get("0" * 32) is None
    finally:
        restarted.close()
        reset_engines()


def test_search_whose_process_died_reads_failed(tmp_path: Path) -> None:
    """A search left running by a process that stopped (its heartbeat older than the lease) reads as failed with
    a message saying to start it again, and stays so; a live one reads as running. The table is the migration's."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from deepshield.matching.models import ArchiveSearchRecord
    from deepshield.store.db import Base, get_engine

    st = Settings(home=tmp_path, archive_search_lease_s=60)
    upgrade_schema(st)
    with get_engine(st).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert [d for d in diff if "archive_searches" in repr(d)] == []
    now = utcnow()
    with session_scope(st) as s:
        for search_id, beat in (("dead", now - dt.timedelta(seconds=61)), ("live", now)):
            s.add(
                ArchiveSearchRecord(
                    id=search_id, bank="VIRAL", archive="june.jsonl", status="running", progress=0.5,
                    worker=f"host:{search_id}:1", heartbeat_at=beat, created_at=beat, updated_at=beat,
                )
            )  # fmt: skip
    reader = ArchiveSearchService(st)
    try:
        for _ in range(2):
            dead = _read(reader, "dead").to_dict()
            assert dead["status"] == "failed" and dead["progress"] == 0.5, dead
            assert dead["error"] == "the service process running it stopped; start the search again"
        live = _read(reader, "live")
        assert (live.status, live.error) == ("running", None)
    finally:
        reader.close()
        reset_engines()
