"""The HMA wire format: how requests of Meta's Hasher-Matcher-Actioner (OpenMediaMatch) API read, and how its
answers look, over the matching services. The HTTP routes (`api/routes/matching.py`) only move bytes.

Paths, parameters, status codes and JSON shapes follow HMA 2.0 so its clients work unchanged
(tests/matching/test_hma_conformance.py). Two answer modes: `hma` (the default) gives HMA's shapes exactly
where HMA's own tests compare them whole (banks, bank content, errors as `{"message"}`); `?format=deepshield`
adds ours (threshold, description, entry count, who banked what for which case, `{"error", "detail"}`
errors). Match objects always carry our extra keys (the entry's metadata, video fractions, whether a person
should confirm): HMA's clients read `bank_content_id` and `distance` and ignore the rest.
Request bodies are untrusted JSON: a field of the wrong type is a 400 naming it, and a number out of what its
column holds (`store.bounds`) a 4xx naming it, never a 500 from the database driver.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import TypeVar

from deepshield.config import Settings
from deepshield.errors import DeepshieldError, UnsupportedMediaType
from deepshield.jsontypes import JsonObject, JsonValue
from deepshield.matching.hashing import hash_media, lookup_values
from deepshield.matching.lookup import index_status, lookup_signal
from deepshield.matching.signals import ContentType, SignalHash, get_signal
from deepshield.matching.signals.registry import SIGNAL_TYPES, UnknownSignalType
from deepshield.matching.storage import StoreLike, as_store
from deepshield.matching.types import EntryMeta, Match
from deepshield.media import Media
from deepshield.store.bounds import body_float, body_int

V = TypeVar("V")

#: HMA's name for a signal type that is one of ours under another name, as `/m/index/status` lists it.
HMA_SIGNAL_NAMES = {"video_md5": "md5"}
#: HMA's limit on a bank content note.
NOTE_MAX = 255
#: HMA refuses `disable_until_ts` more than this far ahead.
MAX_DISABLE_S = 5 * 365 * 24 * 3600
#: The metadata keys HMA stores (`BankedContentMetadata`; `collab` is set by exchanges, never by a caller).
HMA_METADATA_KEYS = ("content_id", "content_uri", "json")
#: Ours, accepted in the same object: who banked it, from where, for which case.
OUR_METADATA_KEYS = ("source", "case_id", "added_by", "note")


class Mode(enum.StrEnum):
    """`?format=`: `hma` answers exactly as HMA does; `deepshield` adds our fields and error codes."""

    HMA = "hma"
    DEEPSHIELD = "deepshield"


class BadRequest(DeepshieldError):
    code = "bad_request"
    http_status = 400


class SignalTypeNotFound(DeepshieldError):
    code = "signal_type_not_found"
    http_status = 404


# ---------------------------------------------------------------------------------------------- request fields


def opt_str(body: Mapping[str, JsonValue], key: str) -> str | None:
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise BadRequest(f"{key} must be a string")
    return v


def opt_int(body: Mapping[str, JsonValue], key: str) -> int | None:
    """A non-negative integer a database column holds, or absent."""
    v = body.get(key)
    return None if v is None else body_int(v, key)


def opt_ratio(body: Mapping[str, JsonValue], key: str) -> float | None:
    """A fraction in [0, 1], or absent."""
    v = body.get(key)
    return None if v is None else body_float(v, key, 0.0, 1.0)


def opt_bool(body: Mapping[str, JsonValue], key: str) -> bool | None:
    """A JSON true or false, or absent: 0, 1 or "false" are refused, not read as Python truth values."""
    v = body.get(key)
    if v is not None and not isinstance(v, bool):
        raise BadRequest(f"{key} must be true or false")
    return v


def signal_types_param(types: str | None) -> list[str] | None:
    """`types=pdq,md5` -> the signal types asked for (None: every one that applies)."""
    return [t.strip() for t in types.split(",") if t.strip()] if types else None


def banks_param(banks: str | None) -> list[str] | None:
    """`banks=A,B` -> the banks a lookup is limited to (None: every enabled bank)."""
    return [b for b in banks.split(",") if b] if banks else None


def content_type_field(field: str) -> ContentType:
    """HMA's multipart convention: the file's field name is its content type (`photo` or `video`)."""
    try:
        return ContentType(field)
    except ValueError:
        raise BadRequest(f"no such content_type: {field!r} (name the file field photo or video)") from None


def content_type_param(value: str | None) -> ContentType | None:
    return None if not value else content_type_field(value)


def check_content_type(media: Media) -> None:
    if ContentType.of(media.info.kind) is None:
        raise UnsupportedMediaType("only photos and videos can be hashed")


def note_field(value: JsonValue) -> str | None:
    """HMA's note: a string of at most 255 characters; empty or absent = none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("note should be a string")
    if len(value) > NOTE_MAX:
        raise BadRequest(f"note must be at most {NOTE_MAX} characters")
    return value


