"""Scan jobs as rows any worker process claims, so many service and worker processes share one database.

A claim takes the oldest claimable row (`queued`, or `running` with a lapsed lease) with `SELECT ... FOR UPDATE
SKIP LOCKED` on PostgreSQL, so two workers never wait on or take the same row, and marks it `running` under a
lease: an owner id and an expiry the owner keeps pushing forward while it works. A worker killed mid-job stops
renewing; once its lease lapses another worker claims the job again. Every write a worker makes is conditional on
still holding the lease, so a worker that lost its lease (paused past it, cut off from the database) can neither
report progress nor complete the job a second time. SQLite has no row locks: there the claim is the same
conditional update, which SQLite's single writer makes atomic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select, update

from deepshield.config import Settings
from deepshield.detect.models import ScanRecord
from deepshield.store.db import session_scope
from deepshield.store.timeutil import utcnow
from deepshield.workers import new_worker_id

DEFAULT_LEASE_S = 60.0


@dataclass(frozen=True)
class ClaimedJob:
    scan_id: str
    media_path: str
    filename: str
    keep_report: bool
    #: 1 on the first claim; more when an earlier worker's lease lapsed.
    attempt: int
    worker: str


class ScanJobQueue:
    """Claim, renew and complete scan jobs under a lease of `lease_s` seconds held by `worker`."""

    def __init__(self, settings: Settings, worker: str | None = None, lease_s: float = DEFAULT_LEASE_S) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.settings = settings
        self.worker = worker or new_worker_id()
        self.lease_s = lease_s

    def _claimable(self, now: dt.datetime) -> ColumnElement[bool]:
        lapsed = or_(ScanRecord.lease_expires_at.is_(None), ScanRecord.lease_expires_at < now)
        return or_(ScanRecord.status == "queued", and_(ScanRecord.status == "running", lapsed))

    def claim(self, scan_id: str | None = None) -> ClaimedJob | None:
        """The oldest claimable job (or `scan_id` if it is claimable), now held by this worker; None if none."""
        now = utcnow()
        with session_scope(self.settings) as s:
            q = select(ScanRecord.id).where(self._claimable(now))
            if scan_id is not None:
                q = q.where(ScanRecord.id == scan_id)
            q = q.order_by(ScanRecord.created_at, ScanRecord.id).limit(1).with_for_update(skip_locked=True)
            found = s.scalars(q).first()
            if found is None:
                return None
            claimed = s.execute(
                update(ScanRecord)
                .where(ScanRecord.id == found, self._claimable(now))
                .values(
                    status="running",
                    lease_owner=self.worker,
                    lease_expires_at=now + dt.timedelta(seconds=self.lease_s),
                    attempts=ScanRecord.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None  # SQLite: another process claimed it between the select and the update
            rec = s.get(ScanRecord, found, populate_existing=True)
            assert rec is not None
            return ClaimedJob(
                scan_id=rec.id,
                media_path=rec.media_path or "",
                filename=rec.filename,
                keep_report=bool(rec.keep_report),
                attempt=rec.attempts,
                worker=self.worker,
            )

    def _held(self, job: ClaimedJob, **values: object) -> bool:
        """Write `values` (and a fresh lease) if this worker still holds the job; False if it lost it."""
        with session_scope(self.settings) as s:
            done = s.execute(
                update(ScanRecord)
                .where(
                    ScanRecord.id == job.scan_id,
                    ScanRecord.status == "running",
                    ScanRecord.lease_owner == job.worker,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def renew(self, job: ClaimedJob, progress: float | None = None) -> bool:
        """Push the lease forward (and record progress); False once the job was claimed by another worker."""
        values: dict[str, object] = {"lease_expires_at": utcnow() + dt.timedelta(seconds=self.lease_s)}
        if progress is not None:
            values["progress"] = progress
        return self._held(job, **values)

    def complete(self, job: ClaimedJob, status: str, **fields: object) -> bool:
        """Finish the job (`done` or `failed`) if this worker still holds it. True exactly once per job."""
        return self._held(job, status=status, lease_owner=None, lease_expires_at=None, finished_at=utcnow(), **fields)

    def release(self, job: ClaimedJob) -> bool:
        """Give an unfinished job back (a worker shutting down): queued again for any worker, at once."""
        return self._held(job, status="queued", lease_owner=None, lease_expires_at=None, progress=0.0)
