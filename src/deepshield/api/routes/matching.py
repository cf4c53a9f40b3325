"""HMA-compatible hasher (`/h`), matcher (`/m`) and curator (`/c`) endpoints, behind API-key scopes.

Thin: the HMA wire format (request fields, answer shapes) is `deepshield.matching.hma`; these routes read
the request, move uploads through `media.open_upload` and commit. Uploaded content is hashed in a temporary
folder and deleted at once: banks keep hashes, never media.
"""

from __future__ import annotations

import io
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
from deepshield.config import MATCH_FETCH_URLS, Settings, make_private_dir
from deepshield.errors import DeepshieldError, MediaTooLarge
from deepshield.matching import exchanges, hma, hma_banks
from deepshield.matching import service as svc
from deepshield.matching.hma import BadRequest, Mode
from deepshield.media import Media, MediaLimits, open_upload
from deepshield.media.open import rename_in_error
from deepshield.store.bounds import DB_INT_MAX

#: HMA's routes; their errors are HMA's `{"message"}` (`api.errors`, which also declares it).
hma_router = APIRouter(tags=["matching"])
MatchPrincipal = Annotated[Principal, Depends(require_scope("match"))]
CuratePrincipal = Annotated[Principal, Depends(require_scope("curate"))]
#: A bank entry's id in a path (bounded: a larger number was a 500 from the database driver).
ContentId = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]
#: `?format=`: HMA's exact shapes (default), or ours with extra fields.
FormatQ = Annotated[
    Mode, Query(alias="format", description="hma: HMA's shapes exactly; deepshield: with our extra fields")
]
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


async def _form_upload(request: Request) -> tuple[hma.ContentType, UploadFile]:
    """HMA's multipart convention: one file, its field name is the content type (`photo` or `video`)."""
    if not request.headers.get("content-type", "").startswith("multipart/"):
        raise BadRequest("Missing multipart/form-data file upload")
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
    if not MATCH_FETCH_URLS.get():
        raise BadRequest(
            "fetching by url is disabled on this server (set DEEPSHIELD_MATCH_FETCH_URLS=1); "
            "upload the file with POST instead"
        )
    if not url.startswith(("http://", "https://")):
        raise BadRequest("Invalid or unsafe URL provided")
    try:
        resp = urllib.request.urlopen(url, timeout=30)  # noqa: S310 (scheme checked above)
    except (OSError, ValueError) as e:
        raise BadRequest(f"Failed to fetch URL: {e}") from None
    length = int(resp.headers.get("content-length") or 0)
    if length > settings.max_upload_bytes:
        raise MediaTooLarge("Content too large")
    return resp


# ---------------------------------------------------------------------------------------------- /h


@hma_router.get("/h/hash")
def hash_url(
    settings: SettingsDep,
    _p: MatchPrincipal,
    url: Annotated[str | None, Query()] = None,
    content_type: Annotated[str | None, Query()] = None,
    types: Annotated[str | None, Query(description="comma-separated signal types")] = None,
    mode: FormatQ = Mode.HMA,
) -> dict[str, str]:
    """Hash the media at `url` -> {signal type: hash}."""
    if not url:
        raise BadRequest("url is required")
    declared = hma.content_type_param(content_type)
    with _temp_media(settings, _fetch_url(url, settings)) as media:
        return hma.hash_answer(media, types, declared, mode)


@hma_router.post("/h/hash")
async def hash_upload(
    request: Request,
    settings: SettingsDep,
    _p: MatchPrincipal,
    types: Annotated[str | None, Query()] = None,
    mode: FormatQ = Mode.HMA,
) -> dict[str, str]:
    """Hash an uploaded file (multipart field `photo` or `video`) -> {signal type: hash}."""
    ct, upload = await _form_upload(request)

    def work() -> dict[str, str]:
        with _temp_media(settings, upload.file, upload.filename) as media:
            return hma.hash_answer(media, types, ct, mode)

    return await run_in_threadpool(work)


# ---------------------------------------------------------------------------------------------- /m


@hma_router.get("/m/raw_lookup")
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


@hma_router.get("/m/lookup")
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
    bypass_coinflip: Annotated[bool, Query()] = False,
    mode: FormatQ = Mode.HMA,
) -> dict[str, Any]:
    """Look up a hash -> {bank: [match]}; or a url -> {signal type: {bank: [match]}}."""
    bank_list = hma.banks_param(banks)
    seed = svc.BYPASS_COINFLIP if bypass_coinflip else seed
    if url:
        declared = hma.content_type_param(content_type)
        with _temp_media(settings, _fetch_url(url, settings)) as media:
            return hma.lookup_media_answer(
                session, settings, media, bank_list, seed, types, signal_type, declared, mode
            )
    if not signal or not signal_type:
        raise BadRequest("Either url or both signal and signal_type are required")
    matches, _ = svc.lookup_signal(session, signal_type, signal, banks=bank_list, seed=seed, settings=settings)
    return hma.by_bank(matches)


