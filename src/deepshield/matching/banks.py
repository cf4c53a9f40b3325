"""Banks and their entries: create, configure, add content (by file or raw hash), remove (by id or case).

Every function takes a store, or the caller's SQLAlchemy session, and never commits: the caller's transaction
decides. Changes reach the in-memory indexes through the store's change log (see `indexes.py`), so they
become visible to the next lookup after the commit, in this process and in every other one.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from deepshield.errors import DeepshieldError
from deepshield.matching.hashing import hash_media
from deepshield.matching.signals import ContentType, get_signal
from deepshield.matching.storage import BankRecord, EntryRecord, MatchStore, NewBank, NewEntry, StoreLike, as_store
from deepshield.matching.types import (
    BANK_NAME_RE,
    MAX_THRESHOLD,
    BankExists,
    BankInfo,
    BankNotFound,
    EntryInfo,
    EntryMeta,
    EntryNotFound,
    InvalidBank,
)
from deepshield.media import open_media
from deepshield.store.timeutil import utcnow

# ---------------------------------------------------------------------------------------------- banks

NAME_RULE = "must be 1-128 characters of A-Z, 0-9 and _, not starting with a digit (as in HMA)"


def bank_info(b: BankRecord, entries: int = 0) -> BankInfo:
    """The stored bank as reported: every field of the record, its date as ISO text, with its entry count."""
    facts = {f.name: getattr(b, f.name) for f in fields(BankRecord)}
    facts |= {"enabled_ratio": float(b.enabled_ratio), "is_negative": bool(b.is_negative)}
    return BankInfo(**facts | {"created_at": b.created_at.isoformat() if b.created_at else ""}, entries=entries)


def bank_record(store: MatchStore, name: str) -> BankRecord:
    # Every bank was created under the name rule, so a name outside it names no bank: it is not looked up (a NUL
    # or an unpaired surrogate cannot even be sent to PostgreSQL).
    b = store.bank(name) if BANK_NAME_RE.fullmatch(name) else None
    if b is None:
        raise BankNotFound(f"no bank named {name!r}")
    return b


def _check_threshold(threshold: int | None) -> None:
    if threshold is not None and not 0 <= threshold <= MAX_THRESHOLD:
        raise InvalidBank(f"a bank threshold must be between 0 and {MAX_THRESHOLD} bits")


def create_bank(
    session: StoreLike,
    name: str,
    *,
    description: str | None = None,
    threshold: int | None = None,
    negative: bool = False,
    enabled: bool = True,
    enabled_ratio: float | None = None,
) -> BankInfo:
    store = as_store(session)
    if not BANK_NAME_RE.match(name):
        raise InvalidBank(f"bank name {name!r} {NAME_RULE}")
    _check_threshold(threshold)
    if store.bank(name) is not None:
        raise BankExists(f"bank {name!r} already exists")
    ratio = enabled_ratio if enabled_ratio is not None else (1.0 if enabled else 0.0)
    if not 0.0 <= ratio <= 1.0:
        raise InvalidBank("enabled_ratio must be between 0 and 1")
    b = store.add_bank(NewBank(name, description, threshold, negative, ratio, utcnow()))
    return bank_info(b)


def list_banks(session: StoreLike) -> list[BankInfo]:
    store = as_store(session)
    counts = store.entry_counts()
    return [bank_info(b, counts.get(b.id, 0)) for b in store.banks()]


def get_bank(session: StoreLike, name: str) -> BankInfo:
    store = as_store(session)
    b = bank_record(store, name)
    return bank_info(b, store.count_entries(b.id))


def update_bank(
    session: StoreLike,
    name: str,
    *,
    new_name: str | None = None,
    enabled: bool | None = None,
    enabled_ratio: float | None = None,
    threshold: int | None = None,
    clear_threshold: bool = False,
    negative: bool | None = None,
    description: str | None = None,
) -> BankInfo:
    store = as_store(session)
    b = bank_record(store, name)
    if new_name is not None and new_name != b.name:
        if not BANK_NAME_RE.match(new_name):
            raise InvalidBank(f"bank name {new_name!r} {NAME_RULE}")
        if store.bank(new_name) is not None:
            raise BankExists(f"bank {new_name!r} already exists")
        b.name = new_name
    if enabled is not None:
        b.enabled_ratio = 1.0 if enabled else 0.0
    if enabled_ratio is not None:
        if not 0.0 <= enabled_ratio <= 1.0:
            raise InvalidBank("enabled_ratio must be between 0 and 1")
        b.enabled_ratio = enabled_ratio
    if threshold is not None:
        _check_threshold(threshold)
        b.threshold = threshold
    if clear_threshold:
        b.threshold = None
    if negative is not None:
        b.is_negative = negative
    if description is not None:
        b.description = description
    store.save_bank(b)
    return get_bank(store, b.name)


def delete_bank(session: StoreLike, name: str) -> int:
    """Delete a bank and everything in it; returns how many entries went."""
    store = as_store(session)
    return store.delete_bank(bank_record(store, name).id)


# ---------------------------------------------------------------------------------------------- entries


def entry_info(e: EntryRecord, bank: str, signals: dict[str, str], low_quality: bool = False) -> EntryInfo:
    """The stored entry as reported: its bank by name instead of id, its date as ISO text, the rest as stored."""
    facts = {k: getattr(e, k) for k in _ENTRY_FACTS}
    facts["added_at"] = e.added_at.isoformat() if e.added_at else ""
    return EntryInfo(bank=bank, signals=signals, low_quality=low_quality, **facts)


_ENTRY_FACTS = tuple(f.name for f in fields(EntryRecord) if f.name != "bank_id")


def add_signals(
    session: StoreLike,
    bank: str,
    signals: dict[str, str],
    meta: EntryMeta | None = None,
    qualities: dict[str, int | None] | None = None,
) -> EntryInfo:
    """Bank one piece of content by its hashes ({signal type name: hash}); all hashes validated first."""
    store = as_store(session)
    meta = meta or EntryMeta()
    if not signals:
        raise DeepshieldError("no signals given")
    b = bank_record(store, bank)
    clean: dict[str, str] = {}
    only: set[ContentType] = set()
    for name, value in signals.items():
        st = get_signal(name)
        clean[st.name] = st.validate(str(value))
        if len(st.content_types) == 1:
            only.add(st.content_types[0])
    # A hash of a signal that applies to one content type only says what the content is (video before photo).
    implied = next((ct.value for ct in (ContentType.VIDEO, ContentType.PHOTO) if ct in only), None)
    e = store.add_entry(
        b.id,
        NewEntry(
            content_type=meta.content_type or implied,
            source=meta.source,
            case_id=meta.case_id,
            added_by=meta.added_by,
            added_at=meta.added_at or utcnow(),
            note=meta.note,
            original_media_uri=meta.original_media_uri,
            extra=meta.extra,
        ),
    )
    low = False
    for st_name, value in clean.items():
        q = (qualities or {}).get(st_name)
        low |= get_signal(st_name).low_quality(q)
        store.add_signal(e.id, b.id, st_name, value, q)
    return entry_info(e, b.name, clean, low)


def add_hash(session: StoreLike, bank: str, signal_type: str, value: str, meta: EntryMeta | None = None) -> EntryInfo:
    return add_signals(session, bank, {signal_type: value}, meta)


def add_file(session: StoreLike, bank: str, path: str | Path, meta: EntryMeta | None = None) -> EntryInfo:
    media = open_media(path)
    try:
        hashes = hash_media(media)
        meta = meta or EntryMeta()
        if meta.content_type is None:
            ct = ContentType.of(media.info.kind)
            meta.content_type = ct.value if ct else None
    finally:
        media.close()
    return add_signals(
        session,
        bank,
        {k: v.value for k, v in hashes.items()},
        meta,
        {k: v.quality for k, v in hashes.items()},
    )


def get_entry(session: StoreLike, entry_id: int, bank: str | None = None) -> EntryInfo:
    store = as_store(session)
    e = store.entry(entry_id)
    b = store.bank_by_id(e.bank_id) if e is not None else None
    if e is None or b is None or (bank is not None and b.name != bank):
        raise EntryNotFound(f"no entry {entry_id}" + (f" in bank {bank!r}" if bank else ""))
    return entry_info(e, b.name, store.entry_signals([entry_id])[entry_id])


def list_entries(session: StoreLike, bank: str, limit: int = 100, offset: int = 0) -> list[EntryInfo]:
    store = as_store(session)
    b = bank_record(store, bank)
    entries = store.entries(b.id, limit=limit, offset=offset)
    sigs = store.entry_signals([e.id for e in entries])
    return [entry_info(e, b.name, sigs[e.id]) for e in entries]


def set_entry_disabled_until(session: StoreLike, entry_id: int, ts: int) -> EntryInfo:
    store = as_store(session)
    if store.entry(entry_id) is None:
        raise EntryNotFound(f"no entry {entry_id}")
    if ts < 0:
        raise DeepshieldError("disable_until_ts must be a non-negative integer")
    store.set_disable_until(entry_id, ts)
    return get_entry(store, entry_id)


def remove_entry(session: StoreLike, entry_id: int, bank: str | None = None) -> int:
    """Remove one banked item (all its hashes). Returns 1, or 0 when there was no such entry."""
    store = as_store(session)
    bank_id = bank_record(store, bank).id if bank is not None else None
    e = store.entry(entry_id)
    if e is None or (bank_id is not None and e.bank_id != bank_id):
        return 0
    store.remove_entries([entry_id])
    return 1


def remove_case(session: StoreLike, case_id: str) -> int:
    """A victim's withdrawal: remove every entry of this case from every bank. Returns the entries removed."""
    store = as_store(session)
    if not case_id:
        raise DeepshieldError("a case id is required")
    ids = store.case_entry_ids(case_id)
    if ids:
        store.remove_entries(ids)
    return len(ids)
