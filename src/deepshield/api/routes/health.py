from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from deepshield import __version__
from deepshield.api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, str]:
    """Liveness of the service and its database; needs no key."""
    session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
