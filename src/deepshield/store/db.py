"""Engine, sessions and schema upgrades. SQLite (WAL) under DEEPSHIELD_HOME by default; PostgreSQL by DATABASE_URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from deepshield.config import Settings, get_settings, make_private_dir, make_private_file


class Base(DeclarativeBase):
    pass


_engines: dict[str, Engine] = {}
_makers: dict[str, sessionmaker[Session]] = {}
_upgraded: set[str] = set()
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable against process crashes
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _private_sqlite(settings: Settings, url: str) -> None:
    """The data directory 0700 and the database file 0600 before SQLite first opens it (SQLite gives its WAL
    and shared-memory files the database file's mode); a database left 0644 by an earlier version is
    tightened, and so are its WAL files."""
    make_private_dir(settings.home)
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not url.startswith("sqlite:///") or not name or name.startswith((":memory:", "file:")):
        return
    db = Path(name)
    db.parent.mkdir(parents=True, exist_ok=True)
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if p == db or p.exists():
            make_private_file(p)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = settings.db_url
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            if url.startswith("sqlite"):
                _private_sqlite(settings, url)
                eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(eng, "connect", _sqlite_pragmas)
            else:
                eng = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
            _engines[url] = eng
            _makers[url] = sessionmaker(bind=eng, expire_on_commit=False)
        return eng


def upgrade_schema(settings: Settings | None = None) -> None:
    """Bring the database to the newest schema (`alembic upgrade heads`: every domain's migration branch)."""
    settings = settings or get_settings()
    url = settings.db_url
    if url in _upgraded:
        return
    from alembic import command
    from alembic.config import Config

    here = Path(__file__).parent
    cfg = Config()
    cfg.set_main_option("script_location", str(here / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = get_engine(settings)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    _upgraded.add(url)


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    settings = settings or get_settings()
    get_engine(settings)
    return _makers[settings.db_url]


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def reset_engines() -> None:
    """Forget cached engines (tests switch DEEPSHIELD_HOME / DATABASE_URL between runs)."""
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()
        _makers.clear()
        _upgraded.clear()
