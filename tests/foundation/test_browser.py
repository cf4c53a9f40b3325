"""The upload page in a real browser: sign in with the first-start password, upload a real photo, see faces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser
NEW_PASSWORD = "a password of my own choosing"


def _first_sign_in(page: Any, live_server: Any) -> None:
    """Sign in with the first-start one-time password, which must be replaced before anything else opens."""
    page.fill("#username", "admin")
    page.fill("#password", live_server.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/account/password")  # scrypt and a cold server: the fixture waits up to 120 s
    page.fill("#current", live_server.admin_password)
    page.fill("#new", NEW_PASSWORD)
    page.fill("#repeat", NEW_PASSWORD)
    page.click("main button[type=submit]")  # not the header's "Sign out"
    page.wait_for_url(live_server.url + "/")


def test_upload_a_photo_and_see_the_report(live_server: Any, browser: Any, shared_faces: Path, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(live_server.url + "/")
    assert "/login" in page.url
    _first_sign_in(page, live_server)
    page.set_input_files("#file", str(shared_faces / "real_photos" / "fr_two_people.jpg"))
    page.click("#scan-button")
    page.wait_for_selector("#report", timeout=60_000)
    frame = page.frame_locator("#report")
    assert frame.locator("#face-count").inner_text().startswith("2")
    assert frame.locator(".face img").count() >= 2
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_upload_page_shows_a_reason_for_a_bad_file(live_server: Any, browser: Any, tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all")
    page = browser.new_page()
    page.goto(live_server.url + "/login")
    _first_sign_in(page, live_server)
    page.set_input_files("#file", str(bad))
    page.click("#scan-button")
    err = page.wait_for_selector("#upload-error")
    assert "not a supported" in err.inner_text()
