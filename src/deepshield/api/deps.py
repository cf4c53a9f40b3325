"""Dependencies shared by every route: database session, the app's services, API-key scopes, web login and
CSRF. (The bounds on numbers from clients are `deepshield.store.bounds`.)"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from deepshield.accounts.models import User
from deepshield.accounts.service import Principal, authenticate_key, user_principal, web_session_user
from deepshield.api.services import Services
from deepshield.cases.context import CasesContext
from deepshield.config import Settings
from deepshield.consent.service import ConsentService
from deepshield.detect.service import ScanService
from deepshield.liveness.service import LivenessService
from deepshield.matching.retro_jobs import ArchiveSearchService
from deepshield.store.db import session_scope

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer dsk_...`")


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings) as session:
        yield session


#: Scope "function": the request's transaction commits when the route returns, before the response is sent. With
#: FastAPI's default ("request") it committed after the response went out, so a client that followed a redirect
#: at once could arrive before the commit: a sign-in's redirect to /console found no session row and sent the
#: browser back to /login (seen in CI).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_services(request: Request) -> Services:
    """The services the app's lifespan built (see `api.services`)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_scans(services: ServicesDep) -> ScanService:
    return services.scans


def get_cases(services: ServicesDep) -> CasesContext:
    return services.cases


def get_liveness(services: ServicesDep) -> LivenessService:
    return services.liveness


def get_archive_searches(services: ServicesDep) -> ArchiveSearchService:
    return services.archive_searches


def get_consent(services: ServicesDep) -> ConsentService:
    return services.consent


ScansDep = Annotated[ScanService, Depends(get_scans)]
ArchiveSearchesDep = Annotated[ArchiveSearchService, Depends(get_archive_searches)]
CasesDep = Annotated[CasesContext, Depends(get_cases)]
LivenessDep = Annotated[LivenessService, Depends(get_liveness)]
ConsentDep = Annotated[ConsentService, Depends(get_consent)]


#: Methods that change nothing: a cookie-authenticated API request with any other method needs the CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The header that carries the console session's CSRF token on API requests made with its cookie.
CSRF_HEADER = "X-CSRF-Token"

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
    for the scopes of their role, so the console's own pages can call the API. The browser sends the cookie
    with any site's form, so a cookie-authenticated request that changes state must also carry the session's
    CSRF token in `X-CSRF-Token` (a key is never sent by the browser on its own, so keyed requests need none)."""

    def dep(
        request: Request,
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
            if request.method not in SAFE_METHODS and not csrf_matches(request, request.headers.get(CSRF_HEADER)):
                raise HTTPException(
                    403,
                    f"signed in with the console's cookie: send the session's CSRF token in {CSRF_HEADER} "
                    "(GET /account/csrf), or use an API key",
                )
            principal = user_principal(user)
        if principal is None:
            raise HTTPException(
                401, "an API key is required: send `Authorization: Bearer KEY`", headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.has_scope(scope):
            raise HTTPException(403, f"this key lacks the `{scope}` scope")
        return principal

    return dep


def client_key(request: Request) -> str:
    """Who is asking, for the per-client limits: the connection's peer (or the client a configured proxy names,
    see `Settings.forwarded_allow_ips`); an IPv6 address by its /64, which one subscriber holds whole and
    could otherwise rotate through."""
    host = request.client.host if request.client else "unknown"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def csrf_token(request: Request) -> str:
    tok = request.session.get("csrf")
    if not tok:
        tok = secrets.token_urlsafe(24)
        request.session["csrf"] = tok
    return str(tok)


def csrf_matches(request: Request, submitted: str | None) -> bool:
    """Whether `submitted` is this session's CSRF token (a session without one matches nothing)."""
    expected = request.session.get("csrf") if "session" in request.scope else None
    return bool(expected and submitted and secrets.compare_digest(str(expected), submitted))


def check_csrf(request: Request, submitted: str | None) -> None:
    if not csrf_matches(request, submitted):
        raise HTTPException(403, "invalid or missing CSRF token: reload the page and try again")
