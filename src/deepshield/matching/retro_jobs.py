"""Retroactive searches as jobs of the HTTP service: started for a bank against an archive's stored hashes, run
one at a time off the request thread, polled for progress and the copies found.

Archives are named relative to `$DEEPSHIELD_HOME/archives` (where `deepshield hash --ray --out` output is put or
mounted), so a client can name an archive but never reach another path on the server. With DEEPSHIELD_RAY_ADDRESS
set, the shards run on that Ray cluster. Jobs live in this process: a restart forgets them (search again).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonValue
from deepshield.matching.retro import ArchiveCopy, ArchiveQuery, bank_queries, search_archive

#: Copies a job keeps to show; the count is always complete.
MAX_COPIES_SHOWN = 10_000


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
            "copies": [
                {"file": c.file, "signal_type": c.signal_type, "query": c.query, "distance": c.distance}
                for c in self.copies
            ],
            "error": self.error,
        }


class ArchiveSearchService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home / "archives"
        self._jobs: dict[str, ArchiveSearchJob] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-search")

    def resolve(self, archive: str) -> Path:
        """An archive named under the archives folder; anything escaping it is refused like a missing one."""
        root = self.root.resolve()
        path = (root / archive).resolve()
        if not archive or path == root or not path.is_relative_to(root) or not path.exists():
            raise ArchiveNotFound(f"no archive {archive[:200]!r} under the service's archives folder")
        return path

    def start(self, bank: str, archive: str) -> ArchiveSearchJob:
        path = self.resolve(archive)
        queries = bank_queries(self.settings, bank)  # an unknown bank fails here, before a job exists
        if not queries:
            raise DeepshieldError(f"bank {bank!r} holds no PDQ, md5 or sha256 hash to search for")
        job = ArchiveSearchJob(uuid.uuid4().hex, bank, archive)
        with self._lock:
            self._jobs[job.search_id] = job
        self._executor.submit(self._run, job, path, queries)
        return job

    def _run(self, job: ArchiveSearchJob, path: Path, queries: list[ArchiveQuery]) -> None:
        job.status = "running"
        try:
            on_ray = self.settings.ray_address is not None
            shards = 4
            if on_ray:
                from deepshield.scale.batch import cluster_cpus, connect

                connect(str(self.settings.ray_address))
                shards = cluster_cpus()

            def progress(done: int, total: int) -> None:
                job.progress = done / total

            result = search_archive(path, queries, shards=shards, on_ray=on_ray, progress=progress)
            job.rows, job.copy_count, job.copies = result.rows, len(result.copies), result.copies[:MAX_COPIES_SHOWN]
            job.progress, job.status = 1.0, "done"
        except Exception as e:  # noqa: BLE001 - the job reports its failure; the service goes on
            job.status, job.error = "failed", getattr(e, "message", None) or f"{type(e).__name__}: {e}"

    def get(self, search_id: str) -> ArchiveSearchJob | None:
        with self._lock:
            return self._jobs.get(search_id)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
