"""One contract, two stores: the SQL store (over a session, committed between steps) and the in-memory store
answer every service call the same way, and both feed the in-memory indexes through their change log."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from deepshield.config import Settings
from deepshield.matching import service as svc
from deepshield.matching.bits import hex_to_words, words_to_hex
from deepshield.matching.indexes import MatchIndexes, reset_indexes
from deepshield.matching.storage import MatchStore, MemoryMatchStore, SqlMatchStore
from deepshield.store.db import session_scope, upgrade_schema

H = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "0123456789abcdef0123456789abcdef"


@dataclass
class Stores:
    """The store under test: `open()` is one unit of work (a committed transaction for SQL); `settings` is
    what lookups key a SQL store's process-wide indexes by (None for memory: the store holds its own)."""

    open: Callable[[], AbstractContextManager[MatchStore]]
    settings: Settings | None = None


def _flip(h: str, n: int, seed: int = 0) -> str:
    w = hex_to_words(h)
    for b in np.random.default_rng(seed).choice(256, n, replace=False):
        w[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return words_to_hex(w)


@pytest.fixture(params=["sql", "memory"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "memory":
        mem = MemoryMatchStore()

        @contextmanager
        def open_memory() -> Iterator[MatchStore]:
            yield mem

        yield Stores(open_memory)
        return
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    upgrade_schema(settings)

    @contextmanager
    def open_sql() -> Iterator[MatchStore]:
        with session_scope(settings) as s:
            yield SqlMatchStore(s)

    yield Stores(open_sql, settings)
    reset_indexes()


def test_banks(stores: Stores) -> None:
    with stores.open() as st:
        a = svc.create_bank(st, "A", description="first", threshold=20)
        svc.create_bank(st, "B", negative=True, enabled=False)
        assert (a.name, a.threshold, a.description, a.entries, a.enabled_ratio) == ("A", 20, "first", 0, 1.0)
        with pytest.raises(svc.BankExists):
            svc.create_bank(st, "A")
        with pytest.raises(svc.InvalidBank):
            svc.create_bank(st, "lower")
        with pytest.raises(svc.InvalidBank):
            svc.create_bank(st, "C", threshold=99)
    with stores.open() as st:
        assert [(b.name, b.is_negative, b.enabled) for b in svc.list_banks(st)] == [
            ("A", False, True),
            ("B", True, False),
        ]
        b = svc.update_bank(st, "A", new_name="A2", enabled_ratio=0.5, clear_threshold=True, description="d")
        assert (b.name, b.enabled_ratio, b.threshold, b.description) == ("A2", 0.5, None, "d")
        with pytest.raises(svc.BankExists):
            svc.update_bank(st, "A2", new_name="B")
        with pytest.raises(svc.BankNotFound):
            svc.get_bank(st, "A")
    with stores.open() as st:
        svc.add_hash(st, "A2", "pdq", H)
        assert svc.get_bank(st, "A2").entries == 1
        assert svc.delete_bank(st, "A2") == 1
        assert [b.name for b in svc.list_banks(st)] == ["B"]


def test_entries(stores: Stores) -> None:
    meta = svc.EntryMeta(source="report", case_id="C1", added_by="ana", note="n", extra={"k": [1, "x"]})
    with stores.open() as st:
        svc.create_bank(st, "A")
        svc.create_bank(st, "B")
        e = svc.add_signals(st, "A", {"pdq": H.upper(), "video_md5": MD5}, meta, {"pdq": 20})
        assert e.signals == {"pdq": H, "md5": MD5} and e.low_quality and e.content_type == "photo"
        e2 = svc.add_hash(st, "B", "md5", "f" * 32, svc.EntryMeta(case_id="C1"))
        svc.add_hash(st, "B", "sha256", "e" * 64, svc.EntryMeta(case_id="C2"))
        assert e.content_type == "photo" and e2.content_type is None
        with pytest.raises(svc.BankNotFound):
            svc.add_hash(st, "NONE", "pdq", H)
        # Names no bank can have (a NUL, an unpaired surrogate, lower case) are not found, not a store error.
        for name in ("A\x00", "\udad1B", "a"):
            with pytest.raises(svc.BankNotFound):
                svc.add_hash(st, name, "pdq", H)
        with pytest.raises(Exception, match="PDQ hash"):
            svc.add_hash(st, "A", "pdq", "zz")
    with stores.open() as st:
        got = svc.get_entry(st, e.id, "A")
        assert (got.source, got.case_id, got.added_by, got.note, got.extra) == ("report", "C1", "ana", "n", meta.extra)
        assert got.signals == {"pdq": H, "md5": MD5} and got.added_at
        with pytest.raises(svc.EntryNotFound):
            svc.get_entry(st, e.id, "B")
        assert [x.id for x in svc.list_entries(st, "B")] == [e2.id, e2.id + 1]
        assert [x.id for x in svc.list_entries(st, "B", limit=1, offset=1)] == [e2.id + 1]
        assert svc.set_entry_disabled_until(st, e.id, 4102444800).disable_until_ts == 4102444800
        with pytest.raises(svc.EntryNotFound):
            svc.set_entry_disabled_until(st, 9999, 1)
    with stores.open() as st:
        assert svc.remove_entry(st, e.id, "B") == 0  # not in that bank
        assert svc.remove_case(st, "C1") == 2
        assert svc.remove_entry(st, e.id) == 0
        assert [x.case_id for x in svc.list_entries(st, "B")] == ["C2"]


def test_lookup_thresholds_review_negative(stores: Stores) -> None:
    with stores.open() as st:
        svc.create_bank(st, "STRICT", threshold=10)
        svc.create_bank(st, "LOOSE")
        svc.create_bank(st, "FP", negative=True)
        svc.create_bank(st, "OFF", enabled=False)
        svc.add_hash(st, "STRICT", "pdq", H, svc.EntryMeta(case_id="S"))
        svc.add_hash(st, "LOOSE", "pdq", H, svc.EntryMeta(case_id="L"))
        svc.add_hash(st, "OFF", "pdq", H)
        svc.add_hash(st, "LOOSE", "md5", MD5)
    q = _flip(H, 20)
    with stores.open() as st:
        cfg = stores.settings
        kept, suppressed = svc.lookup_signal(st, "pdq", q, settings=cfg)
        assert [(m.bank, m.distance, m.threshold, m.needs_review) for m in kept] == [("LOOSE", 20.0, 31.0, False)]
        assert kept[0].entry["case_id"] == "L" and kept[0].variant == "original" and suppressed == []
        [near] = svc.lookup_signal(st, "pdq", _flip(H, 30), settings=cfg)[0]
        assert near.needs_review
        assert {m.bank for m in svc.lookup_signal(st, "pdq", H, settings=cfg)[0]} == {"STRICT", "LOOSE"}
        assert [m.bank for m in svc.lookup_signal(st, "pdq", H, banks=["STRICT"], settings=cfg)[0]] == ["STRICT"]
        [exact] = svc.lookup_signal(st, "video_md5", MD5.upper(), settings=cfg)[0]
        assert (exact.signal_type, exact.distance, exact.bank) == ("md5", 0.0, "LOOSE")
        svc.add_hash(st, "FP", "pdq", _flip(q, 2, seed=9))
    with stores.open() as st:
        kept, suppressed = svc.lookup_signal(st, "pdq", q, settings=stores.settings)
        assert kept == [] and [m.bank for m in suppressed] == ["LOOSE"]
        by = suppressed[0].suppressed_by
        assert by is not None and (by["bank"], by["distance"]) == ("FP", 2.0)


def test_change_log_feeds_any_index(stores: Stores) -> None:
    """A second set of indexes over the same store (another process) applies adds and removals in order."""
    other = MatchIndexes()
    with stores.open() as st:
        svc.create_bank(st, "B")
        svc.add_hash(st, "B", "pdq", H, svc.EntryMeta(case_id="K"))
        svc.add_hash(st, "B", "md5", MD5, svc.EntryMeta(case_id="K"))
        other.sync(st)
        assert len(other.index("pdq")) == 1 and len(other.index("md5")) == 1 and other.loaded
    with stores.open() as st:
        svc.add_hash(st, "B", "sha256", "e" * 64)
        svc.remove_case(st, "K")
        assert other.sync(st) >= 3  # rows seen at load may be re-read (the window for late commits)
        assert [len(other.index(n)) for n in ("pdq", "md5", "sha256")] == [0, 0, 1]
        assert [(r.op, r.signal_type) for r in st.log_since(0)] == [
            ("add", "pdq"),
            ("add", "md5"),
            ("add", "sha256"),
            ("remove", "pdq"),
            ("remove", "md5"),
        ]
        assert [r[2] for r in st.iter_signals(1)] == ["sha256"]
        assert other.sync(st) == 0


def test_export_import(stores: Stores) -> None:
    with stores.open() as st:
        svc.create_bank(st, "SRC", threshold=20, description="d")
        svc.add_hash(st, "SRC", "pdq", H, svc.EntryMeta(source="x", case_id="C9", note="n"))
        svc.add_signals(st, "SRC", {"video_md5": MD5})
        buf = io.StringIO()
        assert svc.export_bank(st, "SRC", buf) == 2
    with stores.open() as st:
        assert svc.import_bank(st, io.StringIO(buf.getvalue()), "DST", added_by="me") == ("DST", 2)
        b = svc.get_bank(st, "DST")
        assert (b.threshold, b.description, b.entries) == (20, "d", 2)
        entries = svc.list_entries(st, "DST")
        assert (entries[0].case_id, entries[0].note, entries[0].added_by) == ("C9", "n", "me")
        assert entries[1].signals == {"md5": MD5}
        with pytest.raises(Exception, match="line 2"):
            svc.import_bank(st, io.StringIO(buf.getvalue().replace(H, "nothex")), "BAD")


def test_exchanges_notes_and_log_times(stores: Stores, tmp_path: Path) -> None:
    """Exchange records, notes and change-log times: the same on both stores (the exchange fetch runs on both)."""
    from deepshield.matching import exchanges
    from deepshield.matching.storage import ExchangeRecord

    signals = tmp_path / "exchange-files" / "signals.txt"
    signals.parent.mkdir()
    signals.write_text(f"pdq {H}\nvideo_md5 {MD5}\n", encoding="utf-8")
    with stores.open() as st:
        assert st.exchanges() == [] and st.exchange("X") is None and st.delete_exchange("X") is False
        exchanges.create_exchange(st, "FILE_X", "local_file", {"filename": "signals.txt"}, home=tmp_path)
        st.save_exchange(ExchangeRecord(name="A_X", api="sample", bank="FILE_X", api_json={"k": [1]}))
    with stores.open() as st:
        assert [x.name for x in st.exchanges()] == ["A_X", "FILE_X"]
        assert st.exchange("A_X") == ExchangeRecord(name="A_X", api="sample", bank="FILE_X", api_json={"k": [1]})
        x = exchanges.fetch(st, "FILE_X", now=lambda: 1234.0, home=tmp_path)
        assert (x.fetched_items, x.last_fetch_succeeded, x.last_fetch_complete_ts) == (2, True, 1234)
        exchanges.record_fetch(st, x)
    with stores.open() as st:
        assert st.exchange("FILE_X") == x
        assert [line for line in exchanges.signal_lines(st, "FILE_X")] == [f"pdq {H}", f"video_md5 {MD5}"]
        e = st.entries(st.bank("FILE_X").id)[0]  # type: ignore[union-attr]
        st.set_note(e.id, "a note")
        last = st.max_log_id()
        assert st.log_time(last) is not None and st.log_time(last + 1000) is None
        assert st.delete_exchange("A_X") is True
    with stores.open() as st:
        assert st.entry(e.id).note == "a note"  # type: ignore[union-attr]
        assert [x.name for x in st.exchanges()] == ["FILE_X"]


def test_signal_type_ratios(stores: Stores) -> None:
    """HMA's `PUT /c/signal_type` setting (matching_0004): none set means every type on; a second set replaces."""
    with stores.open() as st:
        assert st.signal_type_ratios() == {}
        st.set_signal_type_ratio("pdq", 0.5)
        st.set_signal_type_ratio("md5", 0.0)
    with stores.open() as st:
        st.set_signal_type_ratio("pdq", 0.25)
    with stores.open() as st:
        assert st.signal_type_ratios() == {"pdq": 0.25, "md5": 0.0}
