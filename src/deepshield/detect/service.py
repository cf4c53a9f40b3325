"""Scan jobs for the service: records in the store, work on a small pool of scanners (each owns its models).

Every scan the service makes goes through here with one `ScanOptions` built from the settings: uploads to
`/v1/scans` and the web page, and upload screening and case evidence (`cases.adapters.DetectorScreener`).
"""

from __future__ import annotations

import json
import queue
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NotRequired, TypedDict

from sqlalchemy import select

from deepshield.config import Settings, get_settings
from deepshield.detect.models import ScanRecord
from deepshield.detect.pipeline import Scanner, ScanOptions
from deepshield.jsontypes import JsonObject
from deepshield.reports.html import render_report
from deepshield.scan_result import ScanResult
from deepshield.store.db import session_scope
from deepshield.store.timeutil import utcnow


class ScanStatus(TypedDict):
    """A recorded scan as the API and the web page show it; `result` is `ScanResult.to_dict` once done."""

    scan_id: str
    status: str  # queued, running, done, failed
    progress: float
    filename: str
    created_at: str | None
    finished_at: str | None
    result: JsonObject | None
    report_path: NotRequired[str | None]  # a path on this machine: never shown to a client


class ScanService:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        workers = max(1, self.settings.scan_workers)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scan")
        # Idle scanners; at most one per worker thread is ever built.
        self._scanners: queue.Queue[Scanner] = queue.Queue()

    def _scanner(self) -> Scanner:
        try:
            return self._scanners.get_nowait()
        except queue.Empty:
            return Scanner(self.options)

    @property
    def options(self) -> ScanOptions:
        """The one scan configuration of the service."""
        return ScanOptions(frames=self.settings.scan_frames, keep_artifacts=True)

    def create(self, filename: str, media_path: Path, sha256: str | None, created_by: str | None) -> str:
        scan_id = uuid.uuid4().hex
        with session_scope(self.settings) as s:
            s.add(
                ScanRecord(
                    id=scan_id,
                    filename=filename[:512],
                    media_path=str(media_path),
                    sha256=sha256,
                    status="queued",
                    progress=0.0,
                    created_by=created_by,
                )
            )
        return scan_id

    def submit(self, scan_id: str, report: bool = True) -> Future[ScanResult]:
        """Run the scan on a worker. Without `report` no HTML report (nor the face pictures it holds) is kept."""
        return self._executor.submit(self._run, scan_id, report)

    def scan(
        self, media_path: Path, filename: str, sha256: str | None, created_by: str | None, report: bool = True
    ) -> ScanResult:
        """Record a scan, run it on a worker and wait for its result (for callers already off the event loop)."""
        return self.submit(self.create(filename, media_path, sha256, created_by), report).result()

    def _set(self, scan_id: str, **fields: object) -> None:
        with session_scope(self.settings) as s:
            rec = s.get(ScanRecord, scan_id)
            if rec is not None:
                for k, v in fields.items():
                    setattr(rec, k, v)

    def _run(self, scan_id: str, report: bool = True) -> ScanResult:
        with session_scope(self.settings) as s:
            rec = s.get(ScanRecord, scan_id)
            assert rec is not None
            path, filename = rec.media_path, rec.filename
        self._set(scan_id, status="running")
        scanner = self._scanner()
        last = [0.0]

        def progress(p: float) -> None:
            if p - last[0] >= 0.1 or p >= 1.0:
                last[0] = p
                self._set(scan_id, progress=round(p, 3))

        try:
            outcome = scanner.scan(str(path), progress, keep_artifacts=report)
        finally:
            self._scanners.put(scanner)
        result = replace(outcome.result.renamed(filename), scan_id=scan_id)
        report_path = None
        if report:
            report_path = self.settings.reports_dir / f"{scan_id}.html"
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(render_report(result, outcome.artifacts), encoding="utf-8")
        self._set(
            scan_id,
            status="done" if result.ok else "failed",
            progress=1.0,
            result_json=result.to_json(),
            report_path=None if report_path is None else str(report_path),
            error=None if result.error is None else result.error.message,
            finished_at=utcnow(),
        )
        return result

    def get(self, scan_id: str) -> ScanStatus | None:
        with session_scope(self.settings) as s:
            rec = s.get(ScanRecord, scan_id)
            return None if rec is None else _status(rec, with_result=True)

    def recent(self, created_by: str, limit: int = 50) -> list[ScanStatus]:
        """The newest scans one user made, without their results (the web page's list of past scans)."""
        with session_scope(self.settings) as s:
            q = (
                select(ScanRecord)
                .where(ScanRecord.created_by == created_by)
                .order_by(ScanRecord.created_at.desc())
                .limit(limit)
            )
            return [_status(rec, with_result=False) for rec in s.scalars(q)]

    def shutdown(self) -> None:
        """Cancel queued scans and wait for running ones (their records would otherwise stay `running`), then
        release the scanners' models."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        while not self._scanners.empty():
            self._scanners.get_nowait().close()


def _status(rec: ScanRecord, with_result: bool) -> ScanStatus:
    return {
        "scan_id": rec.id,
        "status": rec.status,
        "progress": rec.progress,
        "filename": rec.filename,
        "created_at": rec.created_at.isoformat() if rec.created_at else None,
        "finished_at": rec.finished_at.isoformat() if rec.finished_at else None,
        "result": json.loads(rec.result_json) if with_result and rec.result_json else None,
        "report_path": rec.report_path,
    }
