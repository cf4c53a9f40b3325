"""Issue 31: screening fails closed (truncated media, screener errors), concurrent identical uploads are each
screened, out-of-range integers get a 4xx, errors name no server path, the data directory is private, and
pages carry security headers. Real JPEGs through the real decoders, the real app through TestClient."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from deepshield.cases.ports import Finding
from deepshield.config import Settings
from tests.conftest import csrf_token, report_action


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """SQLite only: these are properties of the service, not of the database."""
    return sqlite_settings


@pytest.fixture
def photo(shared_faces: Path) -> bytes:
    """A real camera JPEG (baseline, 4:2:0) from the shared corpus."""
    return (shared_faces / "real_photos" / "fr_obama_small.jpg").read_bytes()


def _bank(client, key, make_json, data: bytes) -> str:
    """Report, attach and bank `data` through the API, as a platform would; returns the case id."""
    h = key("cases")
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    r = client.post(f"/v1/cases/{cid}/media", files={"file": ("abuse.jpg", data, "image/jpeg")}, headers=h)
    assert r.status_code == 201, r.text
    r = client.post(f"/v1/cases/{cid}/decision", json={"actions": ["remove", "bank"], "reason": "ncii"}, headers=h)
    assert r.status_code == 200, r.text
    return cid


def _screen(client, key, data: bytes, name: str = "up.jpg") -> dict:
    r = client.post("/v1/uploads", files={"file": (name, data, "image/jpeg")}, headers=key("scan"))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("cut", ["eoi", "97%"])
def test_truncated_copy_of_banked_photo_is_not_allowed(api, make_json, photo, cut):
    """`head -c -2` (the end-of-image marker gone) or a 97% prefix still shows the photo in a browser: it is
    hashed from what decodes and matched, never allowed."""
    client, ctx, key = api
    cid = _bank(client, key, make_json, photo)
    data = photo[:-2] if cut == "eoi" else photo[: len(photo) * 97 // 100]
    r = _screen(client, key, data)
    assert r["decision"] in ("block", "review"), r
    assert "pdq" in r["hashes"], "the truncated photo was not hashed perceptually"
    assert any(x["screener"] == "match" and cid in x["reason"] for x in r["reasons"]), r["reasons"]
    if cut == "eoi":
        assert r["decision"] == "block"


def test_half_truncated_photo_goes_to_review_with_the_reason(api, make_json, photo):
    """Half a photo no longer matches by PDQ, but only part of it could be checked: a person decides."""
    client, ctx, key = api
    _bank(client, key, make_json, photo)
    r = _screen(client, key, photo[: len(photo) // 2])
    assert r["decision"] == "review" and r["review_case"], r
    assert any("truncated" in x["reason"] for x in r["reasons"] if x["decision"] == "review"), r["reasons"]


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP"])
def test_a_truncated_png_gif_or_webp_is_never_allowed(api, make_json, photo, fmt):
    """Pillow cannot decode these formats partly without its process-wide truncation flag, which stays off. A
    cut PNG or GIF is probed (marked truncated), not hashed perceptually, and goes to a person; a cut WebP
    cannot even be opened by libwebp's one-shot decoder and is refused as corrupt. Never `allow`."""
    from PIL import Image

    client, ctx, key = api
    buf = io.BytesIO()
    Image.open(io.BytesIO(photo)).convert("RGB").save(buf, fmt)
    data = buf.getvalue()
    _bank(client, key, make_json, data)
    cut = data[: len(data) * 9 // 10]
    if fmt == "WEBP":
        r = client.post("/v1/uploads", files={"file": ("up.webp", cut, "image/webp")}, headers=key("scan"))
        assert r.status_code == 422 and r.json()["error"] == "corrupt_media", r.text
        return
    r = _screen(client, key, cut, name=f"up.{fmt.lower()}")
    assert r["decision"] == "review" and r["review_case"], r
    assert "pdq" not in r["hashes"] and "sha256" in r["hashes"], r["hashes"]
    assert any("perceptual hash" in x["reason"] for x in r["reasons"] if x["decision"] == "review"), r["reasons"]


def test_a_screener_error_fails_closed(api):
    """An error in any screener is `review` with the reason (policy `on_error`), never `allow`."""
    from deepshield.errors import DeepshieldError

    class Broken:
        name = "labels"

        def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
            raise DeepshieldError("label reader crashed")

    class Crashing:
        name = "detector"

        def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
            raise RuntimeError(f"boom in {path}")

    client, ctx, key = api
    ctx.screeners += [Broken(), Crashing()]
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(buf, "JPEG")
    r = _screen(client, key, buf.getvalue())
    assert r["decision"] == "review", r
    by = {x["screener"]: x for x in r["reasons"]}
    assert by["labels"]["decision"] == "review" and "label reader crashed" in by["labels"]["reason"]
    assert by["detector"]["decision"] == "review" and "could not check" in by["detector"]["reason"]
    assert str(ctx.settings.home) not in json.dumps(r), "a server path leaked into the answer"
    # The operator may choose block instead.
    ctx.policy.screening.on_error = "block"
    assert _screen(client, key, buf.getvalue())["decision"] == "block"


def test_half_truncated_jpeg_gets_one_answer_everywhere(api, make_json, photo):
    """Case media, the public form and scans all accept the half-truncated JPEG and decode what a browser
    shows (it used to be 201 on two and `ok: false` on the third)."""
    client, ctx, key = api
    half = photo[: len(photo) // 2]
    h = key("cases")
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    r = client.post(f"/v1/cases/{cid}/media", files={"file": ("half.jpg", half, "image/jpeg")}, headers=h)
    assert r.status_code == 201, r.text
    url = report_action(client.get("/report").text)
    form = {
        "category": "ncii",
        "jurisdiction": "US",
        "content_locations": "https://example.com/p/1",
        "explanation": "a deepfake of me",
        "good_faith": "on",
        "signature": "Jane Roe",
        "reporter_name": "Jane Roe",
        "reporter_email": "jane@example.org",
        "reporter_role": "depicted_person",
    }
    r = client.post(url, data=form, files={"file": ("half.jpg", half, "image/jpeg")})
    assert r.status_code == 201, r.text
    r = client.post("/v1/scans", files={"file": ("half.jpg", half, "image/jpeg")}, headers=key("scan"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True, body.get("error")
    assert body["media"]["extra"].get("truncated") is True


def test_concurrent_identical_uploads_are_each_screened(api, photo):
    """Four parallel uploads of the same bytes: every one is screened on its own file (the first to finish
    used to delete the shared `<sha256>.jpg` under the others)."""

    class Reader:
        """Reads the file it is given after a pause, as the detector does, and reports what it read."""

        name = "reader"

        def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
            time.sleep(0.3)
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except FileNotFoundError:
                return Finding(self.name, "allow", "not scanned: no such file")
            return Finding(self.name, "allow", f"read {digest}")

    client, ctx, key = api
    ctx.screeners.append(Reader())
    headers = key("scan")
    results: list[dict] = []

    def post() -> None:
        r = client.post("/v1/uploads", files={"file": ("same.jpg", photo, "image/jpeg")}, headers=headers)
        results.append(r.json() if r.status_code == 200 else {"status": r.status_code, "body": r.text})

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = f"read {hashlib.sha256(photo).hexdigest()}"
    got = [next((x["reason"] for x in r.get("reasons", []) if x["screener"] == "reader"), r) for r in results]
    assert got == [want] * 4, got
    leftovers = [p.name for p in ctx.settings.uploads_dir.iterdir()]
    assert leftovers == [], leftovers


BIG = 99999999999999999999  # > 2**64: SQLite cannot bind it, PostgreSQL's integer cannot hold it


def test_every_integer_the_api_declares_is_bounded(api):
    """Every integer or number in the OpenAPI paths has a maximum, so none reaches the database unbounded."""
    client, ctx, key = api
    unbounded: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("integer", "number") and not {"maximum", "exclusiveMaximum"} & set(node):
                unbounded.append(where)
            for k, v in node.items():
                if k != "responses":
                    walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(client.get("/openapi.json").json()["paths"], "")
    assert unbounded == [], unbounded


@pytest.mark.parametrize("value", [BIG, 2**63, -1, "soon", 1e400, True])
def test_out_of_range_integers_in_matching_bodies_are_4xx(api, value):
    """`disable_until_ts`, a device hash's `quality` and a bank's threshold and ratio: a clear 4xx, never 500."""
    client, ctx, key = api
    h = key("curate")
    assert client.post("/c/banks", json={"name": "X"}, headers=h).status_code == 201
    eid = client.post("/c/bank/X/signal", json={"pdq": "f" * 64}, headers=h).json()["id"]
    payload = json.dumps({"disable_until_ts": value}).replace("Infinity", "1e400")
    hdr = {**h, "Content-Type": "application/json"}
    r = client.put(f"/c/bank/X/content/{eid}", content=payload, headers=hdr)
    assert 400 <= r.status_code < 500 and "disable_until_ts" in r.text, (r.status_code, r.text)
    payload = json.dumps({"bank": "X", "hashes": [{"pdq": "e" * 64, "quality": value}]}).replace("Infinity", "1e400")
    r = client.post("/v1/match/device-hashes", content=payload, headers=hdr)
    assert 400 <= r.status_code < 500 and "quality" in r.text, (r.status_code, r.text)
    for field in ("threshold", "enabled_ratio"):
        payload = json.dumps({"name": f"Y{field}", field: value}).replace("Infinity", "1e400")
        r = client.post("/c/banks", content=payload, headers=hdr)
        assert 400 <= r.status_code < 500 and field in r.text, (field, r.status_code, r.text)
        r = client.put("/c/bank/X", content=payload, headers=hdr)
        assert 400 <= r.status_code < 500 and field in r.text, (field, r.status_code, r.text)


def test_out_of_range_ids_in_paths_are_4xx(api):
    client, ctx, key = api
    h = key("curate")
    client.post("/c/banks", json={"name": "X"}, headers=h)
    for method in ("GET", "PUT", "DELETE"):
        r = client.request(method, f"/c/bank/X/content/{BIG}", headers=h, json={})
        assert r.status_code == 422, (method, r.status_code, r.text)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/c/bank/X/signal", {"pdq": "f" * 64, "metadata": {"case_id": BIG}}),
        ("/c/bank/X/signal", {"pdq": "f" * 64, "metadata": {"source": BIG, "note": [1]}}),
        ("/v1/match/device-hashes", {"bank": "X", "case_id": BIG, "hashes": [{"pdq": "a" * 64}]}),
        ("/c/banks", {"name": "Z", "description": BIG}),
    ],
)
def test_numbers_where_text_belongs_are_4xx(api, path, body):
    """A huge number in a text field of a free-form body (metadata, case id, description) reached the database
    driver and was a 500."""
    client, ctx, key = api
    h = {**key("curate"), "Content-Type": "application/json"}
    client.post("/c/banks", json={"name": "X"}, headers=h)
    r = client.post(path, content=json.dumps(body), headers=h)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    # HMA's routes answer HMA's error body ({"message"}), ours {"error", "detail"}.
    assert r.json().get("error", "bad_request") == "bad_request" and (r.json().get("message") or r.json()["detail"])


def test_disable_until_ts_after_2038_on_postgresql(tmp_path, postgres_url):
    """A Unix time past 2038 overflowed PostgreSQL's 32-bit column (a 500); the column is 64-bit now (migration
    matching_0002). The API, as HMA, takes at most 5 years ahead: 4102444800 (2100) and 2**63 are a 400."""
    from fastapi.testclient import TestClient

    from deepshield.accounts.service import create_api_key
    from deepshield.api.app import create_app
    from deepshield.store.db import reset_engines, session_scope, upgrade_schema
    from tests.conftest import reset_pg

    reset_engines()
    reset_pg(postgres_url)
    s = Settings(home=tmp_path / "home", database_url=postgres_url)
    s.ensure_dirs()
    upgrade_schema(s)
    try:
        with session_scope(s) as db:
            k, _ = create_api_key(db, ["curate"], "platform")
        h = {"Authorization": f"Bearer {k}"}
        with TestClient(create_app(s)) as client:
            client.post("/c/banks", json={"name": "X"}, headers=h)
            eid = client.post("/c/bank/X/signal", json={"pdq": "f" * 64}, headers=h).json()["id"]
            soon = int(time.time()) + 86400
            r = client.put(f"/c/bank/X/content/{eid}", json={"disable_until_ts": soon}, headers=h)
            assert r.status_code == 200 and r.json()["disable_until_ts"] == soon, r.text
            for far in (4102444800, 2**63):
                r = client.put(f"/c/bank/X/content/{eid}", json={"disable_until_ts": far}, headers=h)
                assert r.status_code == 400 and "disable_until_ts" in r.json()["message"], r.text
            with session_scope(s) as db:  # the 64-bit column itself still holds a time after 2038
                from deepshield.matching.banks import set_entry_disabled_until

                assert set_entry_disabled_until(db, eid, 4102444800).disable_until_ts == 4102444800
    finally:
        reset_engines()


def test_errors_name_the_users_file_never_a_server_path(api, make_json, tmp_path):
    """Bad uploads to every upload route: the answer names the file as the user sent it, never the data
    directory, the uploads folder or a temporary `upload-*.part` name."""
    from tests.foundation.media_factory import hostile_corpus, write_video

    client, ctx, key = api
    h = key("admin")
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    client.post("/c/banks", json={"name": "X"}, headers=h)
    corpus = hostile_corpus(tmp_path / "hostile", write_video(tmp_path / "good.mp4", n=20))
    corpus["good.mp4"] = tmp_path / "good.mp4"  # a scan result must not name the stored file either
    routes = ["/v1/scans", "/v1/uploads", f"/v1/cases/{cid}/media", "/h/hash", "/c/bank/X/content"]
    leaks = []
    for name, path in corpus.items():
        if not path.exists():
            continue
        for route in routes:
            field = "photo" if route.startswith(("/h/", "/c/")) else "file"
            r = client.post(route, files={field: (f"mine-{name}", path.read_bytes())}, headers=h)
            text = r.text
            if r.status_code >= 500 or any(
                s in text for s in (str(ctx.settings.home), "upload-", ".part", str(tmp_path), "/tmp/")
            ):
                leaks.append((route, name, r.status_code, text[:300]))
            elif r.status_code >= 400:
                body = r.json()
                assert body.get("detail") or body.get("message"), (route, name, text)  # a reason, in JSON
    assert leaks == [], "\n".join(map(str, leaks))


def test_data_directory_and_database_are_private(tmp_path):
    """Reporters' names, emails and explanations and the reported media: the data directory is created 0700
    and the SQLite database (and its WAL files) 0600, whatever the umask."""
    from deepshield.store.db import reset_engines, session_scope, upgrade_schema

    old = os.umask(0o022)
    reset_engines()
    try:
        s = Settings(home=tmp_path / "fresh" / "home", database_url=None)
        s.ensure_dirs()
        upgrade_schema(s)
        with session_scope(s) as db:  # a write, so the WAL files exist
            from deepshield.accounts.service import create_api_key

            create_api_key(db, ["scan"], "p")
        assert stat.S_IMODE(s.home.stat().st_mode) == 0o700
        files = [p for p in s.home.iterdir() if p.name.startswith("deepshield.db")]
        assert files and {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
    finally:
        reset_engines()
        os.umask(old)


def test_a_loose_database_from_an_earlier_version_is_tightened(tmp_path):
    from deepshield.store.db import reset_engines, upgrade_schema

    home = tmp_path / "home"
    home.mkdir()
    db = home / "deepshield.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    reset_engines()
    try:
        upgrade_schema(Settings(home=home, database_url=None))
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        reset_engines()


def _csp(r) -> dict[str, str]:
    return {d.split()[0]: d for d in (x.strip() for x in r.headers.get("content-security-policy", "").split(";")) if d}


def test_pages_carry_security_headers_and_no_inline_script(api, settings):
    """Console and public pages: a CSP with no inline script (so an injected one would not run), no framing
    (clickjacking), nosniff, no referrer (case numbers are in status URLs). Each page is checked for inline
    scripts and event handlers, which the CSP would block."""
    import re

    from .conftest import login

    client, ctx, key = api
    pages = ["/report", "/case-status", "/login", "/static/hash-photos.html"]
    login(client, settings, "rev", "reviewer")
    pages += ["/console", "/"]
    for page in pages:
        r = client.get(page)
        assert r.status_code == 200, (page, r.status_code)
        assert r.headers.get("x-content-type-options") == "nosniff", page
        assert r.headers.get("x-frame-options") == "DENY", page
        assert r.headers.get("referrer-policy") == "no-referrer", page
        csp = _csp(r)
        assert csp.get("frame-ancestors") == "frame-ancestors 'none'", (page, csp)
        assert csp.get("script-src") == "script-src 'self'", (page, csp)
        assert csp.get("object-src") == "object-src 'none'" and csp.get("base-uri") == "base-uri 'none'", page
        inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", r.text)
        handlers = re.findall(r"<[^>]+\son[a-z]+\s*=", r.text)
        assert not inline and not handlers, (page, inline, handlers)
    # JSON answers are not sniffed or framed either.
    r = client.get("/healthz")
    assert r.headers.get("x-content-type-options") == "nosniff" and r.headers.get("x-frame-options") == "DENY"


def test_scan_reports_are_self_contained_under_a_strict_csp(api):
    """A report is inline data only: its CSP allows data: images and inline styles and nothing else, served
    and (as a meta tag) when the file is opened from disk."""
    client, ctx, key = api
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 90)).save(buf, "JPEG")
    h = key("scan")
    sid = client.post("/v1/scans", files={"file": ("a.jpg", buf.getvalue(), "image/jpeg")}, headers=h).json()
    r = client.get(f"/v1/scans/{sid['scan_id']}/report", headers=h)
    assert r.status_code == 200
    csp = _csp(r)
    assert csp["default-src"] == "default-src 'none'" and csp["img-src"] == "img-src data:", csp
    assert csp["frame-ancestors"] == "frame-ancestors 'none'" and "script-src" not in csp, csp
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'' in r.text


def _sign_in(client, settings: Settings, username: str = "rev") -> None:
    from .conftest import login

    login(client, settings, username, "reviewer")
    assert client.get("/console", follow_redirects=False).status_code == 200


def test_logout_ends_the_session_on_the_server(api, settings):
    """A copy of the cookie taken before logout opens nothing afterwards: the session is revoked in the
    database, not only cleared in the browser."""
    client, ctx, key = api
    _sign_in(client, settings)
    stolen = dict(client.cookies)
    page = client.get("/console").text
    r = client.post("/logout", data={"csrf": csrf_token(page)}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.clear()
    for name, value in stolen.items():
        client.cookies.set(name, value)
    assert client.get("/console", follow_redirects=False).status_code == 303  # to /login
    assert client.get("/v1/cases").status_code == 401


@pytest.mark.parametrize("expiry", ["idle", "absolute"])
def test_sessions_expire_when_idle_and_after_a_maximum(api, settings, expiry):
    """Idle for longer than `session_idle_minutes`, or older than `session_max_hours` however active: signed
    out (the times are moved back in the database; the cookie itself is still valid)."""
    import datetime as dt

    from sqlalchemy import select

    from deepshield.accounts.models import WebSession
    from deepshield.store.db import session_scope
    from deepshield.store.timeutil import utcnow

    client, ctx, key = api
    _sign_in(client, settings)
    with session_scope(settings) as s:
        rows = list(s.scalars(select(WebSession)))
        assert len(rows) == 1
        if expiry == "idle":
            rows[0].last_seen_at = utcnow() - dt.timedelta(minutes=settings.session_idle_minutes + 1)
        else:  # active a moment ago, but signed in longer ago than the maximum
            rows[0].created_at = utcnow() - dt.timedelta(hours=settings.session_max_hours, minutes=1)
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert client.get("/v1/cases").status_code == 401


def test_login_is_throttled_per_account_and_per_client(api, settings):
    """Password guessing: after 10 wrong passwords for one account, or 20 from one client, sign-in answers
    429 without checking the password (the right password too, until the window passes)."""
    from deepshield.accounts.service import create_user
    from deepshield.cases.ratelimit import LOGIN_ACCOUNT, LOGIN_CLIENT
    from deepshield.store.db import session_scope

    client, ctx, key = api  # the fixture starts with empty limiters
    with session_scope(settings) as s:
        create_user(s, "victim", "right-password", "reviewer")

    def attempt(user: str, pw: str) -> int:
        tok = csrf_token(client.get("/login").text)
        data = {"username": user, "password": pw, "csrf": tok, "next": "/console"}
        return client.post("/login", data=data, follow_redirects=False).status_code

    codes = [attempt("victim", f"guess-{i}") for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
    assert attempt("victim", "right-password") == 429
    # Other accounts from the same client: 10 more failures reach the per-client limit (20), then 429.
    others = [attempt(f"nobody{i}", "x") for i in range(12)]
    assert others[:10] == [401] * 10 and others[10:] == [429] * 2, others
    LOGIN_ACCOUNT._hits.clear()
    LOGIN_CLIENT._hits.clear()
    assert attempt("victim", "right-password") == 303


def test_the_policy_cannot_make_screening_fail_open():
    """`screening.on_error` is review or block: a cases.json asking for allow is refused when loaded."""
    from deepshield.cases.policy import CasesPolicy, PolicyError

    assert CasesPolicy.from_dict({}).screening.on_error == "review"
    assert CasesPolicy.from_dict({"screening": {"on_error": "block"}}).screening.on_error == "block"
    with pytest.raises(PolicyError, match="on_error"):
        CasesPolicy.from_dict({"screening": {"on_error": "allow"}})


def test_the_first_start_admin_password_must_be_changed_at_first_sign_in(settings):
    """The one-time password printed at first start opens only the page that replaces it: the console and the
    API answer 'change it first' until then, and afterwards the one-time password no longer works."""
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app
    from deepshield.cases.ratelimit import LOGIN_ACCOUNT, LOGIN_CLIENT

    LOGIN_ACCOUNT._hits.clear()
    LOGIN_CLIENT._hits.clear()
    app = create_app(settings)
    once = app.state.first_admin_password
    assert once
    with TestClient(app) as client:

        def sign_in(pw: str) -> int:
            tok = csrf_token(client.get("/login").text)
            data = {"username": "admin", "password": pw, "csrf": tok, "next": "/console"}
            return client.post("/login", data=data, follow_redirects=False).status_code

        assert sign_in(once) == 303
        r = client.get("/console", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/account/password"), r.headers
        assert client.get("/v1/cases").status_code == 403
        page = client.get("/account/password")
        assert page.status_code == 200 and "one-time password" in page.text
        bad = {"csrf": csrf_token(page.text), "current": once, "new": "short", "repeat": "short"}
        assert client.post("/account/password", data=bad).status_code == 422
        new = "a much better passphrase"
        good = {"csrf": csrf_token(page.text), "current": once, "new": new, "repeat": new}
        r = client.post("/account/password", data=good, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert client.get("/console", follow_redirects=False).status_code == 200
        assert client.get("/v1/cases").status_code == 200
        client.cookies.clear()
        assert sign_in(once) == 401
        assert sign_in(new) == 303


def test_the_console_cookie_alone_cannot_change_state_through_the_api(api, settings, make_json):
    """Issue 31 point 6: another site's form or script can make a signed-in reviewer's browser send the
    cookie, but not the session's CSRF token. Cookie alone: 403 and nothing decided; cookie with the token
    (as the console's scripts send it) or an API key: works; reads with the cookie stay open."""
    from deepshield.cases.models import Case
    from deepshield.store.db import session_scope

    from .conftest import login

    client, ctx, key = api
    cid = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()["case_id"]
    tok = login(client, settings, "rev", "reviewer")
    decision = {"actions": ["remove"], "reason": "ncii"}
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        r = client.post(f"/v1/cases/{cid}/decision", json=decision, headers=headers)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"], r.text
    assert "X-CSRF-Token" in client.put("/c/bank/anything", json={}).json()["message"]  # any unsafe method (HMA body)
    with session_scope(settings) as s:
        case = s.get(Case, cid)
        assert case is not None and case.decision is None
    assert client.get(f"/v1/cases/{cid}").status_code == 200
    assert client.get("/account/csrf").json() == {"csrf_token": tok}
    r = client.post(f"/v1/cases/{cid}/review", headers={"X-CSRF-Token": tok})
    assert r.status_code == 200 and r.json()["state"] == "in_review", r.text
    r = client.post(f"/v1/cases/{cid}/decision", json=decision, headers=key("cases"))
    assert r.status_code == 200 and r.json()["actions"] == ["remove"], r.text


_CHUNK = 64 * 1024
_MULTIPART = {"Content-Type": "multipart/form-data; boundary=B"}


def _asgi_post(app, url: str, client: tuple[str, int] = ("127.0.0.1", 123), **kwargs):
    """POST straight into the ASGI app from `client` (TestClient reads a streamed body whole before the app
    sees it, and always comes from "testclient")."""
    import asyncio

    import httpx2 as httpx

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(url, **kwargs)

    return asyncio.run(post())


def _stream_post(app, url: str, total: int, headers: dict[str, str]) -> tuple[int, dict, int]:
    """POST a chunked multipart body of `total` bytes (no Content-Length), which the app pulls chunk by chunk
    as it reads; returns the status, the JSON answer and the bytes the app took."""
    taken = 0

    async def body():
        nonlocal taken
        head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
        head += b"Content-Type: image/jpeg\r\n\r\n\xff\xd8"
        taken += len(head)
        yield head
        while taken < total:
            taken += _CHUNK
            yield b"\x00" * _CHUNK

    r = _asgi_post(app, url, content=body(), headers={**_MULTIPART, **headers})
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    return r.status_code, answer, taken


def _cookie(client) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}


@contextlib.contextmanager
def _app_with(settings: Settings, **update):
    """The app on `settings` changed by `update`, running (its lifespan started), with an admin key."""
    from fastapi.testclient import TestClient

    from deepshield.accounts.service import create_api_key
    from deepshield.api.app import create_app
    from deepshield.cases.context import CasesContext
    from deepshield.store.db import session_scope

    from .fakes import MemoryHashBank

    changed = settings.model_copy(update=update)
    ctx = CasesContext.build(changed, bank=MemoryHashBank(), screeners=[], start_worker=False)
    app = create_app(changed, cases=ctx)
    with session_scope(changed) as s:
        k, _ = create_api_key(s, ["admin"], "platform")
    with TestClient(app) as client:
        yield app, client, {"Authorization": f"Bearer {k}"}


@pytest.fixture
def small_limit_app(settings):
    """The app with a 256 KiB upload limit (a chunked body over it costs little to send)."""
    with _app_with(settings, max_upload_bytes=256 * 1024) as running:
        yield running


UPLOAD_ROUTES = [
    "/v1/scans",
    "/v1/uploads",
    "/v1/cases/{cid}/media",
    "/v1/liveness/sessions",
    "/v1/labels",
    "/h/hash",
    "/c/bank/B/content",
    "/c/bank/B/import",
    "/upload",
    "/report",
]


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
def test_an_oversize_chunked_body_gets_413_on_every_upload_route(small_limit_app, make_json, route):
    """Issue 31 point 7: with no Content-Length to refuse up front, the limit is met while the body streams
    in; FastAPI's form parser turned that into its own 400 'error parsing the body'. Now: 413 with the
    limit, and the rest of the body is not read."""
    app, client, key = small_limit_app
    cid = client.post("/v1/reports", json=make_json(), headers=key).json()["case_id"]
    assert client.post("/c/banks", json={"name": "B"}, headers=key).status_code == 201
    url, headers = route.format(cid=cid), dict(key)
    if route == "/report":
        url, headers = report_action(client.get("/report").text), _cookie(client)
    total = 4 * 1024 * 1024
    status, answer, taken = _stream_post(app, url, total, headers)
    hma = route.startswith(("/h/", "/c/"))  # HMA's routes answer HMA's error body
    assert status == 413 and (set(answer) == {"message"} if hma else answer["error"] == "media_too_large"), answer
    assert taken < total


def test_the_report_form_refuses_a_forged_or_flooding_post_before_reading_its_body(api):
    """Issue 31 point 7: the anonymous form checks its CSRF token (in the action URL) and the per-client rate
    limit before it reads the body, so a forged post, or the eleventh in ten minutes, of a large file is
    refused without taking in a byte of it (the app used to read it all, then answer 403)."""
    from deepshield.cases.ratelimit import FORM

    client, ctx, key = api
    good = report_action(client.get("/report").text)
    total = 20 * 1024 * 1024
    for url, cookie in (("/report?csrf=forged", _cookie(client)), (good, {}), ("/report", _cookie(client))):
        status, answer, taken = _stream_post(client.app, url, total, cookie)
        assert status == 403 and "CSRF" in answer["detail"] and taken == 0, (url, status, answer, taken)
    for _ in range(FORM.limit):
        FORM.hit("127.0.0.1")  # the transport's client address
    status, _, taken = _stream_post(client.app, good, total, _cookie(client))
    assert status == 429 and taken == 0


_SELF = "/v1/selfservice/status"


def _pin_from(app, ip: str, case_id: str, pin: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    r = _asgi_post(app, _SELF, client=(ip, 40000), json={"case_id": case_id, "pin": pin}, headers=headers or {})
    return r.status_code, r.json()


def test_a_pin_guesser_locks_out_itself_not_the_victim(api, make_json):
    """Issue 31 point 9: wrong PINs lock the case out for the client that sent them, so a stranger who knows
    the case number cannot keep the victim out (it used to lock the case for everyone, up to 10.7 days). An
    IPv6 guesser counts as its /64, and each client is also limited across case numbers."""
    client, ctx, key = api
    rec = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()
    cid, pin = rec["case_id"], rec["pin"]
    guesses = [_pin_from(client.app, "203.0.113.9", cid, f"{i:07d}")[0] for i in range(6)]
    assert guesses == [404] * 5 + [429]
    status, body = _pin_from(client.app, "198.51.100.7", cid, pin)
    assert status == 200 and body["case_id"] == cid, body  # the victim, elsewhere, gets in
    status, body = _pin_from(client.app, "203.0.113.9", cid, pin)
    assert status == 429 and "from your connection" in body["detail"]  # locked out, even with the right PIN
    v6 = [_pin_from(client.app, f"2001:db8::{i:x}", cid, "0")[0] for i in range(6)]
    assert v6 == [404] * 5 + [429]
    others = [_pin_from(client.app, "203.0.113.9", f"DS-AAAA-{i:04d}", "0") for i in range(4)]
    assert [s for s, _ in others] == [404, 404, 404, 429] and "too many requests" in others[-1][1]["detail"]


def test_the_pin_lockout_is_at_most_an_hour(api, make_json):
    """However long a guesser keeps at it, each lockout ends within PIN_LOCK_MAX (an hour)."""
    import datetime as dt

    from sqlalchemy import select

    from deepshield.cases import pins
    from deepshield.cases.models import PinAttempt
    from deepshield.store.db import session_scope
    from deepshield.store.timeutil import as_utc, utcnow

    client, ctx, key = api
    cid = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()["case_id"]
    now, waits = utcnow(), []
    for _ in range(30):
        with session_scope(ctx.settings) as s:
            assert pins.check_pin(s, ctx.settings, cid, "wrong", "203.0.113.9", now=now) is None
            locked = as_utc(s.scalar(select(PinAttempt.locked_until)))
        waits.append(locked - now if locked else dt.timedelta(0))
        now = (locked or now) + dt.timedelta(seconds=1)
    assert waits[:4] == [dt.timedelta(0)] * 4 and waits[4] == dt.timedelta(minutes=15)
    assert max(waits) == waits[-1] == dt.timedelta(hours=1)


def test_an_unknown_case_number_and_a_wrong_pin_get_the_same_answers(api, make_json, monkeypatch):
    """Issue 31 point 9: the answers (status and body, on the API and the status page) do not tell whether a
    case number exists (an unknown one was always 404, a real one turned 429), and both check a PIN hash."""
    from deepshield.cases import pins
    from deepshield.cases.ratelimit import PIN

    client, ctx, key = api
    cid = client.post("/v1/reports", json=make_json(), headers=key("cases")).json()["case_id"]
    unknown = "DS-ZZZZ-ZZZZ"
    monkeypatch.setattr(PIN, "limit", 1000)
    hashed: list[str] = []
    real_hash = pins.pin_hash

    def counting_hash(secret: bytes, case_id: str, pin: str) -> str:
        hashed.append(case_id)
        return real_hash(secret, case_id, pin)

    monkeypatch.setattr(pins, "pin_hash", counting_hash)
    page = client.get("/case-status").text
    tok = csrf_token(page)
    forms = [client.post("/case-status", data={"csrf": tok, "case_id": n, "pin": "1234567"}) for n in (cid, unknown)]
    assert [r.status_code for r in forms] == [401, 401]
    assert all("Unknown case number or wrong PIN." in r.text for r in forms)

    def answers(number: str) -> list[tuple[int, dict]]:
        return [(r.status_code, r.json()) for r in (client.post(_SELF, json={"case_id": number, "pin": "1234567"}),)]

    known_seq = [a for _ in range(6) for a in answers(cid)]
    unknown_seq = [a for _ in range(6) for a in answers(unknown)]
    assert known_seq == unknown_seq
    assert [s for s, _ in known_seq] == [404] * 4 + [429] * 2
    assert hashed.count(cid) == hashed.count(unknown) == 5  # a hash check for each guess not locked out


def test_forwarded_for_counts_only_from_a_configured_proxy(settings, monkeypatch):
    """Issue 31 point 9: X-Forwarded-For names the client only when the connection comes from a proxy in
    `forwarded_allow_ips`; from anyone else a rotating header does not escape the per-client limit."""
    from deepshield.cases.ratelimit import PIN

    monkeypatch.setattr(PIN, "limit", 3)
    PIN._hits.clear()
    with _app_with(settings, forwarded_allow_ips="10.0.0.1") as (app, _, _key):

        def codes(peer: str, forwarded: list[str]) -> list[int]:
            return [_pin_from(app, peer, "DS-ZZZZ-ZZZZ", "0", {"X-Forwarded-For": f})[0] for f in forwarded]

        assert codes("10.0.0.1", [f"198.51.100.{i}" for i in range(5)]) == [404] * 5  # five clients
        assert codes("10.0.0.1", ["198.51.100.99"] * 4) == [404] * 3 + [429]  # one client
        assert codes("10.0.0.2", [f"198.51.100.{i}" for i in range(4)]) == [404] * 3 + [429]  # not a proxy


def test_the_server_believes_no_forwarded_for_by_default(settings):
    """`deepshield serve` with no proxy configured: uvicorn's default believed X-Forwarded-For from 127.0.0.1
    (any local proxy or process), so rotating the header escaped the per-client PIN limit."""
    import urllib.error
    import urllib.request

    from deepshield.store.db import reset_engines

    from .conftest import Server

    reset_engines()
    server = Server(settings, extra_env={"DEEPSHIELD_PIN_RATE": "3/600"}).start()
    codes = []
    try:
        for i in range(5):
            req = urllib.request.Request(
                server.url + _SELF,
                data=json.dumps({"case_id": "DS-ZZZZ-ZZZZ", "pin": "0"}).encode(),
                headers={"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{i}"},
                method="POST",
            )
            try:
                urllib.request.urlopen(req, timeout=30).close()
                codes.append(200)
            except urllib.error.HTTPError as e:
                codes.append(e.code)
    finally:
        server.stop()
    assert codes == [404] * 3 + [429] * 2


# ---------------------------------------------------------------------------------------------- issue 31 point 13


def _declared_error_schemas(spec: dict, path: str, method: str, status: int) -> list[dict]:
    """The schemas a declared error answer may have (one, or HMA's and ours on HMA's routes)."""
    schema = spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    refs = [s["$ref"] for s in schema.get("anyOf", [schema])]
    return [spec["components"]["schemas"][ref.rsplit("/", 1)[1]] for ref in refs]


def _matches(body: dict, schema: dict) -> bool:
    """The `Error` schema's contract, checked by hand: exactly the required keys, `detail` a string or a list
    of {loc, msg}."""
    if set(schema["required"]) - set(body) or not isinstance(body["error"], str):
        return False
    detail = body["detail"]
    return isinstance(detail, str) or all({"loc", "msg"} <= set(item) for item in detail)


@pytest.mark.parametrize(
    ("method", "path", "status", "scope"),
    [
        ("post", "/v1/reports", 422, "cases"),  # a body of the wrong shape
        ("post", "/c/banks", 401, None),  # no key
        ("post", "/c/banks", 403, "scan"),  # a key without the scope
        ("get", "/v1/cases/{case_id}", 404, "cases"),
    ],
)
def test_error_bodies_match_the_declared_schema(api, method, path, status, scope):
    """Every operation declares its 4xx answers with the one `Error` schema, and the answers have that shape
    (the 422 used to declare FastAPI's `HTTPValidationError` while `{"error", "detail"}` was sent)."""
    client, ctx, key = api
    spec = client.get("/openapi.json").json()
    *hma, schema = _declared_error_schemas(spec, path, method, status)
    assert schema["required"] == ["error", "detail"]
    r = client.request(method.upper(), path.format(case_id="nope"), json=[1], headers=key(scope) if scope else {})
    assert r.status_code == status, r.text
    if path.startswith("/c/"):  # HMA's routes: HMA's {"message"}, ours with ?format=deepshield
        assert [s["required"] for s in hma] == [["message"]] and set(r.json()) == {"message"}, r.json()
        r = client.request(method.upper(), path + "?format=deepshield", json=[1], headers=key(scope) if scope else {})
    assert _matches(r.json(), schema), r.json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_good_faith_must_be_a_json_boolean(api, make_json, value):
    """`good_faith: 0` was read as false and `1` or "true" as a good-faith statement: only true or false
    count, on the report and on the info a platform adds later."""
    client, ctx, key = api
    h = key("cases")
    r = client.post("/v1/reports", json={**make_json(), "good_faith": value}, headers=h)
    assert r.status_code == 422 and "good_faith" in r.text, r.text
    cid = client.post("/v1/reports", json=make_json(), headers=h).json()["case_id"]
    if value is not None:  # null means "unchanged" on the info route
        r = client.post(f"/v1/cases/{cid}/info", json={"good_faith": value}, headers=h)
        assert r.status_code == 422 and "good_faith" in r.text, r.text


@pytest.mark.parametrize("field", ["enabled", "is_negative"])
def test_bank_flags_must_be_json_booleans(api, field):
    """HMA bank flags: `"enabled": 0` or `"false"` was a Python truth value ("false" enabled the bank)."""
    client, ctx, key = api
    h = key("curate")
    assert client.post("/c/banks", json={"name": "X"}, headers=h).status_code == 201
    for value in (0, "false"):
        r = client.post("/c/banks", json={"name": "Y", field: value}, headers=h)
        assert r.status_code == 400 and field in r.text, r.text
        r = client.put("/c/bank/X", json={field: value}, headers=h)
        assert r.status_code == 400 and field in r.text, r.text
    assert client.put("/c/bank/X", json={field: False}, headers=h).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/h/hash", "GET, POST, HEAD"),
        ("DELETE", "/m/lookup", "GET, POST, HEAD"),
        ("DELETE", "/c/banks", "GET, POST, HEAD"),
        ("PATCH", "/c/bank/X", "GET, PUT, DELETE, HEAD"),
        ("POST", "/c/bank/X/content/1", "GET, PUT, DELETE, HEAD"),
        ("OPTIONS", "/v1/cases", "GET, HEAD"),
        ("PUT", "/static/confirm.js", "GET, HEAD"),  # a mounted app keeps its own
    ],
)
def test_405_lists_every_method_of_the_path(api, method, path, allowed):
    """A path served by several routes advertised only the first route's methods in `Allow`."""
    client, ctx, key = api
    r = client.request(method, path, headers=key("admin"))
    assert r.status_code == 405
    assert r.headers["allow"] == allowed
    hma = path.startswith(("/h/", "/m/", "/c/"))  # HMA's routes answer HMA's error body
    assert r.json() == {"message": "Method Not Allowed"} if hma else r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_non_finite_json_numbers_are_refused_wherever_they_are(api, make_json, number):
    """`matching_enabled_ratio: 1e400` (a key the bank routes do not read) was silently dropped; any number no
    float holds is now a 422 naming where it is, on every JSON route."""
    client, ctx, key = api
    hdr = {**key("admin"), "Content-Type": "application/json"}
    r = client.post("/c/banks", content=f'{{"name": "Z", "matching_enabled_ratio": {number}}}', headers=hdr)
    assert r.status_code == 422 and "matching_enabled_ratio" in r.json()["message"], r.text  # HMA's body
    assert client.get("/c/bank/Z", headers=hdr).status_code == 404
    body = json.dumps(make_json())[:-1] + f', "extra": [1, {{"x": {number}}}]}}'
    r = client.post("/v1/reports", content=body, headers=hdr)
    assert r.status_code == 422 and r.json() == {
        "error": "invalid_number",
        "detail": "extra.1.x: numbers must be finite (1e400, Infinity and NaN are not)",
    }
    assert client.post("/c/banks", json={"name": "Z", "enabled_ratio": 0.5}, headers=hdr).status_code == 201


@pytest.mark.parametrize("bad", ["0x" + "f" * 62, "-" + "f" * 63, "+" + "f" * 63, "f_" * 31 + "ff"])
def test_hashes_are_hex_digits_only(api, bad):
    """`int(v, 16)` took a sign, `0x` and `_` as hex: such a PDQ hash was banked (and a device hash with it)."""
    client, ctx, key = api
    h = key("curate")
    assert client.post("/c/banks", json={"name": "X"}, headers=h).status_code == 201
    r = client.post("/c/bank/X/signal", json={"pdq": bad}, headers=h)
    assert r.status_code == 400 and "hexadecimal" in r.text, r.text
    r = client.post("/v1/match/device-hashes", json={"bank": "X", "hashes": [{"pdq": bad}]}, headers=h)
    assert r.status_code == 400 and "hexadecimal" in r.text, r.text
    assert client.post("/c/bank/X/signal", json={"pdq": " " + "F" * 64 + "\n"}, headers=h).status_code == 200
