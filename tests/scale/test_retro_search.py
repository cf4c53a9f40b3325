"""Retroactive search over stored archive hashes: planted copies found at every distance within the PDQ
threshold and none beyond it, the same whatever the sharding, from JSON lines and from Parquet parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepshield.matching.retro import ArchiveQuery, search_archive
from deepshield.scale.outputs import ParquetSink
from deepshield.scale.task import FileOutcome
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
    for archive in ("../deepshield.db", "/etc/passwd", "missing.jsonl"):
        r = app_client.post("/v1/banks/VIRAL/archive-searches", json={"archive": archive}, headers=key)
        assert r.status_code == 404, (archive, r.text)
    r = app_client.post("/v1/banks/NOPE/archive-searches", json={"archive": "june.jsonl"}, headers=key)
    assert r.status_code == 404 and "NOPE" in r.text
    assert app_client.get("/v1/archive-searches/nope", headers=key).status_code == 404
    assert app_client.post("/v1/banks/VIRAL/archive-searches", json={"archive": "june.jsonl"}).status_code == 401
