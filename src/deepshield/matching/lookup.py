"""Lookup: which banked items match a hash or a file, with their metadata, after negative banks.

The index search itself is the signal type's (`SignalType.make_index`); this module decides which banks
answer (enabled ratio, chosen banks, thresholds), attaches entry metadata, drops disabled entries, asks the
signal type which matches need a person, and applies negative banks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from deepshield.config import Settings
from deepshield.matching.banks import entry_info
from deepshield.matching.hashing import lookup_values
from deepshield.matching.indexes import MatchIndexes
from deepshield.matching.signals import ContentType, SignalType, get_signal
from deepshield.matching.signals.base import BankThresholds, IndexHit
from deepshield.matching.storage import BankRecord, MatchStore, StoreLike, as_store
from deepshield.matching.types import BYPASS_COINFLIP, FileLookup, Match
from deepshield.media import Media, open_media


def coinflip(seed: str | None, salt: str = "") -> float:
    """HMA's gradual roll-out draws one number in [0, 1) per lookup: from `seed` (plus `salt`, so a bank's and a
    signal type's draws are independent) when given, so a caller can make it repeatable; BYPASS_COINFLIP (HMA's
    `bypass_coinflip`, and raw lookups) draws 0, so everything with a ratio above 0 takes part."""
    if seed == BYPASS_COINFLIP:
        return 0.0
    return (random.Random(seed + salt) if seed is not None else random).random()


def rolled_out(ratio: float, coin: float) -> bool:
    """Whether something with `enabled_ratio` `ratio` takes part in a lookup that drew `coin`: 0 never, 1
    always, r in between a share r of lookups."""
    return ratio >= 1.0 or (ratio > 0 and coin < ratio)


def bank_thresholds(
    banks: Iterable[BankRecord], signal_default: int, names: set[str] | None, seed: str | None
) -> BankThresholds:
    """Per bank id, the threshold this lookup uses there, or -1 where the bank does not answer."""
    by_id = {b.id: b for b in banks}
    size = (max(by_id) + 1) if by_id else 1
    gt = np.full(size, -1, dtype=np.int32)
    coin = coinflip(seed)
    for b in by_id.values():
        if b.is_negative:
            active = b.enabled_ratio > 0  # negative banks are never rolled out gradually
        else:
            active = rolled_out(b.enabled_ratio, coin)
            if names is not None and b.name not in names:
                active = False
        if active:
            gt[b.id] = b.threshold if b.threshold is not None else signal_default
    return BankThresholds(gt, int(gt.max()) if gt.size else -1)


def synced_indexes(store: MatchStore, settings: Settings | None) -> MatchIndexes:
    idx = store.indexes(settings)
    idx.sync(store)
    return idx


def _finish(
    store: MatchStore, st: SignalType, banks: dict[int, BankRecord], thresholds: BankThresholds, hits: list[IndexHit]
) -> tuple[list[Match], list[Match]]:
    """Attach entry metadata, drop disabled entries, apply negative banks."""
    if not hits:
        return [], []
    entry_of = store.entry_of_signals([h.key for h in hits])
    entries = store.entries_by_id(list(set(entry_of.values())))
    now = int(time.time())
    positives: list[Match] = []
    negatives: list[Match] = []
    for h in hits:
        eid = entry_of.get(h.key)
        e = entries.get(eid) if eid is not None else None
        bank = banks.get(h.group)
        if e is None or bank is None or e.disable_until_ts > now:
            continue
        thr = float(thresholds.of(h.group))
        m = Match(
            bank=bank.name,
            bank_id=h.group,
            entry_id=e.id,
            signal_id=h.key,
            signal_type=st.name,
            distance=h.distance,
            threshold=thr,
            needs_review=st.needs_review(h, thr),
            entry=entry_info(e, bank.name, {}).metadata(),
            variant=h.variant,
            video=h.video,
        )
        (negatives if bank.is_negative else positives).append(m)
    kept: list[Match] = []
    suppressed: list[Match] = []
    best_neg = min(negatives, key=lambda m: m.distance) if negatives else None
    for m in sorted(positives, key=lambda m: (m.distance, m.bank, m.entry_id)):
        if best_neg is not None and best_neg.distance < m.distance:
            m.suppressed_by = {"bank": best_neg.bank, "entry_id": best_neg.entry_id, "distance": best_neg.distance}
            suppressed.append(m)
        else:
            kept.append(m)
    return kept, suppressed


def lookup_signal(
    session: StoreLike,
    signal_type: str,
    value: str | list[str],
    *,
    banks: Iterable[str] | None = None,
    seed: str | None = None,
    settings: Settings | None = None,
) -> tuple[list[Match], list[Match]]:
    """Every banked item matching this hash -> (matches, suppressed by a negative bank).

    `value` may be a list where the signal has variants (PDQ: the image's 8 rotations/flips, first = as
    given); each entry is reported once, at its best distance, with the variant that matched.
    """
    store = as_store(session)
    st = get_signal(signal_type)
    if not rolled_out(store.signal_type_ratios().get(st.name, 1.0), coinflip(seed, f"\x00signal:{st.name}")):
        return [], []  # the signal type is off (HMA's `PUT /c/signal_type`), or not drawn for this lookup
    names = set(banks) if banks is not None else None
    records = {b.id: b for b in store.banks()}
    thresholds = bank_thresholds(records.values(), st.default_threshold, names, seed)
    idx = synced_indexes(store, settings)
    if thresholds.max < 0:
        return [], []
    hits = idx.index(st.name).search([value] if isinstance(value, str) else value, thresholds)
    return _finish(store, st, records, thresholds, hits)


def lookup_media(
    session: StoreLike,
    media: Media,
    *,
    banks: Iterable[str] | None = None,
    variants: bool = True,
    seed: str | None = None,
    settings: Settings | None = None,
) -> FileLookup:
    """Hash a file with every signal for its type and look each hash up (with variants where a signal has them)."""
    hashes, values = lookup_values(media, None, variants)
    ct = ContentType.of(media.info.kind)
    result = FileLookup(path=media.info.path, content_type=ct.value if ct else "", hashes=hashes)
    for name, value in values.items():
        kept, suppressed = lookup_signal(session, name, value, banks=banks, seed=seed, settings=settings)
        result.matches.extend(kept)
        result.suppressed.extend(suppressed)
    return result


def lookup_file(
    session: StoreLike,
    path: str | Path,
    *,
    banks: Iterable[str] | None = None,
    variants: bool = True,
    seed: str | None = None,
    settings: Settings | None = None,
) -> FileLookup:
    media = open_media(path)
    try:
        return lookup_media(session, media, banks=banks, variants=variants, seed=seed, settings=settings)
    finally:
        media.close()


def index_status(session: StoreLike, settings: Settings | None = None) -> dict[str, dict[str, float | int]]:
    """Per signal type: the size and memory of its index, after applying the changes committed so far."""
    return synced_indexes(as_store(session), settings).stats()
