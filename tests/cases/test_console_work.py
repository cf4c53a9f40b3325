"""The console's work tools without a browser: the label table, claims over the API (409 on a held case,
audited), the queue's search and filters, the closed view, and what the case page says after a reversal."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from deepshield.cases import claims, flows, wording
from deepshield.cases.models import AuditEvent
from deepshield.cases.statemachine import State
from deepshield.store.db import session_scope
from tests.conftest import csrf_token

from .conftest import login, set_clocks


def test_every_state_and_action_has_plain_words():
    assert set(wording.STATES) == {s.value for s in State}
    assert all(w and "_" not in w for w in wording.STATES.values())
    assert set(wording.ACTIONS) == set(flows.ACTION_KINDS)
    assert wording.state_label("in_review") == "In review"
    assert wording.decision_label("remove,bank") == "Removed and hashed"
    assert wording.decision_label("remove+bank") == "Removed and hashed"  # as the statement spells it
    assert wording.decision_label("restrict") == "Visibility restricted"
    assert wording.code_label("DECISION_VISIBILITY_CONTENT_REMOVED") == "Content removed"
    assert wording.audit_label("state:needs_info") == "Moved to: Needs more information"
    assert "new review" in wording.next_step("reversed")


def test_times_links_and_detector_wording():
    t = dt.datetime(2026, 5, 19, 8, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert wording.iso_utc(t) == "2026-05-19T06:30:15Z"  # UTC, no microseconds
    assert wording.iso_utc("2026-05-19T06:30:15.999999+00:00") == "2026-05-19T06:30:15Z"
    assert wording.utc_text(t) == "2026-05-19 06:30 UTC"
    assert wording.safe_link("https://social.example/p/1") == "https://social.example/p/1"
    for bad in ("javascript:alert(1)", "data:text/html,x", "ftp://x.example/a", "//evil.example", "https://"):
        assert wording.safe_link(bad) is None, bad
    line = wording.evidence_line("detector", "allow", "detector score 0.12 below the review threshold", "ncii")
    assert line.startswith("detector: no manipulation found in the image (does not judge the report)")
    assert " allow" not in line
    stored = '[{"screener": "match", "decision": "review", "reason": "PDQ distance 40", "data": {}}]'
    assert wording.screening_reasons(stored) == "match: PDQ distance 40"
    assert wording.screening_reasons("not json") == "not json"


def test_claims_over_the_api_conflict_and_are_audited(api, settings, make_json):
    client, ctx, key = api
    h = key("cases")
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    other = key("cases")
    first = client.post(f"/v1/cases/{cid}/claim", headers=h)
    assert first.status_code == 200 and first.json()["assignee"] == "platform"
    with session_scope(settings) as s:
        from deepshield.accounts.service import create_user

        create_user(s, "amy", "amy-password", "reviewer")
    # another principal's claim on the held case: a 409 naming the holder
    with session_scope(settings) as s, pytest.raises(claims.ClaimConflict, match="claimed by platform"):
        claims.claim(s, cid, "amy")
    assert client.post(f"/v1/cases/{cid}/claim", headers=h).status_code == 200  # claiming again: no-op
    # a lead assigns it (admin scope); an unknown name is refused
    assert client.post(f"/v1/cases/{cid}/assign", json={"assignee": "amy"}, headers=other).status_code == 403
    admin = key("admin")
    bad = client.post(f"/v1/cases/{cid}/assign", json={"assignee": "nobody"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"] == "unknown_reviewer"
    ok = client.post(f"/v1/cases/{cid}/assign", json={"assignee": "amy"}, headers=admin)
    assert ok.status_code == 200 and ok.json()["assignee"] == "amy"
    held = client.post(f"/v1/cases/{cid}/claim", headers=h)
    assert held.status_code == 409 and held.json()["error"] == "claimed_by_other" and "amy" in held.text
    assert client.post(f"/v1/cases/{cid}/release", headers=h).status_code == 409  # not the holder
    rel = client.post(f"/v1/cases/{cid}/release", headers=admin)
    assert rel.status_code == 200 and rel.json()["assignee"] is None
    assert client.post("/v1/cases/DS-NONE-NONE/claim", headers=h).status_code == 404
    with session_scope(settings) as s:
        acts = [
            a
            for a in s.scalars(select(AuditEvent.action).where(AuditEvent.case_id == cid).order_by(AuditEvent.seq))
            if a in ("claimed", "assigned", "released")
        ]
    assert acts == ["claimed", "assigned", "released"]


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr class="\w+" data-case="([^"]+)"', page)


def test_queue_search_filters_and_closed_view(api, settings, make_json):
    client, ctx, key = api
    h = key("cases")
    a = client.post(
        "/v1/reports", json=make_json(content_locations=["https://vid.example/watch/abc"]), headers=h
    ).json()["case_id"]
    b = client.post(
        "/v1/reports",
        json=make_json(category="impersonation_fraud", jurisdiction="DE", explanation="Fake CEO voice call"),
        headers=h,
    ).json()["case_id"]
    c = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    set_clocks(settings, (c, 49, -1))
    login(client, settings, "fil", "reviewer")
    assert _rows(client.get("/console", params={"q": "vid.example/watch"}).text) == [a]
    assert _rows(client.get("/console", params={"q": a.lower()}).text) == [a]
    assert _rows(client.get("/console", params={"q": "ceo voice"}).text) == [b]
    assert _rows(client.get("/console", params={"category": "impersonation_fraud"}).text) == [b]
    assert _rows(client.get("/console", params={"jurisdiction": "de"}).text) == [b]
    assert _rows(client.get("/console", params={"deadline": "overdue"}).text) == [c]
    assert client.get("/console", params={"deadline": "yesterday"}).status_code == 422
    flows.start_review(ctx, a, "fil")
    assert _rows(client.get("/console", params={"assigned": "me"}).text) == [a]
    assert set(_rows(client.get("/console", params={"assigned": "unassigned"}).text)) == {b, c}
    assert _rows(client.get("/console", params={"state": "in_review"}).text) == [a]
    flows.decide(ctx, a, ["no_action"], actor="fil", actor_kind="human", reason="satire, labelled")
    assert a not in _rows(client.get("/console").text)
    closed = client.get("/console", params={"view": "closed"}).text
    assert _rows(closed) == [a] and "No action" in closed


def test_case_page_after_a_reversal_says_what_comes_next(api, settings, make_json):
    client, ctx, key = api
    cid = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()["case_id"]
    flows.decide(ctx, cid, ["no_action"], actor="rev", actor_kind="human", reason="not intimate")
    flows.file_appeal(ctx, cid, filed_by="reporter", actor_kind="human", reason="it is me")
    login(client, settings, "lead", "reviewer")
    page = client.get(f"/console/cases/{cid}").text
    flows.decide_appeal(
        ctx, cid, "reversed", actor="lead", actor_kind="human", reason="it is intimate", expected_version=None
    )
    page = client.get(f"/console/cases/{cid}").text
    assert "Decision reversed on appeal" in page and "start a new review" in page
    assert 'id="start-review">Start a new review<' in page
    tok = csrf_token(page)
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post(f"/console/cases/{cid}/review", data={"csrf": tok, "version": version}, follow_redirects=True)
    assert 'data-state="in_review"' in r.text and "Claimed by you" in r.text


def test_bulk_decision_reports_the_cases_it_could_not_decide(ctx, make_fields):
    from deepshield.cases import bulk

    from .conftest import file_notice

    ids = [file_notice(ctx, make_fields())[0] for _ in range(3)]
    with session_scope(ctx.settings) as s:
        from deepshield.accounts.service import create_user

        create_user(s, "zoe", "zoe-password", "reviewer")
        claims.claim(s, ids[2], "zoe")
    with pytest.raises(flows.BadAction):
        bulk.bulk_decide(ctx, ids, ["remove"], actor="lead", reason=" ")
    r = bulk.bulk_decide(ctx, [*ids, ids[0].lower()], ["remove"], actor="lead", reason="same banked image")
    assert r.decided == ids[:2] and set(r.statements) == set(ids[:2])
    assert list(r.failed) == [ids[2]] and "claimed by zoe" in r.failed[ids[2]]
    with session_scope(ctx.settings) as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "bulk_decision")).one()
        per_case = s.scalars(select(AuditEvent.case_id).where(AuditEvent.action == "action:remove")).all()
    assert sorted(str(c) for c in per_case) == sorted(ids[:2]) and ids[2] in ev.details


def test_bank_pages_need_a_reviewer_and_removal_a_lead(api, settings):
    client, ctx, key = api
    assert client.get("/console/banks", follow_redirects=False).status_code == 303  # to the sign-in page
    tok = login(client, settings, "rita", "reviewer")
    assert client.get("/console/banks").status_code == 200
    r = client.post("/console/bank-entries/1/remove", data={"csrf": tok}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/console/bank-entries/999").status_code == 404
