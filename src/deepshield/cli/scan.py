"""`deepshield scan PATH...`: files and folders (recursive), a progress bar, JSON lines and HTML reports."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from deepshield.config import get_settings
from deepshield.detect.archive import ScanTask
from deepshield.detect.pipeline import Scanner, ScanOptions
from deepshield.errors import DeepshieldError
from deepshield.scale import command as archive
from deepshield.scale import iter_files
from deepshield.scan_result import ScanResult
from deepshield.terminal import failed_line, plain_console, styled
from deepshield.workers import spawn_pool

_worker_scanner: Scanner | None = None


def _expand(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively (hidden entries skipped). Missing paths pass through so the
    scan reports them as errors instead of silently dropping them."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    yield f
        else:
            yield p


def _init_worker(options: ScanOptions) -> None:
    global _worker_scanner
    _worker_scanner = Scanner(options)


def _scan_in_worker(path: str, report_dir: str | None) -> ScanResult:
    assert _worker_scanner is not None
    return _scan_one(_worker_scanner, Path(path), Path(report_dir) if report_dir else None)


def _worker_result(fut: Future[ScanResult], path: Path) -> ScanResult:
    """A worker that died (out of memory, a crash in a native decoder) fails its file, not the whole scan."""
    try:
        return fut.result()
    except BrokenProcessPool as e:
        return ScanResult.failure(str(path), "worker_died", f"scan worker died: {e}")


def _scan_one(
    scanner: Scanner, path: Path, report_dir: Path | None, progress: Callable[[float], None] | None = None
) -> ScanResult:
    outcome = scanner.scan(path, progress)
    result = outcome.result
    if report_dir is not None:
        from deepshield.reports.html import render_report

        report_dir.mkdir(parents=True, exist_ok=True)
        stem = path.name.replace("/", "_") or "file"
        out = report_dir / f"{stem}.html"
        n = 1
        while out.exists():
            out = report_dir / f"{stem}.{n}.html"
            n += 1
        out.write_text(render_report(result, outcome.artifacts), encoding="utf-8")
        result = replace(result, report=str(out))
    return result


def _summary_line(r: ScanResult) -> Text:
    if r.error is not None:
        return failed_line(r.file, r.error.message)
    score = r.video_score
    verdict = r.verdict or r.detector_status
    s = f" score={score:.3f}" if score is not None else ""
    t = r.temporal
    if t is not None and t.video_score is not None:
        s += f" temporal={t.video_score:.3f}" + (f" fused={t.fused_score:.3f}" if t.fused_score is not None else "")
    tracks = f", {len(r.tracks)} track(s)" if r.tracks else ""
    over = r.tracks_over_threshold
    if over and r.verdict != "manipulated":
        names = f"track {over[0]}" if len(over) == 1 else f"tracks {', '.join(map(str, over))}"
        verdict = f"{verdict}; but {names} at or over the threshold"
    return styled(("ok", "green"), f" {r.file}: {r.face_count} face(s){tracks}{s} ({verdict})")


def scan(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (searched recursively)")],
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object per file on stdout")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="write an HTML report per file into DIR")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="parallel worker processes")] = 1,
    frames: Annotated[
        int | None,
        typer.Option("--frames", min=1, max=1000, help="frames sampled per video (default: the scan_frames setting)"),
    ] = None,
    detector: Annotated[str | None, typer.Option("--detector", help="detector name (default: first installed)")] = None,
    ray: archive.RayOption = None,
    ray_workers: archive.RayWorkersOption = None,
    out: archive.OutOption = None,
    parquet: archive.ParquetOption = False,
    resume: archive.ResumeOption = False,
) -> None:
    """Find faces and score them for manipulation. Exit code 1 if any file failed."""
    archive.check_archive_options(ray, out, parquet, resume)
    frames = frames if frames is not None else get_settings().scan_frames
    options = ScanOptions(frames=frames, detector=detector, keep_artifacts=report is not None)
    if ray is not None:
        if report is not None:
            raise DeepshieldError("--report writes files on this machine: it does not go with --ray")
        raise typer.Exit(
            archive.run_archive(
                iter_files(paths), ScanTask(options), "scanning", ray, ray_workers, out, parquet, resume
            )
        )
    files = list(_expand(paths))
    console = plain_console(stderr=True)
    results: list[ScanResult] = []
    progress = Progress(
        TextColumn("[bold]scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", markup=False),
        console=console,
        transient=False,
        disable=not files,
    )

    def emit(r: ScanResult) -> None:
        results.append(r)
        if json_out:
            sys.stdout.write(r.to_json() + "\n")
            sys.stdout.flush()
        else:
            progress.console.print(_summary_line(r), highlight=False, soft_wrap=True)

    with progress:
        task = progress.add_task("", total=len(files))
        if workers == 1 or len(files) <= 1:
            scanner = Scanner(options)
            if scanner.detector is None:
                console.print(
                    styled(("note:", "yellow"), " no detector installed: faces are reported, no score is given")
                )
            try:
                for done, f in enumerate(files):
                    progress.update(task, description=f.name)

                    def within_file(fraction: float, done: int = done) -> None:
                        # Frames of a long video move the bar too, not only finished files.
                        progress.update(task, completed=done + fraction)

                    emit(_scan_one(scanner, f, report, within_file))
                    progress.update(task, completed=done + 1)
            finally:
                scanner.close()
        else:
            with spawn_pool(workers, initializer=_init_worker, initargs=(options,)) as pool:
                futs = {pool.submit(_scan_in_worker, str(f), str(report) if report else None): f for f in files}
                for fut in as_completed(futs):
                    emit(_worker_result(fut, futs[fut]))
                    progress.advance(task)
    failed = sum(1 for r in results if not r.ok)
    if not files:
        console.print(styled(("error:", "red"), " no files to scan"))
        raise typer.Exit(2)
    console.print(f"{len(results) - failed} scanned, {failed} failed")
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
