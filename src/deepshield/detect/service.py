"""Scan jobs for the service: records in the store that any worker process claims (`detect.jobs`), run on a small
pool of scanners (each owns its models).

Every scan the service makes goes through here with one `ScanOptions` built from the settings: uploads to
`/v1/scans` and the web page, and upload screening and case evidence (`cases.adapters.DetectorScreener`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import NotRequired, TypedDict

from sqlalchemy import select

from deepshield.config import Settings, get_settings
from deepshield.detect.jobs import ClaimedJob, ScanJobQueue
from deepshield.detect.models import ScanRecord
from deepshield.detect.pipeline import Scanner, ScanOptions
from deepshield.jsontypes import JsonObject
from deepshield.reports.html import render_report
from deepshield.scan_result import ScanResult
from deepshield.store.db import session_scope
from deepshield.workers import PeriodicThread

log = logging.getLogger(__name__)
#: How often idle threads look for other processes' jobs, and how often waiting futures read their rows.
_POLL_S = 1.0
_WATCH_S = 0.2


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
    """Records scans as jobs (`detect.jobs`) and runs them on `scan_workers` threads, each with its own scanner.

    `take_any`: the threads also claim jobs that other processes recorded (the HTTP service and `deepshield
    worker`, so many processes on one database share the work); otherwise they run only the scans submitted here
    (a CLI that screens its own case evidence). A future from `submit` resolves whoever runs the job: a local
    thread, or another process (a watcher reads the finished row). `scan_workers` 0 runs nothing here."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        take_any: bool = False,
        worker: str | None = None,
        lease_s: float | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.take_any = take_any
        self.jobs = ScanJobQueue(self.settings, worker, lease_s or self.settings.scan_lease_s)
        # Idle scanners; at most one per worker thread is ever built.
        self._scanners: queue.Queue[Scanner] = queue.Queue()
        self._submitted: queue.Queue[str] = queue.Queue()
        self._futures: dict[str, Future[ScanResult]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.completed = 0  # jobs this service completed (each job is completed once, by one worker)
        self._threads = [
            threading.Thread(target=self._work, name=f"scan-{i}", daemon=True)
            for i in range(max(0, self.settings.scan_workers))
        ]
        self._watcher = PeriodicThread("scan-watch", _WATCH_S, self._watch, at_once=False)
        for t in self._threads:
            t.start()
        self._watcher.start()

    def _scanner(self) -> Scanner:
        try:
            return self._scanners.get_nowait()
        except queue.Empty:
            return Scanner(self.options)

    @property
    def options(self) -> ScanOptions:
        """The one scan configuration of the service."""
        return ScanOptions(frames=self.settings.scan_frames, keep_artifacts=True)

    def create(
        self, filename: str, media_path: Path, sha256: str | None, created_by: str | None, report: bool = True
    ) -> str:
        """Record a queued scan job. Without `report` no HTML report (nor the face pictures it holds) is kept."""
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
                    keep_report=report,
                )
            )
        return scan_id

    def submit(self, scan_id: str) -> Future[ScanResult]:
        """A future of the recorded job's result; this process's threads try it first."""
        fut: Future[ScanResult] = Future()
        fut.set_running_or_notify_cancel()
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the scan service is shut down")
            self._futures[scan_id] = fut
        self._submitted.put(scan_id)
        self._wake.set()
        self._watcher.kick()
        return fut

    def scan(
        self, media_path: Path, filename: str, sha256: str | None, created_by: str | None, report: bool = True
    ) -> ScanResult:
        """Record a scan, run it on a worker and wait for its result (for callers already off the event loop)."""
        return self.submit(self.create(filename, media_path, sha256, created_by, report)).result()

    def _next_job(self) -> ClaimedJob | None:
        """A scan submitted here first (a caller may be waiting on it), then, with `take_any`, anyone's."""
        while True:
            try:
                scan_id = self._submitted.get_nowait()
            except queue.Empty:
                break
            job = self.jobs.claim(scan_id)
            if job is not None:
                return job
        return self.jobs.claim() if self.take_any else None

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._next_job()
            except Exception:  # noqa: BLE001 - the database away for a moment: try again after a pause
                log.exception("claiming a scan job failed")
                job = None
            if job is None:
                self._wake.wait(_POLL_S if self.take_any else None)
                self._wake.clear()
                continue
            self._wake.set()  # there may be more: let an idle thread look too
            try:
                self._run(job)
            except Exception:  # noqa: BLE001 - the job stays leased and is claimed again when the lease lapses
                log.exception("scan job %s failed to run", job.scan_id)

    def _run(self, job: ClaimedJob) -> None:
        scanner = self._scanner()
        last = [0.0]

        def progress(p: float) -> None:
            if p - last[0] >= 0.1 or p >= 1.0:
                last[0] = p
                self.jobs.renew(job, round(p, 3))

        lease = PeriodicThread("scan-lease", self.jobs.lease_s / 3, lambda: self.jobs.renew(job), at_once=False)
        lease.start()
        try:
            outcome = scanner.scan(job.media_path, progress, keep_artifacts=job.keep_report)
        finally:
            lease.stop()
            self._scanners.put(scanner)
        result = replace(outcome.result.renamed(job.filename), scan_id=job.scan_id)
        report_path = None
        if job.keep_report:
            report_path = self.settings.reports_dir / f"{job.scan_id}.html"
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(render_report(result, outcome.artifacts), encoding="utf-8")
        completed = self.jobs.complete(
            job,
            "done" if result.ok else "failed",
            progress=1.0,
            result_json=result.to_json(),
            report_path=None if report_path is None else str(report_path),
            error=None if result.error is None else result.error.message,
        )
        if completed:
            self.completed += 1
            log.info("scan %s completed by %s on attempt %d", job.scan_id, job.worker, job.attempt)
            self._resolve(job.scan_id, result)
        else:
            log.warning("scan %s: lease lost to another worker; its result is the one kept", job.scan_id)

    def _resolve(self, scan_id: str, result: ScanResult) -> None:
        with self._lock:
            fut = self._futures.pop(scan_id, None)
        if fut is not None and not fut.done():
            fut.set_result(result)

    def _watch(self) -> None:
        """Resolve the futures of jobs another process finished."""
        with self._lock:
            waiting = list(self._futures)
        for start in range(0, len(waiting), 500):
            with session_scope(self.settings) as s:
                rows = s.execute(
                    select(ScanRecord.id, ScanRecord.result_json).where(
                        ScanRecord.id.in_(waiting[start : start + 500]),
                        ScanRecord.status.in_(("done", "failed")),
                    )
                ).all()
            for scan_id, result_json in rows:
                if result_json:
                    self._resolve(scan_id, ScanResult.from_json(result_json))

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
        """Stop claiming, wait for the running scans (their rows would otherwise stay `running` until the lease
        lapses), cancel the futures still waiting (their jobs stay queued for any worker), release the models."""
        with self._lock:
            self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join()
        self._watcher.stop()
        with self._lock:
            waiting, self._futures = list(self._futures.values()), {}
        for fut in waiting:
            if not fut.done():  # a submitted future is already running: it cannot be cancelled, only failed
                fut.set_exception(RuntimeError("the scan service shut down before this scan ran"))
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
