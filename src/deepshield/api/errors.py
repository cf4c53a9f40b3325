"""One error body for every 4xx the API answers, `{"error": code, "detail": message}`, and an OpenAPI document
that declares it.

FastAPI's own answers (`HTTPException`, validation) used other shapes than the one the spec declared, so a
client generated from `/openapi.json` could not parse them. Here the handlers and the spec share one schema,
added to every operation in one place rather than per route.

HMA's routes (`/h`, `/m`, `/c`) answer HMA's `{"message": text}` instead, so HMA's clients read our errors
(issue 33 point 2), and ours with `?format=deepshield`; the spec declares both there.
"""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from deepshield.errors import DeepshieldError

ERROR_SCHEMA_NAME = "Error"
FIELD_ERROR_SCHEMA_NAME = "FieldError"
HMA_ERROR_SCHEMA_NAME = "HmaError"
#: The paths of HMA's API, and the query that asks them for our body instead.
HMA_PREFIXES = ("/h/", "/m/", "/c/")
OUR_FORMAT = ("format", "deepshield")
#: `detail` is a sentence, or for a 422 on the request's shape one entry per field at fault.
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    FIELD_ERROR_SCHEMA_NAME: {
        "title": FIELD_ERROR_SCHEMA_NAME,
        "type": "object",
        "required": ["loc", "msg"],
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"},
        },
    },
    HMA_ERROR_SCHEMA_NAME: {
        "title": HMA_ERROR_SCHEMA_NAME,
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string", "description": "what went wrong, for people"}},
    },
    ERROR_SCHEMA_NAME: {
        "title": ERROR_SCHEMA_NAME,
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "stable code for machines"},
            "detail": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"$ref": f"#/components/schemas/{FIELD_ERROR_SCHEMA_NAME}"}},
                ]
            },
        },
    },
}
#: Answers any operation may give: bad input (400, 422), an unknown id or bank (404), a state conflict (409).
COMMON_ERRORS = (400, 404, 409, 422)
#: Operations behind an API key also answer a missing or wrong key (401) and a key without the scope (403).
AUTH_ERRORS = (401, 403)
#: Operations that take a body also answer an oversize body (413) and an unsupported media type (415).
BODY_ERRORS = (413, 415)
BODY_METHODS = frozenset({"post", "put", "patch"})
PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def body_for(path: str, query: Mapping[str, Any], status: int, detail: Any, code: str | None = None) -> dict[str, Any]:
    """HMA's `{"message"}` on HMA's routes (unless `?format=deepshield`), ours elsewhere. `query` maps a
    parameter to its value or values (a request's query params, or `parse_qs`)."""
    asked = query.get(OUR_FORMAT[0])
    ours = asked == OUR_FORMAT[1] or (isinstance(asked, list) and OUR_FORMAT[1] in asked)
    if path.startswith(HMA_PREFIXES) and not ours:
        return {"message": _message(detail)}
    return error_body(status, detail, code)


def _message(detail: Any) -> str:
    """A validation error list as one line (`body.name: field required; ...`), anything else as text."""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}" if isinstance(e, dict) else str(e)
            for e in detail
        )
    return str(detail)


def answer(request: Request, status: int, detail: Any, code: str | None = None, **kw: Any) -> JSONResponse:
    """The error answer for this request: HMA's body on HMA's routes, ours elsewhere."""
    body = body_for(request.url.path, request.query_params, status, detail, code)
    return JSONResponse(body, status_code=status, **kw)


def error_body(status: int, detail: Any, code: str | None = None) -> dict[str, Any]:
    """The body of an error answer; `code` defaults to the status phrase in snake case ("not_found")."""
    if code is None:
        try:
            code = http.HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
        except ValueError:
            code = "error"
    return {"error": code, "detail": detail}


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods some route of this path accepts. Starlette's 405 names only the first route that matched the
    path, so a path served by several routes (GET and POST of /m/lookup) advertised one method; here each
    method is tried against every route."""
    # A mount (/static) rewrote root_path in place while routing: match from the app's own root again.
    scope = {**request.scope, "root_path": request.scope.get("app_root_path", request.scope.get("root_path", ""))}
    allowed = [
        method
        for method in PROBED_METHODS
        if any(
            route.matches({**scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
            if not isinstance(route, Mount)  # a mounted app (/static) takes every method here: it says its own
        )
    ]
    return allowed + ["HEAD"] if "GET" in allowed else allowed


def install_error_handlers(app: FastAPI) -> None:
    """Every 4xx in the one shape, whichever layer raised it."""

    @app.exception_handler(DeepshieldError)
    async def _deepshield_error(request: Request, exc: DeepshieldError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
        return answer(request, exc.http_status, exc.message, exc.code, headers=headers)

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (NUL characters on PostgreSQL, out-of-range numbers) is bad input.
        detail = "a value in the request cannot be stored (out of range or invalid characters)"
        return answer(request, 422, detail, "invalid_value")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", [])), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return answer(request, 422, errors, "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code < 400:  # a redirect raised from a dependency (sign in first)
            return Response(status_code=exc.status_code, headers=headers)
        if exc.status_code == 405 and (allowed := allowed_methods(app, request)):
            headers["Allow"] = ", ".join(allowed)
        return answer(request, exc.status_code, exc.detail, headers=headers)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(status: int, description: str | None = None, hma: bool = False) -> dict[str, Any]:
    schema = {"anyOf": [_ref(HMA_ERROR_SCHEMA_NAME), _ref(ERROR_SCHEMA_NAME)]} if hma else _ref(ERROR_SCHEMA_NAME)
    return {
        "description": description or http.HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": schema}},
    }


def _not_json(response: dict[str, Any]) -> bool:
    """A declared answer in another media type (HMA's `/status` answers 503 in plain text): kept as declared."""
    content = response.get("content")
    return isinstance(content, dict) and bool(content) and "application/json" not in content


def declare_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Give every operation the error answers it can give, with the `Error` schema (HMA's routes: `HmaError`
    or `Error`; an answer declared in another media type is kept). FastAPI declares its `HTTPValidationError`
    for 422, which is not what the handler above sends."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(ERROR_SCHEMAS)
    for path, item in spec.get("paths", {}).items():
        hma = path.startswith(HMA_PREFIXES)
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            statuses = set(COMMON_ERRORS)
            if op.get("security"):
                statuses.update(AUTH_ERRORS)
            if method in BODY_METHODS:
                statuses.update(BODY_ERRORS)
            responses = op["responses"]
            statuses.update(int(code) for code in responses if code.isdigit() and int(code) >= 400)
            for status in sorted(statuses):
                declared = responses.get(str(status), {})
                if not _not_json(declared):
                    responses[str(status)] = _error_response(status, declared.get("description"), hma)
                    if "headers" in declared:  # Retry-After on a 429, say
                        responses[str(status)]["headers"] = declared["headers"]
    return spec


def install_openapi(app: FastAPI) -> None:
    """Wrap `app.openapi` so the document FastAPI builds (once, then cached) declares the error answers."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
