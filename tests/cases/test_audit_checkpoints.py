"""Signed audit checkpoints (issue 31 point 12): a chain rewritten whole verifies by itself, and is caught against
the checkpoints; on SQLite and PostgreSQL, through the CLI on SQLite."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from deepshield.cases import audit, checkpoints
from deepshield.cases.checkpoints import Checkpoint, CheckpointError
from deepshield.cases.models import AuditEvent, AuditHead, WebhookDelivery
from deepshield.cases.policy import WebhookConfig
from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.labels.aigc import key_id
from deepshield.store.db import session_scope


def _append(settings: Settings, n: int) -> None:
    for i in range(n):
        with session_scope(settings) as s:
            audit.record(s, actor="rev", actor_kind="human", action="decide", reason=f"case {i}", case_id=f"C-{i}")


def _events_then_checkpoints(settings: Settings, at: tuple[int, ...]) -> None:
    """Append events and sign a checkpoint when the chain reaches each seq in `at`."""
    done = 0
    for seq in at:
        _append(settings, seq - done)
        done = seq
        cp = checkpoints.write_checkpoint(settings)
        assert cp is not None and cp.seq == cp.count == seq


def _edit_and_recompute(settings: Settings, seq: int) -> None:
    """The first attack of the issue: edit an event, recompute every later hash and the head row."""
    with session_scope(settings) as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq)))
        prev = rows[0].prev_hash
        for ev in rows:
            if ev.seq == seq:
                ev.reason = "nothing to see here"
            ev.prev_hash = prev
            ev.hash = prev = audit.event_hash(ev)
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))


def _truncate(settings: Settings, keep: int) -> None:
    """The second attack (keep = last - 1) and a truncation: delete the newest events, set the head row back."""
    with session_scope(settings) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq > keep))
        last = s.get(AuditEvent, keep)
        assert last is not None
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=keep, hash=last.hash))


def _verify(settings: Settings, path: Path | None = None) -> tuple[audit.VerifyResult, checkpoints.CheckpointReport]:
    entries = checkpoints.read_checkpoints(path or settings.audit_checkpoints_path)
    with session_scope(settings) as s:
        return checkpoints.verify_against(s, entries, checkpoints.verifying_keys(settings))


def _chain_only(settings: Settings) -> audit.VerifyResult:
    with session_scope(settings) as s:
        return audit.verify(s)


ATTACKS: dict[str, tuple[Callable[[Settings], None], tuple[int, int], str]] = {
    # attack, where the first bad event is said to lie (checkpoints at 3, 5 and 6), what the problem says
    "edit_event_5_recompute_later_hashes": (lambda st: _edit_and_recompute(st, 5), (4, 5), "no longer hashes"),
    "delete_last_event_rewrite_head": (lambda st: _truncate(st, 5), (6, 6), "event 6 is gone"),
    "truncate_to_event_2": (lambda st: _truncate(st, 2), (1, 3), "events 3 to 6 are gone"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_rewrite_passes_the_chain_but_not_the_checkpoints(settings: Settings, attack: str) -> None:
    rewrite, first_bad, says = ATTACKS[attack]
    _events_then_checkpoints(settings, (3, 5, 6))
    rewrite(settings)
    # The gap: the chain alone verifies as intact.
    assert _chain_only(settings).ok
    chain, rep = _verify(settings)
    assert chain.ok and not rep.ok
    assert rep.first_bad == first_bad, rep.problems
    assert any(says in p for p in rep.problems), rep.problems
    # Nor does the checkpointer vouch for the rewritten chain.
    with pytest.raises(CheckpointError, match="not signing it"):
        checkpoints.write_checkpoint(settings)


def test_an_intact_chain_passes_and_later_events_are_checked_by_the_chain(settings: Settings) -> None:
    _events_then_checkpoints(settings, (2, 4))
    assert checkpoints.write_checkpoint(settings) is None  # head unchanged: nothing new to sign
    _append(settings, 3)
    chain, rep = _verify(settings)
    assert chain.ok and rep.ok and rep.checked == 2
    assert rep.last is not None and rep.last.seq == 4 and rep.unanchored == 3
    # An edit after the last checkpoint (not recomputed) is still the chain's to catch.
    with session_scope(settings) as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == 6).values(actor="mallory"))
    chain, rep = _verify(settings)
    assert rep.ok and any("event 6" in p and "edited" in p for p in chain.problems)


def test_a_partial_rewrite_that_keeps_the_checkpointed_event_is_caught_there(settings: Settings) -> None:
    """Rewriting events 2-3 but leaving event 4's row (and its old prev_hash) alone: the chain recomputed from the
    rows no longer reaches the signed hash at 4, whatever the row's own hash says."""
    _events_then_checkpoints(settings, (4,))
    with session_scope(settings) as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.seq.in_([2, 3])).order_by(AuditEvent.seq)))
        prev = rows[0].prev_hash
        for ev in rows:
            ev.action, ev.prev_hash = "ping", prev
            ev.hash = prev = audit.event_hash(ev)
    chain, rep = _verify(settings)
    assert any("event 4" in p and "prev_hash" in p for p in chain.problems)
    assert rep.first_bad == (1, 4)


