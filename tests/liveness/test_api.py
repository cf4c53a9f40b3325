"""The sessions API: create with an ID photo, single-use upload with a token, decision for the backend only,
expiry and lockout."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from deepshield.liveness.script import ChallengeScript
from tests.conftest import auth


def _create(client: Any, key: str, photo: Path, subject: str = "cust-1", device: str = "dev-1") -> Any:
    with open(photo, "rb") as f:
        return client.post(
            "/v1/liveness/sessions",
            headers=auth(key),
            files={"id_photo": (photo.name, f, "image/jpeg")},
            data={"subject": subject, "device": device},
        )


def _upload(client: Any, sid: str, token: str, video: Path) -> Any:
    with open(video, "rb") as f:
        return client.post(
            f"/v1/liveness/sessions/{sid}/video",
            headers={"X-Liveness-Token": token},
            files={"video": (video.name, f, "video/mp4")},
        )


@pytest.fixture()
def id_photo(shared_faces: Path) -> Path:
    return shared_faces / "real_photos" / "df_img1.jpg"


def test_session_lifecycle(app_client: Any, api_key: Any, id_photo: Path, faceless_video: Path) -> None:
    key = api_key("scan")
    r = _create(app_client, key, id_photo)
    assert r.status_code == 201, r.text
    body = r.json()
    sid, token = body["session_id"], body["upload_token"]
    # The create answer holds no step: nothing to shop for before the session is started.
    assert set(body) == {"session_id", "expires_at", "upload_token", "capture_url"}
    assert body["capture_url"].startswith(f"/liveness/capture/{sid}#token=")
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=3)

    # The page checks its session with the token only; a wrong token is refused.
    bad = app_client.get(f"/v1/liveness/sessions/{sid}/capture", headers={"X-Liveness-Token": "nope"})
    assert bad.status_code == 403
    page = app_client.get(f"/v1/liveness/sessions/{sid}/capture", headers={"X-Liveness-Token": token})
    assert page.json() == {"session_id": sid, "status": "open", "expires_at": body["expires_at"], "started": False}

    # The decision endpoint needs the API key; the backend sees no script while a step could still be revealed.
    assert app_client.get(f"/v1/liveness/sessions/{sid}").status_code == 401
    pending = app_client.get(f"/v1/liveness/sessions/{sid}", headers=auth(key)).json()
    assert pending["decision"] is None and pending["script"] is None

    up = _upload(app_client, sid, token, faceless_video)
    assert up.status_code == 200, up.text
    assert up.json() == {"session_id": sid, "status": "received"}  # no score, no decision for the page
    assert _upload(app_client, sid, token, faceless_video).status_code == 409  # single use

    d = app_client.get(f"/v1/liveness/sessions/{sid}", headers=auth(key)).json()
    assert d["decision"] == "fail"
    assert any("challenge" in r for r in d["reasons"])
    assert "score" not in d and "signals" not in d
    full = app_client.get(f"/v1/liveness/sessions/{sid}?detail=true", headers=auth(key)).json()
    assert isinstance(full["score"], float) and {s["name"] for s in full["signals"]} >= {"challenge", "flash"}
    # Closed: the backend reads the one script object, with its nonce, as `liveness verify --script` takes it.
    script = ChallengeScript.from_dict(d["script"])
    assert d["script"]["nonce"] and "blink" in script.kinds() and any(k.startswith("profile_") for k in script.kinds())
    page = app_client.get(f"/v1/liveness/sessions/{sid}/capture", headers={"X-Liveness-Token": token}).json()
    assert "score" not in json.dumps(page) and "decision" not in page and page["status"] == "decided"


def _rewind_start(sid: str, seconds: float) -> None:
    """Move the session's start back in time, as if the capture page had been recording `seconds`."""
    from deepshield.liveness.models import LivenessSession
    from deepshield.store.db import session_scope

    with session_scope() as s:
        rec = s.get(LivenessSession, sid)
        assert rec is not None and rec.started_at is not None
        rec.started_at = rec.started_at - dt.timedelta(seconds=seconds)


