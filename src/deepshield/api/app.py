"""The FastAPI application factory. Domain routers are listed in DOMAIN_ROUTERS and included here."""

from __future__ import annotations

import importlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from deepshield.api.docs import install_docs
from deepshield.api.errors import install_error_handlers, install_openapi
from deepshield.api.headers import SecurityHeaders
from deepshield.api.limits import BodySizeLimit, FiniteJson
from deepshield.api.services import Services
from deepshield.cases.context import CasesContext
from deepshield.config import Settings, get_settings, make_private_dir, make_private_file
from deepshield.store.db import session_scope, upgrade_schema

log = logging.getLogger("deepshield")

DOMAIN_ROUTERS = [
    "deepshield.api.routes.health",
    "deepshield.api.routes.scans",
    "deepshield.api.routes.pages",
    "deepshield.api.routes.console_queue",
    "deepshield.api.routes.console_banks",
    "deepshield.api.routes.console_consent",
    "deepshield.api.routes.matching",
    "deepshield.api.routes.archive_search",
    "deepshield.api.routes.exchanges",
    "deepshield.api.routes.cases",
    "deepshield.api.routes.reports_intake",
    "deepshield.api.routes.console",
    "deepshield.api.routes.case_status",
    "deepshield.api.routes.liveness",
    "deepshield.api.routes.labels",
    "deepshield.api.routes.consent",
]


def _session_secret(settings: Settings) -> str:
    if settings.session_secret:
        return settings.session_secret
    path = settings.home / "session.key"
    if not path.exists():
        make_private_dir(path.parent)
        make_private_file(path)  # 0600 before the secret is written, not after
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def bootstrap(settings: Settings) -> str | None:
    """Create directories and schema; on the first start create the admin and return its one-time password."""
    from deepshield.accounts.service import ensure_first_admin
    from deepshield.matching.exchange_secrets import seal_stored_tokens

    settings.ensure_dirs()
    upgrade_schema(settings)
    with session_scope(settings) as s:
        seal_stored_tokens(s, settings.home)  # tokens stored in plain text before they were sealed
        return ensure_first_admin(s)


#: How long shutdown waits for the match index warm-up (a daemon thread: a large store never holds the exit).
INDEX_LOAD_JOIN_S = 10.0


def create_app(settings: Settings | None = None, *, cases: CasesContext | None = None) -> FastAPI:
    """`cases`: a cases context built by the caller (tests: an in-memory bank); the app closes it on shutdown."""
    settings = settings or get_settings()
    first_password = bootstrap(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from deepshield.consent.revocation import register_revocation_source, unregister_revocation_source
        from deepshield.matching.indexes import load_in_background

        services = Services.build(settings, cases=cases)
        app.state.services = services
        register_revocation_source(settings)  # label verification and upload screening see revocations at once
        app.state.match_index_loader = load_in_background(settings)
        if first_password:
            msg = (
                "first start: created user 'admin' with one-time password "
                f"{first_password}  (sign in at /login: you will be asked to choose your own password)"
            )
            print(msg, flush=True)
        try:
            yield
        finally:
            unregister_revocation_source()
            services.close()
            app.state.match_index_loader.join(INDEX_LOAD_JOIN_S)

    app = FastAPI(
        title="Deepshield",
        version="0.1.0",
        description="Deepfake defence: scan media for manipulated faces, label, match, prove liveness, respond.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves both from the packaged assets, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.first_admin_password = first_password
    app.add_middleware(FiniteJson)  # inside the size limit: it buffers only a body already under the limit
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        SessionMiddleware, secret_key=_session_secret(settings), same_site="lax", https_only=False, max_age=8 * 3600
    )
    if proxies := [h.strip() for h in settings.forwarded_allow_ips.split(",") if h.strip()]:
        # Outermost, so the per-client limits see the client that a configured proxy names, and only then.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)

    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)

    static = Path(__file__).parent / "static"
    static.mkdir(exist_ok=True)
    app.mount("/static", StaticFiles(directory=static), name="static")
    for mod in DOMAIN_ROUTERS:
        app.include_router(importlib.import_module(mod).router)
    return app
