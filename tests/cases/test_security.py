"""Issue 31: screening fails closed (truncated media, screener errors), concurrent identical uploads are each
screened, out-of-range integers get a 4xx, errors name no server path, the data directory is private, and
pages carry security headers. Real JPEGs through the real decoders, the real app through TestClient."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from deepshield.cases.ports import Finding
from deepshield.config import Settings
from tests.conftest import csrf_token


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
    tok = csrf_token(client.get("/report").text)
    form = {
        "csrf": tok,
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
    r = client.post("/report", data=form, files={"file": ("half.jpg", half, "image/jpeg")})
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
