"""Where a batch's results go as they finish: JSON lines (a file, or stdout) or Parquet (a folder of part files),
and which files an earlier run already did, for `--resume`.

A JSON-lines file is appended to and flushed per file. A Parquet folder gets a new part every `rows_per_part`
results, each written under a temporary name and renamed when complete, so a run killed half-way leaves only
whole parts behind and a resumed run redoes at most one part's worth of files.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO

from deepshield.errors import DeepshieldError
from deepshield.scale.task import FileOutcome

BASE_COLUMNS = ("file", "sha256", "error", "json")


class ResultSink(Protocol):
    def write(self, outcome: FileOutcome) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    def __init__(self, stream: TextIO, owned: bool) -> None:
        self.stream, self.owned = stream, owned

    def write(self, outcome: FileOutcome) -> None:
        self.stream.write(outcome.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.owned:
            self.stream.close()


def load_pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DeepshieldError("Parquet output needs pyarrow: pip install 'deepshield[scale]'") from None
    return pa, pq


class ParquetSink:
    """Columns: file, sha256, error, json (the JSON line) and the task's own string columns."""

    def __init__(self, folder: Path, columns: tuple[str, ...], rows_per_part: int = 1000) -> None:
        pa, self._pq = load_pyarrow()
        self.folder, self.rows_per_part = folder, rows_per_part
        folder.mkdir(parents=True, exist_ok=True)
        self.columns = (*BASE_COLUMNS, *(c for c in columns if c not in BASE_COLUMNS))
        self._schema = pa.schema([(c, pa.string()) for c in self.columns])
        self._pa = pa
        self._rows: list[dict[str, str | None]] = []
        self._run = uuid.uuid4().hex[:8]
        self._parts = 0

    def write(self, outcome: FileOutcome) -> None:
        row = {"file": outcome.file, "sha256": outcome.sha256, "error": outcome.error, "json": outcome.line()}
        row.update({c: outcome.columns.get(c) for c in self.columns[len(BASE_COLUMNS) :]})
        self._rows.append(row)
        if len(self._rows) >= self.rows_per_part:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        table = self._pa.Table.from_pylist(self._rows, schema=self._schema)
        final = self.folder / f"part-{self._run}-{self._parts:05d}.parquet"
        tmp = final.with_suffix(".parquet.tmp")
        self._pq.write_table(table, tmp)
        tmp.rename(final)
        self._parts += 1
        self._rows = []

    def close(self) -> None:
        self._flush()


def is_parquet(out: Path | None, parquet: bool) -> bool:
    return parquet or (out is not None and out.suffix == ".parquet")


def open_sink(out: Path | None, *, parquet: bool, columns: tuple[str, ...], resume: bool) -> ResultSink:
    """`out` None: JSON lines on stdout. A Parquet folder (`--parquet` or a name ending .parquet) is added to; a
    JSON-lines file is appended to with `resume`, else started afresh."""
    if is_parquet(out, parquet):
        if out is None:
            raise DeepshieldError("Parquet output needs --out FOLDER")
        return ParquetSink(out, columns)
    if out is None:
        return JsonLinesSink(sys.stdout, owned=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    if resume and out.exists() and out.stat().st_size:
        with open(out, "rb") as f:
            f.seek(-1, 2)
            torn = f.read(1) != b"\n"  # a run killed mid-line: start on a fresh line
        stream = open(out, "a", encoding="utf-8")  # noqa: SIM115 - closed by the sink
        if torn:
            stream.write("\n")
        return JsonLinesSink(stream, owned=True)
    return JsonLinesSink(open(out, "w", encoding="utf-8"), owned=True)  # noqa: SIM115 - closed by the sink


def record_sha256(record: dict[str, Any]) -> str | None:
    """A scan's `media.sha256` or a hash line's `sha256`."""
    media = record.get("media")
    value = media.get("sha256") if isinstance(media, dict) else record.get("sha256")
    return value if isinstance(value, str) else None


def _stored(out: Path, parquet: bool) -> Iterator[tuple[str, str | None, bool]]:
    """(file, sha256, ok) of every result an earlier run wrote; a torn last line is ignored."""
    if is_parquet(out, parquet):
        if not out.is_dir():
            return
        _, pq = load_pyarrow()
        for part in sorted(out.glob("part-*.parquet")):
            for batch in pq.ParquetFile(part).iter_batches(columns=["file", "sha256", "error"]):
                for f, sha, err in zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True):
                    yield f, sha, err is None
        return
    if not out.is_file():
        return
    with open(out, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("file"), str):
                yield rec["file"], record_sha256(rec), rec.get("error") is None


def done_files(out: Path, parquet: bool) -> dict[str, str | None]:
    """Files an earlier run finished without error -> their sha256 (None where the output holds none)."""
    done: dict[str, str | None] = {}
    for f, sha, ok in _stored(out, parquet):
        if ok:
            done[f] = sha
        else:
            done.pop(f, None)  # a later failure of the same path: do it again
    return done
