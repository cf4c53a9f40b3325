"""Victim self-service PINs: derived from a server secret (so an idempotent retry can show the same PIN
again), stored only as a keyed hash, and checked with a stored lockout that makes guessing hopeless. Apart
from the case service so the rules about secrets read in one place."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets

from sqlalchemy.orm import Session

from deepshield.cases import audit
from deepshield.cases.models import Case
from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.store.timeutil import as_utc, utcnow

PIN_FREE_TRIES = 5
PIN_LOCK = dt.timedelta(minutes=15)


class PinLocked(DeepshieldError):
    code = "rate_limited"
    http_status = 429


_secrets: dict[str, bytes] = {}


def case_secret(settings: Settings) -> bytes:
    """Server secret for deriving PINs (so an idempotent retry can show the same PIN again):
    DEEPSHIELD_CASES_SECRET (hex; set it when several hosts share one database) or
    `$DEEPSHIELD_HOME/cases.key`, created once."""
    env = os.environ.get("DEEPSHIELD_CASES_SECRET")
    if env:
        return bytes.fromhex(env)
    path = settings.home / "cases.key"
    cached = _secrets.get(str(path))
    if cached is not None:
        return cached
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".cases.key.{secrets.token_hex(4)}")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic: the first process wins, the others read its key
        tmp.unlink()
    key = bytes.fromhex(path.read_text().strip())
    _secrets[str(path)] = key
    return key


def pin_hash(secret: bytes, case_id: str, pin: str) -> str:
    """Keyed hash of the PIN. The PIN is itself derived from the same secret, so a slow hash would add no
    protection: whoever holds the secret can derive every PIN; whoever holds only the database learns
    nothing."""
    return "hmac$" + hmac.new(secret, f"verify:{case_id}:{pin}".encode(), hashlib.sha256).hexdigest()


def derive_pin(secret: bytes, case_id: str) -> str:
    n = int.from_bytes(hmac.new(secret, b"pin:" + case_id.encode(), hashlib.sha256).digest()[:8], "big")
    return f"{n % 10**8:08d}"


def check_pin(
    session: Session, settings: Settings, case_id: str, pin: str, now: dt.datetime | None = None
) -> Case | None:
    """The case when the PIN is right. After 5 wrong PINs the case locks for 15 minutes, doubling each time;
    the counter is stored, so restarts and many processes do not reset it."""
    now = now or utcnow()
    case = session.get(Case, case_id.strip().upper()[:20])
    if case is None:
        return None
    locked = as_utc(case.pin_locked_until)
    if locked is not None and locked > now:
        raise PinLocked(f"too many wrong PINs: try again after {locked.isoformat(timespec='minutes')}")
    secret = case_secret(settings)
    if hmac.compare_digest(pin_hash(secret, case.id, pin.strip()), case.pin_hash):
        case.pin_failures = 0
        case.pin_locked_until = None
        return case
    case.pin_failures += 1
    if case.pin_failures >= PIN_FREE_TRIES:
        case.pin_locked_until = now + PIN_LOCK * (2 ** min(case.pin_failures - PIN_FREE_TRIES, 10))
    audit.record(
        session,
        actor="self-service",
        actor_kind="automated",
        action="pin_failed",
        case_id=case.id,
        reason=f"wrong PIN ({case.pin_failures} in a row)",
    )
    return None
