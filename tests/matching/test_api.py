"""The HMA-compatible HTTP API: same paths, parameters and shapes, behind API-key scopes."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

H = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
H_NEAR = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b2d"  # 4 bits away


def test_auth_required(match_client: Any, match_key: Any) -> None:
    assert match_client.get("/c/banks").status_code == 401
    headers = match_key("match")
    assert match_client.get("/c/banks", headers=headers).status_code == 403
    assert (
        match_client.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": H}, headers=headers).status_code
        == 200
    )


def test_curate_and_lookup_shapes(match_client: Any, match_key: Any, real_photos: list[Path]) -> None:
    c = match_client
    cur = match_key("curate")
    m = match_key("match")
    r = c.post("/c/banks", json={"name": "TEST_BANK", "enabled": True}, headers=cur)
    assert r.status_code == 201 and r.json()["name"] == "TEST_BANK" and r.json()["matching_enabled_ratio"] == 1.0
    assert c.post("/c/banks", json={"name": "TEST_BANK"}, headers=cur).status_code == 403  # as HMA
    assert [b["name"] for b in c.get("/c/banks", headers=cur).json()] == ["TEST_BANK"]
    r = c.post(
        "/c/bank/TEST_BANK/signal",
        json={"pdq": H, "metadata": {"case_id": "CASE1", "source": "t"}},
        headers=cur,
    )
    assert r.status_code == 200 and r.json()["signals"] == {"pdq": H}
    cid = r.json()["id"]

    # raw_lookup: ids, or {bank_content_id, distance} with include_distance.
    r = c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": H_NEAR}, headers=m)
    assert r.json() == {"matches": [cid]}
    r = c.get(
        "/m/raw_lookup",
        params={"signal_type": "pdq", "signal": H_NEAR, "include_distance": "true"},
        headers=m,
    )
    assert r.json() == {"matches": [{"bank_content_id": cid, "distance": "4"}]}
    # lookup with signal_type: {bank: [match]} and the entry's metadata.
    r = c.get("/m/lookup", params={"signal_type": "pdq", "signal": H_NEAR}, headers=m).json()
    assert list(r) == ["TEST_BANK"] and r["TEST_BANK"][0]["bank_content_id"] == cid
    assert r["TEST_BANK"][0]["entry"]["case_id"] == "CASE1"
    # compare
    r = c.post("/m/compare", json={"pdq": [H, H_NEAR]}, headers=m).json()
    assert r == {"pdq": [True, {"distance": 4}]}
    assert c.post("/m/compare", json={"pdq": [H]}, headers=m).status_code == 400

    # Content by upload (field name = content type), then lookup by upload of a re-encoded copy.
    photo = real_photos[4].read_bytes()
    r = c.post("/c/bank/TEST_BANK/content", files={"photo": ("p.jpg", photo, "image/jpeg")}, headers=cur)
    assert r.status_code == 200 and set(r.json()["signals"]) == {"pdq", "md5", "sha256"}
    photo_id = r.json()["id"]
    buf = io.BytesIO()
    ImageOps.exif_transpose(Image.open(real_photos[4])).convert("RGB").resize((300, 300)).save(buf, "JPEG", quality=50)
    r = c.post("/m/lookup", files={"photo": ("q.jpg", buf.getvalue(), "image/jpeg")}, headers=m).json()
    assert [x["bank_content_id"] for x in r["pdq"]["TEST_BANK"]] == [photo_id] and r["md5"] == {}
    r = c.post("/h/hash", files={"photo": ("p.jpg", photo, "image/jpeg")}, headers=m).json()
    assert set(r) == {"pdq", "md5", "sha256"} and len(r["pdq"]) == 64
    # A JPEG sent as a video: HMA hashes it with the video signals that can read it (the bytes' MD5).
    r = c.post("/h/hash", files={"video": ("p.jpg", photo, "image/jpeg")}, headers=m)
    assert r.status_code == 200 and set(r.json()) == {"video_md5", "sha256"}

    r = c.get(f"/c/bank/TEST_BANK/content/{cid}", params={"include_signals": "true"}, headers=cur).json()
    assert r["id"] == cid and r["signals"] == {"pdq": H} and r["bank"]["name"] == "TEST_BANK"
    # Disable one entry, then delete: both visible to the next lookup.
    assert (
        c.put(
            f"/c/bank/TEST_BANK/content/{cid}", json={"disable_until_ts": int(time.time()) + 86400}, headers=cur
        ).status_code
        == 200
    )
    assert c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": H}, headers=m).json() == {"matches": []}
    assert c.delete(f"/c/bank/TEST_BANK/content/{cid}", headers=cur).json() == {"deleted": 1}
    status = c.get("/m/index/status", headers=m).json()
    assert status["pdq"]["present"] and status["pdq"]["size"] == 1 and "bytes_per_hash" in status["pdq"]
    # Withdrawal by case, export, delete bank.
    c.post("/c/bank/TEST_BANK/signal", json={"pdq": H, "metadata": {"case_id": "CASE2"}}, headers=cur)
    assert c.delete("/c/case/CASE2", headers=cur).json() == {"deleted": 1}
    lines = c.get("/c/bank/TEST_BANK/export", headers=cur).text.splitlines()
    assert '"deepshield-bank"' in lines[0] and len(lines) == 2
    assert c.put("/c/bank/TEST_BANK", json={"enabled": False}, headers=cur).json()["matching_enabled_ratio"] == 0
    assert c.delete("/c/bank/TEST_BANK", headers=cur).json() == {"message": "Done"}
    assert c.get("/c/bank/TEST_BANK", headers=cur).status_code == 404


def test_device_hashes_endpoint(match_client: Any, match_key: Any) -> None:
    cur = match_key("curate")
    match_client.post("/c/banks", json={"name": "DEVICE"}, headers=cur)
    r = match_client.post(
        "/v1/match/device-hashes",
        json={"bank": "DEVICE", "case_id": "V1", "hashes": [{"pdq": H, "quality": 100}]},
        headers=cur,
    )
    assert r.status_code == 201 and r.json()["added"] == 1
    r = match_client.get("/m/lookup", params={"signal_type": "pdq", "signal": H}, headers=match_key("match")).json()
    assert r["DEVICE"][0]["entry"]["source"] == "device" and r["DEVICE"][0]["entry"]["case_id"] == "V1"
    page = match_client.get("/static/hash-photos.html")
    assert page.status_code == 200 and "pdq.js" in page.text
