"""The consent capture page in headless Chromium with a fake camera and microphone fed from a real video: the
provider opens a request with the person's source clip, the page starts the capture, shows the sentence and
the liveness steps, records video with sound, uploads once and shows the withdrawal reference and PIN; the
provider reads the checks, which saw the person's face and voice in the recording."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli import cli_api_key
from tests.conftest import auth, fake_camera_page, require_chromium_and_ffmpeg

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_consent_capture_page_records_sound_and_uploads(live_server: Any, shared_faces: Path, tmp_path: Path) -> None:
    import httpx2 as httpx

    require_chromium_and_ffmpeg()
    src = shared_faces / "real_videos" / "st_WDA_KatieHill_000.mp4"
    source, y4m, wav = tmp_path / "source.mp4", tmp_path / "camera.y4m", tmp_path / "mic.wav"
    run = ["ffmpeg", "-loglevel", "error", "-y"]
    subprocess.run([*run, "-i", str(src), "-t", "4", "-c:v", "libx264", "-c:a", "aac", str(source)], check=True)
    # The camera and microphone play the clip's second half (looped by Chromium) during the recording.
    subprocess.run([*run, "-ss", "4", "-i", str(src), "-vf", "scale=640:480,fps=15", "-pix_fmt", "yuv420p",
                    str(y4m)], check=True)  # fmt: skip
    subprocess.run([*run, "-ss", "4", "-i", str(src), "-vn", "-ac", "1", "-ar", "48000", str(wav)], check=True)

    key = cli_api_key(live_server.home, "consent")
    with open(source, "rb") as f:
        r = httpx.post(
            live_server.url + "/v1/consents",
            headers=auth(key),
            files={"sources": ("source.mp4", f, "video/mp4")},
            data={"provider": "Avatar Studio", "purpose": "presenter avatar", "valid_days": "30"},
            timeout=300,
        )
    assert r.status_code == 201, r.text
    created = r.json()

    with fake_camera_page(live_server.url, y4m, wav) as page:
        page.goto(live_server.url + created["capture_url"])
        page.wait_for_selector("#start:not([disabled])", timeout=30_000)
        sentence = page.inner_text("#sentence")
        page.click("#start")
        page.wait_for_selector("#instruction:not(:empty)", timeout=20_000)
        page.wait_for_selector("body[data-uploaded]", state="attached", timeout=300_000)
        assert page.get_attribute("body", "data-uploaded") == "1", page.inner_text("#status")
        page.wait_for_selector("#withdraw:not([hidden])", timeout=10_000)
        reference, pin = page.inner_text("#reference"), page.inner_text("#pin")
    assert sentence.startswith("I agree that avatar studio")
    assert reference == created["request_id"] and len(pin) == 10
    view = httpx.get(f"{live_server.url}/v1/consents/{reference}", headers=auth(key), timeout=30).json()
    checks = {c["name"]: c for c in view["checks"]}
    # A talking-head clip follows no script: liveness fails; but the recording carried her face and voice.
    assert view["status"] == "failed" and checks["liveness"]["verdict"] == "fail", view
    assert checks["face"]["verdict"] == "pass", checks["face"]
    assert checks["voice"]["verdict"] in ("pass", "review"), checks["voice"]