def test_steps_are_revealed_only_when_due(app_client: Any, api_key: Any, id_photo: Path) -> None:
    key = api_key("scan")
    body = _create(app_client, key, id_photo)
    sid, hdr = body.json()["session_id"], {"X-Liveness-Token": body.json()["upload_token"]}
    url = f"/v1/liveness/sessions/{sid}"
    assert app_client.get(f"{url}/steps/1?nonce=x", headers=hdr).json()["error"] == "not_started"

    start = app_client.post(f"{url}/start", headers=hdr)
    assert start.status_code == 200, start.text
    first = start.json()
    assert set(first) == {"step", "next", "flashes"} and first["step"]["index"] == 0
    assert 5 <= len(first["flashes"]) <= 7 and all(f["end_s"] <= first["step"]["end_s"] for f in first["flashes"])
    nxt = first["next"]
    assert set(nxt) == {"index", "due_s", "nonce"} and nxt["due_s"] == first["step"]["end_s"]
    assert app_client.post(f"{url}/start", headers=hdr).status_code == 409  # the clock starts once

    early = app_client.get(f"{url}/steps/1?nonce={nxt['nonce']}", headers=hdr)
    assert early.status_code == 425 and early.json()["error"] == "step_not_due"
    assert int(early.headers["Retry-After"]) >= 1 and "kind" not in early.text and "instruction" not in early.text
    assert app_client.get(f"{url}/steps/2?nonce={nxt['nonce']}", headers=hdr).status_code == 403  # not its nonce
    assert app_client.get(f"{url}/steps/1?nonce={nxt['nonce']}", headers={"X-Liveness-Token": "x"}).status_code == 403

    _rewind_start(sid, nxt["due_s"] - 0.4)  # within the 0.5 s lead
    got = app_client.get(f"{url}/steps/1?nonce={nxt['nonce']}", headers=hdr).json()
    assert got["step"]["index"] == 1 and got["step"]["start_s"] == nxt["due_s"]
    assert got["next"]["index"] == 2 and got["next"]["due_s"] == got["step"]["end_s"]
    step2 = app_client.get(f"{url}/steps/2?nonce={got['next']['nonce']}", headers=hdr)
    assert step2.status_code == 425  # the one after is still in the future

    # Walk to the end: the steps the page saw are the script the backend reads once the session is closed.
    seen, ref = [first["step"], got["step"]], got["next"]
    _rewind_start(sid, 60)
    while ref is not None:
        r = app_client.get(f"{url}/steps/{ref['index']}?nonce={ref['nonce']}", headers=hdr).json()
        seen.append(r["step"])
        ref = r["next"]
    assert app_client.get(url, headers=auth(key)).json()["script"] is None  # still open
    _create(app_client, key, id_photo)  # same subject: the started session is abandoned
    closed = app_client.get(url, headers=auth(key)).json()
    assert closed["status"] == "abandoned"
    assert [(s["kind"], s["start_s"]) for s in closed["script"]["steps"]] == [(s["kind"], s["start_s"]) for s in seen]
    assert (
        app_client.post(f"{url}/video", headers=hdr, files={"video": ("v.mp4", b"x", "video/mp4")}).status_code == 410
    )


def test_abandoned_sessions_lock_the_subject_and_the_device(app_client: Any, api_key: Any, id_photo: Path) -> None:
    """Shopping for scripts: start a session, look at its steps, open another. The fifth abandoned one locks."""
    key = api_key("scan")
    for _ in range(5):
        body = _create(app_client, key, id_photo, subject="shopper", device="d-7").json()
        r = app_client.post(
            f"/v1/liveness/sessions/{body['session_id']}/start", headers={"X-Liveness-Token": body["upload_token"]}
        )
        assert r.status_code == 200, r.text
    # The fifth was abandoned by this request: locked, and the lockout is stored.
    r = _create(app_client, key, id_photo, subject="shopper", device="d-7")
    assert r.status_code == 429 and r.json()["error"] == "locked_out" and int(r.headers["Retry-After"]) > 60
    assert _create(app_client, key, id_photo, subject="shopper", device="d-8").json()["error"] == "locked_out"
    assert _create(app_client, key, id_photo, subject="other", device="d-7").json()["error"] == "locked_out"
    assert _create(app_client, key, id_photo, subject="other", device="d-8").status_code == 201