def test_a_forged_or_edited_checkpoint_line_is_caught(settings: Settings) -> None:
    _events_then_checkpoints(settings, (3,))
    path = settings.audit_checkpoints_path
    real = Checkpoint.parse(path.read_text().splitlines()[0])
    _edit_and_recompute(settings, 2)
    with session_scope(settings) as s:
        head = s.get(AuditHead, 1)
        assert head is not None
        new_head = head.hash
    # The attacker rewrites the file's line to the new head (no key: the old signature stays) ...
    edited = Checkpoint(real.seq, new_head, real.count, real.at, real.key_id, real.sig)
    # ... or signs one with a key of their own under our key id or theirs.
    mallory = Ed25519PrivateKey.generate()
    forged = Checkpoint(real.seq, new_head, real.count, real.at, real.key_id).signed_with(mallory)
    theirs = Checkpoint(real.seq, new_head, real.count, real.at, key_id(mallory.public_key())).signed_with(mallory)
    path.write_text("\n".join(c.to_line() for c in (edited, forged, theirs)) + "\n{not json\n")
    chain, rep = _verify(settings)
    assert chain.ok and rep.checked == 0 and not rep.ok
    assert sum("signature does not verify" in p for p in rep.problems) == 2, rep.problems
    assert any("line 3" in p and "not one of the keys given" in p for p in rep.problems)
    assert any("line 4" in p and "not JSON" in p for p in rep.problems)
    # The genuine line still catches the rewrite.
    path.write_text(real.to_line() + "\n")
    assert _verify(settings)[1].first_bad == (1, 3)


def test_key_and_file_live_where_configured_private(settings: Settings, tmp_path: Path) -> None:
    elsewhere = settings.model_copy(
        update={"audit_key": tmp_path / "vault" / "audit.pem", "audit_checkpoints": tmp_path / "log" / "cp.jsonl"}
    )
    umask = os.umask(0o022)
    try:
        _events_then_checkpoints(elsewhere, (1,))
    finally:
        os.umask(umask)
    key, log = tmp_path / "vault" / "audit.pem", tmp_path / "log" / "cp.jsonl"
    assert key.stat().st_mode & 0o777 == 0o600 and (tmp_path / "vault").stat().st_mode & 0o777 == 0o700
    assert log.is_file() and not (settings.home / "keys" / "audit_ed25519.pem").exists()
    assert not settings.audit_checkpoints_path.exists()
    assert _verify(elsewhere, log)[1].checked == 1


def test_checkpoints_go_to_the_webhook_when_asked(settings: Settings) -> None:
    hook = WebhookConfig(url="https://platform.example/hook")
    _append(settings, 2)
    assert checkpoints.write_checkpoint(settings, hook) is not None
    on = settings.model_copy(update={"audit_checkpoint_webhook": True})
    _append(settings, 1)
    cp = checkpoints.write_checkpoint(on, hook)
    assert cp is not None
    with session_scope(settings) as s:
        rows = list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.event == "audit.checkpoint")))
    assert len(rows) == 1 and json.loads(rows[0].payload)["checkpoint"] == cp.to_json()


def test_the_service_thread_signs_after_enough_events(sqlite_settings: Settings) -> None:
    st = sqlite_settings.model_copy(update={"audit_checkpoint_events": 3})
    worker = checkpoints.Checkpointer(st, poll_s=0.05).start()
    try:
        _append(st, 2)
        time.sleep(0.3)
        assert not st.audit_checkpoints_path.exists()  # 2 < 3 events and 5 minutes not up
        _append(st, 1)
        deadline = time.monotonic() + 10
        while checkpoints.last_checkpoint(st) is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    last = checkpoints.last_checkpoint(st)
    assert last is not None and last.seq == 3


