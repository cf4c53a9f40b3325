"""Server-rendered web pages: sign in, upload a file, see its report."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from deepshield.accounts.service import authenticate_user, end_web_session, set_password, start_web_session
from deepshield.api.deps import OptionalUser, ScansDep, SessionDep, SettingsDep, check_csrf, client_key, csrf_token
from deepshield.api.headers import REPORT_CSP
from deepshield.api.uploads import save_upload
from deepshield.cases.ratelimit import LOGIN_ACCOUNT, LOGIN_CLIENT, RateLimited
from deepshield.errors import DeepshieldError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return templates.TemplateResponse(
        request, "login.html", {"csrf": csrf_token(request), "next": next if next.startswith("/") else "/"}
    )


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in. Failed attempts are throttled per account and per client (429, the password not even checked,
    until the window passes), so guessing is slow; every attempt is in the audit trail."""
    check_csrf(request, csrf)
    account, client = username.strip().lower()[:128], client_key(request)
    try:
        LOGIN_ACCOUNT.check(account)
        LOGIN_CLIENT.check(client)
    except RateLimited as e:
        _audit_login(session, username[:128], False, request, throttled=True)
        return templates.TemplateResponse(
            request,
            "login.html",
            {"csrf": csrf_token(request), "next": next, "error": f"Too many failed sign-ins: {e.message}."},
            status_code=429,
            headers={"Retry-After": e.message.rsplit(" in ", 1)[-1].split()[0]},
        )
    user = authenticate_user(session, username, password)
    _audit_login(session, username[:128], user is not None, request)
    if user is None:
        for limiter, k in ((LOGIN_ACCOUNT, account), (LOGIN_CLIENT, client)):
            with contextlib.suppress(RateLimited):  # already full: the next attempt is refused by check()
                limiter.hit(k)
        return templates.TemplateResponse(
            request,
            "login.html",
            {"csrf": csrf_token(request), "next": next, "error": "Wrong user name or password."},
            status_code=401,
        )
    request.session.clear()
    request.session["sid"] = start_web_session(session, user)
    return RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", status_code=303)


def _audit_login(session: SessionDep, username: str, ok: bool, request: Request, throttled: bool = False) -> None:
    """Every sign-in attempt goes into the hash-chained audit trail (cases domain)."""
    from deepshield.cases import audit

    audit.record(
        session,
        actor=username,
        actor_kind="human",
        action="login" if ok else ("login_throttled" if throttled else "login_failed"),
        details={"client": request.client.host if request.client else None},
    )


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: Annotated[str, Form()] = "") -> Response:
    """Ends the session in the database, not only in this browser: a copy of the cookie stops working."""
    check_csrf(request, csrf)
    sid = request.session.get("sid")
    if isinstance(sid, str):
        end_web_session(session, sid)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


MIN_PASSWORD = 12


def _password_page(request: Request, user: Any, error: str | None = None, status: int = 200) -> Response:
    ctx = {
        "user": user,
        "csrf": csrf_token(request),
        "must_change": user.must_change_password,
        "min_length": MIN_PASSWORD,
        "error": error,
    }
    return templates.TemplateResponse(request, "password.html", ctx, status_code=status)


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return _login_redirect(request)
    return _password_page(request, user)


@router.post("/account/password", response_class=HTMLResponse)
def password_change(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    current: Annotated[str, Form(max_length=1024)] = "",
    new: Annotated[str, Form(max_length=1024)] = "",
    repeat: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Replace the password (the first-start one-time password must be, before anything else opens). Every
    other session of the user ends; this browser gets a new one."""
    check_csrf(request, csrf)
    if user is None:
        return _login_redirect(request)
    if authenticate_user(session, user.username, current) is None:
        return _password_page(request, user, "The current password is wrong.", 422)
    if len(new) < MIN_PASSWORD or new != repeat or new == current:
        why = f"Choose a new password of at least {MIN_PASSWORD} characters, typed the same twice."
        return _password_page(request, user, why, 422)
    set_password(session, user.username, new)
    request.session.clear()
    request.session["sid"] = start_web_session(session, user)
    return RedirectResponse("/", status_code=303)


@router.get("/account/csrf")
def csrf_for_scripts(request: Request) -> JSONResponse:
    """The session's CSRF token for the console's scripts, which send it in `X-CSRF-Token` with API calls made
    with the cookie. Another site cannot read this answer (no CORS), so it cannot forge such a call."""
    return JSONResponse({"csrf_token": csrf_token(request)}, headers={"Cache-Control": "no-store"})


def _upload_page(request: Request, user: Any, scans: ScansDep, error: str | None = None, status: int = 200) -> Response:
    """The upload form and the user's past scans, newest first."""
    ctx = {"user": user, "csrf": csrf_token(request), "scans": scans.recent(user.username), "error": error}
    return templates.TemplateResponse(request, "upload.html", ctx, status_code=status)


@router.get("/", response_class=HTMLResponse)
def upload_page(request: Request, user: OptionalUser, scans: ScansDep) -> Response:
    if user is None:
        return _login_redirect(request)
    return _upload_page(request, user, scans)


@router.post("/upload", response_class=HTMLResponse)
async def upload(
    request: Request,
    user: OptionalUser,
    settings: SettingsDep,
    scans: ScansDep,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if user is None:
        return _login_redirect(request)
    check_csrf(request, csrf)
    try:
        path, media = await save_upload(file, settings)
    except DeepshieldError as e:
        return _upload_page(request, user, scans, e.message, e.http_status)
    scan_id = scans.create(file.filename or path.name, path, media.info.sha256, user.username)
    scans.submit(scan_id)
    return RedirectResponse(f"/scans/{scan_id}", status_code=303)


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
def scan_page(scan_id: str, request: Request, user: OptionalUser, scans: ScansDep) -> Response:
    if user is None:
        return _login_redirect(request)
    rec = scans.get(scan_id)
    if rec is None:
        raise HTTPException(404, "no such scan")
    report = None
    if report_path := rec.get("report_path"):
        report = Path(report_path).read_text(encoding="utf-8")
    return templates.TemplateResponse(
        request, "scan.html", {"user": user, "csrf": csrf_token(request), "scan": rec, "report": report}
    )


@router.get("/scans/{scan_id}/report", response_class=HTMLResponse)
def scan_report_page(
    scan_id: str, request: Request, user: OptionalUser, scans: ScansDep, download: bool = False
) -> Response:
    """The scan's self-contained report on a page of its own (its own CSP: nothing fetched, nothing run), or
    with `?download=1` as a file to keep or send."""
    if user is None:
        return _login_redirect(request)
    rec = scans.get(scan_id)
    report_path = None if rec is None else rec.get("report_path")
    if rec is None or not report_path:
        raise HTTPException(404, "no report for this scan (yet)")
    headers = {"Content-Security-Policy": REPORT_CSP}
    if download:
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(rec["filename"]).stem)[:80] or "scan"
        headers["Content-Disposition"] = f'attachment; filename="deepshield-report-{stem}.html"'
    return HTMLResponse(Path(report_path).read_text(encoding="utf-8"), headers=headers)
