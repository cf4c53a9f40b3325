"""HMA-compatible hasher (`/h`), matcher (`/m`) and curator (`/c`) endpoints, behind API-key scopes.

Thin: the HMA wire format (request fields, answer shapes) is `deepshield.matching.hma`; these routes read
the request, move uploads through `media.open_upload` and commit. Uploaded content is hashed in a temporary
folder and deleted at once: banks keep hashes, never media.
"""

from __future__ import annotations

import io
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from deepshield.accounts.service import Principal
from deepshield.api.deps import SessionDep, SettingsDep, require_scope
from deepshield.config import Settings, make_private_dir
from deepshield.errors import DeepshieldError, MediaTooLarge
from deepshield.matching import hma
from deepshield.matching import service as svc
from deepshield.matching.hma import BadRequest
from deepshield.media import Media, MediaLimits, open_upload
from deepshield.media.open import rename_in_error
from deepshield.store.bounds import DB_INT_MAX

router = APIRouter(tags=["matching"])
MatchPrincipal = Annotated[Principal, Depends(require_scope("match"))]
CuratePrincipal = Annotated[Principal, Depends(require_scope("curate"))]
#: A bank entry's id in a path (bounded: a larger number was a 500 from the database driver).
ContentId = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]

# ---------------------------------------------------------------------------------------------- media in


@contextmanager
def _temp_media(settings: Settings, stream: BinaryIO, name: str | None = None) -> Iterator[Media]:
    limits = MediaLimits(max_bytes=settings.max_upload_bytes)
    make_private_dir(settings.home)
    with tempfile.TemporaryDirectory(dir=settings.home, prefix="match-") as td:
        _, media = open_upload(stream, Path(td), limits, name=name)
        try:
            yield media
        except DeepshieldError as e:  # a decode error names the user's file, not the temporary one
            rename_in_error(e, Path(media.info.path), name or "the upload")
            raise
        finally:
            media.close()


async def _form_upload(request: Request) -> tuple[str | None, UploadFile]:
    """HMA's multipart convention: one file, its field name is the content type (`photo` or `video`)."""
    form = await request.form()
    files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise BadRequest("Missing multipart/form-data file upload")
    if len(files) > 1:
        raise BadRequest("Only one file allowed per request")
    field, upload = files[0]
    return hma.content_type_field(field), upload


def _fetch_url(url: str, settings: Settings) -> BinaryIO:
    """GET ?url= as HMA does. Off unless DEEPSHIELD_MATCH_FETCH_URLS=1: fetching arbitrary URLs from the
    server is a request-forgery risk, so an operator must opt in."""
    if os.environ.get("DEEPSHIELD_MATCH_FETCH_URLS") != "1":
        raise BadRequest(
            "fetching by url is disabled on this server (set DEEPSHIELD_MATCH_FETCH_URLS=1); "
            "upload the file with POST instead"
        )
    if not url.startswith(("http://", "https://")):
        raise BadRequest("url must be http or https")
    resp = urllib.request.urlopen(url, timeout=30)  # noqa: S310 (scheme checked above)
    length = int(resp.headers.get("content-length") or 0)
    if length > settings.max_upload_bytes:
        raise MediaTooLarge("remote file is over the upload limit")
    return resp


# ---------------------------------------------------------------------------------------------- /h


@router.get("/h/hash")
def hash_url(
    settings: SettingsDep,
    _p: MatchPrincipal,
    url: Annotated[str | None, Query()] = None,
    content_type: Annotated[str | None, Query()] = None,
    types: Annotated[str | None, Query(description="comma-separated signal types")] = None,
) -> dict[str, str]:
    """Hash the media at `url` -> {signal type: hash}."""
    if not url:
        raise BadRequest("url is required")
    with _temp_media(settings, _fetch_url(url, settings)) as media:
        hma.check_content_type(media, content_type)
        return hma.hash_answer(media, types)


@router.post("/h/hash")
async def hash_upload(
    request: Request,
    settings: SettingsDep,
    _p: MatchPrincipal,
    types: Annotated[str | None, Query()] = None,
) -> dict[str, str]:
    """Hash an uploaded file (multipart field `photo` or `video`) -> {signal type: hash}."""
    ct, upload = await _form_upload(request)

    def work() -> dict[str, str]:
        with _temp_media(settings, upload.file, upload.filename) as media:
            hma.check_content_type(media, ct)
            return hma.hash_answer(media, types)

    return await run_in_threadpool(work)


# ---------------------------------------------------------------------------------------------- /m


