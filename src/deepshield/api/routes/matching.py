"""HMA-compatible hasher (`/h`), matcher (`/m`) and curator (`/c`) endpoints, behind API-key scopes.

Paths, parameters and JSON shapes follow Meta's Hasher-Matcher-Actioner (OpenMediaMatch) so its clients work
unchanged once they send `Authorization: Bearer KEY`. Where HMA returns little (a content id and a distance),
each match object here also carries the bank entry's metadata, the rotation/flip variant, video fractions
and time ranges, and whether a person should confirm it; extra keys do not break HMA clients.
Uploaded content is hashed in a temporary folder and deleted at once: banks keep hashes, never media.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from deepshield.accounts.service import Principal
from deepshield.api.deps import DB_BIGINT_MAX, DB_INT_MAX, SessionDep, SettingsDep, body_float, body_int, require_scope
from deepshield.config import Settings, make_private_dir
from deepshield.errors import DeepshieldError, MediaTooLarge, UnsupportedMediaType
from deepshield.matching import service as svc
from deepshield.matching.signals import ContentType, get_signal
from deepshield.media import Media, MediaLimits, open_upload
from deepshield.media.open import rename_in_error

router = APIRouter(tags=["matching"])
MatchPrincipal = Annotated[Principal, Depends(require_scope("match"))]
CuratePrincipal = Annotated[Principal, Depends(require_scope("curate"))]
#: A bank entry's id in a path (bounded: a larger number was a 500 from the database driver).
ContentId = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]


class BadRequest(DeepshieldError):
    code = "bad_request"
    http_status = 400


# ---------------------------------------------------------------------------------------------- media in


@contextmanager
def _temp_media(settings: Settings, stream: Any, name: str | None = None) -> Iterator[Media]:
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
    ct = field if field in (c.value for c in ContentType) else None
    return ct, upload


def _check_content_type(media: Media, declared: str | None) -> None:
    actual = ContentType.of(media.info.kind)
    if actual is None:
        raise UnsupportedMediaType("only photos and videos can be hashed")
    if declared is not None and declared != actual.value:
        raise BadRequest(f"field says {declared} but the file is a {actual.value}")


def _fetch_url(url: str, settings: Settings) -> Any:
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


def _signal_types_param(types: str | None) -> list[str] | None:
    return [t.strip() for t in types.split(",") if t.strip()] if types else None


def _hash(media: Media, types: str | None) -> dict[str, str]:
    return {k: v.value for k, v in svc.hash_media(media, _signal_types_param(types)).items()}


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
        _check_content_type(media, content_type)
        return _hash(media, types)


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
            _check_content_type(media, ct)
            return _hash(media, types)

    return await run_in_threadpool(work)


# ---------------------------------------------------------------------------------------------- /m


def _hma_match(m: svc.Match) -> dict[str, Any]:
    d: dict[str, Any] = {"bank_content_id": m.entry_id, "distance": f"{m.distance:g}"}
    d.update(signal_type=m.signal_type, needs_review=m.needs_review, threshold=m.threshold, entry=m.entry)
    if m.variant:
        d["variant"] = m.variant
    if m.video:
        d["video"] = m.video
    return d


def _by_bank(matches: list[svc.Match]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, int]] = set()
    for m in matches:
        if (m.bank, m.entry_id) in seen:
            continue
        seen.add((m.bank, m.entry_id))
        out.setdefault(m.bank, []).append(_hma_match(m))
    return out


def _banks_param(banks: str | None) -> list[str] | None:
    return [b for b in banks.split(",") if b] if banks else None


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
        session, signal_type, signal, banks=_banks_param(banks), seed=svc.BYPASS_COINFLIP, settings=settings
    )
    if include_distance:
        return {"matches": [{"bank_content_id": m.entry_id, "distance": f"{m.distance:g}"} for m in matches]}
    return {"matches": sorted({m.entry_id for m in matches})}


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
    bank_list = _banks_param(banks)
    if url:
        with _temp_media(settings, _fetch_url(url, settings)) as media:
            _check_content_type(media, content_type)
            return _lookup_media(session, settings, media, bank_list, seed, types, signal_type)
    if not signal or not signal_type:
        raise BadRequest("Either url or both signal and signal_type are required")
    matches, _ = svc.lookup_signal(session, signal_type, signal, banks=bank_list, seed=seed, settings=settings)
    return _by_bank(matches)


def _lookup_media(
    session: SessionDep,
    settings: Settings,
    media: Media,
    banks: list[str] | None,
    seed: str | None,
    types: str | None,
    only: str | None = None,
) -> dict[str, Any]:
    _, values = svc.lookup_values(media, _signal_types_param(types))
    out: dict[str, Any] = {}
    for name, value in values.items():
        matches, _ = svc.lookup_signal(session, name, value, banks=banks, seed=seed, settings=settings)
        out[name] = _by_bank(matches)
    if only is not None:
        return dict(out.get(get_signal(only).name, {}))
    return out


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

    def work() -> dict[str, Any]:
        with _temp_media(settings, upload.file, upload.filename) as media:
            _check_content_type(media, ct)
            return _lookup_media(
                session, settings, media, _banks_param(banks), svc.BYPASS_COINFLIP if bypass_coinflip else seed, types
            )

    return await run_in_threadpool(work)


@router.post("/m/compare")
def compare(
    _p: MatchPrincipal,
    body: Annotated[dict[str, list[str]], Body(examples=[{"pdq": ["facd8b...", "facd8a..."]}])],
) -> dict[str, Any]:
    """Compare pairs of hashes: {"pdq": [a, b]} -> {"pdq": [matched, {"distance": d}]}."""
    out: dict[str, Any] = {}
    for name, pair in body.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise BadRequest("Comparison hash list length must be exactly 2")
        c = get_signal(name).compare(pair[0], pair[1])
        detail: dict[str, Any] = {"distance": c.distance if name not in ("pdq",) else int(c.distance)}
        detail.update(c.detail)
        out[name] = [c.matched, detail]
    return out


@router.get("/m/index/status")
def index_status(
    session: SessionDep,
    settings: SettingsDep,
    _p: MatchPrincipal,
    signal_type: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Per signal type: present, built_to (last applied change), size, and memory per hash."""
    idx_stats = svc.index_status(session, settings)
    from deepshield.matching.indexes import get_indexes

    built_to = get_indexes(settings).last_log_id
    out = {
        name: {"present": True, "built_to": built_to, "size": int(st.get("hashes", 0)), **st}
        for name, st in idx_stats.items()
    }
    out["video_md5"] = out["md5"]
    if signal_type is not None:
        key = signal_type if signal_type in out else get_signal(signal_type).name
        return {signal_type: out[key]}
    return out