@hma_router.post("/m/lookup")
async def lookup_post(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _p: MatchPrincipal,
    banks: Annotated[str | None, Query()] = None,
    seed: Annotated[str | None, Query()] = None,
    bypass_coinflip: Annotated[bool, Query()] = False,
    types: Annotated[str | None, Query()] = None,
    mode: FormatQ = Mode.HMA,
) -> dict[str, Any]:
    """Hash an uploaded file and look up every hash -> {signal type: {bank: [match]}}."""
    ct, upload = await _form_upload(request)
    seed = svc.BYPASS_COINFLIP if bypass_coinflip else seed

    def work() -> dict[str, Any]:
        with _temp_media(settings, upload.file, upload.filename) as media:
            return hma.lookup_media_answer(
                session, settings, media, hma.banks_param(banks), seed, types, None, ct, mode
            )

    return await run_in_threadpool(work)


@hma_router.post("/m/compare")
def compare(
    _p: MatchPrincipal,
    body: Annotated[Any, Body(examples=[{"pdq": ["facd8b...", "facd8a..."]}])],
) -> dict[str, Any]:
    """Compare pairs of hashes: {"pdq": [a, b]} -> {"pdq": [matched, {"distance": d}]}."""
    return hma.compare_answer(body)


@hma_router.get("/m/index/status")
def index_status(
    session: SessionDep,
    settings: SettingsDep,
    _p: MatchPrincipal,
    signal_type: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Per signal type: present, built_to (Unix time of the newest change in the index), size, memory."""
    return hma.index_status_answer(session, settings, signal_type)


# ---------------------------------------------------------------------------------------------- /c banks


@hma_router.get("/c/banks")
def banks_index(session: SessionDep, _p: CuratePrincipal, mode: FormatQ = Mode.HMA) -> list[dict[str, Any]]:
    return [hma_banks.bank_json(b, mode) for b in svc.list_banks(session)]


@hma_router.post("/c/banks", status_code=201)
def bank_create(
    session: SessionDep, _p: CuratePrincipal, body: Annotated[dict[str, Any], Body()], mode: FormatQ = Mode.HMA
) -> dict[str, Any]:
    """{"name", "enabled"?, "enabled_ratio"?, "threshold"?, "is_negative"?, "description"?}; a taken name 403."""
    b = hma_banks.create_bank(session, body)
    session.commit()
    return hma_banks.bank_json(b, mode)


@hma_router.get("/c/bank/{bank_name}")
def bank_show(session: SessionDep, _p: CuratePrincipal, bank_name: str, mode: FormatQ = Mode.HMA) -> dict[str, Any]:
    return hma_banks.bank_json(svc.get_bank(session, bank_name), mode)


@hma_router.put("/c/bank/{bank_name}")
def bank_update(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    body: Annotated[dict[str, Any], Body()],
    mode: FormatQ = Mode.HMA,
) -> dict[str, Any]:
    b = hma_banks.update_bank(session, bank_name, body)
    session.commit()
    return hma_banks.bank_json(b, mode)


@hma_router.delete("/c/bank/{bank_name}")
def bank_delete(session: SessionDep, _p: CuratePrincipal, bank_name: str) -> dict[str, Any]:
    """Delete a bank and its content; as HMA, 200 when there was no such bank."""
    answer = hma_banks.delete_bank(session, bank_name)
    session.commit()
    return answer


# ---------------------------------------------------------------------------------------------- /c content


@hma_router.get("/c/bank/{bank_name}/content/{content_id}")
def bank_content_get(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    content_id: ContentId,
    include_signals: Annotated[bool, Query()] = False,
    include_metadata: Annotated[bool, Query()] = True,
    mode: FormatQ = Mode.HMA,
) -> dict[str, Any]:
    svc.get_bank(session, bank_name)
    e = svc.get_entry(session, content_id, bank_name)
    return hma_banks.content_json(session, e, mode, include_signals, include_metadata)


async def _metadata_and_note(request: Request, query_metadata: str | None) -> tuple[Any, Any]:
    """HMA reads the metadata (and note) from a JSON body, or from form fields of a multipart upload; we
    also take `?metadata=` (earlier Deepshield clients)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the body is not valid JSON") from None
        if isinstance(body, dict):
            return body.get("metadata", query_metadata), body.get("note")
        return query_metadata, None
    if ctype.startswith("multipart/"):
        form = await request.form()
        md, note = form.get("metadata"), form.get("note")
        return (md if isinstance(md, str) else query_metadata), (note if isinstance(note, str) else None)
    return query_metadata, None


@hma_router.post("/c/bank/{bank_name}/content")
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
    mode: FormatQ = Mode.HMA,
) -> Any:
    """Bank content by upload (multipart field `photo`/`video`) or `url`, with optional `metadata`
    {content_id, content_uri, json} and `note` (JSON body or form fields); returns {id, signals}."""
    svc.get_bank(session, bank_name)  # 404 before any hashing
    meta_raw, note = await _metadata_and_note(request, metadata)
    meta = hma.entry_meta(meta_raw, principal.name, note)
    media_cm: AbstractContextManager[Media]
    declared: hma.ContentType | None
    if url:
        media_cm = _temp_media(settings, _fetch_url(url, settings))
        declared = hma.content_type_param(content_type)
    elif request.headers.get("content-type", "").startswith("multipart/"):
        declared, upload = await _form_upload(request)
        media_cm = _temp_media(settings, upload.file, upload.filename)
    else:
        raise BadRequest("Neither `url` nor multipart file upload was received")

    def work() -> dict[str, Any]:
        with media_cm as media:
            answer = hma_banks.add_media(session, bank_name, media, declared, types, meta, mode)
        session.commit()
        return answer

    return JSONResponse(await run_in_threadpool(work), status_code=200)  # HMA answers 200 here


