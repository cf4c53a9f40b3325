"""The consent store as a revocation source for label verification (`deepshield verify`, upload screening):
a credential revoked here reads "revoked" on the next check, with no cache in between."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from deepshield.config import Settings, get_settings
from deepshield.consent.models import ConsentCredential
from deepshield.labels.consent import REVOCATION_SOURCES
from deepshield.store.db import session_scope

SOURCE_NAME = "store"


def register_revocation_source(settings: Settings | None = None) -> None:
    """Make verification ask this database (the given settings', else the process settings' at each check)."""

    def lookup(credential_id: str) -> tuple[bool, str] | None:
        try:
            with session_scope(settings or get_settings()) as db:
                cred = db.get(ConsentCredential, credential_id)
                if cred is None:
                    return None
                if cred.revoked_at is not None:
                    return True, f"revoked by the {cred.revoked_by} at {cred.revoked_at.isoformat()}"
                return False, "not revoked"
        except SQLAlchemyError:
            return None

    REVOCATION_SOURCES.register(SOURCE_NAME, lookup)


def unregister_revocation_source() -> None:
    """When the app (or a test) that registered it stops: a closed database answers nothing."""
    REVOCATION_SOURCES.unregister(SOURCE_NAME)
