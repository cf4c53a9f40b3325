"""HMA's curator answers for banks and bank content (`/c/banks`, `/c/bank/<name>[/content[/<id>]|/signal]`)
and device hashes: the request fields HMA's clients send and the shapes they read, over `matching.banks`.
The shared request readers and answer modes are in `matching.hma`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from deepshield.jsontypes import JsonObject, JsonValue
from deepshield.matching import banks as bank_svc
from deepshield.matching.hma import (
    HMA_METADATA_KEYS,
    MAX_DISABLE_S,
    BadRequest,
    Mode,
    entry_meta,
    hashes_for,
    note_field,
    opt_bool,
    opt_int,
    opt_ratio,
    opt_str,
    signals_json,
    stored_content_type,
)
from deepshield.matching.signals import ContentType
from deepshield.matching.storage import StoreLike, as_store
from deepshield.matching.types import BankInfo, EntryInfo, EntryMeta
from deepshield.media import Media
from deepshield.store.bounds import body_int


def bank_json(b: BankInfo, mode: Mode = Mode.HMA) -> JsonObject:
    """A bank as HMA shows it ({name, matching_enabled_ratio}); `deepshield` adds threshold, negative,
    description and entry count."""
    d: JsonObject = {"name": b.name, "matching_enabled_ratio": b.enabled_ratio}
    if mode is Mode.DEEPSHIELD:
        d.update(is_negative=b.is_negative, threshold=b.threshold, description=b.description, entries=b.entries)
    return d


def create_bank(session: StoreLike, body: Mapping[str, JsonValue]) -> BankInfo:
    """`POST /c/banks` {"name", "enabled"?, "enabled_ratio"?, "threshold"?, "is_negative"?, "description"?}"""
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("name is required")
    return bank_svc.create_bank(
        session,
        name,
        description=opt_str(body, "description"),
        threshold=opt_int(body, "threshold"),
        negative=bool(opt_bool(body, "is_negative")),
        enabled=opt_bool(body, "enabled") is not False,
        enabled_ratio=opt_ratio(body, "enabled_ratio"),
    )


def update_bank(session: StoreLike, name: str, body: Mapping[str, JsonValue]) -> BankInfo:
    """`PUT /c/bank/<name>`: the fields of `create_bank`'s body, each optional; "name" renames."""
    return bank_svc.update_bank(
        session,
        name,
        new_name=opt_str(body, "name"),
        enabled=opt_bool(body, "enabled"),
        enabled_ratio=opt_ratio(body, "enabled_ratio"),
        threshold=opt_int(body, "threshold"),
        negative=opt_bool(body, "is_negative"),
        description=opt_str(body, "description"),
    )


def delete_bank(session: StoreLike, name: str) -> JsonObject:
    """`DELETE /c/bank/<name>`: as HMA, "Done" whether or not the bank existed."""
    store = as_store(session)
    if store.bank(name) is not None:
        bank_svc.delete_bank(store, name)
    return {"message": "Done"}


def _metadata_json(extra: Mapping[str, JsonValue] | None) -> JsonObject | None:
    """HMA's `metadata` of a bank content: content_id, content_uri, json, collab; None when nothing was set."""
    md = {k: (extra or {}).get(k) for k in (*HMA_METADATA_KEYS, "collab")}
    return md if any(v is not None for v in md.values()) else None


def content_json(
    session: StoreLike,
    e: EntryInfo,
    mode: Mode,
    include_signals: bool = False,
    include_metadata: bool = True,
    include_collab: bool = False,
) -> JsonObject:
    """A bank entry as HMA's bank content: {id, disable_until_ts, original_media_uri, bank, signals?,
    metadata?, note?}; `deepshield` adds our record of it under "deepshield"."""
    b = bank_svc.get_bank(session, e.bank)
    d: JsonObject = {
        "id": e.id,
        "disable_until_ts": e.disable_until_ts,
        "original_media_uri": e.original_media_uri,
        "bank": {"name": b.name, "matching_enabled_ratio": b.enabled_ratio},
    }
    if include_collab:  # the PUT answer is HMA's whole record
        d["collab_metadata"] = {}
    if include_signals:
        d["signals"] = signals_json(e.signals, e.content_type, mode)
    md = _metadata_json(e.extra) if include_metadata else None
    if md is not None:
        d["metadata"] = md
    if e.note:
        d["note"] = e.note
    if mode is Mode.DEEPSHIELD:
        d["deepshield"] = {
            "source": e.source,
            "case_id": e.case_id,
            "added_by": e.added_by,
            "added_at": e.added_at,
            "content_type": e.content_type,
        }
    return d


