"""Bank files: export a bank as JSON Lines and import one (docs/bank-format.md)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any, TextIO

from deepshield.errors import DeepshieldError
from deepshield.matching.banks import add_signals, create_bank, entry_info, get_bank
from deepshield.matching.storage import StoreLike, as_store
from deepshield.matching.types import EntryMeta
from deepshield.store.timeutil import utcnow

EXPORT_FORMAT = "deepshield-bank"
EXPORT_VERSION = 1
_EXPORT_BATCH = 1000


def export_bank(session: StoreLike, bank: str, out: TextIO) -> int:
    """Write a bank as JSON Lines (see docs/bank-format.md). Returns the entries written."""
    store = as_store(session)
    info = get_bank(store, bank)
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utcnow().isoformat(),
        "bank": {
            k: v
            for k, v in info.to_dict().items()
            if k in ("name", "description", "enabled_ratio", "is_negative", "threshold")
        },
    }
    out.write(json.dumps(header) + "\n")
    n = 0
    last = 0
    while True:
        entries = store.entries(info.id, after_id=last, limit=_EXPORT_BATCH)
        if not entries:
            break
        sigs = store.entry_signals([e.id for e in entries])
        for e in entries:
            ei = entry_info(e, info.name, sigs[e.id])
            line = {
                "id": ei.id,
                "content_type": ei.content_type,
                "signals": ei.signals,
                "metadata": {
                    "source": ei.source,
                    "case_id": ei.case_id,
                    "added_by": ei.added_by,
                    "added_at": ei.added_at,
                    "note": ei.note,
                    "original_media_uri": ei.original_media_uri,
                    "extra": ei.extra,
                },
            }
            out.write(json.dumps(line) + "\n")
            n += 1
        last = entries[-1].id
    return n


def _iter_lines(src: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    # Any: a bank file is untrusted JSON; each field is checked where it is used (add_signals validates).
    for i, line in enumerate(src, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise DeepshieldError(f"line {i}: not JSON ({e})") from None
        if not isinstance(obj, dict):
            raise DeepshieldError(f"line {i}: expected a JSON object")
        yield i, obj


def import_bank(
    session: StoreLike, src: TextIO, bank: str | None = None, added_by: str | None = None
) -> tuple[str, int]:
    """Read a bank file (docs/bank-format.md) into `bank` (default: the name in the file; created if missing).

    Returns (bank name, entries added). Every hash is validated; a bad line names its line number.
    """
    store = as_store(session)
    lines = _iter_lines(src)
    try:
        _, header = next(lines)
    except StopIteration:
        raise DeepshieldError("empty bank file") from None
    if header.get("format") != EXPORT_FORMAT:
        raise DeepshieldError(f"not a {EXPORT_FORMAT} file (first line must be its header)")
    if int(header.get("version", 0)) > EXPORT_VERSION:
        raise DeepshieldError(f"bank file version {header.get('version')} is newer than this program supports")
    hb = header.get("bank") or {}
    name = bank or str(hb.get("name", ""))
    if store.bank(name) is None:
        create_bank(
            store,
            name,
            description=hb.get("description"),
            threshold=hb.get("threshold"),
            negative=bool(hb.get("is_negative", False)),
            enabled_ratio=float(hb.get("enabled_ratio", 1.0)),
        )
    n = 0
    for i, obj in lines:
        md = obj.get("metadata") or {}
        added_at = None
        if md.get("added_at"):
            try:
                added_at = dt.datetime.fromisoformat(md["added_at"])
            except ValueError:
                raise DeepshieldError(f"line {i}: added_at is not an ISO 8601 time") from None
        meta = EntryMeta(
            source=md.get("source"),
            case_id=md.get("case_id"),
            added_by=md.get("added_by") or added_by,
            note=md.get("note"),
            content_type=obj.get("content_type"),
            original_media_uri=md.get("original_media_uri"),
            extra=md.get("extra"),
            added_at=added_at,
        )
        try:
            add_signals(store, name, dict(obj.get("signals") or {}), meta)
        except DeepshieldError as e:
            raise DeepshieldError(f"line {i}: {e.message}") from None
        n += 1
    return name, n
