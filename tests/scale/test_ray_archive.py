"""`deepshield scan --ray` and `deepshield hash --ray` on a real two-node Ray cluster: the same results as the local
commands file for file, a broken file reported while the batch goes on, `--resume`, and Parquet output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from deepshield.scale.command import file_sha256
from tests.scale.conftest import deepshield

# Measured times differ between any two runs; everything else in a result must be equal.
_TIMES = ("timing_s", "elapsed_s")


def _by_file(lines: str) -> dict[str, dict[str, Any]]:
    out = {}
    for line in lines.splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["file"]] = {k: v for k, v in rec.items() if k not in _TIMES}
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, shared_faces: Path) -> Path:
    root = tmp_path_factory.mktemp("archive")
    (root / "sub").mkdir()
    for p in sorted((shared_faces / "real_photos").glob("fr_*.jpg"))[:3]:
        shutil.copy(p, root / p.name)
    shutil.copy(shared_faces / "real_videos" / "vr_face2.mp4", root / "sub" / "clip.mp4")
    (root / "sub" / "broken.jpg").write_bytes(b"not an image at all")
    (root / ".hidden.jpg").write_bytes(b"skipped like the local scan skips it")
    return root


def test_scan_on_ray_equals_local_scan(ray_cluster: str, archive: Path, tmp_path: Path) -> None:
    local = deepshield("scan", "--json", "--frames", "8", str(archive))
    assert local.returncode == 1, local.stderr  # the broken file fails
    out = tmp_path / "scan.jsonl"
    on_ray = deepshield(
        "scan", "--ray", ray_cluster, "--ray-workers", "2", "--frames", "8", "--out", str(out), str(archive)
    )
    assert on_ray.returncode == 1, on_ray.stderr
    assert "Traceback" not in on_ray.stderr
    assert "4 done, 1 failed, 0 skipped" in on_ray.stderr, on_ray.stderr
    expected, got = _by_file(local.stdout), _by_file(out.read_text())
    assert len(expected) == 5 and set(got) == set(expected)
    for f in expected:
        assert got[f] == expected[f], f
    assert got[str(archive / "sub" / "broken.jpg")]["ok"] is False
    assert sum(1 for r in got.values() if r["ok"] and r["face_count"]) >= 3  # real faces were found on the cluster

    # --resume: the four done files are skipped, the failed one is tried again.
    again = deepshield("scan", "--ray", ray_cluster, "--frames", "8", "--out", str(out), "--resume", str(archive))
    assert again.returncode == 1 and "0 done, 1 failed, 4 skipped" in again.stderr, again.stderr
    # A file whose content changed under the same path is scanned again.
    photos = sorted(archive.glob("fr_*.jpg"))
    changed = archive / "fr_changed.jpg"
    shutil.copy(photos[0], changed)
    try:
        resumed = deepshield("scan", "--ray", ray_cluster, "--frames", "8", "--out", str(out), "--resume", str(archive))
        assert "1 done, 1 failed, 4 skipped" in resumed.stderr, resumed.stderr
        changed.write_bytes(photos[1].read_bytes())
        resumed = deepshield("scan", "--ray", ray_cluster, "--frames", "8", "--out", str(out), "--resume", str(archive))
        assert "1 done, 1 failed, 4 skipped" in resumed.stderr, resumed.stderr  # the others stay skipped
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert [r["media"]["sha256"] for r in lines if r["file"] == str(changed)] == [
            file_sha256(photos[0]),
            file_sha256(photos[1]),
        ]
    finally:
        changed.unlink()


def test_hash_on_ray_auto_to_parquet_equals_local_hash(ray_cluster: str, archive: Path, tmp_path: Path) -> None:
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet", reason="Parquet output needs pyarrow (the scale extra)")
    local = deepshield("hash", str(archive))
    out = tmp_path / "hashes.parquet"
    on_ray = deepshield("hash", "--ray", "auto", "--out", str(out), str(archive), env={"RAY_ADDRESS": ray_cluster})
    assert on_ray.returncode == local.returncode == 1, on_ray.stderr
    assert "4 done, 1 failed" in on_ray.stderr, on_ray.stderr
    table = pyarrow_parquet.read_table(out).to_pylist()
    got = {row["file"]: json.loads(row["json"]) for row in table}
    assert got == _by_file(local.stdout)
    rows = {row["file"]: row for row in table}
    photo = str(sorted(archive.glob("fr_*.jpg"))[0])
    assert rows[photo]["pdq"] == got[photo]["pdq"] and rows[photo]["sha256"] == got[photo]["sha256"]
    assert rows[str(archive / "sub" / "broken.jpg")]["error"]

    # Retroactive search of those stored hashes, sharded over the cluster's two workers.
    found = deepshield("search-archive", str(out), "--hash", "pdq:" + rows[photo]["pdq"], "--ray", ray_cluster)
    assert found.returncode == 0 and "2 shard(s) on Ray" in found.stderr, found.stderr
    copies = [json.loads(x) for x in found.stdout.splitlines()]
    assert {"file": photo, "signal_type": "pdq", "query": rows[photo]["pdq"], "distance": 0} in copies


def test_archive_options_without_ray_are_refused(tmp_path: Path) -> None:
    r = deepshield("scan", "--out", str(tmp_path / "x.jsonl"), str(tmp_path))
    assert r.returncode == 2 and "go with --ray" in r.stderr and "Traceback" not in r.stderr
    r = deepshield("hash", "--ray", "auto", "--resume", str(tmp_path))
    assert r.returncode == 2 and "--resume needs --out" in r.stderr
