"""The public pages in headless Chromium, on a phone-sized screen (375 px wide): the API documentation with the
network blocked, the report form that checks itself before any case exists, the status page, the on-device
hashing page sending with the case number and PIN, and the scan pages. Every page visited is checked for
horizontal overflow and saved as a screenshot (folder: $DEEPSHIELD_SCREENSHOTS, else `screenshots` under
pytest's base temporary folder)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from deepshield.accounts.service import create_api_key, create_user
from deepshield.cases.models import Case
from deepshield.config import Settings
from deepshield.store.db import reset_engines, session_scope

from .conftest import Server, make_image

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page, ViewportSize

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE: ViewportSize = {"width": 375, "height": 812}
LOCAL_HOSTS = ("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("DEEPSHIELD_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Public:
    """The served app with a reviewer account and a `cases` API key made before it starts."""

    def __init__(self, server: Server, key: str) -> None:
        self.server, self.url, self.key = server, server.url, key


@pytest.fixture
def public(sqlite_settings: Settings) -> Iterator[Public]:
    with session_scope(sqlite_settings) as s:
        create_user(s, "rev", "rev-password", "reviewer")
        key, _ = create_api_key(s, ["cases"], "platform")
    reset_engines()
    srv = Server(sqlite_settings, extra_env={"DEEPSHIELD_FORM_RATE": "100/600"}).start()
    yield Public(srv, key)
    srv.stop()


def check_page(page: Page, shots: Path, name: str) -> None:
    """No horizontal overflow, no navigation link broken over two lines, and a screenshot kept."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    sizes = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert sizes[0] <= sizes[1], f"{name}: {sizes[0]} px of content in a {sizes[1]} px wide window"
    broken = page.evaluate(
        "Array.from(document.querySelectorAll('header a')).filter(a => a.getClientRects().length > 1)"
        ".map(a => a.textContent)"
    )
    assert broken == [], f"{name}: navigation links wrapped inside: {broken}"


def _phone(browser: Browser) -> Any:
    return browser.new_context(viewport=PHONE)


METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _spec(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url + "/openapi.json") as r:
        spec: dict[str, Any] = json.load(r)
    return spec


def _operations(url: str) -> list[tuple[str, str]]:
    return sorted((m.upper(), p) for p, item in _spec(url)["paths"].items() for m in item if m in METHODS)


def _operation_ids(url: str) -> list[str]:
    paths = _spec(url)["paths"].values()
    return [op["operationId"] for item in paths for m, op in item.items() if m in METHODS]