@pytest.fixture
def cli(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[int, str]]]:
    from deepshield.cli.main import app
    from deepshield.config import get_settings

    monkeypatch.setenv("DEEPSHIELD_HOME", str(sqlite_settings.home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        """Exit code and output as `deepshield.cli.main.main` gives them: a `DeepshieldError` is one line, code 2."""
        r = runner.invoke(app, list(args))
        if isinstance(r.exception, DeepshieldError):
            return 2, f"{r.output}error: {r.exception.message}"
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        return r.exit_code, r.output

    yield run
    get_settings.cache_clear()


@pytest.mark.parametrize("attack", ["edit_event_5_recompute_later_hashes", "delete_last_event_rewrite_head"])
def test_cli_verify_with_checkpoints(cli, sqlite_settings: Settings, tmp_path: Path, attack: str) -> None:
    cp_file = str(sqlite_settings.audit_checkpoints_path)
    for n in (3, 2, 1):
        _append(sqlite_settings, n)
        code, out = cli("audit", "checkpoint")
        assert code == 0 and json.loads(out)["format"] == checkpoints.FORMAT
    code, out = cli("audit", "public-key")
    pub = tmp_path / "audit.pub"
    pub.write_text(out)
    code, out = cli("audit", "verify", "--checkpoints", cp_file, "--public-key", str(pub))
    assert code == 0 and "3 checkpoint(s) verified" in out, out
    ATTACKS[attack][0](sqlite_settings)
    assert cli("audit", "verify")[0] == 0  # the gap
    code, out = cli("audit", "verify", "--checkpoints", cp_file, "--public-key", str(pub))
    expected = "between events 4 and 5" if attack.startswith("edit") else "is event 6"
    assert code == 2 and expected in out, out
    code, out = cli("audit", "verify", "--checkpoints", cp_file, "--json")
    assert code == 2 and json.loads(out.splitlines()[0])["checkpoints"]["first_bad"] == list(ATTACKS[attack][1])
    code, out = cli("audit", "checkpoint")
    assert code == 2 and "not signing it" in out


def test_cli_clear_errors_for_missing_or_corrupt_files(cli, sqlite_settings: Settings, tmp_path: Path) -> None:
    from tests.cli import run_cli

    _append(sqlite_settings, 1)
    missing = str(tmp_path / "none.jsonl")
    done = run_cli("audit", "verify", "--checkpoints", missing)  # a real process: its stderr and exit code
    assert done.returncode == 2 and "no such checkpoint file" in done.stderr and "Traceback" not in done.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "holds no checkpoints" in cli("audit", "verify", "--checkpoints", str(empty))[1]
    code, out = cli("audit", "public-key")
    assert code == 2 and "audit checkpoint` makes it" in out
    assert cli("audit", "checkpoint")[0] == 0
    pub = tmp_path / "audit.pub"
    pub.write_text(cli("audit", "public-key")[1])
    cp_file = str(sqlite_settings.audit_checkpoints_path)
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    code, out = cli("audit", "verify", "--checkpoints", cp_file, "--public-key", str(bad_key))
    assert code == 2 and "not a PEM public key" in out
    code, out = cli("audit", "verify", "--checkpoints", cp_file, "--public-key", str(tmp_path / "none.pem"))
    assert code == 2 and "no such key file" in out
    with open(cp_file, "ab") as f:
        f.write(b"\xff\xfe\n")
    code, out = cli("audit", "verify", "--checkpoints", cp_file, "--public-key", str(pub))
    assert code == 2 and "line 2: not UTF-8 text" in out
    sqlite_settings.audit_key_path.write_text("garbage")
    code, out = cli("audit", "checkpoint")
    assert code == 2 and "not an unencrypted PEM private key" in out


def test_the_service_runs_the_checkpointer_unless_turned_off(sqlite_settings: Settings) -> None:
    from deepshield.cases.context import CasesContext

    from .fakes import MemoryHashBank

    ctx = CasesContext.build(sqlite_settings, bank=MemoryHashBank(), screeners=[])
    assert ctx.checkpointer is not None
    ctx.close()
    assert not ctx.checkpointer._thread.is_alive()
    off = sqlite_settings.model_copy(update={"audit_checkpoint_minutes": 0})
    ctx = CasesContext.build(off, bank=MemoryHashBank(), screeners=[])
    assert ctx.checkpointer is None
    ctx.close()