def entry_meta(raw: JsonValue, added_by: str, note: JsonValue = None) -> EntryMeta:
    """HMA metadata {content_id, content_uri, json} plus ours {source, case_id, added_by, note}, as a JSON
    object or its text; any other key is a 400 (HMA refuses them). `note` is HMA's top-level note.
    `added_by` is the caller's name, used unless the metadata names someone."""
    if raw is None:
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BadRequest("metadata must be valid JSON") from None
    if not isinstance(raw, dict):
        raise BadRequest("metadata should be a json object")
    raw = {k: v for k, v in raw.items() if k != "collab"}  # provenance is the exchanges' to set
    unknown = sorted(set(raw) - set(HMA_METADATA_KEYS) - set(OUR_METADATA_KEYS))
    if unknown:
        raise BadRequest(f"Invalid metadata: unknown field(s) {', '.join(unknown)}")
    hma_md: dict[str, JsonValue] = {}
    for k in ("content_id", "content_uri"):
        if opt_str(raw, k) is not None:
            hma_md[k] = raw[k]
    if raw.get("json") is not None:
        if not isinstance(raw["json"], dict):
            raise BadRequest("Invalid metadata: json must be an object")
        hma_md["json"] = raw["json"]
    return EntryMeta(
        source=opt_str(raw, "source"),
        case_id=opt_str(raw, "case_id"),
        added_by=opt_str(raw, "added_by") or added_by,
        note=note_field(note) if note is not None else opt_str(raw, "note"),
        extra=hma_md or None,
    )


def hma_signal_name(name: str, content_type: str | None) -> str:
    """HMA calls the MD5 of a video `video_md5`; ours is `md5` for any file."""
    return "video_md5" if name == "md5" and content_type == ContentType.VIDEO.value else name


def signals_json(signals: Mapping[str, V], content_type: str | None, mode: Mode) -> dict[str, V]:
    """{signal type: value} under HMA's signal names (`hma` mode) or ours."""
    if mode is Mode.DEEPSHIELD:
        return dict(signals)
    return {hma_signal_name(k, content_type): v for k, v in signals.items()}


# ---------------------------------------------------------------------------------------------- /h and /m


def hashes_for(media: Media, types: str | None, declared: ContentType | None) -> dict[str, SignalHash]:
    check_content_type(media)
    return hash_media(media, signal_types_param(types), declared)


def stored_content_type(media: Media, declared: ContentType | None) -> str | None:
    ct = declared or ContentType.of(media.info.kind)
    return ct.value if ct else None


def hash_answer(media: Media, types: str | None, declared: ContentType | None, mode: Mode) -> dict[str, str]:
    """`/h/hash`: {signal type: hash} (HMA: the MD5 of a video as `video_md5`)."""
    hashes = {k: v.value for k, v in hashes_for(media, types, declared).items()}
    return signals_json(hashes, stored_content_type(media, declared), mode)


def _distance(m: Match) -> str:
    """HMA's text distance: bits for PDQ, "0" for exact hashes, and for a video python-threatexchange's
    "query%[banked%]" (the shares of frames matched), never a "0" that hides frames 10 bits apart."""
    if m.video is not None:
        return f"{100 * m.video['query_fraction']:.0f}%[{100 * m.video['bank_fraction']:.0f}%]"
    return f"{m.distance:g}"


def match_json(m: Match) -> JsonObject:
    """One HMA match object (`bank_content_id`, `distance` as text) with our extra keys."""
    full = m.to_dict()
    d: JsonObject = {"bank_content_id": m.entry_id, "distance": _distance(m)}
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
        return {"matches": [{"bank_content_id": m.entry_id, "distance": _distance(m)} for m in matches]}
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
    declared: ContentType | None = None,
    mode: Mode = Mode.HMA,
) -> JsonObject:
    """`/m/lookup` of a file: {signal type: {bank: [match]}}, or just {bank: [match]} of the signal `only`."""
    check_content_type(media)
    _, values = lookup_values(media, signal_types_param(types), declared=declared)
    out: JsonObject = {}
    for name, value in values.items():
        matches, _ = lookup_signal(session, name, value, banks=banks, seed=seed, settings=settings)
        out[name] = by_bank(matches)
    if only is not None:
        picked = out.get(get_signal(only).name, {})
        return dict(picked) if isinstance(picked, dict) else {}
    return signals_json(out, stored_content_type(media, declared), mode)


