"""Victim self-service PINs: derived from a server secret (so an idempotent retry can show the same PIN
again), stored only as a keyed hash, and checked with a stored lockout per client and case number that makes
guessing hopeless without locking out the victim. Apart from the case service so the rules about secrets read
in one place."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import math
import os
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from deepshield.cases import audit
from deepshield.cases.models import Case, PinAttempt
from deepshield.config import CASES_SECRET, Settings
from deepshield.errors import DeepshieldError
from deepshield.store.timeutil import as_utc, utcnow

PIN_FREE_TRIES = 5
PIN_LOCK = dt.timedelta(minutes=15)
#: The longest lockout, however many wrong PINs: it falls on the guesser, and bounds what a shared address
#: (a household, a carrier's NAT) can cost the others behind it.
PIN_LOCK_MAX = dt.timedelta(hours=1)
#: A client's wrong PINs for a case number are forgotten a day after the last one.
PIN_FORGET = dt.timedelta(days=1)
#: The one answer to an unknown case number and to a wrong PIN.
WRONG_PIN = "unknown case number or wrong PIN"
#: Compared with when the case number does not exist: the same work as for a wrong PIN, and no PIN matches.
_NO_CASE_HASH = "hmac$" + "0" * 64


class PinLocked(DeepshieldError):
    code = "rate_limited"
    http_status = 429


_secrets: dict[str, bytes] = {}


def case_secret(settings: Settings) -> bytes:
    """Server secret for deriving PINs (so an idempotent retry can show the same PIN again):
    DEEPSHIELD_CASES_SECRET (hex; set it when several hosts share one database) or
    `$DEEPSHIELD_HOME/cases.key`, created once."""
    env = CASES_SECRET.get()
    if env:
        return env
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


def lockout(failures: int) -> dt.timedelta | None:
    """How long a client waits after `failures` wrong PINs in a row for one case number: none for the first
    five, then 15 minutes, doubling, at most `PIN_LOCK_MAX`."""
    if failures < PIN_FREE_TRIES:
        return None
    return min(PIN_LOCK * 2 ** min(failures - PIN_FREE_TRIES, 8), PIN_LOCK_MAX)


def check_pin(
    session: Session, settings: Settings, case_id: str, pin: str, client: str, now: dt.datetime | None = None
) -> Case | None:
    """The case when the PIN is right, else None. Wrong PINs count per `client` and case number, existing or
    not, so an unknown number and a wrong PIN get the same answers (and the same work: the hash is compared
    with a dummy), and a guesser locks out itself, never the victim signing in from elsewhere. Stored, so
    restarts and many processes do not reset it; the caller also limits each client across case numbers."""
    now = now or utcnow()
    secret = case_secret(settings)
    number = case_id.strip().upper()[:20]
    who = hmac.new(secret, f"client:{client}".encode(), hashlib.sha256).hexdigest()
    mine = (PinAttempt.client == who) & (PinAttempt.case_id == number)
    locked = as_utc(session.scalar(select(PinAttempt.locked_until).where(mine)))
    if locked is not None and locked > now:
        minutes = math.ceil((locked - now).total_seconds() / 60)
        raise PinLocked(f"too many wrong PINs for this case number from your connection: try again in {minutes} min")
    case = session.get(Case, number)
    expected = case.pin_hash if case is not None else _NO_CASE_HASH
    if hmac.compare_digest(pin_hash(secret, number, pin.strip()), expected) and case is not None:
        session.execute(delete(PinAttempt).where(mine))
        return case
    failures = _count_failure(session, who, number, now)
    audit.record(
        session,
        actor="self-service",
        actor_kind="automated",
        action="pin_failed",
        case_id=number,
        reason=f"unknown case number or wrong PIN ({failures} in a row from this client)",
        details={"client": client},
    )
    return None


def _count_failure(session: Session, who: str, number: str, now: dt.datetime) -> int:
    """One more wrong PIN from `who` for `number`, counted by one upsert (parallel guesses are all counted and
    never collide), and the lockout it earns; returns the count. Rows idle for a day are dropped first."""
    session.execute(delete(PinAttempt).where(PinAttempt.last_failed_at < now - PIN_FORGET))
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    count = insert(PinAttempt).values(client=who, case_id=number, failures=1, last_failed_at=now)
    count = count.on_conflict_do_update(
        index_elements=[PinAttempt.client, PinAttempt.case_id],
        set_={"failures": PinAttempt.failures + 1, "last_failed_at": now},
    )
    session.execute(count)
    mine = (PinAttempt.client == who) & (PinAttempt.case_id == number)
    failures = int(session.scalar(select(PinAttempt.failures).where(mine)) or 0)
    wait = lockout(failures)
    session.execute(update(PinAttempt).where(mine).values(locked_until=now + wait if wait else None))
    return failures