# ---------------------------------------------------------------------------------------------- /c


def _bank_config(b: svc.BankInfo) -> dict[str, Any]:
    return {
        "name": b.name,
        "matching_enabled_ratio": b.enabled_ratio,
        "is_negative": b.is_negative,
        "threshold": b.threshold,
        "description": b.description,
        "entries": b.entries,
    }


@router.get("/c/banks")
def banks_index(session: SessionDep, _p: CuratePrincipal) -> list[dict[str, Any]]:
    return [_bank_config(b) for b in svc.list_banks(session)]


def _opt_int(body: dict[str, Any], name: str) -> int | None:
    return None if body.get(name) is None else body_int(body[name], name)


def _opt_ratio(body: dict[str, Any]) -> float | None:
    v = body.get("enabled_ratio")
    return None if v is None else body_float(v, "enabled_ratio", 0.0, 1.0)


@router.post("/c/banks", status_code=201)
def bank_create(session: SessionDep, _p: CuratePrincipal, body: Annotated[dict[str, Any], Body()]) -> Any:
    """{"name", "enabled"?, "enabled_ratio"?, "threshold"?, "is_negative"?, "description"?}"""
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("name is required")
    b = svc.create_bank(
        session,
        name,
        description=_opt_text(body, "description"),
        threshold=_opt_int(body, "threshold"),
        negative=bool(body.get("is_negative", False)),
        enabled=bool(body.get("enabled", True)),
        enabled_ratio=_opt_ratio(body),
    )
    session.commit()
    return _bank_config(b)


