"""The sessions API: create with an ID photo, single-use upload with a token, decision for the backend only,
expiry and lockout."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

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
    kinds = [s["kind"] for s in body["script"]["steps"]]
    assert "blink" in kinds and any(k.startswith("profile_") for k in kinds)
    assert body["capture_url"].startswith(f"/liveness/capture/{sid}#token=")
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=3)
    # Two sessions never share a script.
    assert _create(app_client, key, id_photo).json()["script"] != body["script"]

    # The page reads its script with the token only; a wrong token is refused.
    bad = app_client.get(f"/v1/liveness/sessions/{sid}/script", headers={"X-Liveness-Token": "nope"})
    assert bad.status_code == 403
    page = app_client.get(f"/v1/liveness/sessions/{sid}/script", headers={"X-Liveness-Token": token})
    assert page.status_code == 200 and page.json()["script"] == body["script"]

    # The decision endpoint needs the API key.
    assert app_client.get(f"/v1/liveness/sessions/{sid}").status_code == 401
    assert app_client.get(f"/v1/liveness/sessions/{sid}", headers=auth(key)).json()["decision"] is None

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
    page = app_client.get(f"/v1/liveness/sessions/{sid}/script", headers={"X-Liveness-Token": token}).json()
    assert "score" not in json.dumps(page) and "decision" not in page


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
