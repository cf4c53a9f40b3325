"""The victim's status page without a browser: the hash count includes what a moderator banked, the page links
the on-device hashing page, withdrawing is a distinct confirmed action, and signing out ends the case session
(audited)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from deepshield.cases.models import AuditEvent
from deepshield.store.db import session_scope
from tests.conftest import csrf_token

from .conftest import make_image


def _sign_in(client: Any, case_id: str, pin: str) -> str:
    tok = csrf_token(client.get("/case-status").text)
    r = client.post("/case-status", data={"csrf": tok, "case_id": case_id, "pin": pin}, follow_redirects=False)
    assert r.status_code == 303
    return tok


def _hash_count(page: str) -> int:
    found = re.search(r'id="hash-count">(\d+)<', page)
    assert found, "no hash count on the status page"
    return int(found.group(1))


def test_status_page_counts_hashes_a_moderator_banked(api: Any, make_json: Any, tmp_path: Path) -> None:
    client, ctx, key = api
    h = key("cases")
    rec = client.post("/v1/reports", json=make_json(), headers=h).json()
    cid = rec["case_id"]
    tok = _sign_in(client, cid, rec["pin"])
    assert _hash_count(client.get(f"/case-status/{cid}").text) == 0
    with open(make_image(tmp_path / "a.png", seed=5), "rb") as f:
        client.post(f"/v1/cases/{cid}/media", files={"file": ("a.png", f, "image/png")}, headers=h)
    assert _hash_count(client.get(f"/case-status/{cid}").text) == 0  # media alone is not banked
    banked = client.post(f"/v1/cases/{cid}/decision", json={"actions": ["remove", "bank"], "reason": "x"}, headers=h)
    n = banked.json()["banked"]
    assert n >= 2
    page = client.get(f"/case-status/{cid}").text
    assert _hash_count(page) == n
    # the victim adds one of their own: counted beside the moderator's
    r = client.post(f"/case-status/{cid}/hashes", data={"csrf": tok, "hashes": "pdq " + "c" * 64})
    assert _hash_count(r.text) == n + 1
    assert f'href="/match/hash-photos?case={cid}"' in page
    withdraw = re.search(r'<form method="post" action="/case-status/[^"]+/withdraw" data-confirm="([^"]+)"', page)
    assert withdraw and "cannot be undone" in withdraw.group(1)
    assert re.search(r'id="withdraw" class="danger"', page)


def test_sign_out_ends_the_case_session_and_is_audited(api: Any, make_json: Any) -> None:
    client, ctx, key = api
    rec = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()
    cid = rec["case_id"]
    tok = _sign_in(client, cid, rec["pin"])
    assert client.get(f"/case-status/{cid}").status_code == 200
    assert client.post("/case-status/sign-out", data={"csrf": "forged"}).status_code == 403
    r = client.post("/case-status/sign-out", data={"csrf": tok}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/case-status?signed_out=1"
    again = client.get(f"/case-status/{cid}", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/case-status"
    assert 'id="signed-out"' in client.get("/case-status?signed_out=1").text
    with session_scope(ctx.settings) as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.case_id == cid)))
    assert "status_signed_out" in actions
