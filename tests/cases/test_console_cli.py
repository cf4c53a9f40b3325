"""Console forms need CSRF and a fresh version; `deepshield audit verify` exits non-zero on a tampered chain."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from deepshield.cases.context import CasesContext
from deepshield.cases.models import AuditEvent
from deepshield.store.db import session_scope
from tests.conftest import csrf_token

from .conftest import file_notice, login


def test_console_forms_need_csrf_and_second_reviewer_gets_conflict(api, settings, make_json):
    client, ctx, key = api
    cid = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()["case_id"]
    other = TestClient(client.app)
    login(client, settings, "ann", "reviewer")
    login(other, settings, "ben", "reviewer")
    page_a = client.get(f"/console/cases/{cid}").text
    page_b = other.get(f"/console/cases/{cid}").text
    version = re.search(r'name="version" value="(\d+)"', page_a).group(1)  # type: ignore[union-attr]
    form = {"version": version, "action": ["remove"], "reason": "ncii"}
    assert client.post(f"/console/cases/{cid}/decide", data=form, follow_redirects=False).status_code == 403
    assert (
        client.post(f"/console/cases/{cid}/decide", data={**form, "csrf": "forged"}, follow_redirects=False).status_code
        == 403
    )
    # both saw the same version; the first decision wins, the second is told the case changed
    a = client.post(f"/console/cases/{cid}/decide", data={**form, "csrf": csrf_token(page_a)}, follow_redirects=False)
    b = other.post(
        f"/console/cases/{cid}/decide",
        data={**form, "action": ["no_action"], "csrf": csrf_token(page_b)},
        follow_redirects=False,
    )
    assert a.status_code == b.status_code == 303
    assert "error" not in a.headers["location"] and "error=" in b.headers["location"]
    detail = client.get(f"/v1/cases/{cid}", headers=key("cases")).json()
    assert detail["state"] == "actioned" and [x["actor"] for x in detail["actions"]] == ["ann"]
    # a blurred preview cannot be revealed without CSRF either
    assert client.post(f"/console/cases/{cid}/reveal/1", follow_redirects=False).status_code == 403


def test_audit_verify_cli(sqlite_settings, make_fields, monkeypatch):
    from deepshield.cases import service
    from deepshield.cases.policy import CasesPolicy
    from deepshield.cli.main import app
    from deepshield.config import get_settings

    with session_scope(sqlite_settings) as s:
        service.create_case(
            s,
            make_fields(),
            source="api",
            submitted_by="p",
            actor_kind="automated",
            policy=CasesPolicy(),
            settings=sqlite_settings,
        )
    monkeypatch.setenv("DEEPSHIELD_HOME", str(sqlite_settings.home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0 and "intact" in ok.output
        with session_scope(sqlite_settings) as s:
            s.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(actor="someone-else"))
        bad = runner.invoke(app, ["audit", "verify", "--json"])
        assert bad.exit_code != 0
        assert "edited" in bad.output
    finally:
        get_settings.cache_clear()


def test_transparency_export_cli(sqlite_settings, make_fields, monkeypatch, tmp_path):
    import json

    from deepshield.cases import flows
    from deepshield.cli.main import app
    from deepshield.config import get_settings

    from .fakes import MemoryHashBank

    ctx = CasesContext.build(sqlite_settings, bank=MemoryHashBank(), screeners=[], start_worker=False)
    case, _ = file_notice(ctx, make_fields())
    flows.decide(ctx, case, ["remove"], actor="rev", actor_kind="human", reason="ncii of Jane Roe")
    monkeypatch.setenv("DEEPSHIELD_HOME", str(sqlite_settings.home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        out = tmp_path / "tdb.json"
        r = CliRunner().invoke(app, ["cases", "export-transparency", str(out)])
        assert r.exit_code == 0, r.output
        rows = json.loads(out.read_text())
        assert len(rows) == 1 and rows[0]["content_type"] == ["CONTENT_TYPE_SYNTHETIC_MEDIA"]
        assert "Jane" not in out.read_text() and case not in out.read_text()
    finally:
        get_settings.cache_clear()