def compare_answer(body: JsonValue) -> JsonObject:
    """`/m/compare`: {"pdq": [a, b]} -> {"pdq": [matched, {"distance": d, ...}]}; anything else a 400."""
    if not isinstance(body, dict):
        raise BadRequest("Request input was not a dict")
    out: JsonObject = {}
    for name, pair in body.items():
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(h, str) for h in pair):
            raise BadRequest(f"{name}: comparison hash list length must be exactly 2 strings")
        c = get_signal(name).compare(str(pair[0]), str(pair[1]))
        distance = int(c.distance) if float(c.distance).is_integer() else c.distance
        detail: JsonObject = {"distance": distance}
        detail.update(c.detail)
        out[name] = [c.matched, detail]
    return out


def _signal_names() -> list[str]:
    """Every signal type by the names HMA lists (ours, then HMA's names for ours)."""
    return [*SIGNAL_TYPES.names(), *HMA_SIGNAL_NAMES]


def _known_signal(name: str) -> str:
    try:
        return get_signal(name).name
    except UnknownSignalType:
        raise BadRequest(f"No such signal type '{name}'") from None


def index_status_answer(session: StoreLike, settings: Settings, signal_type: str | None) -> JsonObject:
    """`/m/index/status`: per signal type, present, built_to (Unix time of the newest change applied, -1 when
    none) and size, plus our memory figures."""
    store = as_store(session)
    stats = index_status(store, settings)
    idx = store.indexes(settings)
    when = store.log_time(idx.last_log_id) if idx.last_log_id else None
    built_to = int(when.timestamp()) if when is not None else -1
    out: JsonObject = {}
    for name in _signal_names():
        st = stats.get(_known_signal(name), {})
        out[name] = {"present": idx.loaded, "built_to": built_to, "size": int(st.get("hashes", 0)), **st}
    if signal_type is not None:
        if signal_type not in out:
            _known_signal(signal_type)
            out[signal_type] = out[get_signal(signal_type).name]
        return {signal_type: out[signal_type]}
    return out


def signal_type_index_answer(session: StoreLike, settings: Settings, signal_type: str | None) -> JsonObject:
    """`/c/signal_type/index`: per signal type, {db_size, index_size, index_out_of_date, newest_db_item,
    index_built_to}. Our index applies every committed change before each lookup, so it is never out of
    date for long: the sizes are the index's, and both times the newest change's."""
    status = index_status_answer(session, settings, signal_type)
    out: JsonObject = {}
    for name, st in status.items():
        if not isinstance(st, dict):
            continue
        out[name] = {
            "db_size": st["size"],
            "index_size": st["size"],
            "index_out_of_date": not st["present"],
            "newest_db_item": st["built_to"],
            "index_built_to": st["built_to"],
        }
    return out


def signal_types_answer(session: StoreLike) -> list[JsonObject]:
    """`/c/signal_type`: [{name, enabled_ratio}]; HMA's name for one of ours (`video_md5`) shows our type's."""
    ratios = as_store(session).signal_type_ratios()
    return [{"name": n, "enabled_ratio": ratios.get(get_signal(n).name, 1.0)} for n in _signal_names()]


def set_signal_type(session: StoreLike, name: str, body: JsonValue) -> JsonObject:
    """`PUT /c/signal_type/<name>` {"enabled_ratio"}: a number (or, as HMA's `float()` reads it, numeric text)
    from 0 to 1; stored under our name for the type, so `video_md5` sets `md5`."""
    if name not in _signal_names():
        raise SignalTypeNotFound(f"Unknown signal type {name}")
    if not isinstance(body, dict):
        raise BadRequest("this endpoint expects a json object payload")
    raw = body.get("enabled_ratio")
    if raw is None:
        raise BadRequest("enabled_ratio is required")
    try:
        ratio = float(raw) if isinstance(raw, int | float | str) and not isinstance(raw, bool) else None
    except ValueError:
        ratio = None
    if ratio is None or not 0.0 <= ratio <= 1.0:  # NaN fails the comparison too
        raise BadRequest(f"Invalid enabled ratio {raw!r}. Must be in the range 0.0-1.0 inclusive.")
    as_store(session).set_signal_type_ratio(get_signal(name).name, ratio)
    return {"name": name, "enabled_ratio": ratio}


def content_types_answer() -> list[JsonObject]:
    """`/c/content_type`: [{name, enabled}]."""
    return [{"name": c.value, "enabled": True} for c in ContentType]
