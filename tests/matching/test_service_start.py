"""The service rebuilds the match indexes from the store when it starts, before any lookup."""

from __future__ import annotations

from pathlib import Path

from deepshield.config import get_settings


def test_indexes_are_loaded_at_start(ds_home: Path, real_photos: list[Path]) -> None:
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app
    from deepshield.matching import service as svc
    from deepshield.matching.indexes import get_indexes, reset_indexes
    from deepshield.store.db import session_scope, upgrade_schema

    settings = get_settings()
    upgrade_schema(settings)
    with session_scope(settings) as s:
        svc.create_bank(s, "START")
        svc.add_file(s, "START", real_photos[0])
    reset_indexes()  # a fresh process: nothing in memory yet
    assert not get_indexes(settings).loaded
    app = create_app(settings)
    with TestClient(app):
        app.state.match_index_loader.join(30)
        idx = get_indexes(settings)
        assert idx.loaded and idx.stats()["pdq"]["hashes"] >= 1
    reset_indexes()
