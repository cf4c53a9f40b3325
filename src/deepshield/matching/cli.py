"""`deepshield hash`, `deepshield bank ...` and `deepshield match FILE...`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from deepshield.errors import DeepshieldError
from deepshield.matching import service as svc
from deepshield.matching.archive import HashTask, hash_outcome
from deepshield.matching.exchanges import import_signal_file, signal_lines
from deepshield.matching.retro import ArchiveQuery
from deepshield.matching.retro_cli import run_search, search_archive_cmd
from deepshield.scale import command as archive
from deepshield.scale import iter_files
from deepshield.store.db import session_scope, upgrade_schema
from deepshield.terminal import failed_line, plain_console, styled

bank_app = typer.Typer(
    help="Hash banks: create, list, add and remove content, import and export.", no_args_is_help=True
)
console = plain_console(stderr=True)


def _files(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from (f for f in sorted(p.rglob("*")) if f.is_file() and not f.name.startswith("."))
        else:
            yield p


def _progress(what: str, total: int) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", markup=False),
        console=console,
        disable=total == 0,
    )


def _each_file(what: str, files: list[Path]) -> Iterator[tuple[Path, Progress]]:
    """Each file in turn, named on a progress bar (`what`) that moves on once the caller is done with it; the
    bar is given too, for lines printed above it."""
    with _progress(what, len(files)) as progress:
        task = progress.add_task("", total=len(files))
        for f in files:
            progress.update(task, description=f.name)
            yield f, progress
            progress.advance(task)


def hash_cmd(
    paths: Annotated[list[Path], typer.Argument(help="photos, videos or folders")],
    types: Annotated[str | None, typer.Option("--types", help="comma-separated signal types (default: all)")] = None,
    ray: archive.RayOption = None,
    ray_workers: archive.RayWorkersOption = None,
    out: archive.OutOption = None,
    parquet: archive.ParquetOption = False,
    resume: archive.ResumeOption = False,
) -> None:
    """Print each file's hashes as one JSON object per line (hex, as python-threatexchange writes them)."""
    archive.check_archive_options(ray, out, parquet, resume)
    signal_types = types.split(",") if types else None
    if ray is not None:
        raise typer.Exit(
            archive.run_archive(
                iter_files(paths), HashTask(signal_types), "hashing", ray, ray_workers, out, parquet, resume
            )
        )
    files = list(_files(paths))
    failed = 0
    for f, _ in _each_file("hashing", files):
        outcome = hash_outcome(f, signal_types)
        failed += not outcome.ok
        sys.stdout.write(outcome.line() + "\n")
        sys.stdout.flush()
    raise typer.Exit(1 if failed else 0)


def _match_line(r: dict[str, Any]) -> Text:
    if "error" in r:
        return failed_line(r["path"], str(r["error"]))
    if not r["matches"]:
        sup = f" ({len(r['suppressed'])} suppressed by a negative bank)" if r["suppressed"] else ""
        return styled(("no match", "green"), f" {r['path']}{sup}")
    line = styled(("MATCH", "red"), f" {r['path']}: ")
    for n, m in enumerate(r["matches"]):
        extra = f" {m['variant']}" if m.get("variant") and m["variant"] != "original" else ""
        if m.get("video"):
            v = m["video"]
            extra = f" query {v['query_fraction']:.0%} bank {v['bank_fraction']:.0%} at {v['query_ranges']}"
        case = f" case {m['entry']['case_id']}" if m["entry"].get("case_id") else ""
        line.append(
            ("; " if n else "") + f"{m['bank']}#{m['entry_id']} {m['signal_type']} d={m['distance']:g}{extra}{case}"
        )
        if m["needs_review"]:
            line.append(" review", "yellow")
    return line


