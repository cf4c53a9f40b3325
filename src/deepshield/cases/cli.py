"""`deepshield audit verify|checkpoint|public-key` and `deepshield cases ...` (queue, webhook delivery,
Transparency Database export)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.terminal import plain_console

if TYPE_CHECKING:
    from deepshield.cases import checkpoints

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
cases_app = typer.Typer(help="Abuse reports and cases.", no_args_is_help=True)
console = plain_console()


class AuditBroken(DeepshieldError):
    code = "audit_broken"


def _settings() -> Settings:
    from deepshield.config import get_settings
    from deepshield.store.db import upgrade_schema

    s = get_settings()
    s.ensure_dirs()
    upgrade_schema(s)
    return s


@audit_app.command("verify")
def verify(
    checkpoints_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="signed checkpoint file (JSON Lines, from `audit checkpoint` or the service): also catches a "
            "chain rewritten whole before the last checkpoint",
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="PEM public key the checkpoints are signed with (repeat for older keys); default: this host's "
            "checkpoint key",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print a JSON object")] = False,
) -> None:
    """Walk the chain: report any edited, deleted or reordered event, and with --checkpoints any rewrite up to the
    last checkpoint (exit code 2 if the chain is broken)."""
    from deepshield.cases import audit, checkpoints
    from deepshield.store.db import session_scope

    settings = _settings()
    report: checkpoints.CheckpointReport | None = None
    if checkpoints_file is None:
        with session_scope(settings) as s:
            r = audit.verify(s)
    else:
        entries = checkpoints.read_checkpoints(checkpoints_file)
        keys = checkpoints.verifying_keys(settings, public_key or [])
        with session_scope(settings) as s:
            r, report = checkpoints.verify_against(s, entries, keys)
    problems = r.problems + (report.problems if report else [])
    if json_out:
        out: dict[str, object] = {"ok": not problems, "events": r.events, "head_hash": r.head_hash}
        out["problems"] = problems
        if report is not None:
            out["checkpoints"] = _report_json(report)
        typer.echo(json.dumps(out))
    else:
        for p in problems:
            console.print(p, style="red", highlight=False, soft_wrap=True)
        if not problems:
            console.print(f"audit chain intact: {r.events} events, head {r.head_hash}", highlight=False, soft_wrap=True)
            console.print(_anchoring(report), highlight=False, soft_wrap=True)
    if problems:
        raise AuditBroken(_broken(len(problems), r.events, report))


def _report_json(report: checkpoints.CheckpointReport) -> dict[str, object]:
    last = report.last
    return {
        "verified": report.checked,
        "last_seq": last.seq if last else None,
        "last_at": last.at if last else None,
        "unanchored_events": report.unanchored,
        "first_bad": list(report.first_bad) if report.first_bad else None,
    }


def _anchoring(report: checkpoints.CheckpointReport | None) -> str:
    if report is None:
        return "not checked against signed checkpoints: a chain rewritten whole passes (use --checkpoints FILE)"
    if report.last is None:
        return "no checkpoint to check against"
    return (
        f"{report.checked} checkpoint(s) verified, the last at event {report.last.seq} ({report.last.at}, key "
        f"{report.last.key_id}); {report.unanchored} later event(s) covered by the chain alone"
    )


def _broken(problems: int, events: int, report: checkpoints.CheckpointReport | None) -> str:
    msg = f"audit chain broken: {problems} problem(s) in {events} events"
    if report is not None and report.first_bad is not None:
        lo, hi = report.first_bad
        where = f"event {lo}" if lo == hi else f"between events {lo} and {hi} (the checkpoints bound it no closer)"
        msg += f"; the first event that differs from the signed checkpoints is {where}"
    return msg


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign the chain's head with the checkpoint key (DEEPSHIELD_AUDIT_KEY, made on first use) and append it to
    the checkpoint file (DEEPSHIELD_AUDIT_CHECKPOINTS); prints the line. Refuses a chain that does not extend the
    last checkpoint. The service does this by itself every DEEPSHIELD_AUDIT_CHECKPOINT_MINUTES; run it from cron
    where no service runs."""
    from deepshield.cases import checkpoints
    from deepshield.cases.policy import load_policy

    settings = _settings()
    cp = checkpoints.write_checkpoint(settings, load_policy(settings).webhook)
    if cp is None:
        console.print("nothing to checkpoint: no audit event yet, or the head is already checkpointed")
    else:
        typer.echo(cp.to_line())


@audit_app.command("public-key")
def public_key_cmd() -> None:
    """Print the checkpoint key's public half (PEM): what a verifier on another host needs."""
    from deepshield.cases import checkpoints
    from deepshield.labels.keys import public_key_pem, read_ed25519_public_key

    settings = _settings()
    path = settings.audit_key_path
    if not path.exists():
        raise checkpoints.CheckpointError(f"no checkpoint key at {path} yet: `deepshield audit checkpoint` makes it")
    typer.echo(public_key_pem(read_ed25519_public_key(path)), nl=False)


@cases_app.command("queue")
def queue(limit: Annotated[int, typer.Option(help="rows")] = 50) -> None:
    """Open cases, least time left first."""
    from deepshield.cases import service
    from deepshield.cases.policy import load_policy
    from deepshield.store.db import session_scope

    settings = _settings()
    t = Table("case", "state", "category", "jurisdiction", "deadline")
    with session_scope(settings) as s:
        for c, d in service.queue(s, load_policy(settings), limit):
            colour = {"breached": "red", "warning": "yellow"}.get(d.level, "")
            t.add_row(
                c.id,
                c.state,
                c.category,
                c.jurisdiction,
                Text(d.label, style=colour),
            )
    console.print(t)


@cases_app.command("deliver")
def deliver(
    watch: Annotated[bool, typer.Option(help="keep delivering until interrupted")] = False,
) -> None:
    """Post pending webhooks to the platform now (the service does this in the background)."""
    from deepshield.cases import webhooks
    from deepshield.cases.policy import load_policy

    settings = _settings()
    pol = load_policy(settings)
    if not pol.webhook.url:
        raise DeepshieldError("no webhook URL configured (DEEPSHIELD_WEBHOOK_URL or webhook.url in cases.json)")
    while True:
        n = webhooks.deliver_due(settings, pol.webhook)
        console.print(f"delivered {n}")
        if not watch:
            break
        time.sleep(1.0)


@cases_app.command("sweep")
def sweep() -> None:
    """Announce cases close to or past their deadline (once each): audit event and webhook. The service runs
    this every minute when a webhook URL is configured; run it from cron otherwise."""
    from deepshield.cases.deadlines import sweep_deadlines
    from deepshield.cases.policy import load_policy

    settings = _settings()
    counts = sweep_deadlines(settings, load_policy(settings))
    console.print(f"{counts['warning']} new warning(s), {counts['breached']} new breach(es)")


@cases_app.command("export-transparency")
def export_transparency(out: Annotated[Path, typer.Argument(help="JSON file to write")]) -> None:
    """Statements of reasons in Transparency Database form, without personal data."""
    from deepshield.cases import reasons
    from deepshield.store.db import session_scope

    with session_scope(_settings()) as s:
        rows = reasons.export_transparency(s)
    out.write_text(json.dumps(rows, indent=1))
    console.print(f"wrote {len(rows)} statement(s) to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.add_typer(cases_app, name="cases")
