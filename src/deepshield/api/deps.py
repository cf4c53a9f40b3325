"""Dependencies shared by every route: database session, API-key scopes, web login and CSRF, and the bounds
on numbers from clients."""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from deepshield.accounts.models import User
from deepshield.accounts.service import Principal, authenticate_key, user_principal, web_session_user
from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.store.db import session_scope

#: Integers from clients are bounded to what every database column holds (PostgreSQL's `integer`; SQLite
#: cannot bind more than 64 bits and raised OverflowError, a 500): declare `le=DB_INT_MAX` on every int
#: parameter and field, and read numbers in free-form JSON bodies with `body_int` / `body_float`.
DB_INT_MAX = 2**31 - 1
#: The largest value of a 64-bit column (`BigInteger`: a Unix time such as `disable_until_ts`).
DB_BIGINT_MAX = 2**63 - 1


class InvalidNumber(DeepshieldError):
    code = "invalid_number"
    http_status = 422


def body_int(value: Any, name: str, lo: int = 0, hi: int = DB_INT_MAX) -> int:
    """An integer from a JSON body (a JSON integer, an integral number or a string of digits) in [lo, hi]."""
    integral_float = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    digits = isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,20}\s*", value) is not None
    if integral_float or digits:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidNumber(f"{name} must be an integer from {lo} to {hi}")
    return value


def body_float(value: Any, name: str, lo: float, hi: float) -> float:
    """A finite number from a JSON body in [lo, hi] (1e400 parses as infinity: refused, not ignored)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise InvalidNumber(f"{name} must be a number from {lo:g} to {hi:g}")
    return float(value)


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer dsk_...`")


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


#: Where a user who must change the one-time password may go.
PASSWORD_CHANGE_PATHS = ("/account/password", "/logout", "/login")


def current_user_optional(request: Request, session: SessionDep, settings: SettingsDep) -> User | None:
    """The signed-in user of a live server-side session (the cookie names it; logout, the idle timeout and the
    maximum age end it in the database, so a copied cookie does not outlive it)."""
    sid = request.session.get("sid") if "session" in request.scope else None
    if not isinstance(sid, str):
        return None
    user = web_session_user(
        session,
        sid,
        idle=dt.timedelta(minutes=settings.session_idle_minutes),
        maximum=dt.timedelta(hours=settings.session_max_hours),
    )
    if user is None:
        request.session.clear()
    elif user.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        # The first-start one-time password opens only the page that replaces it.
        if request.url.path.startswith(("/v1/", "/h/", "/m/", "/c/")):
            raise HTTPException(403, "change the one-time password first: sign in to the console")
        raise HTTPException(303, headers={"Location": "/account/password"})
    return user


OptionalUser = Annotated[User | None, Depends(current_user_optional)]


def require_scope(scope: str) -> Callable[..., Principal]:
    """API access with `Authorization: Bearer KEY` holding `scope` (or admin); a logged-in web user also counts
    for the scopes of their role, so the console's own pages can call the API."""

    def dep(
        session: SessionDep,
        user: OptionalUser,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal: Principal | None = None
        if creds is not None:
            principal = authenticate_key(session, creds.credentials)
            if principal is None:
                raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        elif user is not None:
            principal = user_principal(user)
        if principal is None:
            raise HTTPException(
                401, "an API key is required: send `Authorization: Bearer KEY`", headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.has_scope(scope):
            raise HTTPException(403, f"this key lacks the `{scope}` scope")
        return principal

    return dep


def csrf_token(request: Request) -> str:
    tok = request.session.get("csrf")
    if not tok:
        tok = secrets.token_urlsafe(24)
        request.session["csrf"] = tok
    return str(tok)


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not submitted or not secrets.compare_digest(str(expected), submitted):
        raise HTTPException(403, "invalid or missing CSRF token: reload the page and try again")