@router.get("/m/raw_lookup")
def raw_lookup(
    session: SessionDep,
    settings: SettingsDep,
    _p: MatchPrincipal,
    signal_type: Annotated[str, Query()],
    signal: Annotated[str, Query()],
    include_distance: Annotated[bool, Query()] = False,
    banks: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Matching bank content ids (HMA: `{"matches": [id, ...]}`, or with distances)."""
    matches, _ = svc.lookup_signal(
        session, signal_type, signal, banks=hma.banks_param(banks), seed=svc.BYPASS_COINFLIP, settings=settings
    )
    return hma.raw_lookup_answer(matches, include_distance)


@router.get("/m/lookup")
def lookup_get(
    session: SessionDep,
    settings: SettingsDep,
    _p: MatchPrincipal,
    signal_type: Annotated[str | None, Query()] = None,
    signal: Annotated[str | None, Query()] = None,
    url: Annotated[str | None, Query()] = None,
    content_type: Annotated[str | None, Query()] = None,
    types: Annotated[str | None, Query()] = None,
    banks: Annotated[str | None, Query()] = None,
    seed: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Look up a hash -> {bank: [match]}; or a url -> {signal type: {bank: [match]}}."""
    bank_list = hma.banks_param(banks)
    if url:
        with _temp_media(settings, _fetch_url(url, settings)) as media:
            hma.check_content_type(media, content_type)
            return hma.lookup_media_answer(session, settings, media, bank_list, seed, types, signal_type)
    if not signal or not signal_type:
        raise BadRequest("Either url or both signal and signal_type are required")
    matches, _ = svc.lookup_signal(session, signal_type, signal, banks=bank_list, seed=seed, settings=settings)
    return hma.by_bank(matches)


@router.post("/m/lookup")
async def lookup_post(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _p: MatchPrincipal,
    banks: Annotated[str | None, Query()] = None,
    seed: Annotated[str | None, Query()] = None,
    bypass_coinflip: Annotated[bool, Query()] = False,
    types: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Hash an uploaded file and look up every hash -> {signal type: {bank: [match]}}."""
    ct, upload = await _form_upload(request)
    seed = svc.BYPASS_COINFLIP if bypass_coinflip else seed

    def work() -> dict[str, Any]:
        with _temp_media(settings, upload.file, upload.filename) as media:
            hma.check_content_type(media, ct)
            return hma.lookup_media_answer(session, settings, media, hma.banks_param(banks), seed, types)

    return await run_in_threadpool(work)


@router.post("/m/compare")
def compare(
    _p: MatchPrincipal,
    body: Annotated[dict[str, list[str]], Body(examples=[{"pdq": ["facd8b...", "facd8a..."]}])],
) -> dict[str, Any]:
    """Compare pairs of hashes: {"pdq": [a, b]} -> {"pdq": [matched, {"distance": d}]}."""
    return hma.compare_answer(body)


@router.get("/m/index/status")
def index_status(
    session: SessionDep,
    settings: SettingsDep,
    _p: MatchPrincipal,
    signal_type: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Per signal type: present, built_to (last applied change), size, and memory per hash."""
    return hma.index_status_answer(session, settings, signal_type)


# ---------------------------------------------------------------------------------------------- /c


@router.get("/c/banks")
def banks_index(session: SessionDep, _p: CuratePrincipal) -> list[dict[str, Any]]:
    return [hma.bank_json(b) for b in svc.list_banks(session)]


@router.post("/c/banks", status_code=201)
def bank_create(session: SessionDep, _p: CuratePrincipal, body: Annotated[dict[str, Any], Body()]) -> Any:
    """{"name", "enabled"?, "enabled_ratio"?, "threshold"?, "is_negative"?, "description"?}"""
    b = hma.create_bank(session, body)
    session.commit()
    return hma.bank_json(b)


@router.get("/c/bank/{bank_name}")
def bank_show(session: SessionDep, _p: CuratePrincipal, bank_name: str) -> dict[str, Any]:
    return hma.bank_json(svc.get_bank(session, bank_name))


@router.put("/c/bank/{bank_name}")
def bank_update(
    session: SessionDep, _p: CuratePrincipal, bank_name: str, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    b = hma.update_bank(session, bank_name, body)
    session.commit()
    return hma.bank_json(b)


@router.delete("/c/bank/{bank_name}")
def bank_delete(session: SessionDep, _p: CuratePrincipal, bank_name: str) -> dict[str, Any]:
    svc.delete_bank(session, bank_name)
    session.commit()
    return {"message": "Done"}


@router.get("/c/bank/{bank_name}/content/{content_id}")
def bank_content_get(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    content_id: ContentId,
    include_signals: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    return hma.content_json(svc.get_entry(session, content_id, bank_name), include_signals)


@router.post("/c/bank/{bank_name}/content")
async def bank_content_add(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: CuratePrincipal,
    bank_name: str,
    url: Annotated[str | None, Query()] = None,
    metadata: Annotated[str | None, Query(description="JSON object")] = None,
    content_type: Annotated[str | None, Query()] = None,
    types: Annotated[str | None, Query()] = None,
) -> Any:
    """Bank content by upload (multipart field `photo`/`video`) or `url`; returns {id, signals}."""
    svc.get_bank(session, bank_name)  # 404 before any hashing
    meta_raw: str | None = metadata
    media_cm: AbstractContextManager[Media]
    if url:
        media_cm = _temp_media(settings, _fetch_url(url, settings))
        declared = content_type
    else:
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            field = form.get("metadata")
            meta_raw = meta_raw or (field if isinstance(field, str) else None)
        declared, upload = await _form_upload(request)
        media_cm = _temp_media(settings, upload.file, upload.filename)
    meta = hma.entry_meta(meta_raw, principal.name)

    def work() -> dict[str, Any]:
        with media_cm as media:
            answer = hma.add_media(session, bank_name, media, declared, types, meta)
        session.commit()
        return answer

    return JSONResponse(await run_in_threadpool(work), status_code=200)  # HMA answers 200 here


@router.put("/c/bank/{bank_name}/content/{content_id}")
def bank_content_update(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    content_id: ContentId,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    answer = hma.update_content(session, bank_name, content_id, body)
    session.commit()
    return answer


@router.delete("/c/bank/{bank_name}/content/{content_id}")
def bank_content_delete(
    session: SessionDep, _p: CuratePrincipal, bank_name: str, content_id: ContentId
) -> dict[str, int]:
    n = svc.remove_entry(session, content_id, bank_name)
    session.commit()
    return {"deleted": n}


@router.post("/c/bank/{bank_name}/signal", status_code=200)  # as HMA
def bank_add_signal(
    session: SessionDep,
    principal: CuratePrincipal,
    bank_name: str,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Bank raw hashes: {signal type: hash, ...}; an optional "metadata" object is our extension."""
    answer = hma.add_signals(session, bank_name, body, principal.name)
    session.commit()
    return answer


@router.delete("/c/case/{case_id}")
def case_withdraw(session: SessionDep, _p: CuratePrincipal, case_id: str) -> dict[str, int]:
    """A victim's withdrawal: remove every entry of the case from every bank (our extension)."""
    n = svc.remove_case(session, case_id)
    session.commit()
    return {"deleted": n}


@router.get("/c/bank/{bank_name}/export", response_class=PlainTextResponse)
def bank_export(session: SessionDep, _p: CuratePrincipal, bank_name: str) -> PlainTextResponse:
    """The bank as a JSON Lines file (docs/bank-format.md)."""
    buf = io.StringIO()
    svc.export_bank(session, bank_name, buf)
    return PlainTextResponse(buf.getvalue(), media_type="application/x-ndjson")


@router.post("/c/bank/{bank_name}/import")
async def bank_import(request: Request, session: SessionDep, principal: CuratePrincipal, bank_name: str) -> Any:
    """Import a bank file (request body, JSON Lines) into this bank (created when missing)."""
    text = (await request.body()).decode("utf-8", errors="strict")
    name, n = svc.import_bank(session, io.StringIO(text), bank_name, added_by=principal.name)
    session.commit()
    return {"bank": name, "imported": n}


# ---------------------------------------------------------------------------------------------- device hashes


@router.get("/match/hash-photos", include_in_schema=False)
def device_hash_page() -> Any:
    """The on-device hashing page (static: it computes PDQ in the browser and sends only hashes)."""
    return RedirectResponse("/static/hash-photos.html", status_code=307)


#: What `hma.add_device_hashes` reads (it checks the same): declared so that clients and the fuzzer know it.
DEVICE_HASHES_SCHEMA: dict[str, Any] = {
    "required": ["bank", "hashes"],
    "properties": {
        "bank": {"type": "string", "minLength": 1},
        "case_id": {"type": "string"},
        "hashes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["pdq"],
                "properties": {
                    "pdq": {"type": "string", "pattern": r"^\s*[0-9a-fA-F]{64}\s*$"},
                    "quality": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            },
        },
    },
}


@router.post("/v1/match/device-hashes", status_code=201)
def device_hashes(
    session: SessionDep,
    principal: CuratePrincipal,
    body: Annotated[dict[str, Any], Body(json_schema_extra=DEVICE_HASHES_SCHEMA)],
) -> Any:
    """Bank PDQ hashes computed on a person's own device: {bank, case_id, hashes: [{pdq, quality}]}."""
    answer = hma.add_device_hashes(session, body, principal.name)
    session.commit()
    return answer
