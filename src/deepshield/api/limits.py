"""Request-body limits: the size, enforced while the body streams in (an oversized upload is refused before it is
stored), and finite numbers in JSON bodies."""

from __future__ import annotations

import contextlib
import json
import math
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deepshield.api.errors import body_for


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes + 64 * 1024  # room for multipart framing around one file at the limit
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        await self._reject(scope, send)
                        return
                except ValueError:
                    pass
        seen = 0
        over = started = replaced = False

        async def limited_receive() -> Message:
            nonlocal seen, over
            if over:
                raise BodyTooLarge()
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    over = True
                    raise BodyTooLarge()
            return msg

        async def guarded_send(msg: Message) -> None:
            # FastAPI turns an exception raised while it parses a form into its own 400 ("error parsing the
            # body"), so a chunked body (no Content-Length to refuse up front) would not get its 413: once
            # the limit is passed, whatever the app answers is replaced by the 413.
            nonlocal started, replaced
            if over and not started:
                started = replaced = True
                await self._reject(scope, send)
            elif not replaced:
                started = started or msg["type"] == "http.response.start"
                await send(msg)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if over and not started:
            await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        detail = f"request body is over the limit of {self.max_bytes / 1e6:.0f} MB"
        await _send_error(scope, send, 413, "media_too_large", detail)


async def _send_error(scope: Scope, send: Send, status: int, code: str, detail: str) -> None:
    """The error body the exception handlers give (`errors.body_for`: HMA's on HMA's routes)."""
    query = scope.get("query_string", b"").decode("latin-1")
    body = json.dumps(body_for(scope.get("path", ""), parse_qs(query), status, detail, code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def non_finite_path(document: object) -> str | None:
    """Where in a parsed JSON document a number is infinite or NaN (`1e400` parses as infinity), or None.
    Iterative: a body nested as deep as the parser allows must not overflow the stack here."""
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where or "the body"
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend((f"{where}.{key}" if where else str(key), item) for key, item in reversed(list(items)))
    return None


class FiniteJson:
    """Refuse a JSON body holding a number no float can hold (1e400, Infinity, NaN) with a 422 naming it.

    Python's JSON parser reads them as infinity or NaN, which passed every `ge`/`le` bound (NaN compares false)
    or sat unnoticed in a field the route ignores; checked once here for every route instead of per field."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, _replay(msg, receive), send)  # the client went away: let the app see it
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            where = non_finite_path(json.loads(body))
        except (ValueError, RecursionError):
            where = None  # not JSON: the route's own parsing answers
        if where is not None:
            detail = f"{where}: numbers must be finite (1e400, Infinity and NaN are not)"
            await _send_error(scope, send, 422, "invalid_number", detail)
            return
        await self.app(scope, _replay({"type": "http.request", "body": body, "more_body": False}, receive), send)


def _replay(first: Message, receive: Receive) -> Receive:
    """A receive that gives the buffered message once, then the client's own (its disconnect)."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False
