"""Creating and checking API keys and user passwords."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deepshield.accounts.models import ApiKey, User, WebSession
from deepshield.errors import DeepshieldError
from deepshield.store.timeutil import utcnow

SCOPES = ("scan", "match", "curate", "label", "cases", "review", "consent", "admin")
ROLES = ("admin", "reviewer")
KEY_PREFIX = "dsk_"


class InvalidScope(DeepshieldError):
    code = "invalid_scope"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key or a logged-in web user."""

    kind: str  # "api_key" or "user"
    name: str
    scopes: frozenset[str]
    id: int

    def has_scope(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def _hash_key(key: str) -> str:
    # Keys carry 256 bits of entropy, so a fast hash is safe and keeps every request cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, scopes: list[str], name: str = "") -> tuple[str, ApiKey]:
    """Returns the plaintext key (shown once, never stored) and its record."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise InvalidScope(
            f"unknown or missing scope(s): {', '.join(bad) or '(none)'}; choose from {', '.join(SCOPES)}"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    rec = ApiKey(name=name or "key", prefix=key[:10], key_hash=_hash_key(key), scopes=",".join(sorted(set(scopes))))
    session.add(rec)
    session.flush()
    return key, rec


def authenticate_key(session: Session, key: str) -> Principal | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    rec = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash_key(key)))
    if rec is None or rec.revoked_at is not None:
        return None
    rec.last_used_at = utcnow()
    return Principal(kind="api_key", name=rec.name, scopes=rec.scope_set, id=rec.id)


def revoke_api_key(session: Session, key_id: int) -> bool:
    rec = session.get(ApiKey, key_id)
    if rec is None or rec.revoked_at is not None:
        return False
    rec.revoked_at = utcnow()
    return True


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


# Passwords: scrypt with per-user salt (stdlib, memory-hard).
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt_b64, dk_b64 = stored.split("$")
        dk = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=32)
        return hmac.compare_digest(dk, base64.b64decode(dk_b64))
    except (ValueError, TypeError):
        return False


def create_user(session: Session, username: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise InvalidScope(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise DeepshieldError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate_user(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.disabled:
        # Spend the same time as a real check so usernames cannot be probed by timing.
        verify_password(password, hash_password("x"))
        return None
    return user if verify_password(password, user.password_hash) else None


def user_principal(user: User) -> Principal:
    scopes = frozenset({"admin"}) if user.role == "admin" else frozenset({"scan", "review", "cases", "label"})
    return Principal(kind="user", name=user.username, scopes=scopes, id=user.id)


def ensure_first_admin(session: Session) -> str | None:
    """On the very first start create `admin` with a random one-time password and return it (else None)."""
    if session.scalar(select(User).limit(1)) is not None:
        return None
    password = secrets.token_urlsafe(12)
    create_user(session, "admin", password, "admin").must_change_password = True
    return password


def set_password(session: Session, username: str, password: str) -> None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise DeepshieldError(f"no user {username!r}")
    user.password_hash = hash_password(password)
    user.must_change_password = False
    revoke_user_sessions(session, user.id)  # a new password signs every browser out


# ------------------------------------------------------------------------------------------- web sessions

#: `last_seen_at` is written at most this often (not on every request), so the idle timeout is this coarse.
SEEN_GRANULARITY = dt.timedelta(seconds=60)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC


def start_web_session(session: Session, user: User) -> str:
    """A new signed-in session for `user`; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(WebSession(token_hash=_token_hash(token), user_id=user.id, created_at=now, last_seen_at=now))
    session.flush()
    return token


def web_session_user(
    session: Session, token: str, idle: dt.timedelta, maximum: dt.timedelta, now: dt.datetime | None = None
) -> User | None:
    """The user of a live session: not revoked, seen within `idle`, started within `maximum`, user enabled.
    An expired session is revoked on the way, so it cannot come back."""
    now = now or utcnow()
    ws = session.get(WebSession, _token_hash(token))
    if ws is None or ws.revoked_at is not None:
        return None
    if now - _aware(ws.last_seen_at) > idle or now - _aware(ws.created_at) > maximum:
        ws.revoked_at = now
        return None
    user = session.get(User, ws.user_id)
    if user is None or user.disabled:
        return None
    if now - _aware(ws.last_seen_at) > SEEN_GRANULARITY:
        ws.last_seen_at = now
    return user


def end_web_session(session: Session, token: str) -> None:
    ws = session.get(WebSession, _token_hash(token))
    if ws is not None and ws.revoked_at is None:
        ws.revoked_at = utcnow()


def revoke_user_sessions(session: Session, user_id: int) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
