"""The same store code on a real PostgreSQL server (the shared `postgres_url` fixture starts one)."""

from __future__ import annotations

import contextlib
import io
import uuid
from pathlib import Path

import pytest

from deepshield.config import Settings
from deepshield.matching import service as svc
from deepshield.matching.indexes import reset_indexes
from deepshield.store.db import reset_engines, session_scope, upgrade_schema


def test_banks_on_postgres(tmp_path: Path, real_photos: list[Path], postgres_url: str) -> None:
    st = Settings(home=tmp_path, database_url=postgres_url)
    upgrade_schema(st)
    bank = "PG_" + uuid.uuid4().hex[:8].upper()
    case = "C-" + uuid.uuid4().hex
    try:
        with session_scope(st) as s:
            svc.create_bank(s, bank)
            svc.add_file(s, bank, real_photos[0], svc.EntryMeta(case_id=case))
        with session_scope(st) as s:
            # PostgreSQL text cannot hold a NUL: a name with one names no bank (404), not a driver error (found
            # by schemathesis on POST /v1/match/device-hashes).
            for name in (bank + "\x00", "\udad1" + bank):
                with pytest.raises(svc.BankNotFound):
                    svc.add_hash(s, name, "pdq", "f" * 64)
        with session_scope(st) as s:
            r = svc.lookup_file(s, real_photos[0], banks=[bank], settings=st)
            assert {m.signal_type for m in r.matches} == {"pdq", "md5", "sha256"}
            buf = io.StringIO()
            assert svc.export_bank(s, bank, buf) == 1
        with session_scope(st) as s:
            assert svc.import_bank(s, io.StringIO(buf.getvalue()), bank + "_COPY") == (bank + "_COPY", 1)
        with session_scope(st) as s:
            assert svc.remove_case(s, case) == 2
        with session_scope(st) as s:
            assert svc.lookup_file(s, real_photos[0], banks=[bank, bank + "_COPY"], settings=st).matches == []
    finally:
        with session_scope(st) as s:
            for b in (bank, bank + "_COPY"):
                with contextlib.suppress(svc.BankNotFound):
                    svc.delete_bank(s, b)
        reset_indexes()
        reset_engines()


def test_exchange_records_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    """The exchange table (matching_0003) on PostgreSQL: a file exchange fetched, its status kept, its notes; and
    the signal types' table (matching_0004)."""
    from deepshield.matching import exchanges
    from deepshield.matching.storage import SqlMatchStore

    st = Settings(home=tmp_path, database_url=postgres_url)
    upgrade_schema(st)
    name = "PGX_" + uuid.uuid4().hex[:8].upper()
    signals = tmp_path / "exchange-files" / "signals.txt"
    signals.parent.mkdir()
    signals.write_text("pdq " + "f8" * 32 + "\n", encoding="utf-8")
    try:
        with session_scope(st) as s:
            exchanges.create_exchange(s, name, "local_file", {"filename": str(signals)}, home=tmp_path)
        with session_scope(st) as s:
            x = exchanges.fetch(s, name, now=lambda: 2_000_000_000.0, home=tmp_path)  # after 2038: 64-bit columns
            exchanges.record_fetch(s, x)
        with session_scope(st) as s:
            got = SqlMatchStore(s).exchange(name)
            assert got is not None and got.fetched_items == 1 and got.last_fetch_complete_ts == 2_000_000_000
            assert list(exchanges.signal_lines(s, name)) == ["pdq " + "f8" * 32]
            SqlMatchStore(s).set_signal_type_ratio("sha256", 0.5)  # matching_0004's table
        with session_scope(st) as s:
            assert SqlMatchStore(s).signal_type_ratios()["sha256"] == 0.5
    finally:
        with session_scope(st) as s:
            SqlMatchStore(s).delete_exchange(name)
            SqlMatchStore(s).set_signal_type_ratio("sha256", 1.0)
            with contextlib.suppress(svc.BankNotFound):
                svc.delete_bank(s, name)
        reset_indexes()
        reset_engines()
