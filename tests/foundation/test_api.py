"""The service skeleton: health, keys and scopes, scans by upload, limits, bad uploads."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import auth, csrf_token
from tests.foundation.media_factory import hostile_corpus, write_video


def test_healthz_needs_no_key(app_client: Any) -> None:
    r = app_client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_openapi_docs_are_served(app_client: Any) -> None:
    assert app_client.get("/docs").status_code == 200
    spec = app_client.get("/openapi.json").json()
    assert "/v1/scans" in spec["paths"]


def test_scans_require_a_key_with_the_scan_scope(
    app_client: Any, api_key: Callable[..., str], shared_faces: Path
) -> None:
    photo = (shared_faces / "real_photos" / "fr_two_people.jpg").read_bytes()
    files = {"file": ("p.jpg", photo, "image/jpeg")}
    assert app_client.post("/v1/scans", files=files).status_code == 401
    assert app_client.post("/v1/scans", files=files, headers=auth("dsk_wrong")).status_code == 401
    assert app_client.post("/v1/scans", files=files, headers=auth(api_key("match"))).status_code == 403
    r = app_client.post("/v1/scans", files=files, headers=auth(api_key("scan")))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["face_count"] == 2 and body["file"] == "p.jpg"
    # Hashed while streaming to disk, and still the hash of the bytes sent.
    assert body["media"]["sha256"] == hashlib.sha256(photo).hexdigest()
    # The admin scope implies every other scope, and GET returns the stored result.
    g = app_client.get(f"/v1/scans/{body['scan_id']}", headers=auth(api_key("admin")))
    assert g.status_code == 200 and g.json()["status"] == "done"
    assert g.json()["result"]["face_count"] == 2
    rep = app_client.get(f"/v1/scans/{body['scan_id']}/report", headers=auth(api_key("scan")))
    assert rep.status_code == 200 and "Deepshield scan report" in rep.text
    assert app_client.get("/v1/scans/nope", headers=auth(api_key("scan"))).status_code == 404


def test_revoked_key_is_refused(app_client: Any, api_key: Callable[..., str]) -> None:
    from deepshield.accounts.service import list_api_keys, revoke_api_key
    from deepshield.store.db import session_scope

    key = api_key("scan")
    assert app_client.get("/v1/scans/x", headers=auth(key)).status_code == 404
    with session_scope() as s:
        revoke_api_key(s, list_api_keys(s)[-1].id)
    assert app_client.get("/v1/scans/x", headers=auth(key)).status_code == 401


def test_async_scan_reports_progress_then_result(app_client: Any, api_key: Callable[..., str], tmp_path: Path) -> None:
    key = api_key("scan")
    video = write_video(tmp_path / "v.mp4", n=50).read_bytes()
    r = app_client.post("/v1/scans?wait=false", files={"file": ("v.mp4", video, "video/mp4")}, headers=auth(key))
    assert r.status_code == 202
    url = r.json()["status_url"]
    for _ in range(600):
        g = app_client.get(url, headers=auth(key)).json()
        if g["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert g["status"] == "done" and g["progress"] == 1.0
    assert g["result"]["media"]["kind"] == "video" and g["result"]["frames_sampled"] > 0


def test_bad_uploads_get_4xx_with_a_reason(app_client: Any, api_key: Callable[..., str], tmp_path: Path) -> None:
    key = api_key("scan")
    good = write_video(tmp_path / "good.mp4", n=30)
    for name, p in hostile_corpus(tmp_path / "bad", good).items():
        if not p.exists():
            continue
        r = app_client.post(
            "/v1/scans", files={"file": (name, p.read_bytes(), "application/octet-stream")}, headers=auth(key)
        )
        if r.status_code == 200:
            # Damage found only while decoding frames: the scan completes with a typed error.
            assert r.json()["ok"] is False and r.json()["error"]["code"], name
        else:
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert r.json()["detail"], name
    r = app_client.post("/v1/scans", headers=auth(key))
    assert r.status_code == 422


def test_oversized_upload_is_refused_while_streaming(
    ds_home: Path, api_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app
    from deepshield.config import get_settings

    monkeypatch.setenv("DEEPSHIELD_MAX_UPLOAD_BYTES", "100000")
    get_settings.cache_clear()
    app = create_app(get_settings())
    with TestClient(app) as client:
        r = client.post(
            "/v1/scans",
            files={"file": ("big.jpg", b"\xff\xd8\xff" + b"0" * 400_000, "image/jpeg")},
            headers=auth(api_key("scan")),
        )
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert not any((ds_home / "uploads").glob("*")) if (ds_home / "uploads").exists() else True


def test_first_start_creates_admin_once(ds_home: Path) -> None:
    from deepshield.api.app import bootstrap
    from deepshield.config import get_settings

    pw = bootstrap(get_settings())
    assert pw and len(pw) >= 12
    assert bootstrap(get_settings()) is None


def test_web_pages_need_login_and_csrf(app_client: Any) -> None:
    r = app_client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    page = app_client.get("/login")
    assert page.status_code == 200
    # Posting the login form without the CSRF token is refused.
    r = app_client.post("/login", data={"username": "admin", "password": "x"})
    assert r.status_code == 403
    token = csrf_token(page.text)
    r = app_client.post("/login", data={"username": "admin", "password": "wrong", "csrf": token})
    assert r.status_code == 401 and "Wrong user name or password" in r.text
