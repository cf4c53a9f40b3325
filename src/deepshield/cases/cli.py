"""`deepshield audit verify` and `deepshield cases ...` (queue, webhook delivery, Transparency Database
export)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.terminal import plain_console

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
def verify(json_out: Annotated[bool, typer.Option("--json", help="print a JSON object")] = False) -> None:
    """Walk the chain: report any edited, deleted or reordered event (exit code 2 if the chain is broken)."""
    from deepshield.cases import audit
    from deepshield.store.db import session_scope

    with session_scope(_settings()) as s:
        r = audit.verify(s)
    if json_out:
        typer.echo(json.dumps({"ok": r.ok, "events": r.events, "head_hash": r.head_hash, "problems": r.problems}))
    else:
        for p in r.problems:
            console.print(p, style="red", highlight=False)
        if r.ok:
            console.print(f"audit chain intact: {r.events} events, head {r.head_hash}", highlight=False)
    if not r.ok:
        raise AuditBroken(f"audit chain broken: {len(r.problems)} problem(s) in {r.events} events")


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
