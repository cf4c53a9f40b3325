"""A batch's stored output read back in shards, so N workers each read a disjoint 1/N of an archive's results
without anyone reading it all: a JSON-lines file by byte ranges (a line belongs to the shard its first byte is
in), a Parquet folder by row groups dealt round-robin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from deepshield.errors import DeepshieldError
from deepshield.scale.outputs import is_parquet, load_pyarrow

Columns = dict[str, list[str | None]]


def _jsonl_shard(path: Path, shard: int, shards: int, columns: tuple[str, ...], batch_rows: int) -> Iterator[Columns]:
    size = path.stat().st_size
    start, end = size * shard // shards, size * (shard + 1) // shards
    batch: Columns = {c: [] for c in columns}
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the line under way at `start` belongs to the shard before, unless it starts here
        while f.tell() < end:
            line = f.readline()
            if not line:
                break
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run
            if not isinstance(rec, dict):
                continue
            for c in columns:
                v = rec.get(c)
                batch[c].append(v if isinstance(v, str) else None)
            if len(batch[columns[0]]) >= batch_rows:
                yield batch
                batch = {c: [] for c in columns}
    if batch[columns[0]]:
        yield batch


def _parquet_shard(
    folder: Path, shard: int, shards: int, columns: tuple[str, ...], batch_rows: int
) -> Iterator[Columns]:
    _, pq = load_pyarrow()
    units = [
        (part, rg)
        for part in sorted(folder.glob("part-*.parquet"))
        for rg in range(pq.ParquetFile(part).num_row_groups)
    ]
    for part, rg in units[shard::shards]:
        f = pq.ParquetFile(part)
        present = [c for c in columns if c in f.schema_arrow.names]
        for b in f.iter_batches(batch_size=batch_rows, row_groups=[rg], columns=present):
            n = b.num_rows
            yield {c: b.column(c).to_pylist() if c in present else [None] * n for c in columns}


def read_shard(
    source: Path, shard: int, shards: int, columns: tuple[str, ...], batch_rows: int = 200_000
) -> Iterator[Columns]:
    """The `columns` of shard `shard` of `shards` (0-based) of a batch output, in batches of up to `batch_rows`."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}")
    if "file" not in columns:
        columns = ("file", *columns)
    if is_parquet(source, source.is_dir()):
        if not source.is_dir():
            raise DeepshieldError(f"{source}: no such Parquet folder")
        yield from _parquet_shard(source, shard, shards, columns, batch_rows)
    elif source.is_file():
        yield from _jsonl_shard(source, shard, shards, columns, batch_rows)
    else:
        raise DeepshieldError(f"{source}: no such archive output (a JSON-lines file or a Parquet folder)")
