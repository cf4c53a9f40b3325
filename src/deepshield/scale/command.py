"""The archive mode of `deepshield scan --ray` and `deepshield hash --ray`: join the cluster, skip what an earlier
run finished (`--resume`), stream the paths to the actors, write each result as it comes, show progress."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from deepshield.errors import DeepshieldError
from deepshield.filehash import sha256_file
from deepshield.scale.batch import BatchStats, connect, run_on_ray
from deepshield.scale.outputs import done_files, open_sink
from deepshield.scale.task import FileOutcome, FileTask
from deepshield.terminal import failed_line, plain_console, styled

RAY_HELP = "run on the Ray cluster at ADDRESS (host:port, ray://host:port, or auto: the running one)"
RAY_WORKERS_HELP = "Ray actors, one per worker slot (default: one per CPU of the cluster)"
OUT_HELP = "with --ray: write results here as they finish (JSON lines; a folder of Parquet parts if it ends .parquet)"
PARQUET_HELP = "with --ray: write --out as a folder of Parquet parts (needs pyarrow)"
RESUME_HELP = "with --ray: skip files already in --out (same path and sha256) and add to it"
# The archive options, the same on every command that has an archive mode.
RayOption = Annotated[str | None, typer.Option("--ray", help=RAY_HELP)]
RayWorkersOption = Annotated[int | None, typer.Option("--ray-workers", min=1, help=RAY_WORKERS_HELP)]
OutOption = Annotated[Path | None, typer.Option("--out", help=OUT_HELP)]
ParquetOption = Annotated[bool, typer.Option("--parquet", help=PARQUET_HELP)]
ResumeOption = Annotated[bool, typer.Option("--resume", help=RESUME_HELP)]


def file_sha256(path: Path) -> str | None:
    """The file's SHA-256, or None when it cannot be read."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def check_archive_options(ray: str | None, out: Path | None, parquet: bool, resume: bool) -> None:
    """--out, --parquet and --resume belong to the archive mode; --resume needs a file to resume from."""
    if ray is None and (out is not None or parquet or resume):
        raise DeepshieldError("--out, --parquet and --resume go with --ray ADDRESS (or --ray auto)")
    if resume and out is None:
        raise DeepshieldError("--resume needs --out: the output an earlier run wrote")


def run_archive(
    paths: Iterable[Path],
    task: FileTask,
    what: str,
    address: str,
    workers: int | None,
    out: Path | None,
    parquet: bool,
    resume: bool,
) -> int:
    """Exit code: 0 all done, 1 some file failed, 2 nothing to do was found."""
    console = plain_console(stderr=True)
    done = done_files(out, parquet) if resume and out is not None else {}
    skipped = [0]

    def already_done(p: Path) -> bool:
        """Same path, and (where the output holds it) the same content as when it was done."""
        if str(p) not in done:
            return False
        stored = done[str(p)]
        if stored is not None and stored != file_sha256(p):
            return False
        skipped[0] += 1
        return True

    connect(address)
    sink = open_sink(out, parquet=parquet, columns=task.columns, resume=resume)
    progress = Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        TextColumn("{task.completed} done"),
        TimeElapsedColumn(),
        TextColumn("{task.description}", markup=False),
        console=console,
    )

    def on_result(o: FileOutcome) -> None:
        sink.write(o)
        if not o.ok:
            progress.console.print(failed_line(o.file, o.error or "failed"), highlight=False, soft_wrap=True)
        progress.update(bar, advance=1, description=Path(o.file).name)

    try:
        with progress:
            bar = progress.add_task("", total=None)
            stats: BatchStats = run_on_ray(paths, task, on_result, workers=workers, skip=already_done)
    finally:
        sink.close()
    if stats.done == 0 and skipped[0] == 0:
        console.print(styled(("error:", "red"), " no files to process"))
        return 2
    rate = stats.done / stats.elapsed_s if stats.elapsed_s else 0.0
    console.print(
        f"{stats.done - stats.failed} done, {stats.failed} failed, {skipped[0]} skipped (already in the output) "
        f"on {stats.workers} Ray worker(s), {rate:.2f} files/s"
    )
    return 1 if stats.failed else 0