@router.get("/c/bank/{bank_name}")
def bank_show(session: SessionDep, _p: CuratePrincipal, bank_name: str) -> dict[str, Any]:
    return _bank_config(svc.get_bank(session, bank_name))


@router.put("/c/bank/{bank_name}")
def bank_update(
    session: SessionDep, _p: CuratePrincipal, bank_name: str, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    b = svc.update_bank(
        session,
        bank_name,
        new_name=_opt_text(body, "name"),
        enabled=body.get("enabled"),
        enabled_ratio=_opt_ratio(body),
        threshold=_opt_int(body, "threshold"),
        negative=body.get("is_negative"),
        description=_opt_text(body, "description"),
    )
    session.commit()
    return _bank_config(b)


@router.delete("/c/bank/{bank_name}")
def bank_delete(session: SessionDep, _p: CuratePrincipal, bank_name: str) -> dict[str, Any]:
    svc.delete_bank(session, bank_name)
    session.commit()
    return {"message": "Done"}


def _opt_text(body: dict[str, Any], name: str) -> str | None:
    """A text field of a free-form body: a string or absent (a number there reached the driver: a 500)."""
    v = body.get(name)
    if v is not None and not isinstance(v, str):
        raise BadRequest(f"{name} must be a string")
    return v


def _meta_from(raw: Any, principal: Principal) -> svc.EntryMeta:
    """HMA metadata {content_id, content_uri, json} plus ours {source, case_id, added_by, note}."""
    if raw is None:
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BadRequest("metadata should be a json object") from None
    if not isinstance(raw, dict):
        raise BadRequest("metadata should be a json object")
    extra = {k: raw[k] for k in ("content_id", "json") if raw.get(k) is not None}
    return svc.EntryMeta(
        source=_opt_text(raw, "source"),
        case_id=_opt_text(raw, "case_id"),
        added_by=_opt_text(raw, "added_by") or principal.name,
        note=_opt_text(raw, "note"),
        original_media_uri=_opt_text(raw, "content_uri"),
        extra=extra or None,
    )


def _content_payload(e: svc.EntryInfo, include_signals: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": e.id,
        "disable_until_ts": e.disable_until_ts,
        "collab_metadata": {},
        "original_media_uri": e.original_media_uri,
        "bank": {"name": e.bank},
        "metadata": {k: getattr(e, k) for k in ("source", "case_id", "added_by", "added_at", "note", "extra")},
    }
    if include_signals:
        d["signals"] = e.signals
    return d


@router.get("/c/bank/{bank_name}/content/{content_id}")
def bank_content_get(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    content_id: ContentId,
    include_signals: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    return _content_payload(svc.get_entry(session, content_id, bank_name), include_signals)


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
    meta_raw: Any = metadata
    if url:
        media_cm = _temp_media(settings, _fetch_url(url, settings))
        declared = content_type
    else:
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            meta_raw = meta_raw or form.get("metadata")
        declared, upload = await _form_upload(request)
        media_cm = _temp_media(settings, upload.file, upload.filename)
    meta = _meta_from(meta_raw if not isinstance(meta_raw, UploadFile) else None, principal)

    def work() -> dict[str, Any]:
        with media_cm as media:
            _check_content_type(media, declared)
            hashes = svc.hash_media(media, _signal_types_param(types))
            ct = ContentType.of(media.info.kind)
            meta.content_type = ct.value if ct else None
        e = svc.add_signals(
            session,
            bank_name,
            {k: v.value for k, v in hashes.items()},
            meta,
            {k: v.quality for k, v in hashes.items()},
        )
        session.commit()
        return {"id": e.id, "signals": e.signals, "low_quality": e.low_quality}

    return JSONResponse(await run_in_threadpool(work), status_code=200)  # HMA answers 200 here


@router.put("/c/bank/{bank_name}/content/{content_id}")
def bank_content_update(
    session: SessionDep,
    _p: CuratePrincipal,
    bank_name: str,
    content_id: ContentId,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    svc.get_entry(session, content_id, bank_name)
    if "disable_until_ts" in body:
        ts = body_int(body["disable_until_ts"], "disable_until_ts", 0, DB_BIGINT_MAX)
        svc.set_entry_disabled_until(session, content_id, ts)
    session.commit()
    return _content_payload(svc.get_entry(session, content_id, bank_name), False)


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
    body = dict(body)
    meta = _meta_from(body.pop("metadata", None), principal)
    if not body:
        raise BadRequest("No signals given")
    e = svc.add_signals(session, bank_name, {k: str(v) for k, v in body.items()}, meta)
    session.commit()
    return {"id": e.id, "signals": e.signals}


@router.delete("/c/case/{case_id}")
def case_withdraw(session: SessionDep, _p: CuratePrincipal, case_id: str) -> dict[str, int]:
    """A victim's withdrawal: remove every entry of the case from every bank (our extension)."""
    n = svc.remove_case(session, case_id)
    session.commit()
    return {"deleted": n}


@router.get("/c/bank/{bank_name}/export", response_class=PlainTextResponse)
def bank_export(session: SessionDep, _p: CuratePrincipal, bank_name: str) -> PlainTextResponse:
    """The bank as a JSON Lines file (docs/bank-format.md)."""
    import io

    buf = io.StringIO()
    svc.export_bank(session, bank_name, buf)
    return PlainTextResponse(buf.getvalue(), media_type="application/x-ndjson")


@router.post("/c/bank/{bank_name}/import")
async def bank_import(request: Request, session: SessionDep, principal: CuratePrincipal, bank_name: str) -> Any:
    """Import a bank file (request body, JSON Lines) into this bank (created when missing)."""
    import io

    text = (await request.body()).decode("utf-8", errors="strict")
    name, n = svc.import_bank(session, io.StringIO(text), bank_name, added_by=principal.name)
    session.commit()
    return {"bank": name, "imported": n}


# ---------------------------------------------------------------------------------------------- device hashes


@router.get("/match/hash-photos", include_in_schema=False)
def device_hash_page() -> Any:
    """The on-device hashing page (static: it computes PDQ in the browser and sends only hashes)."""
    from fastapi.responses import RedirectResponse

    return RedirectResponse("/static/hash-photos.html", status_code=307)


@router.post("/v1/match/device-hashes", status_code=201)
def device_hashes(session: SessionDep, principal: CuratePrincipal, body: Annotated[dict[str, Any], Body()]) -> Any:
    """Bank PDQ hashes computed on a person's own device: {bank, case_id, hashes: [{pdq, quality}]}."""
    bank = body.get("bank")
    hashes = body.get("hashes")
    if not isinstance(bank, str) or not bank:
        raise BadRequest("bank is required")
    if not isinstance(hashes, list) or not hashes:
        raise BadRequest("hashes must be a non-empty list")
    ids = []
    for h in hashes:
        if not isinstance(h, dict) or "pdq" not in h:
            raise BadRequest("each hash must be an object with a pdq field")
        q = h.get("quality")
        quality = body_int(q, "quality", 0, 100) if q is not None else None  # PDQ quality is 0..100
        meta = svc.EntryMeta(
            source="device",
            case_id=_opt_text(body, "case_id") or None,
            added_by=principal.name,
            content_type="photo",
        )
        e = svc.add_signals(session, bank, {"pdq": str(h["pdq"])}, meta, {"pdq": quality})
        ids.append(e.id)
    session.commit()
    return {"added": len(ids), "ids": ids}
