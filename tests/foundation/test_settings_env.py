"""A malformed setting in the environment stops `deepshield serve` / `worker` with one line naming the variable,
what is wrong and the form expected: no traceback, a non-zero exit, before anything listens or runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepshield.config import FORM_RATE, TEMPORAL, BadSetting


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DEEPSHIELD_") and k != "DATABASE_URL"}
    full.update({"DEEPSHIELD_HOME": str(tmp_path / "home"), **env})
    return subprocess.run(
        [sys.executable, "-m", "deepshield.cli.main", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


BAD = [
    ("DEEPSHIELD_FORM_RATE", "abc", "N/SECONDS"),
    ("DEEPSHIELD_PIN_RATE", "5/soon", "N/SECONDS"),
    ("DEEPSHIELD_LOGIN_CLIENT_RATE", "0/600", "N/SECONDS"),
    ("DEEPSHIELD_SCAN_WORKERS", "abc", "a whole number >= 0 and <= 64"),
    ("DEEPSHIELD_SCAN_LEASE_S", "-5", "a number > 0"),
    ("DEEPSHIELD_MAX_UPLOAD_BYTES", "200MB", "a whole number"),
    ("DEEPSHIELD_AUDIT_CHECKPOINT_WEBHOOK", "perhaps", "true or false"),
    ("DEEPSHIELD_DETECT_THREADS", "many", "a whole number of threads"),
    ("DEEPSHIELD_TEMPORAL", "maybe", "1 or 0"),
    ("DEEPSHIELD_CASES_SECRET", "not-hex", "hexadecimal digits"),
    ("DEEPSHIELD_WEBHOOK_URL", "hooks.example/x", "https://host/path"),
    ("DEEPSHIELD_CASES_CONFIG", "/nonexistent/cases.jsn", "the path of an existing cases policy file"),
]


@pytest.mark.parametrize(("name", "value", "expected"), BAD, ids=[b[0] for b in BAD])
def test_serve_refuses_a_malformed_setting_in_one_line(tmp_path: Path, name: str, value: str, expected: str) -> None:
    out = _run(tmp_path, {name: value}, "serve", "--port", "1")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    hidden = name in ("DEEPSHIELD_CASES_SECRET", "DEEPSHIELD_WEBHOOK_URL")  # never echoed into logs
    shown = f"<{len(value)} characters, hidden>" if hidden else repr(value)
    assert lines[0].startswith(f"error: {name}={shown}: ") and f"expected {expected}" in lines[0], lines[0]
    assert not (tmp_path / "home" / "deepshield.db").exists(), "nothing may start on a bad setting"


def test_worker_refuses_a_malformed_setting(tmp_path: Path) -> None:
    out = _run(tmp_path, {"DEEPSHIELD_DETECT_THREADS": "0"}, "worker")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "DEEPSHIELD_DETECT_THREADS='0': out of range; expected a whole number of threads" in out.stderr


def test_every_malformed_setting_is_named(tmp_path: Path) -> None:
    out = _run(tmp_path, {"DEEPSHIELD_SCAN_WORKERS": "x", "DEEPSHIELD_SCAN_FRAMES": "0"}, "serve", "--port", "1")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "DEEPSHIELD_SCAN_WORKERS='x'" in out.stderr and "DEEPSHIELD_SCAN_FRAMES='0'" in out.stderr


def test_well_formed_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSHIELD_FORM_RATE", "5/30")
    assert FORM_RATE.get() == (5, 30.0)
    monkeypatch.setenv("DEEPSHIELD_FORM_RATE", " 7 ")
    assert FORM_RATE.get() == (7, 60.0)
    monkeypatch.setenv("DEEPSHIELD_FORM_RATE", "")
    assert FORM_RATE.get() == FORM_RATE.default
    for raw, on in (("0", False), ("off", False), ("TRUE", True), ("1", True)):
        monkeypatch.setenv("DEEPSHIELD_TEMPORAL", raw)
        assert TEMPORAL.get() is on
    monkeypatch.setenv("DEEPSHIELD_TEMPORAL", "2")
    with pytest.raises(BadSetting, match="DEEPSHIELD_TEMPORAL='2'"):
        TEMPORAL.get()
