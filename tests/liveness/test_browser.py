"""The whole flow in headless Chromium with a fake camera fed from a real video: the backend opens a session,
the capture page starts it, shows each step as it is revealed, flashes and records, uploads once, and the
backend reads the decision and, the session closed, the script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli import cli_api_key
from tests.conftest import auth, fake_camera_page, require_chromium_and_ffmpeg

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_capture_page_records_and_uploads(live_server: Any, shared_faces: Path, tmp_path: Path) -> None:
    import httpx2 as httpx

    require_chromium_and_ffmpeg()
    src = shared_faces / "real_videos" / "st_WDA_AlexandriaOcasioCortez_000.mp4"
    y4m = tmp_path / "camera.y4m"
    # fmt: off
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-t", "8", "-vf", "scale=640:480,fps=15",
                    "-pix_fmt", "yuv420p", str(y4m)], check=True)
    # fmt: on
    id_photo = tmp_path / "id.png"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-ss", "7.5", "-i", str(src), "-frames:v", "1", str(id_photo)],
        check=True,
    )

    key = cli_api_key(live_server.home, "scan")
    with open(id_photo, "rb") as f:
        r = httpx.post(
            live_server.url + "/v1/liveness/sessions",
            headers=auth(key),
            files={"id_photo": ("id.png", f, "image/png")},
            data={"subject": "s-1", "device": "d-1"},
            timeout=60,
        )
    assert r.status_code == 201, r.text
    session = r.json()
    assert "script" not in session

    with fake_camera_page(live_server.url, y4m) as page:
        responses: list[Any] = []
        page.on("response", lambda resp: responses.append(resp))
        page.goto(live_server.url + session["capture_url"])
        page.wait_for_selector("#start:not([disabled])", timeout=20_000)
        assert page.locator("#steps li").count() == 0  # nothing known before the start
        page.click("#start")
        # The first instruction appears, then a full-screen flash in a scripted colour.
        # Selectors, not string predicates: the page's CSP (no eval) forbids what wait_for_function compiles.
        page.wait_for_selector("#instruction:not(:empty)", timeout=20_000)
        page.wait_for_selector("#flash.on", timeout=10_000)
        colour = page.eval_on_selector("#flash", "e => getComputedStyle(e).backgroundColor")
        page.wait_for_selector("body[data-uploaded]", state="attached", timeout=140_000)
        assert page.get_attribute("body", "data-uploaded") == "1", page.inner_text("#status")
        status_text = page.inner_text("#status")
        shown = page.locator("#steps li").all_text_contents()
        api = [(resp.url, resp.status, resp.text()) for resp in responses if "/v1/" in resp.url]
        page.screenshot(path=str(tmp_path / "capture.png"))
    assert "Thank you" in status_text
    # What the page received: its state, the first step with the flashes, each later step (425 when asked a
    # little early) and "received"; never a score, the decision, or a step ahead of its time.
    assert all("score" not in body and "decision" not in body for _, _, body in api), api
    start = next(json.loads(body) for url, _, body in api if url.endswith("/start"))
    assert set(start) == {"step", "next", "flashes"}
    revealed = [json.loads(body)["step"] for url, status, body in api if "/steps/" in url and status == 200]
    assert all(status in (200, 425) for url, status, _ in api if "/steps/" in url)

    d = httpx.get(
        f"{live_server.url}/v1/liveness/sessions/{session['session_id']}?detail=true", headers=auth(key), timeout=30
    ).json()
    assert d["status"] == "decided" and d["decision"] in ("pass", "fail", "review")
    script = d["script"]
    assert [start["step"], *revealed] == [{"index": i, **s} for i, s in enumerate(script["steps"])]
    assert shown == [s["instruction"] for s in script["steps"]]
    assert colour in {f"rgb({r}, {g}, {b_})" for r, g, b_ in (f["rgb"] for f in script["flashes"])}
    # A talking-head clip cannot follow a script of head turns: the challenge signal must say which steps.
    assert d["decision"] == "fail"
    assert any("not seen" in reason for reason in d["reasons"]), json.dumps(d["reasons"])
    challenge = next(s for s in d["signals"] if s["name"] == "challenge")
    assert challenge["evidence"]["face_visible"] > 0.8  # the recording really carried the camera's face
