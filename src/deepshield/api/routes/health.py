"""Health checks: ours (`/healthz`) and HMA's (`/status`, `/status/live`), plus HMA's `/site-map` and its
OpenAPI path, so an HMA deployment's load balancer and tooling work against Deepshield unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from deepshield import __version__
from deepshield.api.deps import SessionDep, SettingsDep
from deepshield.matching.indexes import get_indexes

router = APIRouter(tags=["health"])
ALIVE = "I-AM-ALIVE"


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, str]:
    """Liveness of the service and its database; needs no key."""
    session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}


@router.get(
    "/status",
    response_class=PlainTextResponse,
    responses={
        200: {"description": ALIVE, "content": {"text/plain": {"schema": {"type": "string"}}}},
        503: {"description": "INDEX-NOT-LOADED", "content": {"text/plain": {"schema": {"type": "string"}}}},
    },
)
def hma_status(settings: SettingsDep) -> PlainTextResponse:
    """HMA's readiness check: 503 until the match index has loaded (a load balancer sends no lookups to a
    process still reading millions of hashes), then 200 `I-AM-ALIVE`."""
    if not get_indexes(settings).loaded:
        return PlainTextResponse("INDEX-NOT-LOADED", status_code=503)
    return PlainTextResponse(ALIVE)


@router.get("/status/live", response_class=PlainTextResponse)
def hma_status_live() -> PlainTextResponse:
    """HMA's liveness check: 200 whenever the process answers (never restart it for a cold index)."""
    return PlainTextResponse(ALIVE)


def _paths(routes: Iterable[Any], prefix: str = "") -> Iterator[str]:
    """Route paths, through included routers (FastAPI keeps them as routers, not copied routes)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from _paths(inner.routes, prefix + str(getattr(getattr(r, "include_context", None), "prefix", "")))
        elif isinstance(getattr(r, "path", None), str):
            yield prefix + r.path


@router.get("/site-map")
def site_map(request: Request) -> list[str]:
    """Every route path, sorted (HMA's `/site-map`)."""
    return sorted(set(_paths(request.app.routes)))


@router.get("/openapi/openapi.json", include_in_schema=False)
def hma_openapi(request: Request) -> dict[str, Any]:
    """The OpenAPI document where HMA serves it (ours is also at /openapi.json)."""
    doc: dict[str, Any] = request.app.openapi()
    return doc
