"""Settings read from the environment, so one data directory holds everything the service keeps."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Frames sampled evenly from a video by a scan, unless `DEEPSHIELD_SCAN_FRAMES` or `deepshield scan --frames` says.
DEFAULT_SCAN_FRAMES = 32


log = logging.getLogger("deepshield")


def make_private_dir(path: Path) -> None:
    """Create `path` for its owner only (0700, whatever the umask): the data directory holds reporters' names,
    emails and explanations and the reported media. An existing folder keeps the mode its operator gave it
    (it may be /tmp or a home directory); a loose one is named in a warning."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
            os.chmod(path, 0o700)
        except FileExistsError:
            pass
    elif path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users (mode %o): chmod 700 it", path, path.stat().st_mode & 0o777)


def make_private_file(path: Path) -> None:
    """Create `path` (or tighten the file of ours that is there) to 0600: owner read and write only."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEEPSHIELD_", extra="ignore")

    home: Path = Field(default=Path("var"), description="Data directory: database, uploads, reports, keys.")
    work: Path | None = Field(
        default=None,
        description="Detector work folder (face cache, training runs, swap sets); unset means $DEEPSHIELD_HOME/work.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL; unset means SQLite at $DEEPSHIELD_HOME/deepshield.db.",
    )
    max_upload_bytes: int = 200 * 1024 * 1024
    #: Scans run at once by the service (each worker holds its own face and detector models); 0 runs none in the
    #: service process, leaving its jobs to `deepshield worker` processes on the same database.
    scan_workers: int = Field(default=1, ge=0, le=64)
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster the service runs retroactive archive searches on (host:port or auto); unset: "
        "they run in the service process.",
    )
    scan_lease_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds a worker holds a scan job without renewing it; a job whose worker died is claimed "
        "again after this long.",
    )
    archive_search_lease_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds an archive search's process may go without a heartbeat; past it the search reads as "
        "failed (its process stopped) and must be started again.",
    )
    scan_frames: int = Field(
        default=DEFAULT_SCAN_FRAMES,
        ge=1,
        le=1000,
        description="Frames sampled per video by every scan: POST /v1/scans, the web upload, upload screening "
        "(POST /v1/uploads) and case evidence, and `deepshield scan` unless --frames is given.",
    )
    session_secret: str | None = None
    forwarded_allow_ips: str = Field(
        default="",
        description="Reverse proxies trusted to name the client: comma-separated addresses or networks (CIDR) "
        "whose X-Forwarded-For and X-Forwarded-Proto the service believes. Empty (default): none, the client is "
        "the connection's peer, so nobody escapes the per-client limits by sending the header.",
    )
    #: A console session ends after this long without a request, and this long after sign-in however active.
    session_idle_minutes: float = 30
    session_max_hours: float = 8
    audit_key: Path | None = Field(
        default=None,
        description="Ed25519 key that signs audit checkpoints; unset means $DEEPSHIELD_HOME/keys/audit_ed25519.pem. "
        "Keep it off the database's host or volume: whoever holds it can sign a rewritten chain.",
    )
    audit_checkpoints: Path | None = Field(
        default=None,
        description="Append-only JSON Lines file of signed audit checkpoints; unset means "
        "$DEEPSHIELD_HOME/audit-checkpoints.jsonl. Point it at storage the database's users cannot rewrite.",
    )
    audit_checkpoint_minutes: float = Field(
        default=5.0,
        ge=0,
        description="The service signs a checkpoint this often when the audit head has moved (0: never; "
        "`deepshield audit checkpoint` from cron instead).",
    )
    audit_checkpoint_events: int = Field(
        default=1000, ge=1, description="... or as soon as this many events were appended since the last one."
    )
    audit_checkpoint_webhook: bool = Field(
        default=False, description="Also post each checkpoint to the cases webhook (event `audit.checkpoint`)."
    )
    exchange_fetch_minutes: float = Field(
        default=1.0,
        ge=0,
        description="The service fetches every enabled signal exchange (`/c/exchanges`) this often, the first "
        "time one interval after it starts (HMA's fetcher: every 60 s). 0: never; fetch by "
        "`POST /c/exchange/<name>/fetch` instead.",
    )

    @property
    def db_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the plain postgres:// form that many hosts hand out.
            if url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url[len("postgres://") :]
            elif url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.home / 'deepshield.db').resolve()}"

    @property
    def work_dir(self) -> Path:
        """Training data and runs: large, rebuilt by commands, never part of the repository."""
        return self.work if self.work is not None else self.home / "work"

    @property
    def face_cache_dir(self) -> Path:
        """Where `deepshield detect-cache` writes and training reads unless told otherwise."""
        return self.work_dir / "detect" / "faces"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key if self.audit_key is not None else self.home / "keys" / "audit_ed25519.pem"

    @property
    def audit_checkpoints_path(self) -> Path:
        if self.audit_checkpoints is not None:
            return self.audit_checkpoints
        return self.home / "audit-checkpoints.jsonl"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def ensure_dirs(self) -> None:
        make_private_dir(self.home)
        for d in (self.uploads_dir, self.reports_dir):
            d.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


#: The prefix of a path in a training config that stands for the detector work folder.
WORK_PREFIX = "{work}/"


def work_path(value: str) -> Path:
    """A training-config path: `{work}/...` lies under the work folder, so one config runs on any machine;
    anything else is taken as written."""
    if value.startswith(WORK_PREFIX):
        return get_settings().work_dir / value[len(WORK_PREFIX) :]
    return Path(value)
