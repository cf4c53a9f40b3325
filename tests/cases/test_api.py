"""The HTTP API: intake, idempotency, access control, decisions, statements, appeals, self-service,
screening."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from deepshield.cases import audit
from deepshield.cases.models import AuditEvent, Case, WebhookDelivery
from deepshield.store.db import session_scope
from tests.conftest import csrf_token

from .conftest import KEYED_PATH_PREFIXES, login, make_image, set_clocks


def test_intake_receipt_and_missing_fields(api, make_json):
    client, ctx, key = api
    h = key("cases")
    r = client.post("/v1/reports", json=make_json(), headers=h)
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "valid" and body["valid"] and body["due_at"] and len(body["pin"]) == 8
    assert body["case_id"] in body["receipt"]
    r = client.post("/v1/reports", json=make_json(signature="", good_faith=False), headers=h)
    assert r.status_code == 201
    assert r.json()["status"] == "needs_info"
    assert {m["field"] for m in r.json()["missing"]} == {"signature", "good_faith"}
    # supply the missing fields later
    cid = r.json()["case_id"]
    r = client.post(f"/v1/cases/{cid}/info", json={"signature": "Jane Roe", "good_faith": True}, headers=h)
    assert r.json()["state"] == "valid" and r.json()["missing"] == []


def test_idempotency_key_gives_one_report(api, make_json):
    client, ctx, key = api
    h = {**key("cases"), "Idempotency-Key": "retry-1"}
    first = client.post("/v1/reports", json=make_json(), headers=h)
    again = client.post("/v1/reports", json=make_json(), headers=h)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["case_id"] == first.json()["case_id"] and again.json()["pin"] == first.json()["pin"]
    other = client.post("/v1/reports", json=make_json(explanation="different"), headers=h)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    # another integration using the same key string gets its own report, not this one's receipt
    theirs = client.post("/v1/reports", json=make_json(), headers={**key("cases"), "Idempotency-Key": "retry-1"})
    assert theirs.status_code == 201 and theirs.json()["case_id"] != first.json()["case_id"]
    # concurrent retries with a fresh key
    h2 = {**key("cases"), "Idempotency-Key": "race"}
    ids: list[str] = []
    barrier = threading.Barrier(5)

    def go() -> None:
        barrier.wait()
        ids.append(client.post("/v1/reports", json=make_json(), headers=h2).json()["case_id"])

    ts = [threading.Thread(target=go) for _ in range(5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(set(ids)) == 1
    with session_scope(ctx.settings) as s:
        assert len(list(s.scalars(select(Case.id)))) == 3


def test_every_endpoint_refuses_missing_or_wrong_scope_key(api):
    client, ctx, key = api
    wrong = key("match")
    checked = 0
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        if not path.startswith(KEYED_PATH_PREFIXES):
            continue
        url = path.replace("{case_id}", "DS-AAAA-AAAA").replace("{statement_id}", "x")
        for method in ops:
            assert client.request(method, url).status_code == 401, (method, url)
            assert client.request(method, url, headers=wrong).status_code == 403, (method, url)
            assert client.request(method, url, headers={"Authorization": "Bearer dsk_bogus"}).status_code == 401
            checked += 1
    assert checked >= 14


def test_reviewer_cannot_reach_admin_functions(api, settings):
    client, ctx, key = api
    login(client, settings, "rita", "reviewer")
    assert client.get("/console").status_code == 200
    assert client.get("/console/admin").status_code == 403
    assert client.get("/v1/audit/verify").status_code == 403
    assert client.get("/v1/webhooks/dead-letters").status_code == 403
    with session_scope(settings) as s:
        actions = [e.action for e in s.scalars(select(AuditEvent))]
    assert "login" in actions


def test_decision_webhooks_statement_and_clean_export(api, make_json):
    client, ctx, key = api
    h = key("cases")
    cid = client.post("/v1/reports", json=make_json(jurisdiction="DE", reporter_name="Jane Roe"), headers=h).json()[
        "case_id"
    ]
    r = client.post(
        f"/v1/cases/{cid}/decision",
        json={"actions": ["remove", "bank"], "reason": "sexual deepfake"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["state"] == "actioned"
    sid = r.json()["statement_id"]
    sor = client.get(f"/v1/statements/{sid}", headers=h).json()
    for f in (
        "decision",
        "territorial_scope",
        "duration",
        "facts_and_circumstances",
        "notice_triggered",
        "automated_detection",
        "automated_decision",
        "illegal_content_legal_ground",
        "redress",
    ):
        assert f in sor
    assert sor["notice_triggered"] is True and sor["automated_decision"] is True  # an API key decided
    # second decision on the same case is refused
    again = client.post(f"/v1/cases/{cid}/decision", json={"actions": ["no_action"], "reason": "x"}, headers=h)
    assert again.status_code == 409
    with session_scope(ctx.settings) as s:
        events = sorted(d.event for d in s.scalars(select(WebhookDelivery).where(WebhookDelivery.case_id == cid)))
    assert events == ["action.bank", "action.remove"]
    export = client.get("/v1/transparency/statements", headers=h).json()["statements"]
    text = json.dumps(export)
    assert sid in text
    for personal in ("Jane Roe", "jane@example.org", "example.com", cid, "sexual deepfake"):
        assert personal not in text


def test_appeal_by_human_reverses_action_and_banking(api, settings, make_json, tmp_path):
    client, ctx, key = api
    h = key("cases")
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    img = make_image(tmp_path / "a.png")
    with open(img, "rb") as f:
        assert (
            client.post(f"/v1/cases/{cid}/media", files={"file": ("a.png", f, "image/png")}, headers=h).status_code
            == 201
        )
    r = client.post(f"/v1/cases/{cid}/decision", json={"actions": ["remove", "bank"], "reason": "ncii"}, headers=h)
    assert r.json()["banked"] >= 2
    sha = client.get(f"/v1/cases/{cid}", headers=h).json()["media"][0]["sha256"]
    assert ctx.bank.lookup(sha, "sha256")
    assert client.post(f"/v1/cases/{cid}/appeals", json={"reason": "it is satire"}, headers=h).status_code == 201
    # an API key (automation) may not decide an appeal
    denied = client.post(
        f"/v1/cases/{cid}/appeal-decision",
        json={"outcome": "reversed", "reason": "x"},
        headers=key("cases", "review"),
    )
    assert denied.status_code == 403 and denied.json()["error"] == "human_required"
    tok = login(client, settings, "ada", "reviewer")
    ok = client.post(
        f"/v1/cases/{cid}/appeal-decision",
        json={"outcome": "reversed", "reason": "satire, labelled"},
        headers={"X-CSRF-Token": tok},
    )
    assert ok.status_code == 200 and ok.json()["state"] == "reversed"
    assert ctx.bank.lookup(sha, "sha256") == []
    detail = client.get(f"/v1/cases/{cid}", headers=h).json()
    assert all(a["reversed"] for a in detail["actions"])
    assert client.get(f"/v1/statements/{detail['statements'][0]}", headers=h).json()["revoked"] is True
    with session_scope(settings) as s:
        events = sorted(d.event for d in s.scalars(select(WebhookDelivery).where(WebhookDelivery.case_id == cid)))
        assert "reverse.remove" in events and "reverse.bank" in events
        assert audit.verify(s).ok


def test_a_reason_of_only_whitespace_is_refused_by_the_schema_for_every_character_the_flows_strip(api, make_json):
    """The published schema, pydantic and the case flows agree on a blank reason: each of Python's whitespace
    characters (U+001E and U+0085 included, which `\\S` treats differently in each) is a 422 at validation, so a
    request the schema accepts is never refused later (schemathesis found `"\\u001e"` passing the schema)."""
    client, _ctx, key = api
    h = key("cases")
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    blank = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    assert len(blank) == 29
    for c in blank:
        r = client.post(f"/v1/cases/{cid}/decision", json={"actions": ["remove"], "reason": c * 2}, headers=h)
        # Refused by the schema (invalid_request), not later by the flows after validation passed.
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", hex(ord(c))
    assert client.post(
        f"/v1/cases/{cid}/decision", json={"actions": ["remove"], "reason": "ncii"}, headers=h
    ).is_success
    for c in ("\x1e", "\x85", " "):
        r = client.post(f"/v1/cases/{cid}/appeals", json={"reason": c}, headers=h)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = client.post(f"/v1/cases/{cid}/appeals", json={"reason": "\x1e satire", "filed_by": "\x80"}, headers=h)
    assert r.status_code == 201
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AppealIn"]["properties"]["reason"]
    assert "\\x1c-\\x20" in schema["pattern"]


def test_appeal_window_closes_after_six_months(api, make_json):
    import datetime as dt

    from deepshield.cases import flows
    from deepshield.store.timeutil import utcnow

    client, ctx, key = api
    h = key("cases")
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    client.post(f"/v1/cases/{cid}/decision", json={"actions": ["no_action"], "reason": "not intimate"}, headers=h)
    with pytest.raises(flows.AppealClosed):
        flows.file_appeal(ctx, cid, filed_by="r", actor_kind="human", reason="x", now=utcnow() + dt.timedelta(days=184))
    flows.file_appeal(ctx, cid, filed_by="r", actor_kind="human", reason="x", now=utcnow() + dt.timedelta(days=180))


def test_self_service_hashes_withdrawal_and_pin_rate_limit(api, make_json):
    client, ctx, key = api
    rec = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()
    cid, pin = rec["case_id"], rec["pin"]
    pdq = "f" * 60 + "0000"
    md5 = "0123456789abcdef0123456789abcdef"
    r = client.post(
        "/v1/selfservice/hashes",
        json={
            "case_id": cid,
            "pin": pin,
            "hashes": [{"signal": "pdq", "value": pdq}, {"signal": "md5", "value": md5}],
        },
    )
    assert r.status_code == 201 and r.json()["added"] == 2
    assert ctx.bank.lookup(pdq, "pdq") and ctx.bank.lookup(md5, "md5")
    bad = client.post(
        "/v1/selfservice/hashes",
        json={"case_id": cid, "pin": pin, "hashes": [{"signal": "pdq", "value": "zz"}]},
    )
    assert bad.status_code == 422
    st = client.post("/v1/selfservice/status", json={"case_id": cid, "pin": pin}).json()
    assert st["state"] == "valid" and "reporter_email" not in st
    r = client.post("/v1/selfservice/withdraw", json={"case_id": cid, "pin": pin})
    assert r.json()["hashes_removed"] == 2
    assert ctx.bank.lookup(pdq, "pdq") == [] and ctx.bank.lookup(md5, "md5") == []
    # brute force: wrong PINs lock the case, then the per-client limit answers 429
    codes = [
        client.post("/v1/selfservice/status", json={"case_id": cid, "pin": f"{i:08d}"}).status_code for i in range(12)
    ]
    assert codes[:5] == [404] * 5 and set(codes[5:10]) == {429} and codes[-1] == 429


def _upload(client, image: Path, name: str, headers: dict[str, str], content_ref: str | None = None) -> dict:
    """A platform's upload of a PNG through `/v1/uploads` (screened against the bank and screeners): the answer."""
    with open(image, "rb") as f:
        data = {"content_ref": content_ref} if content_ref is not None else None
        return client.post("/v1/uploads", files={"file": (name, f, "image/png")}, data=data, headers=headers).json()


