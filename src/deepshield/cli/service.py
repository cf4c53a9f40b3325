"""`deepshield serve`: the HTTP service with its web pages; `deepshield worker`: a process that only runs scan jobs
from the same database, so scans scale past one service process."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=16,
            help="scans run at once (default: DEEPSHIELD_SCAN_WORKERS or 1); 0 leaves them to `deepshield worker`",
        ),
    ] = None,
) -> None:
    """Start the service (SQLite and files under $DEEPSHIELD_HOME, default ./var; DATABASE_URL for PostgreSQL)."""
    import uvicorn

    from deepshield.api.app import create_app
    from deepshield.config import check_environment

    settings = check_environment()
    if workers is not None:
        settings = settings.model_copy(update={"scan_workers": workers})
    app = create_app(settings)
    typer.echo(f"deepshield: data in {settings.home.resolve()}, database {settings.db_url.split('@')[-1]}")
    typer.echo(f"deepshield: open http://{host}:{port}/ (API docs at /docs)")
    # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the app applies the proxies named in
    # DEEPSHIELD_FORWARDED_ALLOW_IPS itself (none by default).
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def worker(
    threads: Annotated[int, typer.Option("--threads", min=1, max=16, help="scans run at once in this process")] = 1,
    lease: Annotated[
        float | None,
        typer.Option("--lease", min=1, max=3600, help="lease seconds (default: DEEPSHIELD_SCAN_LEASE_S or 60)"),
    ] = None,
) -> None:
    """Run scan jobs from the database until stopped (SIGTERM or Ctrl-C finish the running scans first). Start as
    many as the database takes, on any machine that sees the uploads folder; a killed worker's job is claimed
    again when its lease lapses."""
    import logging
    import signal
    import threading

    from deepshield.config import check_environment
    from deepshield.detect.service import ScanService
    from deepshield.store.db import upgrade_schema

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = check_environment().model_copy(update={"scan_workers": threads})
    upgrade_schema(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    scans = ScanService(settings, take_any=True, lease_s=lease)
    typer.echo(f"deepshield worker {scans.jobs.worker}: {threads} thread(s), database {settings.db_url.split('@')[-1]}")
    try:
        stop.wait()
    finally:
        scans.shutdown()
    typer.echo(f"deepshield worker {scans.jobs.worker}: stopped after {scans.completed} scan(s)")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
