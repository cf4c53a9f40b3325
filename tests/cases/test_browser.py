"""Headless Chromium: file a report through the public form, work it in the console (sign in, open, reveal,
act), read the statement of reasons; the victim checks the status, adds hashes and withdraws."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from deepshield.config import Settings

from .conftest import Server, make_image
from .console_support import login, output_dir, serve, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(sqlite_settings: Settings) -> Iterator[Server]:
    srv = serve(sqlite_settings, {"rev": "reviewer", "boss": "admin"})
    yield srv
    srv.stop()


def test_report_review_statement_and_victim_withdrawal(browser, server, tmp_path, request):
    out = output_dir(request)
    base = server.url
    img = make_image(tmp_path / "evidence.png", seed=7)

    # 1. the public form, no key
    public = browser.new_context().new_page()
    public.goto(base + "/report")
    public.select_option("#category", "ncii")
    public.fill("#content_locations", "https://social.example/p/42")
    public.fill("#explanation", "A sexual deepfake of me, posted without my consent.")
    public.fill("#jurisdiction", "US")
    public.select_option("#reporter_role", "depicted_person")
    public.fill("#reporter_name", "Jane Roe")
    public.fill("#reporter_email", "jane@example.org")
    public.set_input_files("#file", str(img))
    public.fill("#signature", "Jane Roe")
    public.check("#good_faith")
    public.click("#submit-report")
    public.wait_for_selector("#case-id")
    case_id = public.inner_text("#case-id").strip()
    pin = public.inner_text("#case-pin").strip()
    assert re.fullmatch(r"DS-[A-Z0-9]{4}-[A-Z0-9]{4}", case_id) and re.fullmatch(r"\d{8}", pin)
    assert "decision is due" in public.inner_text("#receipt")

    # 2. the reviewer: queue -> case -> reveal -> act
    rev = browser.new_context().new_page()
    login(rev, base, "rev", "rev-password")
    assert rev.locator(f"#queue tr[data-case='{case_id}']").count() == 1
    rev.click(f"a:text('{case_id}')")
    rev.wait_for_selector("#state")
    media = rev.locator("img.preview")
    assert media.count() == 1 and "blurred" in (media.get_attribute("class") or "")
    blurred_src = rev.evaluate(
        "fetch(document.querySelector('img.preview').src).then(r => r.headers.get('content-type'))"
    )
    assert blurred_src == "image/jpeg"  # a server-made blurred JPEG, not the PNG
    rev.click("button[id^=reveal-]")
    rev.wait_for_selector("img.preview.revealed")
    revealed_type = rev.evaluate(
        "fetch(document.querySelector('img.preview').src).then(r => r.headers.get('content-type'))"
    )
    assert revealed_type == "image/png"
    assert rev.locator("#audit td[data-action='media_revealed']").inner_text() == "Media revealed"
    rev.click("#start-review")
    rev.wait_for_function("document.querySelector('#state').dataset.state === 'in_review'")
    assert rev.inner_text("#state") == "In review"
    rev.check("#act-remove")
    rev.check("#act-bank")
    rev.fill("#reason", "Intimate deepfake reported by the person depicted")
    rev.click("#decide")
    rev.wait_for_function("document.querySelector('#state').dataset.state === 'actioned'")
    assert rev.locator("#decision").inner_text() == "Removed and hashed"
    shot(rev, out, "case-decided")
    rev.click("a.sor")
    rev.wait_for_selector("#statement")
    shot(rev, out, "statement")
    assert rev.inner_text("#sor-decision") == "Removed and hashed (Content removed)"
    assert rev.get_attribute("#sor-decision", "data-visibility") == "DECISION_VISIBILITY_CONTENT_REMOVED"
    assert "TAKE IT DOWN" in rev.inner_text("#sor-legal")
    # a reviewer cannot reach admin functions
    resp = rev.goto(base + "/console/admin")
    assert resp is not None and resp.status == 403

    # 3. the victim: status, hashes, withdrawal
    vic = browser.new_context().new_page()
    vic.goto(base + "/case-status")
    vic.fill("#case_id", case_id)
    vic.fill("#pin", pin)
    vic.click("#status-submit")
    vic.wait_for_selector("#victim-state")
    assert vic.inner_text("#victim-state") == "Action taken"
    banked = int(vic.inner_text("#hash-count"))
    assert banked >= 2  # the evidence's hashes, banked by the reviewer, count on the victim's page
    vic.fill("#hashes", "pdq " + "a" * 64 + "\nmd5 " + "b" * 32)
    vic.click("#add-hashes")
    vic.wait_for_selector("#message")
    assert vic.inner_text("#hash-count") == str(banked + 2)
    vic.on("dialog", lambda d: d.accept())
    vic.click("#withdraw")
    vic.wait_for_function("document.querySelector('#victim-state').dataset.state === 'closed'")
    assert "removed from every bank" in vic.inner_text("#message")

    # 4. the admin sees an intact audit chain
    adm = browser.new_context().new_page()
    login(adm, base, "boss", "boss-password")
    adm.goto(base + "/console/admin")
    assert "Chain intact" in adm.inner_text("#audit-status")
