"""Headless Chromium on the console's consent pages: consents whose checks asked for a person appear in the
review list with each check's evidence in plain words; approving issues a credential that the public API
verifies as valid, rejecting (with a reason) issues none; a lead revokes a credential from the list and the API
reads it revoked on the next check; a labelled upload's finding shows its consent state in words; the pages at
375 px without sideways overflow. Screenshots go under the run's output folder (`console_support.output_dir`).

The consent requests are made and checked by the real consent service on real corpus media (the first half of
a talking video as the provider's source, the second half as the consent recording: the face, voice and
sentence checks run on them). The corpus clip follows no liveness script, so the liveness decision is a stand-in
"review" (the liveness suite covers liveness itself): that is what sends these consents to review."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select

from deepshield.cases.models import AuditEvent, CaseEvidence
from deepshield.cases.wording import CONSENT_STATES
from deepshield.config import Settings
from deepshield.consent.service import ConsentService
from deepshield.consent.sources import describe
from deepshield.liveness.decision import Decision
from deepshield.store.db import session_scope

from .conftest import Server
from .console_support import login, output_dir, overflow, serve, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PERSON = "st_WDA_KatieHill_000"
STAND_IN = Decision("review", 0.5, ["stand-in: the corpus clip follows no liveness script"])


@pytest.fixture(scope="module")
def halves(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg absent (scripts/apt-packages.txt)")
    d = tmp_path_factory.mktemp("console-consent")
    src, source, consent = shared_faces / "real_videos" / f"{PERSON}.mp4", d / "source.mp4", d / "consent.mp4"
    run = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run([*run, "-i", str(src), "-t", "4", "-c:v", "libx264", "-c:a", "aac", str(source)], check=True)
    subprocess.run([*run, "-ss", "4", "-i", str(src), "-c:v", "libx264", "-c:a", "aac", str(consent)], check=True)
    return source, consent


@pytest.fixture
def in_review(sqlite_settings: Settings, halves: tuple[Path, Path]) -> list[str]:
    """Two consent requests checked by the real service and sent to review (ids, in the order made)."""
    from deepshield.labels.keys import init_keys

    init_keys(sqlite_settings.home)
    source, consent = halves
    svc = ConsentService(sqlite_settings)
    ids = []
    try:
        for purpose in ("presenter avatar", "training videos"):
            with session_scope(sqlite_settings) as db:
                rec, _ = svc.create_request(db, "Avatar Studio", purpose, 30, [describe(source)], "provider-a")
                out = svc.decide(db, rec, consent, describe(consent).sha256, STAND_IN)
                assert out.outcome == "review", out.reasons  # face and voice of the same person: none failed
                ids.append(rec.id)
    finally:
        svc.close()
    return ids


@pytest.fixture
def server(sqlite_settings: Settings, in_review: list[str]) -> Iterator[Server]:
    srv = serve(sqlite_settings, {"rev": "reviewer", "boss": "admin"})
    yield srv
    srv.stop()


def _verify(server: Server, token: str) -> str:
    r = httpx.post(server.url + "/v1/consents/credentials/verify", json={"credential": token}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def _credential(settings: Settings, request_id: str) -> tuple[str, str] | None:
    with session_scope(settings) as db:
        cred = ConsentService(settings).credential_of(db, request_id)
        return (cred.id, cred.token) if cred is not None else None


def test_review_approve_issues_a_valid_credential_and_reject_issues_none(browser, server, in_review, request):
    out = output_dir(request)
    approve_id, reject_id = in_review
    page = browser.new_context().new_page()
    page.on("dialog", lambda d: d.accept())
    login(page, server.url, "rev", "rev-password")
    page.click("header >> text=Consents")
    page.click("#review-link")
    assert page.locator("#review-count").inner_text().startswith("2 waiting")
    for rid in in_review:
        card = page.locator(f"section[data-request='{rid}']")
        assert card.is_visible()
        text = card.inner_text()
        assert "Waiting for review" in text and ("presenter avatar" in text or "training videos" in text)
        # each check's evidence in plain words, with the thresholds of the decision
        assert re.search(r"Liveness decision: uncertain", text), text
        assert re.search(r"Face distance 0\.\d+ to the source media: pass at or below 0\.\d+, refused above", text)
        assert re.search(r"Voice similarity 0\.\d+ to the source recordings: pass at or above 0\.8", text)
        assert "Sentence shown:" in text and "Words heard:" in text
        assert card.locator("tr[data-check='liveness'][data-verdict='review']").count() == 1
    shot(page, out, "review-list")

    # Approve: the credential is signed now, and any verifier reads it valid through the public API.
    page.locator(f"section[data-request='{approve_id}'] .approve-form button").click()
    page.wait_for_selector("#message")
    assert "approved" in page.locator("#message").inner_text()
    found = _credential(server.settings, approve_id)
    assert found is not None
    cid, token = found
    assert cid in page.locator("#message").inner_text()
    assert _verify(server, token) == "valid"
    assert page.locator(f"section[data-request='{approve_id}']").count() == 0

    # Reject: a reason is required (the browser's own check first, then the service's), then no credential.
    reject = page.locator(f"section[data-request='{reject_id}'] .reject-form")
    reject.locator("button").click()
    assert page.locator("#message").count() == 1 and "approved" in page.locator("#message").inner_text()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    bare = page.request.post(
        server.url + f"/console/consents/{reject_id}/review",
        form={"csrf": csrf, "decision": "reject", "reason": "  "},
        max_redirects=0,
    )
    assert bare.status == 303 and "give%20the%20reason" in (bare.headers.get("location") or "")
    assert _credential(server.settings, reject_id) is None
    reject.locator("textarea").fill("the voice in the recording is not the person's own")
    reject.locator("button").click()
    page.wait_for_selector("#review-empty")
    assert "rejected: no credential" in page.locator("#message").inner_text()
    assert _credential(server.settings, reject_id) is None
    shot(page, out, "after-review")
    with session_scope(server.settings) as db:
        rec = ConsentService(server.settings).get(db, reject_id)
        assert rec.status == "failed" and rec.reviewed_by == "rev"
        assert (
            json.loads(rec.reasons_json or "[]")[-1]
            == "review: rejected: the voice in the recording is not the person's own"
        )
        events = {e.action: e for e in db.scalars(select(AuditEvent).where(AuditEvent.action.like("consent_%")))}
    assert set(events) == {"consent_approved", "consent_rejected"}
    assert events["consent_approved"].actor == "rev" and cid in events["consent_approved"].details
    assert "not the person's own" in events["consent_rejected"].reason

    # The same decision twice (a stale page) is a clear error on the page, never a second credential.
    r = page.request.post(
        server.url + f"/console/consents/{approve_id}/review",
        form={"csrf": page.locator("input[name=csrf]").first.get_attribute("value") or "", "decision": "approve"},
        max_redirects=0,
    )
    assert r.status == 303 and "not%20waiting%20for%20review" in (r.headers.get("location") or "")


def test_a_lead_revokes_a_credential_from_the_list(browser, server, in_review, request):
    out = output_dir(request)
    with session_scope(server.settings) as db:
        issued = ConsentService(server.settings).resolve_review(db, in_review[0], True, "rev")
        assert issued is not None
        cid, token = issued.credential.id, issued.token
    ctx = browser.new_context()
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())
    login(page, server.url, "rev", "rev-password")
    page.goto(server.url + "/console/consents")
    row = page.locator(f"tr[data-credential='{cid}']")
    assert row.get_attribute("data-state") == "valid"
    assert CONSENT_STATES["valid"] in row.inner_text() and "Avatar Studio" in row.inner_text()
    assert row.locator(".revoke-form").count() == 0  # moderators see, leads revoke
    assert "1 consent(s) waiting for review" in page.locator("#review-link").inner_text()
    forged = page.request.post(
        server.url + f"/console/consents/credentials/{cid}/revoke",
        form={"csrf": page.locator("input[name=csrf]").first.get_attribute("value") or "", "reason": "x"},
    )
    assert forged.status == 403 and _verify(server, token) == "valid"
    ctx.close()

    page = browser.new_context().new_page()
    page.on("dialog", lambda d: d.accept())
    login(page, server.url, "boss", "boss-password")
    page.goto(server.url + "/console/consents")
    row = page.locator(f"tr[data-credential='{cid}']")
    row.locator("input[name=reason]").fill("the person asked us by phone")
    row.locator("button").click()
    page.wait_for_selector("#message")
    row = page.locator(f"tr[data-credential='{cid}']")
    assert row.get_attribute("data-state") == "revoked"
    assert CONSENT_STATES["revoked"] in row.inner_text() and "the person asked us by phone" in row.inner_text()
    assert _verify(server, token) == "revoked"  # the very next check
    shot(page, out, "consents-revoked")


def test_a_labelled_uploads_finding_shows_its_consent_state(browser, server, in_review, request):
    """The label screener's finding as it stores it (`cases.adapters.LabelScreener`), on a case: the consent
    state reads in words, with the credential it names, beside the labels."""
    from deepshield.cases.context import CasesContext

    from .console_support import new_cases

    out = output_dir(request)
    ctx = CasesContext.build(server.settings, screeners=[], start_worker=False, detector=False)
    try:
        case_id = new_cases(ctx, 1)[0]
    finally:
        ctx.close()
    data = {
        "decision": "review",
        "decision_label": "review",
        "reasons": ["AIGC metadata: AI-generated (producer Avatar Studio)"],
        "consent": {"state": "revoked", "reason": "revoked by the person", "credential_id": "c0ffee00c0ffee00"},
    }
    with session_scope(server.settings) as db:
        summary = "review: AIGC metadata: AI-generated (producer Avatar Studio); consent revoked"
        db.add(CaseEvidence(case_id=case_id, kind="labels", automated=True, data=json.dumps(data), summary=summary))
    page = browser.new_context().new_page()
    login(page, server.url, "rev", "rev-password")
    page.goto(server.url + f"/console/cases/{case_id}")
    line = page.locator("#evidence li[data-kind='labels']").inner_text()
    assert line == (
        "AI-content label: review: AIGC metadata: AI-generated (producer Avatar Studio) · Consent revoked "
        "(credential c0ffee00c0ffee00): revoked by the person"
    ), line
    shot(page, out, "case-consent-finding")


def test_consent_pages_at_375px_do_not_overflow(browser, server, in_review, request):
    out = output_dir(request)
    with session_scope(server.settings) as db:
        ConsentService(server.settings).resolve_review(db, in_review[0], True, "rev")  # one credential to list
    ctx = browser.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    page = ctx.new_page()
    login(page, server.url, "boss", "boss-password")
    wide = {}
    for name, path in (("review", "/console/consents/review"), ("consents", "/console/consents")):
        page.goto(server.url + path)
        m = overflow(page)
        shot(page, out, f"375-{name}")
        if m["scroll"] > m["client"]:
            wide[name] = m
        assert m["header"] <= 100, (name, m)  # the navigation, with its Consents link, within two short lines
    assert not wide, f"consent pages wider than 375 px: {wide}"
