"""The CLI end to end on a temporary store: bank, match (exit code 3 on a match), withdraw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepshield.config import get_settings
from deepshield.store.db import reset_engines


def test_bank_add_match_withdraw(tmp_path: Path, real_photos: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from deepshield.cli.main import app

    monkeypatch.setenv("DEEPSHIELD_HOME", str(tmp_path))
    get_settings.cache_clear()
    reset_engines()
    try:
        run = CliRunner().invoke
        assert run(app, ["bank", "create", "NCII"]).exit_code == 0
        r = run(app, ["bank", "add", "NCII", str(real_photos[0]), "--case", "C1", "--source", "cli"])
        assert r.exit_code == 0, r.output
        r = run(app, ["match", "--json", str(real_photos[0]), str(real_photos[5])])
        assert r.exit_code == 3, r.output
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        assert [x["matched"] for x in rows] == [True, False]
        assert rows[0]["matches"][0]["entry"]["case_id"] == "C1"
        r = run(app, ["hash", str(real_photos[5])])
        assert r.exit_code == 0 and len(json.loads(r.stdout.splitlines()[0])["pdq"]) == 64
        assert run(app, ["bank", "remove", "--case", "C1"]).exit_code == 0
        assert run(app, ["match", str(real_photos[0])]).exit_code == 0
        assert run(app, ["bank", "add", "NOPE", str(real_photos[0])]).exit_code != 0
    finally:
        get_settings.cache_clear()
        reset_engines()
