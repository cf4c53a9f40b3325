"""Retroactive search over stored archive hashes: planted copies found at every distance within the PDQ
threshold and none beyond it, the same whatever the sharding, from JSON lines and from Parquet parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepshield.matching.retro import ArchiveQuery, search_archive
from deepshield.scale.outputs import ParquetSink
from deepshield.scale.task import FileOutcome

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
        for r in rows:
            sink.write(_outcome(r))
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
