"""Scan endpoints: upload a file, get the same JSON as `deepshield scan --json`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse

from deepshield.accounts.service import Principal
from deepshield.api.deps import ScansDep, SettingsDep, require_scope
from deepshield.api.headers import REPORT_CSP
from deepshield.api.uploads import save_upload

router = APIRouter(prefix="/v1/scans", tags=["scans"])
ScanPrincipal = Annotated[Principal, Depends(require_scope("scan"))]


@router.post("", responses={202: {"description": "accepted; poll GET /v1/scans/{id}"}, 413: {}, 415: {}, 422: {}})
async def create_scan(
    settings: SettingsDep,
    scans: ScansDep,
    principal: ScanPrincipal,
    file: Annotated[UploadFile, File(description="image or video")],
    wait: Annotated[bool, Query(description="wait for the result (default) or return 202 at once")] = True,
) -> Any:
    """Upload a file and scan it. The response body is the scan result (the CLI's `--json` object) plus its id."""
    path, media = await save_upload(file, settings)
    scan_id = scans.create(file.filename or path.name, path, media.info.sha256, principal.name)
    future = scans.submit(scan_id)
    if not wait:
        return JSONResponse(
            {"scan_id": scan_id, "status": "queued", "status_url": f"/v1/scans/{scan_id}"}, status_code=202
        )
    result = await asyncio.wrap_future(future)
    return result.to_dict()


@router.get("/{scan_id}")
def get_scan(scan_id: str, scans: ScansDep, principal: ScanPrincipal) -> dict[str, Any]:
    """Status, progress (0..1) and, when done, the result of a scan."""
    rec = scans.get(scan_id)
    if rec is None:
        raise HTTPException(404, "no such scan")
    rec.pop("report_path", None)
    return dict(rec)


@router.get("/{scan_id}/report", response_class=HTMLResponse)
def get_report(scan_id: str, scans: ScansDep, principal: ScanPrincipal) -> HTMLResponse:
    """The self-contained HTML report of a finished scan."""
    rec = scans.get(scan_id)
    report_path = None if rec is None else rec.get("report_path")
    if not report_path:
        raise HTTPException(404, "no report for this scan (yet)")
    with open(report_path, encoding="utf-8") as f:
        return HTMLResponse(f.read(), headers={"Content-Security-Policy": REPORT_CSP})