def test_upload_screening_blocks_banked_media_and_finds_earlier_copies(api, make_json, tmp_path):
    client, ctx, key = api
    h, scan = key("cases"), key("scan")
    img = make_image(tmp_path / "abuse.png", seed=1)
    other = make_image(tmp_path / "cat.png", seed=2)
    # screened before anything was banked: allowed
    early = _upload(client, img, "abuse.png", scan, content_ref="post-1")
    assert early["decision"] == "allow" and early["reasons"]
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    with open(img, "rb") as f:
        client.post(f"/v1/cases/{cid}/media", files={"file": ("abuse.png", f, "image/png")}, headers=h)
    r = client.post(f"/v1/cases/{cid}/decision", json={"actions": ["remove", "bank"], "reason": "ncii"}, headers=h)
    assert r.json()["copies_found"] == 1
    again = _upload(client, img, "re.png", scan)
    assert again["decision"] == "block" and cid in again["reasons"][0]["reason"]
    assert _upload(client, other, "cat.png", scan)["decision"] == "allow"
    with session_scope(ctx.settings) as s:
        assert "copy.remove" in [d.event for d in s.scalars(select(WebhookDelivery))]


def test_screening_review_opens_a_case_with_the_upload(api, tmp_path):
    from deepshield.cases.ports import Finding

    class Suspicious:
        name = "detector"

        def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
            return Finding("detector", "review", "detector score 0.91 >= 0.5", {"score": 0.91})

    client, ctx, key = api
    ctx.screeners.append(Suspicious())
    img = make_image(tmp_path / "u.png", seed=3)
    r = _upload(client, img, "u.png", key("scan"), content_ref="post-9")
    assert r["decision"] == "review" and r["review_case"]
    h = key("cases")
    assert r["review_case"] in [c["case_id"] for c in client.get("/v1/cases", headers=h).json()["cases"]]
    case = client.get(f"/v1/cases/{r['review_case']}", headers=h).json()
    assert case["state"] == "valid" and case["source"] == "screening" and case["due_at"]
    assert case["media"][0]["sha256"] == r["hashes"]["sha256"]
    assert case["evidence"][0]["data"]["score"] == 0.91
    d = client.post(
        f"/v1/cases/{case['case_id']}/decision",
        json={"actions": ["restrict"], "reason": "deepfake"},
        headers=h,
    ).json()
    sor = client.get(f"/v1/statements/{d['statement_id']}", headers=h).json()
    assert sor["notice_triggered"] is False and sor["automated_detection"] is True
    assert r["review_case"] not in [c["case_id"] for c in client.get("/v1/cases", headers=h).json()["cases"]]


