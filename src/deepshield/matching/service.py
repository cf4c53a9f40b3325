"""Bank and lookup services: the one API the CLI, the HTTP routes and the cases domain call.

Every function takes the caller's SQLAlchemy session and never commits it: the caller's transaction decides.
Changes reach the in-memory indexes through the change log (see `indexes.py`), so they become visible to the
next lookup after the commit, in this process and in every other one.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from deepshield.config import Settings
from deepshield.errors import DeepshieldError, UnsupportedMediaType
from deepshield.matching.bits import hex_to_words
from deepshield.matching.indexes import MatchIndexes, get_indexes
from deepshield.matching.models import MatchBank, MatchEntry, MatchIndexLog, MatchSignal
from deepshield.matching.signals import ContentType, SignalHash, get_signal, signals_for
from deepshield.matching.signals.pdq import DIHEDRAL_NAMES, PDQ_MIN_QUALITY, PdqSignal
from deepshield.matching.signals.vpdq import parse_vpdq
from deepshield.media import Media, MediaKind, open_media
from deepshield.store.timeutil import utcnow

#: HMA's bank name rule, so names created through either system work in both.
BANK_NAME_RE = re.compile(r"^[A-Z0-9_]{1,128}$")
#: Matches this close to the threshold are flagged for a person to confirm (perceptual-hash attacks and
#: shared-bank false positives live there).
REVIEW_MARGIN = 4
#: Largest per-bank PDQ threshold: beyond it PDQ matches unrelated images, and the index would fall back
#: from probing (floor(t / 11) <= 3 bits per chunk) to scanning.
MAX_THRESHOLD = 43
#: Pass as `seed` to answer from every bank with a non-zero enabled ratio.
BYPASS_COINFLIP = "\x00bypass"


class BankNotFound(DeepshieldError):
    code = "bank_not_found"
    http_status = 404


class BankExists(DeepshieldError):
    code = "bank_exists"
    http_status = 409


class EntryNotFound(DeepshieldError):
    code = "entry_not_found"
    http_status = 404


class InvalidBank(DeepshieldError):
    code = "invalid_bank"
    http_status = 400


# ---------------------------------------------------------------------------------------------- value types


@dataclass
class BankInfo:
    id: int
    name: str
    enabled_ratio: float
    is_negative: bool
    threshold: int | None
    description: str | None
    created_at: str
    entries: int = 0

    @property
    def enabled(self) -> bool:
        return self.enabled_ratio > 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["enabled"] = self.enabled
        d["matching_enabled_ratio"] = self.enabled_ratio
        return d


@dataclass
class EntryMeta:
    """What a person or system records about a banked item; every match reports it."""

    source: str | None = None
    case_id: str | None = None
    added_by: str | None = None
    note: str | None = None
    content_type: str | None = None
    original_media_uri: str | None = None
    extra: dict[str, Any] | None = None
    added_at: dt.datetime | None = None


@dataclass
class EntryInfo:
    id: int
    bank: str
    signals: dict[str, str]
    source: str | None
    case_id: str | None
    added_by: str | None
    added_at: str
    note: str | None
    content_type: str | None
    original_media_uri: str | None
    disable_until_ts: int
    extra: dict[str, Any] | None
    low_quality: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Match:
    bank: str
    bank_id: int
    entry_id: int
    signal_id: int
    signal_type: str
    distance: float
    threshold: float
    needs_review: bool
    entry: dict[str, Any]
    variant: str | None = None
    video: dict[str, Any] | None = None
    suppressed_by: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FileLookup:
    path: str
    content_type: str
    hashes: dict[str, SignalHash]
    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "content_type": self.content_type,
            "matched": self.matched,
            "hashes": {k: v.value for k, v in self.hashes.items()},
            "quality": {k: v.quality for k, v in self.hashes.items() if v.quality is not None},
            "matches": [m.to_dict() for m in self.matches],
            "suppressed": [m.to_dict() for m in self.suppressed],
        }


# ---------------------------------------------------------------------------------------------- banks


def _bank_info(b: MatchBank, entries: int = 0) -> BankInfo:
    return BankInfo(
        id=b.id,
        name=b.name,
        enabled_ratio=float(b.enabled_ratio),
        is_negative=bool(b.is_negative),
        threshold=b.threshold,
        description=b.description,
        created_at=b.created_at.isoformat() if b.created_at else "",
        entries=entries,
    )


def _get_bank(session: Session, name: str) -> MatchBank:
    b = session.scalar(select(MatchBank).where(MatchBank.name == name))
    if b is None:
        raise BankNotFound(f"no bank named {name!r}")
    return b


def _check_threshold(threshold: int | None) -> None:
    if threshold is not None and not 0 <= threshold <= MAX_THRESHOLD:
        raise InvalidBank(f"a bank threshold must be between 0 and {MAX_THRESHOLD} bits")


def create_bank(
    session: Session,
    name: str,
    *,
    description: str | None = None,
    threshold: int | None = None,
    negative: bool = False,
    enabled: bool = True,
    enabled_ratio: float | None = None,
) -> BankInfo:
    if not BANK_NAME_RE.match(name):
        raise InvalidBank(f"bank name {name!r} must be 1-128 characters of A-Z, 0-9 and _ (as in HMA)")
    _check_threshold(threshold)
    if session.scalar(select(MatchBank.id).where(MatchBank.name == name)) is not None:
        raise BankExists(f"bank {name!r} already exists")
    ratio = enabled_ratio if enabled_ratio is not None else (1.0 if enabled else 0.0)
    if not 0.0 <= ratio <= 1.0:
        raise InvalidBank("enabled_ratio must be between 0 and 1")
    b = MatchBank(
        name=name,
        description=description,
        threshold=threshold,
        is_negative=negative,
        enabled_ratio=ratio,
        created_at=utcnow(),
    )
    session.add(b)
    session.flush()
    return _bank_info(b)


def list_banks(session: Session) -> list[BankInfo]:
    counts = dict(session.execute(select(MatchEntry.bank_id, func.count()).group_by(MatchEntry.bank_id)).all())
    return [
        _bank_info(b, int(counts.get(b.id, 0))) for b in session.scalars(select(MatchBank).order_by(MatchBank.name))
    ]


def get_bank(session: Session, name: str) -> BankInfo:
    b = _get_bank(session, name)
    n = session.scalar(select(func.count()).select_from(MatchEntry).where(MatchEntry.bank_id == b.id)) or 0
    return _bank_info(b, int(n))


def update_bank(
    session: Session,
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
    b = _get_bank(session, name)
    if new_name is not None and new_name != b.name:
        if not BANK_NAME_RE.match(new_name):
            raise InvalidBank(f"bank name {new_name!r} must be 1-128 characters of A-Z, 0-9 and _")
        if session.scalar(select(MatchBank.id).where(MatchBank.name == new_name)) is not None:
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
    session.flush()
    return get_bank(session, b.name)


def _log_removals(session: Session, rows: Iterable[tuple[int, str]]) -> int:
    n = 0
    for sid, st in rows:
        session.add(MatchIndexLog(op="remove", signal_id=sid, signal_type=st, created_at=utcnow()))
        n += 1
    return n


def delete_bank(session: Session, name: str) -> int:
    """Delete a bank and everything in it; returns how many entries went."""
    b = _get_bank(session, name)
    _log_removals(
        session,
        [
            (sid, st)
            for sid, st in session.execute(
                select(MatchSignal.id, MatchSignal.signal_type).where(MatchSignal.bank_id == b.id)
            )
        ],
    )
    session.execute(delete(MatchSignal).where(MatchSignal.bank_id == b.id))
    n = session.scalar(select(func.count()).select_from(MatchEntry).where(MatchEntry.bank_id == b.id)) or 0
    session.execute(delete(MatchEntry).where(MatchEntry.bank_id == b.id))
    session.delete(b)
    session.flush()
    return int(n)


# ---------------------------------------------------------------------------------------------- entries


def _entry_info(e: MatchEntry, bank: str, signals: dict[str, str], low_quality: bool = False) -> EntryInfo:
    return EntryInfo(
        id=e.id,
        bank=bank,
        signals=signals,
        source=e.source,
        case_id=e.case_id,
        added_by=e.added_by,
        added_at=e.added_at.isoformat() if e.added_at else "",
        note=e.note,
        content_type=e.content_type,
        original_media_uri=e.original_media_uri,
        disable_until_ts=int(e.disable_until_ts or 0),
        extra=json.loads(e.extra_json) if e.extra_json else None,
        low_quality=low_quality,
    )


def add_signals(
    session: Session,
    bank: str,
    signals: dict[str, str],
    meta: EntryMeta | None = None,
    qualities: dict[str, int | None] | None = None,
) -> EntryInfo:
    """Bank one piece of content by its hashes ({signal type name: hash}); all hashes validated first."""
    meta = meta or EntryMeta()
    if not signals:
        raise DeepshieldError("no signals given")
    b = _get_bank(session, bank)
    clean: dict[str, str] = {}
    for name, value in signals.items():
        st = get_signal(name)
        clean[st.name] = st.validate(str(value))
    content_type = meta.content_type or (
        ContentType.VIDEO.value if "vpdq" in clean else ContentType.PHOTO.value if "pdq" in clean else None
    )
    e = MatchEntry(
        bank_id=b.id,
        content_type=content_type,
        source=meta.source,
        case_id=meta.case_id,
        added_by=meta.added_by,
        added_at=meta.added_at or utcnow(),
        note=meta.note,
        original_media_uri=meta.original_media_uri,
        extra_json=json.dumps(meta.extra) if meta.extra else None,
    )
    session.add(e)
    session.flush()
    low = False
    for st_name, value in clean.items():
        q = (qualities or {}).get(st_name)
        low |= st_name == "pdq" and q is not None and q < PDQ_MIN_QUALITY
        s = MatchSignal(entry_id=e.id, bank_id=b.id, signal_type=st_name, value=value, value_key=value[:64], quality=q)
        session.add(s)
        session.flush()
        session.add(MatchIndexLog(op="add", signal_id=s.id, signal_type=st_name, created_at=utcnow()))
    session.flush()
    return _entry_info(e, b.name, clean, low)


def add_hash(session: Session, bank: str, signal_type: str, value: str, meta: EntryMeta | None = None) -> EntryInfo:
    return add_signals(session, bank, {signal_type: value}, meta)


def hash_media(media: Media, signal_types: Iterable[str] | None = None) -> dict[str, SignalHash]:
    """Every enabled signal for the content's type (or just the named ones)."""
    ct = ContentType.of(media.info.kind)
    if ct is None:
        raise UnsupportedMediaType(f"{Path(media.info.path).name}: only photos and videos can be hashed")
    wanted = {get_signal(n).name for n in signal_types} if signal_types else None
    out: dict[str, SignalHash] = {}
    for st in signals_for(ct):
        if wanted is None or st.name in wanted:
            out[st.name] = st.hash_media(media)
    if wanted and not out:
        raise UnsupportedMediaType(f"none of {sorted(wanted)} applies to {ct.value} content")
    return out