def test_docs_list_every_operation_with_the_network_blocked(browser: Any, public: Public, shots: Path) -> None:
    ops = _operations(public.url)
    assert len(ops) > 20
    ctx = browser.new_context()
    blocked: list[str] = []

    def only_local(route: Any, request: Any) -> None:
        if urlparse(request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort()

    ctx.route("**/*", only_local)
    page = ctx.new_page()
    page.goto(public.url + "/docs")
    page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {len(ops)}")
    shown = page.evaluate(
        "Array.from(document.querySelectorAll('.opblock')).map(el => ["
        "el.querySelector('.opblock-summary-method').textContent.trim(),"
        "el.querySelector('.opblock-summary-path').getAttribute('data-path')])"
    )
    assert sorted(tuple(x) for x in shown) == ops
    page.screenshot(path=str(shots / "docs.png"))
    page.goto(public.url + "/redoc")
    page.wait_for_selector("[data-section-id*='operation/']")
    sections = page.evaluate(  # `tag/<tag>/operation/<operationId>`, in the menu and in the body
        "Array.from(document.querySelectorAll(\"[data-section-id*='operation/']\"))"
        ".map(el => el.getAttribute('data-section-id'))"
    )
    assert {s.rsplit("operation/", 1)[1] for s in sections} == set(_operation_ids(public.url))
    page.screenshot(path=str(shots / "redoc.png"))
    assert blocked == []  # nothing was even asked of another host


def _field_error(page: Page, name: str) -> str:
    el = page.locator(f"#err-{name}")
    return "" if el.is_hidden() else el.inner_text()


def fill_notice(page: Page, prefix: str, email: str) -> None:
    """Everything but the category of an EU notice about intimate images, in the report form (`#`) or the
    status page's form for what is missing (`#info-`)."""
    page.fill(f"{prefix}content_locations", "https://social.example/p/42")
    page.fill(f"{prefix}jurisdiction", "DE")
    page.fill(f"{prefix}explanation", "A sexual deepfake of me, posted without my consent.")
    page.select_option(f"{prefix}reporter_role", "depicted_person")
    for name in ("reporter_name", "signature"):
        page.fill(f"{prefix}{name}", "Jane Roe")
    page.fill(f"{prefix}reporter_email", email)
    page.check(f"{prefix}good_faith")


def _case_count(settings: Settings) -> int:
    with session_scope(settings) as s:
        return int(s.scalar(select(func.count(Case.id))) or 0)


def test_report_form_checks_itself_before_any_case(
    browser: Any, public: Public, sqlite_settings: Settings, shots: Path
) -> None:
    page = _phone(browser).new_page()
    page.goto(public.url + "/report")
    check_page(page, shots, "report-form")
    assert page.locator("label[for=category] .req").count() == 1  # required fields are marked
    page.select_option("#category", "ncii")
    page.click("#submit-report")
    page.wait_for_selector("#err-content_locations:not([hidden])")
    assert page.url.endswith("/report")  # not sent
    for name in ("content_locations", "jurisdiction", "good_faith", "signature", "reporter_name", "explanation"):
        msg = _field_error(page, name)
        assert msg and "_" not in msg and "DSA" not in msg, (name, msg)
    assert _field_error(page, "category") == ""
    assert page.get_attribute("#content_locations", "aria-invalid") == "true"
    check_page(page, shots, "report-form-errors")
    assert _case_count(sqlite_settings) == 0
    # The server checks too: the form sent without its script comes back with the errors beside the fields.
    page.evaluate("document.getElementById('report-form').submit()")  # submit() skips the page's checks
    page.wait_for_selector("#form-errors")
    assert "Give the exact web address" in _field_error(page, "content_locations")
    assert _case_count(sqlite_settings) == 0
    check_page(page, shots, "report-form-server-errors")
    fill_notice(page, "#", email="not-an-address")
    page.click("#submit-report")
    page.wait_for_selector("#err-reporter_email:not([hidden])")
    assert "not a valid email" in _field_error(page, "reporter_email")
    assert _field_error(page, "content_locations") == ""  # fixed fields are cleared
    page.fill("#reporter_email", "jane@example.org")
    page.click("#submit-report")
    page.wait_for_selector("#case-id")
    assert "decision is due" in page.inner_text("#receipt") and page.locator("#missing").count() == 0
    check_page(page, shots, "receipt")
    assert _case_count(sqlite_settings) == 1


def _api(browser: Any, public: Public) -> Any:
    return browser.new_context(extra_http_headers={"Authorization": f"Bearer {public.key}"}).request


def test_status_page_and_hashing_with_case_number_and_pin(
    browser: Any, public: Public, shots: Path, tmp_path: Path
) -> None:
    api = _api(browser, public)
    rec = api.post(public.url + "/v1/reports", data={"category": "ncii"}).json()
    cid, pin = rec["case_id"], rec["pin"]
    page = _phone(browser).new_page()
    page.goto(public.url + "/case-status")
    check_page(page, shots, "status-sign-in")
    page.fill("#case_id", cid)
    page.fill("#pin", pin)
    page.click("#status-submit")
    page.wait_for_selector("#victim-state")
    items = page.locator("#missing > li").all_inner_texts()
    assert len(items) == 8 and any(t.startswith("Your name") for t in items), items  # all of it, at once
    assert all("_" not in t.split(":")[0] for t in items)
    check_page(page, shots, "status-missing")
    fill_notice(page, "#info-", email="jane@example.org")
    page.click("#add-info")
    page.wait_for_selector("#message")
    assert "the report is complete" in page.inner_text("#message") and page.locator("#missing").count() == 0

    # A moderator banks the case's media: the victim's page counts those hashes.
    img = make_image(tmp_path / "evidence.png", seed=11)
    media = {"file": {"name": "evidence.png", "mimeType": "image/png", "buffer": img.read_bytes()}}
    assert api.post(f"{public.url}/v1/cases/{cid}/media", multipart=media).status == 201
    decided = api.post(f"{public.url}/v1/cases/{cid}/decision", data={"actions": ["remove", "bank"], "reason": "x"})
    banked = decided.json()["banked"]
    assert banked >= 2
    page.reload()
    assert page.inner_text("#hash-count") == str(banked)
    check_page(page, shots, "status")

    # The hashing page, from the status page: site header, a way back, sent with the case number and PIN.
    page.click("#hash-page-link")
    page.wait_for_selector("#photos")
    assert page.locator("header a[href='/case-status']").count() == 1
    assert page.get_attribute("#back", "href") == f"/case-status/{cid}"
    assert page.locator("#bank").count() == 0 and page.locator("#staff-fields").is_hidden()
    assert page.input_value("#case") == cid
    page.set_input_files("#photos", str(make_image(tmp_path / "mine.png", seed=12)))
    page.wait_for_selector("#status:has-text('Done:')", timeout=120_000)  # the page's CSP forbids eval polling
    page.fill("#pin", "00000000")
    page.click("#send")
    page.wait_for_selector("#sent.err")
    assert "API key" not in page.inner_text("#sent")
    page.fill("#pin", pin)
    page.click("#send")
    page.wait_for_selector("#sent.ok")
    assert f"Sent 1 new fingerprint(s) to case {cid}" in page.inner_text("#sent")
    check_page(page, shots, "hash-photos")
    page.click("#back")
    page.wait_for_selector("#hash-count")
    assert page.inner_text("#hash-count") == str(banked + 1)

    # Withdraw is a distinct, confirmed action; declining the question changes nothing.
    assert "danger" in (page.get_attribute("#withdraw", "class") or "")
    questions: list[str] = []

    def decline(d: Dialog) -> None:
        questions.append(d.message)
        d.dismiss()

    page.once("dialog", decline)
    page.click("#withdraw")
    assert questions and "cannot be undone" in questions[0]
    assert page.get_attribute("#victim-state", "data-state") != "closed"
    page.once("dialog", lambda d: d.accept())
    page.click("#withdraw")
    page.wait_for_selector("#victim-state[data-state='closed']")
    assert page.inner_text("#victim-state") == "Closed"
    # Sign out: the case no longer opens in this browser.
    page.click("#status-sign-out")
    page.wait_for_selector("#signed-out")
    page.goto(f"{public.url}/case-status/{cid}")
    assert urlparse(page.url).path == "/case-status" and page.locator("#case_id").count() == 1


def test_scan_pages_list_open_and_download_reports(browser: Any, public: Public, shots: Path, tmp_path: Path) -> None:
    page = _phone(browser).new_page()
    page.goto(public.url + "/login?next=/")
    page.fill("#username", "rev")
    page.fill("#password", "rev-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{public.url}/", timeout=120_000)  # scrypt on a loaded machine
    page.wait_for_selector("#scan-button")
    assert page.locator("#no-scans").count() == 1
    check_page(page, shots, "scan-upload")
    bad = tmp_path / "holiday notes.mp4"
    bad.write_text("not a video at all")
    page.set_input_files("#file", str(bad))
    page.click("#scan-button")
    err = page.wait_for_selector("#upload-error").inner_text()
    assert "holiday notes.mp4" in err and "upload-" not in err and ".part" not in err, err
    page.set_input_files("#file", str(make_image(tmp_path / "portrait.png", seed=13)))
    page.click("#scan-button")
    page.wait_for_selector("#report", timeout=180_000)
    scan_id = urlparse(page.url).path.rsplit("/", 1)[-1]
    frame_width = page.evaluate("document.getElementById('report').getBoundingClientRect().width")
    assert frame_width < PHONE["width"]  # follows the window, no fixed frame
    check_page(page, shots, "scan")
    with page.expect_download() as dl:
        page.click("#download-report")
    download = dl.value
    assert download.suggested_filename == "deepshield-report-portrait.html"
    assert "Deepshield scan report" in Path(download.path()).read_text(encoding="utf-8")
    assert page.get_attribute("#open-report", "href") == f"/scans/{scan_id}/report"
    report = page.context.new_page()
    report.goto(f"{public.url}/scans/{scan_id}/report")
    assert report.locator("h1").inner_text() == "Deepshield scan report"
    check_page(report, shots, "scan-report")
    page.goto(public.url + "/")
    row = page.locator(f"#past-scans tr[data-scan='{scan_id}']")
    assert row.count() == 1 and "portrait.png" in row.inner_text()
    assert row.locator(f"a[href='/scans/{scan_id}/report?download=1']").count() == 1
    check_page(page, shots, "scan-list")
    # The liveness capture page, opened on a phone.
    page.goto(public.url + "/liveness/capture/0123456789abcdef0123456789abcdef")
    page.wait_for_load_state()
    check_page(page, shots, "liveness-capture")