def test_reporter_completes_a_notice_on_the_status_page(api, make_json):
    client, ctx, key = api
    rec = client.post("/v1/reports", json=make_json(signature="", good_faith=False), headers=key("cases")).json()
    assert rec["status"] == "needs_info"
    page = client.get("/case-status").text
    tok = csrf_token(page)
    r = client.post(
        "/case-status", data={"csrf": tok, "case_id": rec["case_id"], "pin": rec["pin"]}, follow_redirects=False
    )
    assert r.status_code == 303
    status = client.get(r.headers["location"]).text
    assert 'id="info-signature"' in status and 'id="info-good_faith"' in status
    assert (
        client.post(
            f"/case-status/{rec['case_id']}/info", data={"signature": "Jane"}, follow_redirects=False
        ).status_code
        == 403
    )  # CSRF
    r = client.post(
        f"/case-status/{rec['case_id']}/info",
        data={"csrf": tok, "signature": "Jane Roe", "good_faith": "yes"},
        follow_redirects=True,
    )
    assert "the report is complete" in r.text
    st = client.post("/v1/selfservice/status", json={"case_id": rec["case_id"], "pin": rec["pin"]}).json()
    assert st["state"] == "valid" and st["due_at"]


def test_queue_page_counts_overdue_and_close_cases(api, settings, make_json):
    client, ctx, key = api
    h = key("cases")
    ids = [client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"] for _ in range(3)]
    set_clocks(settings, (ids[0], 49, -1), (ids[1], 45, 3))
    login(client, settings, "qq", "reviewer")
    page = client.get("/console").text
    found = re.search(r'id="queue-summary">(.*?)</p>', page, re.S)
    assert found, "no queue summary on the console"
    summary = found.group(1)
    assert "3</strong> open" in summary and "1 overdue" in summary and "1 close to the deadline" in summary
    rows = re.findall(r'<tr class="(\w+)" data-case="([^"]+)"', page)
    assert rows[0] == ("breached", ids[0]) and rows[1] == ("warning", ids[1])


def test_nul_characters_are_dropped_not_a_server_error(api, make_json, settings):
    """PostgreSQL cannot store NUL in text (schemathesis found the 500); both databases now store the same."""
    client, ctx, key = api
    h = {**key("cases"), "Idempotency-Key": "nul-key"}
    r = client.post("/v1/reports", json=make_json(explanation="a\x00b", reporter_name="J\x00R"), headers=h)
    assert r.status_code == 201
    assert client.get("/v1/cases/DS-%00AAA-AAAA", headers=h).status_code == 404
    detail = client.get(f"/v1/cases/{r.json()['case_id']}", headers=h).json()
    assert detail["explanation"] == "ab"
    again = client.post("/v1/reports", json=make_json(explanation="a\x00b", reporter_name="J\x00R"), headers=h)
    assert again.status_code == 200 and again.json()["case_id"] == r.json()["case_id"]
    with session_scope(settings) as s:
        assert audit.verify(s).ok
