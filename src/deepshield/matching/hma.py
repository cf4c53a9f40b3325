"""The HMA wire format: how requests of Meta's Hasher-Matcher-Actioner (OpenMediaMatch) API read, and how its
answers look, over the matching services. The HTTP routes (`api/routes/matching.py`) only move bytes.

Paths, parameters and JSON shapes follow HMA so its clients work unchanged. Where HMA returns little (a
content id and a distance), each match object here also carries the bank entry's metadata, the variant,
video fractions and time ranges, and whether a person should confirm it; extra keys do not break HMA clients.
Request bodies are untrusted JSON: a field of the wrong type is a 400 naming it, and a number out of what its
column holds (`store.bounds`) a 422 naming it, never a 500 from the database driver.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from deepshield.config import Settings
from deepshield.errors import DeepshieldError, UnsupportedMediaType
from deepshield.jsontypes import JsonObject, JsonValue
from deepshield.matching import banks as bank_svc
from deepshield.matching.hashing import hash_media, lookup_values
from deepshield.matching.lookup import index_status, lookup_signal
from deepshield.matching.signals import ContentType, get_signal
from deepshield.matching.storage import StoreLike, as_store
from deepshield.matching.types import BankInfo, EntryInfo, EntryMeta, Match
from deepshield.media import Media
from deepshield.store.bounds import DB_BIGINT_MAX, body_float, body_int

#: HMA's name for a signal type that is one of ours under another name, as `/m/index/status` lists it.
HMA_SIGNAL_NAMES = {"video_md5": "md5"}


class BadRequest(DeepshieldError):
    code = "bad_request"
    http_status = 400


# ---------------------------------------------------------------------------------------------- request fields


def _opt_str(body: Mapping[str, JsonValue], key: str) -> str | None:
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise BadRequest(f"{key} must be a string")
    return v


def _opt_int(body: Mapping[str, JsonValue], key: str) -> int | None:
    """A non-negative integer a database column holds, or absent."""
    v = body.get(key)
    return None if v is None else body_int(v, key)


def _opt_ratio(body: Mapping[str, JsonValue], key: str) -> float | None:
    """A fraction in [0, 1], or absent."""
    v = body.get(key)
    return None if v is None else body_float(v, key, 0.0, 1.0)


def _opt_bool(body: Mapping[str, JsonValue], key: str) -> bool | None:
    """A JSON true or false, or absent: 0, 1 or "false" are refused, not read as Python truth values."""
    v = body.get(key)
    if v is not None and not isinstance(v, bool):
        raise BadRequest(f"{key} must be true or false")
    return v


def _strings(d: Mapping[str, str]) -> JsonObject:
    return {k: v for k, v in d.items()}


def signal_types_param(types: str | None) -> list[str] | None:
    """`types=pdq,md5` -> the signal types asked for (None: every one that applies)."""
    return [t.strip() for t in types.split(",") if t.strip()] if types else None


def banks_param(banks: str | None) -> list[str] | None:
    """`banks=A,B` -> the banks a lookup is limited to (None: every enabled bank)."""
    return [b for b in banks.split(",") if b] if banks else None


def content_type_field(field: str) -> str | None:
    """HMA's multipart convention: the file's field name is its content type (`photo` or `video`)."""
    return field if field in (c.value for c in ContentType) else None


def check_content_type(media: Media, declared: str | None) -> None:
    actual = ContentType.of(media.info.kind)
    if actual is None:
        raise UnsupportedMediaType("only photos and videos can be hashed")
    if declared is not None and declared != actual.value:
        raise BadRequest(f"field says {declared} but the file is a {actual.value}")


def entry_meta(raw: JsonValue, added_by: str) -> EntryMeta:
    """HMA metadata {content_id, content_uri, json} plus ours {source, case_id, added_by, note}; a JSON object
    or its text. `added_by` is the caller's name, used unless the metadata names someone."""
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
    return EntryMeta(
        source=_opt_str(raw, "source"),
        case_id=_opt_str(raw, "case_id"),
        added_by=_opt_str(raw, "added_by") or added_by,
        note=_opt_str(raw, "note"),
        original_media_uri=_opt_str(raw, "content_uri"),
        extra=extra or None,
    )


# ---------------------------------------------------------------------------------------------- /h and /m