@hma_router.put("/c/bank/{bank_name}/content/{content_id}")
def bank_content_update(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    content_id: ContentId,
    body: Annotated[Any, Body()],
    mode: FormatQ = Mode.HMA,
) -> dict[str, Any]:
    """{"disable_until_ts"? (at most 5 years ahead), "note"?} -> the content."""
    answer = hma_banks.update_content(session, bank_name, content_id, body, mode)
    session.commit()
    return answer


@hma_router.delete("/c/bank/{bank_name}/content/{content_id}")
def bank_content_delete(
    session: SessionDep, _p: CuratePrincipal, bank_name: str, content_id: ContentId
) -> dict[str, int]:
    n = svc.remove_entry(session, content_id, bank_name)
    session.commit()
    return {"deleted": n}


@hma_router.post("/c/bank/{bank_name}/signal", status_code=200)  # as HMA
def bank_add_signal(
    session: SessionDep,
    principal: CuratePrincipal,
    bank_name: str,
    body: Annotated[Any, Body()],
    mode: FormatQ = Mode.HMA,
) -> dict[str, Any]:
    """Bank raw hashes: {signal type: hash, ..., "note"?}; an optional "metadata" object as for content."""
    answer = hma_banks.add_signals(session, bank_name, body, principal.name, mode)
    session.commit()
    return answer


@hma_router.delete("/c/case/{case_id}")
def case_withdraw(session: SessionDep, _p: CuratePrincipal, case_id: str) -> dict[str, int]:
    """A victim's withdrawal: remove every entry of the case from every bank (our extension)."""
    n = svc.remove_case(session, case_id)
    session.commit()
    return {"deleted": n}


@hma_router.get("/c/bank/{bank_name}/export", response_class=PlainTextResponse)
def bank_export(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    file_format: Annotated[
        str, Query(alias="file_format", pattern="^(deepshield|threatexchange)$", description="bank file format")
    ] = "deepshield",
) -> PlainTextResponse:
    """The bank as a JSON Lines file (docs/bank-format.md), or python-threatexchange's signal file."""
    buf = io.StringIO()
    if file_format == "threatexchange":
        buf.writelines(line + "\n" for line in exchanges.signal_lines(session, bank_name))
        return PlainTextResponse(buf.getvalue(), media_type="text/plain")
    svc.export_bank(session, bank_name, buf)
    return PlainTextResponse(buf.getvalue(), media_type="application/x-ndjson")


@hma_router.post("/c/bank/{bank_name}/import")
async def bank_import(request: Request, session: SessionDep, principal: CuratePrincipal, bank_name: str) -> Any:
    """Import a bank file (request body, JSON Lines) into this bank (created when missing)."""
    text = (await request.body()).decode("utf-8", errors="strict")
    name, n = svc.import_bank(session, io.StringIO(text), bank_name, added_by=principal.name)
    session.commit()
    return {"bank": name, "imported": n}


# ---------------------------------------------------------------------------------------------- device hashes


#: Our own routes here answer our error body, so they are declared apart from HMA's.
own_router = APIRouter(tags=["matching"])


@own_router.get("/match/hash-photos", include_in_schema=False)
def device_hash_page(request: Request) -> Any:
    """The on-device hashing page (static: it computes PDQ in the browser and sends only hashes). Its query
    (`case`, or `bank` for staff) goes along: the page reads it."""
    query = request.url.query
    return RedirectResponse("/static/hash-photos.html" + (f"?{query}" if query else ""), status_code=307)


#: What `hma_banks.add_device_hashes` reads (it checks the same): declared so that clients and the fuzzer know it.
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


@own_router.post("/v1/match/device-hashes", status_code=201)
def device_hashes(
    session: SessionDep,
    principal: CuratePrincipal,
    body: Annotated[dict[str, Any], Body(json_schema_extra=DEVICE_HASHES_SCHEMA)],
) -> Any:
    """Bank PDQ hashes computed on a person's own device: {bank, case_id, hashes: [{pdq, quality}]}."""
    answer = hma_banks.add_device_hashes(session, body, principal.name)
    session.commit()
    return answer


#: What the app includes: HMA's routes (declaring HMA's error body) and ours.
router = APIRouter()
router.include_router(hma_router)
router.include_router(own_router)
