"""Retroactive searches as jobs of the HTTP service: started for a bank against an archive's stored hashes, run
one at a time off the request thread, polled for progress and the copies found.

Archives are named relative to `$DEEPSHIELD_HOME/archives` (where `deepshield hash --ray --out` output is put or
mounted), so a client can name an archive but never reach another path on the server. With DEEPSHIELD_RAY_ADDRESS
set, the shards run on that Ray cluster.

Every search is a row of `archive_searches` (migration matching_0005), so any service process behind a load
balancer answers a poll for any search, and a restart keeps the record. The process running a search writes its
progress (at most every `PROGRESS_WRITE_S`) and its result to the row, and renews the heartbeat of all its
unfinished searches every third of the lease (`DEEPSHIELD_ARCHIVE_SEARCH_LEASE_S`). A search whose heartbeat is
older than the lease reads as failed, and is marked so: its process died, and nothing resumes it (start it
again); the process's own later writes are conditional on the search still being unfinished, so a search never
turns from failed to done.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import update

from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonValue
from deepshield.matching.models import ArchiveSearchRecord
from deepshield.matching.retro import ArchiveCopy, ArchiveQuery, bank_queries, search_archive
from deepshield.store.db import session_scope
from deepshield.store.timeutil import as_utc, utcnow
from deepshield.workers import PeriodicThread, new_worker_id

#: Copies a job keeps to show; the count is always complete.
MAX_COPIES_SHOWN = 10_000
#: Seconds between two progress writes of one search (its result is always written).
PROGRESS_WRITE_S = 0.5
UNFINISHED = ("queued", "running")
PROCESS_STOPPED = "the service process running it stopped; start the search again"


class ArchiveNotFound(DeepshieldError):
    code = "archive_not_found"
    http_status = 404


@dataclass
class ArchiveSearchJob:
    search_id: str
    bank: str
    archive: str
    status: str = "queued"  # queued, running, done, failed
    progress: float = 0.0
    rows: int = 0
    copies: list[ArchiveCopy] = field(default_factory=list)
    copy_count: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "search_id": self.search_id,
            "bank": self.bank,
            "archive": self.archive,
            "status": self.status,
            "progress": round(self.progress, 3),
            "stored_hashes": self.rows,
            "copy_count": self.copy_count,
            "copies": [copy_dict(c) for c in self.copies],
            "error": self.error,
        }

    @classmethod
    def from_record(cls, row: ArchiveSearchRecord) -> ArchiveSearchJob:
        copies = [ArchiveCopy(**c) for c in json.loads(row.copies_json or "[]")]
        return cls(
            row.id,
            row.bank,
            row.archive,
            row.status,
            row.progress,
            row.stored_hashes,
            copies,
            row.copy_count,
            row.error,
        )


class ArchiveSearchService:
    def __init__(self, settings: Settings, worker: str | None = None) -> None:
        self.settings = settings
        self.root = settings.home / "archives"
        self.worker = worker or new_worker_id()
        self.lease_s = settings.archive_search_lease_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-search")
        self._heartbeat = PeriodicThread("archive-search-heartbeat", self.lease_s / 3, self._beat, at_once=False)
        self._heartbeat.start()

    def resolve(self, archive: str) -> Path:
        """An archive named under the archives folder; anything escaping it is refused like a missing one."""
        root = self.root.resolve()
        missing = ArchiveNotFound(f"no archive {archive[:200]!r} under the service's archives folder")
        try:  # a NUL or an unencodable character is no file name (ValueError), nor is an over-long one (OSError)
            path = (root / archive).resolve()
            if not archive or path == root or not path.is_relative_to(root) or not path.exists():
                raise missing
        except (ValueError, OSError):
            raise missing from None
        return path

    def start(self, bank: str, archive: str) -> ArchiveSearchJob:
        path = self.resolve(archive)
        queries = bank_queries(self.settings, bank)  # an unknown bank fails here, before a job exists
        if not queries:
            raise DeepshieldError(f"bank {bank!r} holds no PDQ, md5 or sha256 hash to search for")
        job = ArchiveSearchJob(uuid.uuid4().hex, bank, archive)
        with session_scope(self.settings) as s:
            s.add(
                ArchiveSearchRecord(id=job.search_id, bank=bank, archive=archive, status=job.status, worker=self.worker)
            )
        self._executor.submit(self._run, job.search_id, path, queries)
        return job

    def _write(self, search_id: str, **values: Any) -> bool:
        """Update a search this process runs, unless it is finished (or was marked failed meanwhile)."""
        now = utcnow()
        with session_scope(self.settings) as s:
            done = s.execute(
                update(ArchiveSearchRecord)
                .where(
                    ArchiveSearchRecord.id == search_id,
                    ArchiveSearchRecord.worker == self.worker,
                    ArchiveSearchRecord.status.in_(UNFINISHED),
                )
                .values(updated_at=now, heartbeat_at=now, **values)
            )
            return bool(getattr(done, "rowcount", 0))

    def _beat(self) -> None:
        with session_scope(self.settings) as s:
            s.execute(
                update(ArchiveSearchRecord)
                .where(ArchiveSearchRecord.worker == self.worker, ArchiveSearchRecord.status.in_(UNFINISHED))
                .values(heartbeat_at=utcnow())
            )

    def _run(self, search_id: str, path: Path, queries: list[ArchiveQuery]) -> None:
        if not self._write(search_id, status="running"):
            return
        try:
            on_ray = self.settings.ray_address is not None
            shards = 4
            if on_ray:
                from deepshield.scale.batch import cluster_cpus, connect

                connect(str(self.settings.ray_address))
                shards = cluster_cpus()
            last = -PROGRESS_WRITE_S

            def progress(done: int, total: int) -> None:
                nonlocal last
                if time.monotonic() - last >= PROGRESS_WRITE_S:  # throttled: the result is written anyway
                    last = time.monotonic()
                    self._write(search_id, progress=done / total)

            result = search_archive(path, queries, shards=shards, on_ray=on_ray, progress=progress)
            shown = [copy_dict(c) for c in result.copies[:MAX_COPIES_SHOWN]]
            self._write(
                search_id,
                status="done",
                progress=1.0,
                stored_hashes=result.rows,
                copy_count=len(result.copies),
                copies_json=json.dumps(shown),
            )
        except Exception as e:  # noqa: BLE001 - the job reports its failure; the service goes on
            self._write(search_id, status="failed", error=getattr(e, "message", None) or f"{type(e).__name__}: {e}")

    def get(self, search_id: str) -> ArchiveSearchJob | None:
        """The search as its row says, whichever process runs it; one whose process stopped renewing its heartbeat
        past the lease is marked failed here (conditionally: a heartbeat that came meanwhile wins)."""
        with session_scope(self.settings) as s:
            row = s.get(ArchiveSearchRecord, search_id[:64])
            if row is None:
                return None
            cutoff = utcnow() - dt.timedelta(seconds=self.lease_s)
            if row.status in UNFINISHED and as_utc(row.heartbeat_at) < cutoff:
                s.execute(
                    update(ArchiveSearchRecord)
                    .where(
                        ArchiveSearchRecord.id == row.id,
                        ArchiveSearchRecord.status.in_(UNFINISHED),
                        ArchiveSearchRecord.heartbeat_at < cutoff,
                    )
                    .values(status="failed", error=PROCESS_STOPPED, updated_at=utcnow())
                    .execution_options(synchronize_session=False)  # SQLite's naive times: re-read below
                )
                s.refresh(row)
            return ArchiveSearchJob.from_record(row)

    def close(self) -> None:
        """The running search finishes; queued ones are cancelled and marked failed, so none waits for a lease."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._heartbeat.stop()
        with session_scope(self.settings) as s:
            s.execute(
                update(ArchiveSearchRecord)
                .where(ArchiveSearchRecord.worker == self.worker, ArchiveSearchRecord.status.in_(UNFINISHED))
                .values(status="failed", error=PROCESS_STOPPED, updated_at=utcnow())
            )


def copy_dict(c: ArchiveCopy) -> dict[str, JsonValue]:
    return {"file": c.file, "signal_type": c.signal_type, "query": c.query, "distance": c.distance}
