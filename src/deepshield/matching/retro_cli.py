"""`deepshield search-archive ARCHIVE --hash TYPE:VALUE | --bank NAME [--ray ADDRESS]`, and the search that
`deepshield bank add-hash ... --search-archive ARCHIVE` runs right after banking."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deepshield.config import get_settings
from deepshield.errors import DeepshieldError
from deepshield.matching.retro import ArchiveQuery, ArchiveSearch, bank_queries, search_archive
from deepshield.scale.batch import cluster_cpus, connect
from deepshield.scale.command import RayOption
from deepshield.terminal import plain_console

console = plain_console(stderr=True)


def run_search(archive: Path, queries: list[ArchiveQuery], ray: str | None, shards: int | None) -> ArchiveSearch:
    """Search with a progress bar, print one JSON line per copy on stdout and a summary on stderr."""
    if ray is not None:
        connect(ray)
    n = shards or (cluster_cpus() if ray is not None else 1)
    with Progress(
        TextColumn("[bold]searching"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        bar = progress.add_task("", total=n)
        result = search_archive(
            archive,
            queries,
            shards=n,
            on_ray=ray is not None,
            progress=lambda done, _: progress.update(bar, completed=done),
        )
    for c in result.copies:
        sys.stdout.write(
            json.dumps({"file": c.file, "signal_type": c.signal_type, "query": c.query, "distance": c.distance}) + "\n"
        )
    where = "on Ray" if result.on_ray else "in this process"
    console.print(
        f"{len(result.copies)} copies in {result.rows} stored hashes, {result.shards} shard(s) {where}, "
        f"{result.elapsed_s:.2f} s"
    )
    return result


def search_archive_cmd(
    archive: Annotated[
        Path, typer.Argument(help="the output of `deepshield hash --ray`: JSON lines or Parquet folder")
    ],
    hashes: Annotated[
        list[str] | None, typer.Option("--hash", help="TYPE:VALUE to look for, e.g. pdq:<64 hex> (repeatable)")
    ] = None,
    bank: Annotated[str | None, typer.Option("--bank", help="look for every hash banked in this bank")] = None,
    ray: RayOption = None,
    shards: Annotated[int | None, typer.Option("--shards", min=1, max=4096, help="default: one per Ray CPU")] = None,
) -> None:
    """List every file of an archive that holds a copy of the given hashes (one JSON object per copy)."""
    queries = []
    for h in hashes or []:
        signal_type, sep, value = h.partition(":")
        if not sep:
            raise DeepshieldError(f"--hash takes TYPE:VALUE, got {h[:80]!r}")
        queries.append(ArchiveQuery.parse(signal_type, value))
    if bank is not None:
        queries.extend(bank_queries(get_settings(), bank))
    run_search(archive, queries, ray, shards)
