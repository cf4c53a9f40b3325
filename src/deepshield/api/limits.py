"""Request-body limit enforced while the body streams in, so an oversized upload is refused before it is stored."""

from __future__ import annotations

import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
                        await self._reject(send)
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
                await self._reject(send)
            elif not replaced:
                started = started or msg["type"] == "http.response.start"
                await send(msg)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if over and not started:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {"error": "media_too_large", "detail": f"request body is over the limit of {self.max_bytes / 1e6:.0f} MB"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
