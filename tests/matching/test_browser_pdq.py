"""On-device hashing: the page's JavaScript PDQ in headless Chromium agrees with the Python PDQ, and only
hashes leave the browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import deepshield.api
from deepshield.matching.bits import hamming

STATIC = Path(deepshield.api.__file__).parent / "static"
ORIGIN = "http://deepshield.test"


@pytest.mark.browser
@pytest.mark.slow
def test_browser_pdq_matches_python_on_every_real_photo(
    real_photos: list[Path], python_pdq: dict[str, tuple[str, int, str]], browser: Any
) -> None:
    posted: list[bytes] = []
    tokens: list[str | None] = []

    def handle(route: Any, request: Any) -> None:
        if request.url.startswith(f"{ORIGIN}/account/csrf"):
            route.fulfill(status=200, content_type="application/json", body=json.dumps({"csrf_token": "tok"}))
            return
        if request.method == "POST":
            posted.append(request.post_data_buffer or b"")
            tokens.append(request.headers.get("x-csrf-token"))
            route.fulfill(status=201, content_type="application/json", body=json.dumps({"added": 1, "ids": []}))
            return
        rel = request.url[len(ORIGIN) + len("/static/") :].split("?")[0]
        route.fulfill(path=str(STATIC / rel))

    page = browser.new_context().new_page()
    page.route(f"{ORIGIN}/**", handle)
    page.goto(f"{ORIGIN}/static/hash-photos.html?bank=VICTIM&case=C42")
    page.set_input_files("#photos", [str(f) for f in real_photos])
    page.wait_for_function("window.__deepshieldDone === true", timeout=300_000)
    results = page.evaluate("window.__deepshieldResults")
    page.click("#send")
    page.wait_for_selector("#sent.ok")

    assert [r["name"] for r in results] == [f.name for f in real_photos]
    worst_full = worst_server = 0
    for f, r in zip(real_photos, results, strict=True):
        assert "hash" in r, f"{f.name}: {r.get('error')}"
        full, quality, server = python_pdq[f.name]
        worst_full = max(worst_full, hamming(r["hash"], full))
        worst_server = max(worst_server, hamming(r["hash"], server))
        assert abs(r["quality"] - quality) <= 5, f.name
    print(f"browser vs Python PDQ: worst {worst_full} bits (full decode), {worst_server} bits (server fast path)")
    assert worst_full <= 10 and worst_server <= 10
    # What left the browser: the hashes and their quality, nothing else (no pixels, no file names).
    assert len(posted) == 1 and tokens == ["tok"]  # the session's CSRF token goes with the cookie
    body = json.loads(posted[0])
    assert set(body) == {"bank", "case_id", "hashes"} and body["case_id"] == "C42"
    assert [h["pdq"] for h in body["hashes"]] == [r["hash"] for r in results]
    assert all(set(h) == {"pdq", "quality"} for h in body["hashes"])
    assert len(posted[0]) < 200 * len(results)