def test_expired_sessions_count_toward_the_lockout(app_client: Any, api_key: Any, id_photo: Path) -> None:
    from deepshield.liveness.models import LivenessSession
    from deepshield.store.db import session_scope

    key = api_key("scan")
    ids = [_create(app_client, key, id_photo, subject="idle", device="d-5").json()["session_id"] for _ in range(5)]
    with session_scope() as s:
        for sid in ids:
            rec = s.get(LivenessSession, sid)
            assert rec is not None
            rec.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    r = _create(app_client, key, id_photo, subject="idle", device="d-6")
    assert r.status_code == 429 and r.json()["error"] == "locked_out"
    assert _create(app_client, key, id_photo, subject="new", device="d-5").json()["error"] == "locked_out"


def test_opening_sessions_is_rate_limited(app_client: Any, api_key: Any, id_photo: Path) -> None:
    key = api_key("scan")
    for i in range(5):
        assert _create(app_client, key, id_photo, subject="busy", device=f"d-{i}").status_code == 201
    r = _create(app_client, key, id_photo, subject="busy", device="d-new")
    assert r.status_code == 429 and r.json()["error"] == "rate_limited" and "subject" in r.json()["detail"]
    assert 0 < int(r.headers["Retry-After"]) <= 600
    for i in range(4):
        assert _create(app_client, key, id_photo, subject=f"s-{i}", device="shared").status_code == 201
    r = _create(app_client, key, id_photo, subject="s-9", device="shared")
    assert r.status_code == 201  # the fifth on this device
    r = _create(app_client, key, id_photo, subject="s-10", device="shared")
    assert r.status_code == 429 and "device" in r.json()["detail"]


def test_id_photo_without_a_face_is_refused(app_client: Any, api_key: Any, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    p = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(p)
    r = _create(app_client, api_key("scan"), p)
    assert r.status_code == 422 and r.json()["error"] == "no_face_in_id_photo"


def test_scope_is_required(app_client: Any, api_key: Any, id_photo: Path) -> None:
    assert _create(app_client, api_key("match"), id_photo).status_code == 403


def test_expired_session_refuses_the_upload(
    app_client: Any, api_key: Any, id_photo: Path, faceless_video: Path
) -> None:
    from deepshield.liveness.models import LivenessSession
    from deepshield.store.db import session_scope

    body = _create(app_client, api_key("scan"), id_photo).json()
    with session_scope() as s:
        rec = s.get(LivenessSession, body["session_id"])
        assert rec is not None
        rec.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    r = _upload(app_client, body["session_id"], body["upload_token"], faceless_video)
    assert r.status_code == 410 and r.json()["error"] == "session_expired"


def test_lockout_after_five_failures(app_client: Any, api_key: Any, id_photo: Path, faceless_video: Path) -> None:
    key = api_key("scan")
    for _ in range(5):
        body = _create(app_client, key, id_photo, subject="mallory", device="d-9").json()
        assert _upload(app_client, body["session_id"], body["upload_token"], faceless_video).status_code == 200
    r = _create(app_client, key, id_photo, subject="mallory", device="other-device")
    assert r.status_code == 429 and r.json()["error"] == "locked_out"
    r = _create(app_client, key, id_photo, subject="someone-else", device="d-9")
    assert r.status_code == 429
    assert _create(app_client, key, id_photo, subject="someone-else", device="d-10").status_code == 201


def test_a_broken_upload_does_not_use_up_the_session(
    app_client: Any, api_key: Any, id_photo: Path, tmp_path: Path, faceless_video: Path
) -> None:
    body = _create(app_client, api_key("scan"), id_photo).json()
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(faceless_video.read_bytes()[:2000])
    r = _upload(app_client, body["session_id"], body["upload_token"], bad)
    assert 400 <= r.status_code < 500 and r.status_code != 409, r.text
    assert _upload(app_client, body["session_id"], body["upload_token"], faceless_video).status_code == 200
