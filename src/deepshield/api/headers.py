"""Security headers on every answer: pages may run only the service's own scripts and may not be framed,
nothing is MIME-sniffed, and no URL (status pages carry case numbers) leaks in a Referer."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deepshield.reports.html import REPORT_CSP as REPORT_PAGE_CSP

#: Console and public pages: scripts from /static only (no inline script, no event-handler attributes), inline
#: styles (the templates use them; an injected style cannot run code), images and media from the service or
#: in-page data (report thumbnails, camera previews), requests to the service only.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: A scan report, served: its own meta-tag policy (inline data only) and no framing (header only).
REPORT_CSP = REPORT_PAGE_CSP + "; frame-ancestors 'none'"
#: The interactive documentation (api/docs.py: Swagger UI / ReDoc from packaged files) runs an inline script; it
#: may load nothing from another host (ReDoc's "powered by" logo would come from its CDN), and is not framed.
DOCS_PATHS = ("/docs", "/redoc")
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware: adds the headers unless the route set its own (a report sets REPORT_CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in BASE_HEADERS.items():
                    headers.setdefault(k, v)
                headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else PAGE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)