def hash_answer(media: Media, types: str | None) -> dict[str, str]:
    """`/h/hash`: {signal type: hash}."""
    return {k: v.value for k, v in hash_media(media, signal_types_param(types)).items()}


def match_json(m: Match) -> JsonObject:
    """One HMA match object (`bank_content_id`, `distance` as text) with our extra keys."""
    full = m.to_dict()
    d: JsonObject = {"bank_content_id": m.entry_id, "distance": f"{m.distance:g}"}
    d.update(signal_type=m.signal_type, needs_review=m.needs_review, threshold=m.threshold, entry=full["entry"])
    if m.variant:
        d["variant"] = m.variant
    if m.video:
        d["video"] = full["video"]
    return d


def by_bank(matches: Iterable[Match]) -> JsonObject:
    """{bank: [match]}, each entry once per bank (a lookup of several hashes may find it twice)."""
    out: dict[str, list[JsonValue]] = {}
    seen: set[tuple[str, int]] = set()
    for m in matches:
        if (m.bank, m.entry_id) in seen:
            continue
        seen.add((m.bank, m.entry_id))
        out.setdefault(m.bank, []).append(match_json(m))
    return {bank: found for bank, found in out.items()}


def raw_lookup_answer(matches: list[Match], include_distance: bool) -> JsonObject:
    """`/m/raw_lookup`: {"matches": [id, ...]}, or [{bank_content_id, distance}] with distances."""
    if include_distance:
        return {"matches": [{"bank_content_id": m.entry_id, "distance": f"{m.distance:g}"} for m in matches]}
    ids: list[JsonValue] = [*sorted({m.entry_id for m in matches})]
    return {"matches": ids}


def lookup_media_answer(
    session: StoreLike,
    settings: Settings,
    media: Media,
    banks: list[str] | None,
    seed: str | None,
    types: str | None,
    only: str | None = None,
) -> JsonObject:
    """`/m/lookup` of a file: {signal type: {bank: [match]}}, or just {bank: [match]} of the signal `only`."""
    _, values = lookup_values(media, signal_types_param(types))
    out: JsonObject = {}
    for name, value in values.items():
        matches, _ = lookup_signal(session, name, value, banks=banks, seed=seed, settings=settings)
        out[name] = by_bank(matches)
    if only is not None:
        picked = out.get(get_signal(only).name, {})
        return dict(picked) if isinstance(picked, dict) else {}
    return out


def compare_answer(body: Mapping[str, object]) -> JsonObject:
    """`/m/compare`: {"pdq": [a, b]} -> {"pdq": [matched, {"distance": d, ...}]}."""
    out: JsonObject = {}
    for name, pair in body.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise BadRequest("Comparison hash list length must be exactly 2")
        c = get_signal(name).compare(str(pair[0]), str(pair[1]))
        detail: JsonObject = {"distance": c.distance}
        detail.update(c.detail)
        out[name] = [c.matched, detail]
    return out


def index_status_answer(session: StoreLike, settings: Settings, signal_type: str | None) -> JsonObject:
    """`/m/index/status`: per signal type present, built_to (last applied change), size, memory per hash."""
    store = as_store(session)
    stats = index_status(store, settings)
    built_to = store.indexes(settings).last_log_id
    out: JsonObject = {
        name: {"present": True, "built_to": built_to, "size": int(st.get("hashes", 0)), **st}
        for name, st in stats.items()
    }
    for hma_name, ours in HMA_SIGNAL_NAMES.items():
        out[hma_name] = out[ours]
    if signal_type is not None:
        key = signal_type if signal_type in out else get_signal(signal_type).name
        return {signal_type: out[key]}
    return out


# ---------------------------------------------------------------------------------------------- /c


def bank_json(b: BankInfo) -> JsonObject:
    """A bank as `/c/banks` lists it (HMA's config, plus threshold, description and entry count)."""
    return {
        "name": b.name,
        "matching_enabled_ratio": b.enabled_ratio,
        "is_negative": b.is_negative,
        "threshold": b.threshold,
        "description": b.description,
        "entries": b.entries,
    }