def update_content(
    session: StoreLike, bank: str, content_id: int, body: JsonValue, mode: Mode, now: float | None = None
) -> JsonObject:
    """`PUT /c/bank/<name>/content/<id>` {"disable_until_ts"?, "note"?} -> the entry."""
    if not isinstance(body, dict):
        raise BadRequest("this endpoint expects a json object payload")
    bank_svc.get_bank(session, bank)
    bank_svc.get_entry(session, content_id, bank)
    if "disable_until_ts" in body:
        raw = body["disable_until_ts"]
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise BadRequest(f"disable_until_ts must be an integer: {raw!r}"[:120])
        try:
            ts = int(raw)
        except ValueError:
            raise BadRequest(f"Invalid int for disable_until_ts: {raw!r}"[:120]) from None
        if ts < 0:
            raise BadRequest("disable_until_ts must be a non-negative integer")
        if ts > (time.time() if now is None else now) + MAX_DISABLE_S:
            raise BadRequest("disable_until_ts must be less than 5 years in the future")
        bank_svc.set_entry_disabled_until(session, content_id, ts)
    if "note" in body:
        as_store(session).set_note(content_id, note_field(body["note"]))
    return content_json(session, bank_svc.get_entry(session, content_id, bank), mode, include_collab=True)


def add_signals(session: StoreLike, bank: str, body: JsonValue, added_by: str, mode: Mode) -> JsonObject:
    """`POST /c/bank/<name>/signal` {signal type: hash, ..., "note"?, "metadata"?} -> {"id", "signals"}."""
    if not isinstance(body, dict):
        raise BadRequest("this endpoint expects a json object payload")
    bank_svc.get_bank(session, bank)
    fields = dict(body)
    note = fields.pop("note", None)
    meta = entry_meta(fields.pop("metadata", None), added_by, note)
    if not fields:
        raise BadRequest("No signals given")
    bad = [k for k, v in fields.items() if not isinstance(v, str)]
    if bad:
        raise BadRequest(f"Invalid {bad[0]} signal: a hash must be a string")
    if "video_md5" in fields:  # HMA's name says what the content is; answers and exports keep the name
        meta.content_type = ContentType.VIDEO.value
    e = bank_svc.add_signals(session, bank, {k: str(v) for k, v in fields.items()}, meta)
    return {"id": e.id, "signals": signals_json(e.signals, e.content_type, mode)}


def add_media(
    session: StoreLike,
    bank: str,
    media: Media,
    declared: ContentType | None,
    types: str | None,
    meta: EntryMeta,
    mode: Mode,
) -> JsonObject:
    """`POST /c/bank/<name>/content`: hash the file (every signal, or `types`) and bank it."""
    hashes = hashes_for(media, types, declared)
    meta.content_type = stored_content_type(media, declared)
    e = bank_svc.add_signals(
        session, bank, {k: v.value for k, v in hashes.items()}, meta, {k: v.quality for k, v in hashes.items()}
    )
    d: JsonObject = {"id": e.id, "signals": signals_json(e.signals, e.content_type, mode)}
    if mode is Mode.DEEPSHIELD:
        d["low_quality"] = e.low_quality
    return d


def add_device_hashes(session: StoreLike, body: Mapping[str, JsonValue], added_by: str) -> JsonObject:
    """`POST /v1/match/device-hashes` {bank, case_id, hashes: [{pdq, quality}]}: PDQ hashes computed on a
    person's own device (the photos never leave it) -> {"added", "ids"}."""
    bank = body.get("bank")
    hashes = body.get("hashes")
    if not isinstance(bank, str) or not bank:
        raise BadRequest("bank is required")
    if not isinstance(hashes, list) or not hashes:
        raise BadRequest("hashes must be a non-empty list")
    case_id = opt_str(body, "case_id")
    ids: list[JsonValue] = []
    for h in hashes:
        if not isinstance(h, dict) or "pdq" not in h:
            raise BadRequest("each hash must be an object with a pdq field")
        q = h.get("quality")
        meta = EntryMeta(
            source="device",
            case_id=case_id or None,
            added_by=added_by,
            content_type=ContentType.PHOTO.value,
        )
        quality = body_int(q, "quality", 0, 100) if q is not None else None  # PDQ quality is 0..100
        e = bank_svc.add_signals(session, bank, {"pdq": str(h["pdq"])}, meta, {"pdq": quality})
        ids.append(e.id)
    return {"added": len(ids), "ids": ids}
