"""The Alembic migration creates exactly what the ORM models describe (no drift), on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from deepshield.cases import models  # noqa: F401 - registers the tables
from deepshield.store.db import Base, get_engine

CASES_TABLES = {
    "cases",
    "case_transitions",
    "case_media",
    "case_evidence",
    "case_victim_hashes",
    "case_actions",
    "statements_of_reasons",
    "case_appeals",
    "webhook_deliveries",
    "upload_screenings",
    "audit_events",
    "audit_head",
    "pin_attempts",
}


def test_migration_matches_models(settings):
    with get_engine(settings).connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(mc, Base.metadata)

    def table_of(d: object) -> str | None:
        item = d[0] if isinstance(d, list) else d
        for x in item[1:] if isinstance(item, tuple) else ():
            name = getattr(x, "name", None) if not isinstance(x, str) else None
            tbl = getattr(x, "table", None)
            if tbl is not None:
                return str(tbl.name)
            if hasattr(x, "columns") and name:
                return str(name)
        if isinstance(item, tuple) and len(item) > 2 and isinstance(item[2], str):
            return item[2]
        return None

    ours = [d for d in diff if table_of(d) in CASES_TABLES]
    assert ours == [], ours
