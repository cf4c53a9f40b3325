"""Settings read from the environment, so one data directory holds everything the service keeps."""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from deepshield.errors import NotConfigured

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


class BadSetting(NotConfigured):
    """A value in the environment the service cannot use: reported as one line naming the variable, what is
    wrong with the value and the form expected, instead of a traceback at start-up or on some later request."""

    code = "bad_setting"


def bad_setting(name: str, raw: object, problem: str, expected: str, secret: bool = False) -> BadSetting:
    """The one wording of a malformed setting, whether `Settings` or an `EnvSetting` found it. A secret's value
    is not echoed (the line goes to logs), only its length."""
    text = raw if isinstance(raw, str) else str(raw)
    shown = f"<{len(text)} characters, hidden>" if secret else repr(text)
    return BadSetting(f"{name}={shown}: {problem.rstrip('.')}; expected {expected}")


_TYPE_FORMS = {int: "a whole number", float: "a number", bool: "true or false (1/0, yes/no)", Path: "a path"}
_BOUND_WORDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _expected_form(field: FieldInfo) -> str:
    """`Settings` field's type and bounds in words: 'a whole number >= 0 and <= 64'."""
    args = getattr(field.annotation, "__args__", None) or (field.annotation,)
    base = next((_TYPE_FORMS[a] for a in args if a in _TYPE_FORMS), "text")
    bounds = [f"{word} {getattr(m, attr)}" for m in field.metadata for attr, word in _BOUND_WORDS if hasattr(m, attr)]
    return " and ".join([f"{base} {bounds[0]}", *bounds[1:]]) if bounds else base


def _settings_error(e: ValidationError) -> BadSetting:
    lines = []
    for err in e.errors():
        key = str(err["loc"][0]) if err["loc"] else ""
        field = Settings.model_fields.get(key)
        alias = field.validation_alias if field is not None else None
        name = alias if isinstance(alias, str) else f"DEEPSHIELD_{key.upper()}"
        expected = _expected_form(field) if field is not None else "a valid value"
        problem = str(err["msg"])
        lines.append(bad_setting(name, err.get("input"), problem[:1].lower() + problem[1:], expected).message)
    return BadSetting("\n".join(lines))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        raise _settings_error(e) from None


T = TypeVar("T")


@dataclass(frozen=True)
class EnvSetting(Generic[T]):
    """A setting read from the environment where it is used (rate limits, detector threads, feature switches)
    rather than through `Settings`. `parse` raises ValueError on a malformed value; `get` turns that into a
    `BadSetting`, so every such variable fails the same clear way. Unset or blank: `default`."""

    name: str
    parse: Callable[[str], T]
    default: T
    expected: str
    secret: bool = False

    def get(self) -> T:
        raw = os.environ.get(self.name, "")
        if not raw.strip():
            return self.default
        try:
            return self.parse(raw.strip())
        except ValueError as e:
            raise bad_setting(self.name, raw, str(e) or "malformed", self.expected, self.secret) from None


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_flag(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("not a switch value")


def parse_rate(raw: str) -> tuple[int, float]:
    """'N/SECONDS' (or 'N', per 60 s): at most N requests per client in any SECONDS."""
    n_text, slash, per_text = raw.partition("/")
    try:
        n, per = int(n_text), float(per_text) if slash else 60.0
    except ValueError:
        raise ValueError("not a count and a number of seconds") from None
    if n < 1 or not 0 < per < 1e7:
        raise ValueError("the count must be at least 1 and the seconds above 0")
    return n, per


def parse_threads(raw: str) -> int:
    try:
        n = int(raw)
    except ValueError:
        raise ValueError("not a whole number") from None
    if not 1 <= n <= 256:
        raise ValueError("out of range")
    return n


def parse_hex_secret(raw: str) -> bytes:
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise ValueError("not an even number of hexadecimal digits") from None


def parse_http_url(raw: str) -> str:
    """An http(s) URL with a host, as urllib can post to (no spaces or control characters)."""
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or not raw.isprintable() or " " in raw:
        raise ValueError("not an http(s) URL")
    return raw


def parse_existing_file(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError("no such file")
    return path


_RATE_FORM = "N/SECONDS, at most N requests per client in any SECONDS (e.g. 10/600)"
FORM_RATE = EnvSetting("DEEPSHIELD_FORM_RATE", parse_rate, (10, 600.0), _RATE_FORM)
PIN_RATE = EnvSetting("DEEPSHIELD_PIN_RATE", parse_rate, (10, 600.0), _RATE_FORM)
LOGIN_ACCOUNT_RATE = EnvSetting("DEEPSHIELD_LOGIN_ACCOUNT_RATE", parse_rate, (10, 900.0), _RATE_FORM)
LOGIN_CLIENT_RATE = EnvSetting("DEEPSHIELD_LOGIN_CLIENT_RATE", parse_rate, (20, 600.0), _RATE_FORM)
DETECT_THREADS = EnvSetting("DEEPSHIELD_DETECT_THREADS", parse_threads, 2, "a whole number of threads, 1 to 256")
_SWITCH = "1 or 0 (also true/false, yes/no, on/off)"
ORT_SPIN = EnvSetting("DEEPSHIELD_ORT_SPIN", parse_flag, False, _SWITCH)
TEMPORAL = EnvSetting("DEEPSHIELD_TEMPORAL", parse_flag, True, _SWITCH)
MATCH_FETCH_URLS = EnvSetting("DEEPSHIELD_MATCH_FETCH_URLS", parse_flag, False, _SWITCH)
DEBUG_NATIVE = EnvSetting("DEEPSHIELD_DEBUG_NATIVE", parse_flag, False, _SWITCH)
CASES_SECRET = EnvSetting(
    "DEEPSHIELD_CASES_SECRET",
    parse_hex_secret,
    b"",
    "hexadecimal digits, e.g. from `openssl rand -hex 32`",
    secret=True,
)
#: Hidden in errors: a webhook URL often carries its receiver's token.
WEBHOOK_URL = EnvSetting[str | None]("DEEPSHIELD_WEBHOOK_URL", parse_http_url, None, "https://host/path", secret=True)
CASES_CONFIG = EnvSetting[Path | None](
    "DEEPSHIELD_CASES_CONFIG", parse_existing_file, None, "the path of an existing cases policy file (JSON)"
)
ENV_SETTINGS: tuple[EnvSetting[Any], ...] = (
    FORM_RATE, PIN_RATE, LOGIN_ACCOUNT_RATE, LOGIN_CLIENT_RATE, DETECT_THREADS, ORT_SPIN, TEMPORAL,
    MATCH_FETCH_URLS, DEBUG_NATIVE, CASES_SECRET, WEBHOOK_URL, CASES_CONFIG,
)  # fmt: skip


def check_environment() -> Settings:
    """Every setting read, so `serve` and `worker` refuse a malformed one as they start (raises `BadSetting`),
    not on the first request or scan that reads it."""
    settings = get_settings()
    for setting in ENV_SETTINGS:
        setting.get()
    return settings


#: The prefix of a path in a training config that stands for the detector work folder.
WORK_PREFIX = "{work}/"


def work_path(value: str) -> Path:
    """A training-config path: `{work}/...` lies under the work folder, so one config runs on any machine;
    anything else is taken as written."""
    if value.startswith(WORK_PREFIX):
        return get_settings().work_dir / value[len(WORK_PREFIX) :]
    return Path(value)
