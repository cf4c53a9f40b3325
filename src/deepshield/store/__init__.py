"""Store: the SQLAlchemy engine and session, ORM base, and Alembic migrations (SQLite default, PostgreSQL)."""
