"""`deepshield serve`: the HTTP service with its web pages."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int | None, typer.Option(min=1, max=16, help="scans run at once (default: DEEPSHIELD_SCAN_WORKERS or 1)")
    ] = None,
) -> None:
    """Start the service (SQLite and files under $DEEPSHIELD_HOME, default ./var; DATABASE_URL for PostgreSQL)."""
    import uvicorn

    from deepshield.api.app import create_app
    from deepshield.config import get_settings

    settings = get_settings()
    if workers is not None:
        settings = settings.model_copy(update={"scan_workers": workers})
    app = create_app(settings)
    typer.echo(f"deepshield: data in {settings.home.resolve()}, database {settings.db_url.split('@')[-1]}")
    typer.echo(f"deepshield: open http://{host}:{port}/ (API docs at /docs)")
    # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the app applies the proxies named in
    # DEEPSHIELD_FORWARDED_ALLOW_IPS itself (none by default).
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