def create_bank(session: StoreLike, body: Mapping[str, JsonValue]) -> BankInfo:
    """`POST /c/banks` {"name", "enabled"?, "enabled_ratio"?, "threshold"?, "is_negative"?, "description"?}"""
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("name is required")
    return bank_svc.create_bank(
        session,
        name,
        description=_opt_str(body, "description"),
        threshold=_opt_int(body, "threshold"),
        negative=bool(_opt_bool(body, "is_negative")),
        enabled=_opt_bool(body, "enabled") is not False,
        enabled_ratio=_opt_ratio(body, "enabled_ratio"),
    )


def update_bank(session: StoreLike, name: str, body: Mapping[str, JsonValue]) -> BankInfo:
    """`PUT /c/bank/<name>`: the fields of `create_bank`'s body, each optional; "name" renames."""
    return bank_svc.update_bank(
        session,
        name,
        new_name=_opt_str(body, "name"),
        enabled=_opt_bool(body, "enabled"),
        enabled_ratio=_opt_ratio(body, "enabled_ratio"),
        threshold=_opt_int(body, "threshold"),
        negative=_opt_bool(body, "is_negative"),
        description=_opt_str(body, "description"),
    )


def content_json(e: EntryInfo, include_signals: bool) -> JsonObject:
    """A bank entry as HMA's bank content, our metadata under "metadata"."""
    d: JsonObject = {
        "id": e.id,
        "disable_until_ts": e.disable_until_ts,
        "collab_metadata": {},
        "original_media_uri": e.original_media_uri,
        "bank": {"name": e.bank},
        "metadata": {
            "source": e.source,
            "case_id": e.case_id,
            "added_by": e.added_by,
            "added_at": e.added_at,
            "note": e.note,
            "extra": e.extra,
        },
    }
    if include_signals:
        d["signals"] = _strings(e.signals)
    return d


def update_content(session: StoreLike, bank: str, content_id: int, body: Mapping[str, JsonValue]) -> JsonObject:
    """`PUT /c/bank/<name>/content/<id>` {"disable_until_ts"?} -> the entry as `content_json` shows it."""
    bank_svc.get_entry(session, content_id, bank)
    if "disable_until_ts" in body:
        # a Unix time (HMA clients send ones after 2038: a 64-bit column, matching_0002)
        ts = body_int(body["disable_until_ts"], "disable_until_ts", 0, DB_BIGINT_MAX)
        bank_svc.set_entry_disabled_until(session, content_id, ts)
    return content_json(bank_svc.get_entry(session, content_id, bank), False)


def add_signals(session: StoreLike, bank: str, body: Mapping[str, JsonValue], added_by: str) -> JsonObject:
    """`POST /c/bank/<name>/signal` {signal type: hash, ..., "metadata"?} -> {"id", "signals"}."""
    fields = dict(body)
    meta = entry_meta(fields.pop("metadata", None), added_by)
    if not fields:
        raise BadRequest("No signals given")
    e = bank_svc.add_signals(session, bank, {k: str(v) for k, v in fields.items()}, meta)
    return {"id": e.id, "signals": _strings(e.signals)}


def add_media(
    session: StoreLike, bank: str, media: Media, declared: str | None, types: str | None, meta: EntryMeta
) -> JsonObject:
    """`POST /c/bank/<name>/content`: hash the file (every signal, or `types`) and bank it."""
    check_content_type(media, declared)
    hashes = hash_media(media, signal_types_param(types))
    ct = ContentType.of(media.info.kind)
    meta.content_type = ct.value if ct else None
    e = bank_svc.add_signals(
        session, bank, {k: v.value for k, v in hashes.items()}, meta, {k: v.quality for k, v in hashes.items()}
    )
    return {"id": e.id, "signals": _strings(e.signals), "low_quality": e.low_quality}


def add_device_hashes(session: StoreLike, body: Mapping[str, JsonValue], added_by: str) -> JsonObject:
    """`POST /v1/match/device-hashes` {bank, case_id, hashes: [{pdq, quality}]}: PDQ hashes computed on a
    person's own device (the photos never leave it) -> {"added", "ids"}."""
    bank = body.get("bank")
    hashes = body.get("hashes")
    if not isinstance(bank, str) or not bank:
        raise BadRequest("bank is required")
    if not isinstance(hashes, list) or not hashes:
        raise BadRequest("hashes must be a non-empty list")
    case_id = _opt_str(body, "case_id")
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
