"""Retroactive search jobs: every copy of a bank's hashes in an archive's stored hashes (`matching.retro_jobs`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from deepshield.accounts.service import Principal
from deepshield.api.deps import ArchiveSearchesDep, require_scope

router = APIRouter(tags=["archive search"])
CuratePrincipal = Annotated[Principal, Depends(require_scope("curate"))]


class ArchiveSearchRequest(BaseModel):
    archive: str = Field(
        min_length=1, max_length=1024, description="a `hash --ray` output under $DEEPSHIELD_HOME/archives"
    )


@router.post(
    "/v1/banks/{bank_name}/archive-searches",
    status_code=202,
    responses={202: {"description": "started; poll GET /v1/archive-searches/{id}"}, 400: {}, 404: {}, 422: {}},
)
def start_archive_search(
    bank_name: str, body: ArchiveSearchRequest, searches: ArchiveSearchesDep, _p: CuratePrincipal
) -> JSONResponse:
    """Search an archive's stored hashes for every hash banked in this bank."""
    job = searches.start(bank_name, body.archive)
    return JSONResponse(
        {"search_id": job.search_id, "status": job.status, "status_url": f"/v1/archive-searches/{job.search_id}"},
        status_code=202,
    )


@router.get("/v1/archive-searches/{search_id}", responses={404: {}})
def get_archive_search(search_id: str, searches: ArchiveSearchesDep, _p: CuratePrincipal) -> dict[str, Any]:
    """Status, progress (0..1), the number of stored hashes read and every copy found."""
    job = searches.get(search_id)
    if job is None:
        raise HTTPException(404, "no such archive search")
    return job.to_dict()