def match_cmd(
    paths: Annotated[list[Path], typer.Argument(help="photos, videos or folders")],
    bank: Annotated[list[str] | None, typer.Option("--bank", help="restrict to these banks (repeatable)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="one JSON object per file on stdout")] = False,
    no_variants: Annotated[bool, typer.Option("--no-variants", help="skip PDQ rotation/flip variants")] = False,
) -> None:
    """Look files up in the banks. Exit code 3 if anything matched, 1 if a file failed, else 0."""
    upgrade_schema()
    files = list(_files(paths))
    if not files:
        raise DeepshieldError("no files to match")
    matched = failed = 0
    with session_scope() as s:
        for f, progress in _each_file("matching", files):
            try:
                r = svc.lookup_file(s, f, banks=bank or None, variants=not no_variants).to_dict()
                matched += bool(r["matches"])
            except DeepshieldError as e:
                failed += 1
                r = {"path": str(f), "error": e.message}
            if json_out:
                sys.stdout.write(json.dumps(r) + "\n")
                sys.stdout.flush()
            else:
                progress.console.print(_match_line(r), highlight=False)
    console.print(f"{len(files)} file(s): {matched} matched, {failed} failed")
    raise typer.Exit(1 if failed else 3 if matched else 0)


# ---------------------------------------------------------------------------------------------- bank


@bank_app.command("create")
def bank_create(
    name: str,
    threshold: Annotated[int | None, typer.Option(help="PDQ/vPDQ distance threshold (default 31)")] = None,
    negative: Annotated[bool, typer.Option("--negative", help="a bank of known false positives")] = False,
    description: Annotated[str | None, typer.Option(help="what the bank holds")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="create without matching against it")] = False,
) -> None:
    upgrade_schema()
    with session_scope() as s:
        b = svc.create_bank(
            s, name, threshold=threshold, negative=negative, description=description, enabled=not disabled
        )
    typer.echo(f"created bank {b.name}" + (" (negative)" if b.is_negative else ""))


@bank_app.command("list")
def bank_list(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    upgrade_schema()
    with session_scope() as s:
        banks = svc.list_banks(s)
    if json_out:
        typer.echo(json.dumps([b.to_dict() for b in banks], indent=1))
        return
    t = Table("name", "entries", "enabled", "threshold", "negative", "description")
    for b in banks:
        t.add_row(
            b.name,
            str(b.entries),
            f"{b.enabled_ratio:g}",
            str(b.threshold or "default"),
            "yes" if b.is_negative else "",
            b.description or "",
        )
    plain_console().print(t)


def _set_enabled(name: str, enabled: bool) -> None:
    upgrade_schema()
    with session_scope() as s:
        svc.update_bank(s, name, enabled=enabled)
    typer.echo(f"bank {name} {'enabled' if enabled else 'disabled'}")


@bank_app.command("enable")
def bank_enable(name: str) -> None:
    _set_enabled(name, True)


@bank_app.command("disable")
def bank_disable(name: str) -> None:
    _set_enabled(name, False)


@bank_app.command("set")
def bank_set(
    name: str,
    threshold: Annotated[int | None, typer.Option(help="new PDQ/vPDQ threshold")] = None,
    default_threshold: Annotated[bool, typer.Option("--default-threshold", help="back to 31")] = False,
    negative: Annotated[bool | None, typer.Option("--negative/--positive")] = None,
    rename: Annotated[str | None, typer.Option(help="new name")] = None,
) -> None:
    """Change a bank's threshold, kind or name."""
    upgrade_schema()
    with session_scope() as s:
        b = svc.update_bank(
            s,
            name,
            threshold=threshold,
            clear_threshold=default_threshold,
            negative=negative,
            new_name=rename,
        )
    typer.echo(json.dumps(b.to_dict()))


@bank_app.command("delete")
def bank_delete(name: str, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    upgrade_schema()
    if not yes and not typer.confirm(f"delete bank {name} and everything in it?"):
        raise typer.Exit(1)
    with session_scope() as s:
        n = svc.delete_bank(s, name)
    typer.echo(f"deleted bank {name} ({n} entries)")


def _meta(source: str | None, case: str | None, added_by: str | None, note: str | None) -> svc.EntryMeta:
    return svc.EntryMeta(source=source, case_id=case, added_by=added_by, note=note)


@bank_app.command("add")
def bank_add(
    name: str,
    paths: Annotated[list[Path], typer.Argument(help="photos, videos or folders")],
    source: Annotated[str | None, typer.Option(help="where the content came from")] = None,
    case: Annotated[str | None, typer.Option("--case", help="case id (withdrawal removes by it)")] = None,
    added_by: Annotated[str | None, typer.Option("--added-by")] = None,
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Hash files and bank them, with metadata."""
    upgrade_schema()
    files = list(_files(paths))
    failed = 0
    for f, progress in _each_file("banking", files):
        try:
            with session_scope() as s:
                e = svc.add_file(s, name, f, _meta(source, case, added_by, note))
            line = Text(f"banked {f} as entry {e.id}: {', '.join(e.signals)}")
            if e.low_quality:
                line.append(" (low PDQ quality)", "yellow")
            progress.console.print(line, highlight=False)
        except DeepshieldError as err:
            if isinstance(err, svc.BankNotFound):
                raise
            failed += 1
            progress.console.print(failed_line(f, err.message), highlight=False)
    raise typer.Exit(1 if failed else 0)


@bank_app.command("add-hash")
def bank_add_hash(
    name: str,
    signal_type: Annotated[str, typer.Argument(help="pdq, vpdq, md5, sha256 (video_md5 accepted)")],
    value: str,
    source: Annotated[str | None, typer.Option()] = None,
    case: Annotated[str | None, typer.Option("--case")] = None,
    added_by: Annotated[str | None, typer.Option("--added-by")] = None,
    note: Annotated[str | None, typer.Option()] = None,
    search_archive: Annotated[
        Path | None, typer.Option("--search-archive", help="then list its copies in this `hash --ray` output")
    ] = None,
    ray: archive.RayOption = None,
) -> None:
    """Bank a raw hash (e.g. one computed on a victim's device)."""
    upgrade_schema()
    query = ArchiveQuery.parse(signal_type, value) if search_archive is not None else None
    with session_scope() as s:
        e = svc.add_hash(s, name, signal_type, value, _meta(source, case, added_by, note))
    typer.echo(f"banked entry {e.id}")
    if search_archive is not None and query is not None:
        run_search(search_archive, [query], ray, None)


@bank_app.command("show")
def bank_show(name: str, limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    upgrade_schema()
    with session_scope() as s:
        b = svc.get_bank(s, name)
        entries = svc.list_entries(s, name, limit=limit)
    typer.echo(json.dumps({"bank": b.to_dict(), "entries": [e.to_dict() for e in entries]}, indent=1))


@bank_app.command("remove")
def bank_remove(
    entry_ids: Annotated[list[int] | None, typer.Argument(help="entry ids")] = None,
    case: Annotated[str | None, typer.Option("--case", help="remove every entry of this case, in every bank")] = None,
) -> None:
    """Remove entries by id, or everything of a case (a victim's withdrawal)."""
    upgrade_schema()
    if not entry_ids and not case:
        raise DeepshieldError("give entry ids or --case")
    with session_scope() as s:
        n = sum(svc.remove_entry(s, i) for i in entry_ids or [])
        if case:
            n += svc.remove_case(s, case)
    typer.echo(f"removed {n} entr{'y' if n == 1 else 'ies'}")


FileFormat = Annotated[
    str,
    typer.Option(
        "--format",
        help="deepshield (JSON Lines, docs/bank-format.md) or threatexchange (python-threatexchange's signal "
        "file: '<type> <signal>' a line)",
    ),
]


def _check_format(file_format: str) -> None:
    if file_format not in ("deepshield", "threatexchange"):
        raise DeepshieldError(f"--format must be deepshield or threatexchange, not {file_format!r}")


@bank_app.command("export")
def bank_export(
    name: str,
    out: Annotated[Path, typer.Argument(help="file to write")],
    file_format: FileFormat = "deepshield",
) -> None:
    """Write a bank to a file: ours (docs/bank-format.md), or python-threatexchange's signal file."""
    _check_format(file_format)
    upgrade_schema()
    with session_scope() as s, open(out, "w", encoding="utf-8", newline="\n") as f:
        if file_format == "threatexchange":
            n = 0
            for line in signal_lines(s, name):
                f.write(line + "\n")
                n += 1
            typer.echo(f"exported {n} signals of {name} to {out}")
            return
        n = svc.export_bank(s, name, f)
    typer.echo(f"exported {n} entries of {name} to {out}")


@bank_app.command("import")
def bank_import(
    src: Annotated[Path, typer.Argument(help="a bank file")],
    name: Annotated[str | None, typer.Option("--into", help="bank to import into (default: name in file)")] = None,
    file_format: FileFormat = "deepshield",
    signal_type: Annotated[
        str | None, typer.Option("--signal-type", help="threatexchange files of bare signals: their type")
    ] = None,
) -> None:
    """Read a bank file into a bank (created when missing)."""
    _check_format(file_format)
    upgrade_schema()
    if not src.is_file():
        raise DeepshieldError(f"no such file: {src}")
    if file_format == "threatexchange":
        if not name:
            raise DeepshieldError("a threatexchange signal file names no bank: give --into BANK")
        with session_scope() as s:
            n = import_signal_file(s, src, name, signal_type)
        typer.echo(f"imported {n} signals into {name}")
        return
    with session_scope() as s, open(src, encoding="utf-8") as f:
        bank, n = svc.import_bank(s, f, name)
    typer.echo(f"imported {n} entries into {bank}")


@bank_app.command("status")
def bank_status() -> None:
    """Index sizes and memory per hash (the index is built from the store)."""
    upgrade_schema()
    with session_scope() as s:
        typer.echo(json.dumps(svc.index_status(s), indent=1))


def register(app: typer.Typer) -> None:
    app.command("hash")(hash_cmd)
    app.command("match")(match_cmd)
    app.command("search-archive")(search_archive_cmd)
    app.add_typer(bank_app, name="bank")