def hash_file(path: str | Path, signal_types: Iterable[str] | None = None) -> dict[str, SignalHash]:
    media = open_media(path)
    try:
        return hash_media(media, signal_types)
    finally:
        media.close()


def add_file(session: Session, bank: str, path: str | Path, meta: EntryMeta | None = None) -> EntryInfo:
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


def _entry_signals(session: Session, entry_ids: list[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {i: {} for i in entry_ids}
    if entry_ids:
        for eid, st, v in session.execute(
            select(MatchSignal.entry_id, MatchSignal.signal_type, MatchSignal.value).where(
                MatchSignal.entry_id.in_(entry_ids)
            )
        ):
            out[eid][st] = v
    return out


def get_entry(session: Session, entry_id: int, bank: str | None = None) -> EntryInfo:
    row = session.execute(
        select(MatchEntry, MatchBank.name)
        .join(MatchBank, MatchBank.id == MatchEntry.bank_id)
        .where(MatchEntry.id == entry_id)
    ).first()
    if row is None or (bank is not None and row[1] != bank):
        raise EntryNotFound(f"no entry {entry_id}" + (f" in bank {bank!r}" if bank else ""))
    return _entry_info(row[0], row[1], _entry_signals(session, [entry_id])[entry_id])


def list_entries(session: Session, bank: str, limit: int = 100, offset: int = 0) -> list[EntryInfo]:
    b = _get_bank(session, bank)
    entries = list(
        session.scalars(
            select(MatchEntry).where(MatchEntry.bank_id == b.id).order_by(MatchEntry.id).limit(limit).offset(offset)
        )
    )
    sigs = _entry_signals(session, [e.id for e in entries])
    return [_entry_info(e, b.name, sigs[e.id]) for e in entries]


def set_entry_disabled_until(session: Session, entry_id: int, ts: int) -> EntryInfo:
    e = session.get(MatchEntry, entry_id)
    if e is None:
        raise EntryNotFound(f"no entry {entry_id}")
    if ts < 0:
        raise DeepshieldError("disable_until_ts must be a non-negative integer")
    e.disable_until_ts = ts
    session.flush()
    return get_entry(session, entry_id)


def _remove_entries(session: Session, entry_ids: list[int]) -> int:
    if not entry_ids:
        return 0
    for i in range(0, len(entry_ids), 900):
        chunk = entry_ids[i : i + 900]
        _log_removals(
            session,
            [
                (sid, st)
                for sid, st in session.execute(
                    select(MatchSignal.id, MatchSignal.signal_type).where(MatchSignal.entry_id.in_(chunk))
                )
            ],
        )
        session.execute(delete(MatchSignal).where(MatchSignal.entry_id.in_(chunk)))
        session.execute(delete(MatchEntry).where(MatchEntry.id.in_(chunk)))
    session.flush()
    return len(entry_ids)


def remove_entry(session: Session, entry_id: int, bank: str | None = None) -> int:
    """Remove one banked item (all its hashes). Returns 1, or 0 when there was no such entry."""
    q = select(MatchEntry.id).where(MatchEntry.id == entry_id)
    if bank is not None:
        q = q.where(MatchEntry.bank_id == _get_bank(session, bank).id)
    ids = list(session.scalars(q))
    return _remove_entries(session, ids)


def remove_case(session: Session, case_id: str) -> int:
    """A victim's withdrawal: remove every entry of this case from every bank. Returns the entries removed."""
    if not case_id:
        raise DeepshieldError("a case id is required")
    ids = list(session.scalars(select(MatchEntry.id).where(MatchEntry.case_id == case_id)))
    return _remove_entries(session, ids)


# ---------------------------------------------------------------------------------------------- lookup


@dataclass
class _BankView:
    banks: dict[int, MatchBank]
    group_thresholds: np.ndarray  # per bank id: threshold, or -1 when the bank is not searched
    max_threshold: int


def _bank_view(session: Session, signal_default: int, names: set[str] | None, seed: str | None) -> _BankView:
    banks = {b.id: b for b in session.scalars(select(MatchBank))}
    size = (max(banks) + 1) if banks else 1
    gt = np.full(size, -1, dtype=np.int32)
    # HMA's gradual roll-out: a bank with enabled_ratio r answers a share r of lookups. BYPASS_COINFLIP
    # (HMA's `bypass_coinflip`, and raw lookups) makes every bank with r > 0 answer.
    rng = random.Random(seed) if seed is not None else random
    coin = 0.0 if seed == BYPASS_COINFLIP else rng.random()
    for b in banks.values():
        if b.is_negative:
            active = b.enabled_ratio > 0  # negative banks are never rolled out gradually
        else:
            active = b.enabled_ratio >= 1.0 or (b.enabled_ratio > 0 and coin < b.enabled_ratio)
            if names is not None and b.name not in names:
                active = False
        if active:
            gt[b.id] = b.threshold if b.threshold is not None else signal_default
    mx = int(gt.max()) if gt.size else -1
    return _BankView(banks, gt, mx)


def _indexes(session: Session, settings: Settings | None) -> MatchIndexes:
    idx = get_indexes(settings)
    idx.sync(session)
    return idx


def _needs_review(signal_type: str, distance: float, threshold: float, video: dict[str, Any] | None) -> bool:
    """Near-threshold matches go in front of a person (evasion attempts and collisions live there)."""
    if signal_type == "pdq":
        return distance > threshold - REVIEW_MARGIN
    if signal_type == "vpdq" and video is not None:
        best = max(video["query_fraction"], video["bank_fraction"])
        return best < 0.9 or video["best_frame_distance"] > threshold - REVIEW_MARGIN
    return False


def _finish(
    session: Session, view: _BankView, raw: list[tuple[int, int, float, dict[str, Any]]], signal_type: str
) -> tuple[list[Match], list[Match]]:
    """Attach entry metadata, drop disabled entries, apply negative banks.

    raw = (signal id, bank id, distance, extra).
    """
    if not raw:
        return [], []
    sids = [r[0] for r in raw]
    entry_of = {
        sid: eid
        for sid, eid in session.execute(select(MatchSignal.id, MatchSignal.entry_id).where(MatchSignal.id.in_(sids)))
    }
    entries = {e.id: e for e in session.scalars(select(MatchEntry).where(MatchEntry.id.in_(set(entry_of.values()))))}
    now = int(time.time())
    positives: list[Match] = []
    negatives: list[Match] = []
    for sid, bank_id, dist, extra in raw:
        eid = entry_of.get(sid)
        e = entries.get(eid) if eid is not None else None
        bank = view.banks.get(bank_id)
        if e is None or bank is None or (e.disable_until_ts or 0) > now:
            continue
        thr = float(view.group_thresholds[bank_id])
        info = _entry_info(e, bank.name, {})
        meta = {k: v for k, v in info.to_dict().items() if k not in ("signals", "low_quality", "bank", "id")}
        m = Match(
            bank=bank.name,
            bank_id=bank_id,
            entry_id=e.id,
            signal_id=sid,
            signal_type=signal_type,
            distance=dist,
            threshold=thr,
            needs_review=_needs_review(signal_type, dist, thr, extra.get("video")),
            entry=meta,
            variant=extra.get("variant"),
            video=extra.get("video"),
        )
        (negatives if bank.is_negative else positives).append(m)
    kept: list[Match] = []
    suppressed: list[Match] = []
    best_neg = min(negatives, key=lambda m: m.distance) if negatives else None
    for m in sorted(positives, key=lambda m: (m.distance, m.bank, m.entry_id)):
        if best_neg is not None and best_neg.distance < m.distance:
            m.suppressed_by = {
                "bank": best_neg.bank,
                "entry_id": best_neg.entry_id,
                "distance": best_neg.distance,
            }
            suppressed.append(m)
        else:
            kept.append(m)
    return kept, suppressed


def lookup_signal(
    session: Session,
    signal_type: str,
    value: str | list[str],
    *,
    banks: Iterable[str] | None = None,
    seed: str | None = None,
    settings: Settings | None = None,
) -> tuple[list[Match], list[Match]]:
    """Every banked item matching this hash -> (matches, suppressed by a negative bank).

    For PDQ, `value` may be a list: the image's 8 rotation/flip variants (first = as given); each entry is
    reported once, at its best distance, with the variant that matched.
    """
    st = get_signal(signal_type)
    names = set(banks) if banks is not None else None
    view = _bank_view(session, st.default_threshold, names, seed)
    idx = _indexes(session, settings)
    raw: list[tuple[int, int, float, dict[str, Any]]] = []
    if view.max_threshold < 0:
        return [], []
    if st.name == "pdq":
        values = [st.validate(v) for v in ([value] if isinstance(value, str) else value)]
        best: dict[int, tuple[int, int, int]] = {}
        for vi, v in enumerate(values):
            for h in idx.pdq.search(hex_to_words(v), view.max_threshold, view.group_thresholds):
                if h.key not in best or h.distance < best[h.key][1]:
                    best[h.key] = (h.group, h.distance, vi)
        for sid, (g, d, vi) in best.items():
            variant = DIHEDRAL_NAMES[vi] if len(values) == 8 else ("original" if vi == 0 else f"variant{vi}")
            raw.append((sid, g, float(d), {"variant": variant}))
    elif st.name == "vpdq":
        frames = parse_vpdq(value if isinstance(value, str) else value[0])
        for vh in idx.vpdq.search(frames, view.max_threshold, view.group_thresholds):
            m = vh.match
            raw.append(
                (
                    vh.key,
                    vh.group,
                    round(1.0 - max(m.query_fraction, m.bank_fraction), 4),
                    {
                        "video": {
                            "query_fraction": m.query_fraction,
                            "bank_fraction": m.bank_fraction,
                            "query_ranges": m.query_ranges,
                            "bank_ranges": m.bank_ranges,
                            "matched_frames": m.matched_frames,
                            "best_frame_distance": m.best_frame_distance,
                        }
                    },
                )
            )
    else:
        v = st.validate(value if isinstance(value, str) else value[0])
        for eh in idx.exact[st.name].search(v):
            if eh.group < len(view.group_thresholds) and view.group_thresholds[eh.group] >= 0:
                raw.append((eh.key, eh.group, 0.0, {}))
    return _finish(session, view, raw, st.name)


def lookup_values(
    media: Media, signal_types: Iterable[str] | None = None, variants: bool = True
) -> tuple[dict[str, SignalHash], dict[str, str | list[str]]]:
    """Hashes of a file and what to look up for each: for PDQ, its 8 rotation/flip variants (one decode)."""
    wanted = {get_signal(n).name for n in signal_types} if signal_types else None
    pdq_variants: list[str] | None = None
    if variants and media.info.kind is MediaKind.IMAGE and (wanted is None or "pdq" in wanted):
        pdq = get_signal("pdq")
        assert isinstance(pdq, PdqSignal)
        pdq_variants, quality = pdq.hash_variants(media)
        others = None if wanted is None else wanted - {"pdq"}
        hashes = {"pdq": SignalHash("pdq", pdq_variants[0], quality)}
        if others is None or others:
            ct = ContentType.PHOTO
            hashes.update(
                {
                    st.name: st.hash_media(media)
                    for st in signals_for(ct)
                    if st.name != "pdq" and (others is None or st.name in others)
                }
            )
    else:
        hashes = hash_media(media, signal_types)
    values: dict[str, str | list[str]] = {k: v.value for k, v in hashes.items()}
    if pdq_variants is not None:
        values["pdq"] = pdq_variants
    return hashes, values


def lookup_media(
    session: Session,
    media: Media,
    *,
    banks: Iterable[str] | None = None,
    variants: bool = True,
    seed: str | None = None,
    settings: Settings | None = None,
) -> FileLookup:
    """Hash a file with every signal for its type and look each hash up (PDQ with its 8 variants)."""
    hashes, values = lookup_values(media, None, variants)
    ct = ContentType.of(media.info.kind)
    result = FileLookup(path=media.info.path, content_type=ct.value if ct else "", hashes=hashes)
    for name, value in values.items():
        kept, suppressed = lookup_signal(session, name, value, banks=banks, seed=seed, settings=settings)
        result.matches.extend(kept)
        result.suppressed.extend(suppressed)
    return result


def lookup_file(session: Session, path: str | Path, **kw: Any) -> FileLookup:
    media = open_media(path)
    try:
        return lookup_media(session, media, **kw)
    finally:
        media.close()


def index_status(session: Session, settings: Settings | None = None) -> dict[str, Any]:
    idx = _indexes(session, settings)
    return idx.stats()


# ---------------------------------------------------------------------------------------------- import/export

EXPORT_FORMAT = "deepshield-bank"
EXPORT_VERSION = 1


def export_bank(session: Session, bank: str, out: TextIO) -> int:
    """Write a bank as JSON Lines (see docs/bank-format.md). Returns the entries written."""
    info = get_bank(session, bank)
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
        entries = list(
            session.scalars(
                select(MatchEntry)
                .where(MatchEntry.bank_id == info.id, MatchEntry.id > last)
                .order_by(MatchEntry.id)
                .limit(1000)
            )
        )
        if not entries:
            break
        sigs = _entry_signals(session, [e.id for e in entries])
        for e in entries:
            ei = _entry_info(e, info.name, sigs[e.id])
            out.write(
                json.dumps(
                    {
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
                )
                + "\n"
            )
            n += 1
        last = entries[-1].id
    return n


def _iter_lines(src: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
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


def import_bank(session: Session, src: TextIO, bank: str | None = None, added_by: str | None = None) -> tuple[str, int]:
    """Read a bank file (docs/bank-format.md) into `bank` (default: the name in the file; created if missing).

    Returns (bank name, entries added). Every hash is validated; a bad line names its line number.
    """
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
    if session.scalar(select(MatchBank.id).where(MatchBank.name == name)) is None:
        create_bank(
            session,
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
            add_signals(session, name, dict(obj.get("signals") or {}), meta)
        except DeepshieldError as e:
            raise DeepshieldError(f"line {i}: {e.message}") from None
        n += 1
    return name, n
