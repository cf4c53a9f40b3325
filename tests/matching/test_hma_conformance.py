"""Conformance with HMA 2.0 (OpenMediaMatch), route by route: status codes, JSON shapes and field names as HMA's
documentation and its own tests expect them, so HMA's clients can point at Deepshield unchanged.

Written from HMA's documented behaviour (its blueprints' docstrings and schemas, `tests/test_api*.py`), not
from its code. Run against the real app over a real SQLite database, and a smoke subset through a real
`deepshield serve` process (`test_smoke_through_a_real_server`). Where HMA's own equality checks depend on
its configured signal types (it hashes photos with PDQ only; we add MD5 and SHA-256), the test asks for
`types=pdq` and then expects HMA's exact answer.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

SPECIMEN1 = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318"
SPECIMEN2 = "facd8bcb2a49bcebdec1985228d5ae84bcd006c187c598c720c2b087b3fdb318"  # 9 bits from SPECIMEN1
HMA_BANK = {"name", "matching_enabled_ratio"}
HMA_CONTENT = {"id", "disable_until_ts", "original_media_uri", "bank"}


def checkerboard(cell: int) -> Image.Image:
    """HMA's test images: 128x128 black and white checkerboards."""
    y, x = np.mgrid[0:128, 0:128]
    board = (((x // cell) + (y // cell)) % 2 * 255).astype(np.uint8)
    return Image.fromarray(board).convert("RGB")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A local image server as HMA's tests use (no internet): (base url, {url: reference PDQ}, folder)."""
    from threatexchange.signal_type.pdq.signal import PdqSignal

    d = tmp_path_factory.mktemp("images")
    checkerboard(8).save(d / "image1.jpg", format="JPEG")
    checkerboard(16).save(d / "image2.jpg", format="JPEG")
    handler = functools.partial(_QuietHandler, directory=str(d))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield base, {f"{base}/{n}": PdqSignal.hash_from_file(d / n) for n in ("image1.jpg", "image2.jpg")}, d
    finally:
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture()
def hma(match_client: Any, match_key: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client that sends one key with both scopes, as an HMA deployment's client would; `?url=` on."""
    monkeypatch.setenv("DEEPSHIELD_MATCH_FETCH_URLS", "1")
    match_client.headers.update(match_key("curate", "match"))
    return match_client


def create_bank(c: Any, name: str) -> None:
    r = c.post("/c/banks", json={"name": name})
    assert r.status_code == 201 and r.json() == {"matching_enabled_ratio": 1.0, "name": name}, r.text


def add_url(c: Any, bank: str, url: str, **body: Any) -> Any:
    return c.post(f"/c/bank/{bank}/content", params={"url": url, "content_type": "photo"}, json=body or None)


def is_hma_error(r: Any, status: int) -> bool:
    return r.status_code == status and set(r.json()) == {"message"} and isinstance(r.json()["message"], str)


# ---------------------------------------------------------------------------------------------- core


def test_status_is_a_readiness_check_and_status_live_a_liveness_check(hma: Any) -> None:
    from deepshield.matching.indexes import reset_indexes

    hma.get("/m/index/status")  # loads the index
    r = hma.get("/status")
    assert r.status_code == 200 and r.text == "I-AM-ALIVE"
    reset_indexes()  # a process whose index has not loaded yet
    r = hma.get("/status")
    assert r.status_code == 503 and r.text == "INDEX-NOT-LOADED"
    r = hma.get("/status/live")
    assert r.status_code == 200 and r.text == "I-AM-ALIVE"
    hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": SPECIMEN1})  # a lookup loads it
    assert hma.get("/status").text == "I-AM-ALIVE"


def test_site_map_and_openapi(hma: Any) -> None:
    routes = hma.get("/site-map").json()
    assert routes == sorted(routes) and {"/c/banks", "/m/lookup", "/h/hash", "/status", "/status/live"} <= set(routes)
    r = hma.get("/openapi/openapi.json")
    assert r.status_code == 200 and "/c/bank/{bank_name}/content" in r.json()["paths"]

    # The HMA routes declare HMA's error body (and ours, for ?format=deepshield); ours declare ours.
    def error_schemas(path: str, method: str) -> list[set[str]]:
        schema = r.json()["paths"][path][method]["responses"]["400"]["content"]["application/json"]["schema"]
        refs = [s["$ref"].rsplit("/", 1)[1] for s in schema.get("anyOf", [schema])]
        return [set(r.json()["components"]["schemas"][ref]["properties"]) for ref in refs]

    assert error_schemas("/m/lookup", "get") == [{"message"}, {"error", "detail"}]
    assert error_schemas("/v1/match/device-hashes", "post") == [{"error", "detail"}]
    status_503 = r.json()["paths"]["/status"]["get"]["responses"]["503"]
    assert "text/plain" in status_503["content"] and "application/json" not in status_503["content"]


def test_errors_are_hma_message_bodies(hma: Any, match_client: Any) -> None:
    assert is_hma_error(hma.get("/c/bank/NO_SUCH_BANK"), 404)
    assert is_hma_error(hma.post("/c/banks", json={"name": "lower"}), 400)
    assert is_hma_error(hma.get("/m/index/status", params={"signal_type": "nope"}), 400)
    assert is_hma_error(hma.post("/h/hash", files={"file": ("a.jpg", b"x", "image/jpeg")}), 400)
    no_key = match_client.get("/c/banks", headers={"Authorization": ""})
    assert is_hma_error(no_key, 401)
    # Ours on request, and on our own routes.
    r = hma.get("/c/bank/NO_SUCH_BANK", params={"format": "deepshield"})
    assert r.status_code == 404 and r.json()["error"] == "bank_not_found" and r.json()["detail"]
    r = hma.get("/v1/scans/nope")
    assert r.status_code in (403, 404) and "message" not in r.json() and r.json()["detail"]


# ---------------------------------------------------------------------------------------------- banks


def test_banks_create_list_update_delete(hma: Any) -> None:
    assert hma.get("/c/banks").json() == []
    for bad in ("01_TEST_BANK", "my_test_bank", "", "A" * 129, "BANK\n"):
        assert hma.post("/c/banks", json={"name": bad}).status_code == 400, bad
    create_bank(hma, "MY_TEST_BANK_01")
    assert hma.get("/c/banks").json() == [{"matching_enabled_ratio": 1.0, "name": "MY_TEST_BANK_01"}]
    assert is_hma_error(hma.post("/c/banks", json={"name": "MY_TEST_BANK_01"}), 403)
    assert hma.get("/c/bank/MY_TEST_BANK_01").json() == {"name": "MY_TEST_BANK_01", "matching_enabled_ratio": 1.0}

    assert hma.put("/c/bank/MY_TEST_BANK_01", json={"name": "1_invalid_name"}).status_code == 400
    r = hma.put("/c/bank/MY_TEST_BANK_01", json={"name": "RENAMED"})
    assert r.status_code == 200 and r.json()["name"] == "RENAMED"
    assert hma.put("/c/bank/RENAMED", json={"enabled": False}).json()["matching_enabled_ratio"] == 0
    assert hma.put("/c/bank/RENAMED", json={"enabled_ratio": 0.5}).json()["matching_enabled_ratio"] == 0.5
    assert hma.get("/c/banks").json() == [{"name": "RENAMED", "matching_enabled_ratio": 0.5}]
    create_bank(hma, "OTHER")
    assert hma.put("/c/bank/OTHER", json={"name": "RENAMED"}).status_code == 403
    assert hma.put("/c/bank/MISSING", json={"enabled": True}).status_code == 404
    # Ours on request.
    full = hma.get("/c/bank/RENAMED", params={"format": "deepshield"}).json()
    assert set(full) > HMA_BANK and full["entries"] == 0

    assert hma.delete("/c/bank/RENAMED").json() == {"message": "Done"}
    r = hma.delete("/c/bank/RENAMED")  # deleting a bank that is not there succeeds
    assert r.status_code == 200 and r.json() == {"message": "Done"}


# ---------------------------------------------------------------------------------------------- content


def test_add_content_by_url_and_get_it(hma: Any, images: tuple[str, dict[str, str], Path]) -> None:
    base, pdq, _ = images
    url1 = f"{base}/image1.jpg"
    create_bank(hma, "NEW_BANK")
    r = hma.post("/c/bank/NEW_BANK/content", params={"url": url1, "content_type": "photo", "types": "pdq"})
    assert r.status_code == 200 and r.json() == {"id": 1, "signals": {"pdq": pdq[url1]}}
    r = add_url(hma, "NEW_BANK", url1)  # every signal we have for photos: PDQ bit-exact with HMA's
    assert r.status_code == 200 and r.json()["signals"]["pdq"] == pdq[url1] and set(r.json()) == {"id", "signals"}

    got = hma.get("/c/bank/NEW_BANK/content/1")
    assert got.status_code == 200
    assert got.json() == {
        "id": 1,
        "disable_until_ts": 0,
        "original_media_uri": None,
        "bank": {"name": "NEW_BANK", "matching_enabled_ratio": 1.0},
    }
    with_signals = hma.get("/c/bank/NEW_BANK/content/1", params={"include_signals": "true"}).json()
    assert with_signals["signals"] == {"pdq": pdq[url1]}
    assert hma.delete("/c/bank/NEW_BANK/content/1").json() == {"deleted": 1}
    assert is_hma_error(hma.get("/c/bank/NEW_BANK/content/1"), 404)
    assert is_hma_error(hma.get("/c/bank/NO_BANK/content/2"), 404)
    r = hma.post("/c/bank/NEW_BANK/content")
    assert is_hma_error(r, 400) and "url" in r.json()["message"]


def test_content_metadata_is_stored_validated_and_shown(hma: Any, images: tuple[str, dict[str, str], Path]) -> None:
    base, _, _ = images
    url = f"{base}/image1.jpg"
    create_bank(hma, "META")
    assert is_hma_error(add_url(hma, "META", url, metadata={"invalid_metadata": 5}), 400)
    assert is_hma_error(add_url(hma, "META", url, metadata="not an object"), 400)
    assert is_hma_error(add_url(hma, "META", url, metadata={"json": [1]}), 400)
    md = {"content_id": "ext-id-123", "content_uri": "https://example.com/item/123", "json": {"nested": {"k": "v"}}}
    cid = add_url(hma, "META", url, metadata=md).json()["id"]
    got = hma.get(f"/c/bank/META/content/{cid}").json()
    assert got["metadata"] == {**md, "collab": None}
    assert got["bank"] == {"name": "META", "matching_enabled_ratio": 1.0}
    assert "metadata" not in hma.get(f"/c/bank/META/content/{cid}", params={"include_metadata": "false"}).json()
    plain = add_url(hma, "META", url).json()["id"]
    assert "metadata" not in hma.get(f"/c/bank/META/content/{plain}").json()
    # Metadata as a multipart form field, with the upload.
    photo = (images[2] / "image2.jpg").read_bytes()
    r = hma.post(
        "/c/bank/META/content",
        files={"photo": ("p.jpg", photo, "image/jpeg")},
        data={"metadata": json.dumps({"content_id": "form-1"}), "note": "from a form"},
    )
    got = hma.get(f"/c/bank/META/content/{r.json()['id']}").json()
    assert got["metadata"]["content_id"] == "form-1" and got["note"] == "from a form"
    # Our record of it, on request only.
    ours = hma.get(f"/c/bank/META/content/{cid}", params={"format": "deepshield"}).json()
    assert ours["deepshield"]["content_type"] == "photo" and ours["deepshield"]["added_by"] == "test"


def test_notes(hma: Any, images: tuple[str, dict[str, str], Path]) -> None:
    base, _, _ = images
    url = f"{base}/image1.jpg"
    create_bank(hma, "NOTES")
    cid = add_url(hma, "NOTES", url, note="Reported by user X").json()["id"]
    assert hma.get(f"/c/bank/NOTES/content/{cid}").json()["note"] == "Reported by user X"
    bare = add_url(hma, "NOTES", url).json()["id"]
    assert "note" not in hma.get(f"/c/bank/NOTES/content/{bare}").json()
    for note in ("Initial note", "Updated note"):
        assert hma.put(f"/c/bank/NOTES/content/{bare}", json={"note": note}).status_code == 200
        assert hma.get(f"/c/bank/NOTES/content/{bare}").json()["note"] == note
    assert hma.put(f"/c/bank/NOTES/content/{bare}", json={"note": ""}).status_code == 200
    assert "note" not in hma.get(f"/c/bank/NOTES/content/{bare}").json()
    assert is_hma_error(add_url(hma, "NOTES", url, note="x" * 256), 400)
    assert hma.put(f"/c/bank/NOTES/content/{bare}", json={"note": 5}).status_code == 400
    # A raw hash with a note: "note" is not a signal type.
    r = hma.post("/c/bank/NOTES/signal", json={"pdq": "0" * 64, "note": "Hash from campaign ABC"})
    assert r.status_code == 200 and r.json() == {"id": r.json()["id"], "signals": {"pdq": "0" * 64}}
    assert hma.get(f"/c/bank/NOTES/content/{r.json()['id']}").json()["note"] == "Hash from campaign ABC"


def test_disable_until_ts(hma: Any) -> None:
    create_bank(hma, "DIS")
    cid = hma.post("/c/bank/DIS/signal", json={"pdq": SPECIMEN1}).json()["id"]
    in_a_year = int(time.time()) + 365 * 86400
    r = hma.put(f"/c/bank/DIS/content/{cid}", json={"disable_until_ts": in_a_year})
    assert r.status_code == 200 and r.json()["disable_until_ts"] == in_a_year
    assert set(r.json()) >= HMA_CONTENT
    for bad in (9999999999, -1, "soon", 2**63, True, None):
        r = hma.put(f"/c/bank/DIS/content/{cid}", json={"disable_until_ts": bad})
        assert is_hma_error(r, 400), (bad, r.status_code, r.text)
    assert hma.put(f"/c/bank/DIS/content/{cid}", json={"disable_until_ts": str(in_a_year)}).status_code == 200
    assert hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": SPECIMEN1}).json() == {"matches": []}
    assert hma.put("/c/bank/DIS/content/999", json={"disable_until_ts": 0}).status_code == 404


def test_add_signals(hma: Any) -> None:
    create_bank(hma, "SIGS")
    assert is_hma_error(hma.post("/c/bank/SIGS/signal", json={}), 400)
    assert is_hma_error(hma.post("/c/bank/SIGS/signal", json={"no_such_type": "x"}), 400)
    assert is_hma_error(hma.post("/c/bank/SIGS/signal", json={"pdq": "banana"}), 400)
    assert is_hma_error(hma.post("/c/bank/NO_BANK/signal", json={"pdq": SPECIMEN1}), 404)
    r = hma.post("/c/bank/SIGS/signal", json={"video_md5": "d41d8cd98f00b204e9800998ecf8427e"})
    assert r.json()["signals"] == {"video_md5": "d41d8cd98f00b204e9800998ecf8427e"}


# ---------------------------------------------------------------------------------------------- matching


def test_raw_lookup_and_lookup(hma: Any, images: tuple[str, dict[str, str], Path]) -> None:
    base, pdq, folder = images
    url1, url2 = f"{base}/image1.jpg", f"{base}/image2.jpg"
    create_bank(hma, "NEW_BANK")
    create_bank(hma, "NEW_BANK_2")
    assert add_url(hma, "NEW_BANK", url1).json()["id"] == 1
    assert add_url(hma, "NEW_BANK_2", url2).json()["id"] == 2
    for url, cid in ((url1, 1), (url2, 2)):
        r = hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq[url]})
        assert r.status_code == 200 and r.json() == {"matches": [cid]}
    r = hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq[url1], "include_distance": "true"})
    assert r.json() == {"matches": [{"bank_content_id": 1, "distance": "0"}]}
    r = hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq[url1], "banks": "NEW_BANK_2"})
    assert r.json() == {"matches": []}

    # signal_type given: {bank: [{bank_content_id, distance}]} (our extra keys are ignored by HMA clients)
    r = hma.get("/m/lookup", params={"signal_type": "pdq", "signal": pdq[url1]})
    assert list(r.json()) == ["NEW_BANK"]
    assert {k: r.json()["NEW_BANK"][0][k] for k in ("bank_content_id", "distance")} == {
        "bank_content_id": 1,
        "distance": "0",
    }
    r = hma.get("/m/lookup", params={"url": url2})
    assert r.status_code == 200 and r.json()["pdq"]["NEW_BANK_2"][0]["bank_content_id"] == 2
    r = hma.get("/m/lookup", params={"url": url2, "signal_type": "pdq"})
    assert list(r.json()) == ["NEW_BANK_2"]
    assert is_hma_error(hma.get("/m/lookup"), 400)

    photo = (folder / "image1.jpg").read_bytes()
    r = hma.post("/m/lookup", files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and r.json()["pdq"]["NEW_BANK"][0]["bank_content_id"] == 1
    # HMA's own test: "it's not really a video, but MD5 is simple that we can fake it"
    r = hma.post("/m/lookup", files={"video": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and "video_md5" in r.json()


def test_compare(hma: Any) -> None:
    r = hma.post("/m/compare", json={"pdq": [SPECIMEN1, SPECIMEN2]})
    assert r.status_code == 200 and r.json() == {"pdq": [True, {"distance": 9}]}
    bad_inputs: list[object] = [
        ["banana"],  # not a dict
        {"pdq": "banana"},  # not a list
        {"pdq": []},  # empty
        {"pdq": ["banana", "banana"]},  # not hashes
        {"pdq": [SPECIMEN1] * 3},  # not exactly 2
        {"nope": [SPECIMEN1, SPECIMEN2]},  # no such signal type
    ]
    for bad in bad_inputs:
        r = hma.post("/m/compare", json=bad)
        assert is_hma_error(r, 400), (bad, r.status_code, r.text)


def test_index_status(hma: Any) -> None:
    before = int(time.time())
    create_bank(hma, "IDX")
    hma.post("/c/bank/IDX/signal", json={"pdq": SPECIMEN1})
    status = hma.get("/m/index/status").json()
    assert {"pdq", "video_md5", "vpdq"} <= set(status)
    pdq = status["pdq"]
    assert pdq["present"] is True and pdq["size"] == 1
    assert before - 5 <= pdq["built_to"] <= time.time() + 5  # a Unix time, not a log id
    one = hma.get("/m/index/status", params={"signal_type": "video_md5"}).json()
    assert list(one) == ["video_md5"] and {"present", "built_to", "size"} <= set(one["video_md5"])
    idx = hma.get("/c/signal_type/index").json()["pdq"]
    assert set(idx) == {"db_size", "index_size", "index_out_of_date", "newest_db_item", "index_built_to"}


def test_signal_and_content_types(hma: Any) -> None:
    sts = hma.get("/c/signal_type").json()
    assert {"name": "pdq", "enabled_ratio": 1.0} in sts and {"name": "video_md5", "enabled_ratio": 1.0} in sts
    assert hma.get("/c/content_type").json() == [
        {"name": "photo", "enabled": True},
        {"name": "video", "enabled": True},
    ]


def test_put_signal_type_sets_its_enabled_ratio(hma: Any) -> None:
    r = hma.put("/c/signal_type/pdq", json={"enabled_ratio": 0.25})
    assert r.status_code == 200 and r.json() == {"name": "pdq", "enabled_ratio": 0.25}
    assert {"name": "pdq", "enabled_ratio": 0.25} in hma.get("/c/signal_type").json()
    # HMA reads the value with float(): numeric text is taken; HMA's name for ours sets ours.
    assert hma.put("/c/signal_type/video_md5", json={"enabled_ratio": "0"}).json() == {
        "name": "video_md5",
        "enabled_ratio": 0.0,
    }
    sts = hma.get("/c/signal_type").json()
    assert {"name": "video_md5", "enabled_ratio": 0.0} in sts and {"name": "md5", "enabled_ratio": 0.0} in sts
    for bad in ({}, {"enabled_ratio": None}, {"enabled_ratio": 1.5}, {"enabled_ratio": -0.1}, {"enabled_ratio": "x"}):
        assert is_hma_error(hma.put("/c/signal_type/pdq", json=bad), 400), bad
    bad_bodies: list[object] = [[], "0.5", {"enabled_ratio": True}, {"enabled_ratio": "nan"}]
    for bad_body in bad_bodies:
        assert is_hma_error(hma.put("/c/signal_type/pdq", json=bad_body), 400), bad_body
    assert is_hma_error(hma.put("/c/signal_type/nope", json={"enabled_ratio": 1}), 404)
    r = hma.put("/c/signal_type/index", json={"enabled_ratio": 1})  # the index status, GET only
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert {"name": "pdq", "enabled_ratio": 0.25} in hma.get("/c/signal_type").json()  # bad values changed nothing


def test_a_signal_type_at_ratio_0_takes_no_part_in_matching(hma: Any) -> None:
    create_bank(hma, "RATIO")
    hma.post("/c/bank/RATIO/signal", json={"pdq": SPECIMEN1})
    raw = {"signal_type": "pdq", "signal": SPECIMEN1}
    assert len(hma.get("/m/raw_lookup", params=raw).json()["matches"]) == 1
    assert hma.put("/c/signal_type/pdq", json={"enabled_ratio": 0}).status_code == 200
    assert hma.get("/m/raw_lookup", params=raw).json() == {"matches": []}
    assert hma.get("/m/lookup", params=raw).json() == {}
    # A fraction: a share of lookups, drawn per lookup (repeatably from `seed`); raw lookups bypass the draw.
    hma.put("/c/signal_type/pdq", json={"enabled_ratio": 0.5})
    assert len(hma.get("/m/raw_lookup", params=raw).json()["matches"]) == 1
    answered = [bool(hma.get("/m/lookup", params={**raw, "seed": str(i)}).json()) for i in range(40)]
    assert 5 < sum(answered) < 35
    assert answered == [bool(hma.get("/m/lookup", params={**raw, "seed": str(i)}).json()) for i in range(40)]
    hma.put("/c/signal_type/pdq", json={"enabled_ratio": 1})
    assert all(hma.get("/m/lookup", params={**raw, "seed": str(i)}).json() for i in range(10))


# ---------------------------------------------------------------------------------------------- hashing


def test_hash(hma: Any, images: tuple[str, dict[str, str], Path]) -> None:
    base, pdq, folder = images
    photo = (folder / "image1.jpg").read_bytes()
    r = hma.post("/h/hash", files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and r.json()["pdq"] == pdq[f"{base}/image1.jpg"]
    r = hma.get("/h/hash", params={"url": f"{base}/image1.jpg", "types": "pdq"})
    assert r.json() == {"pdq": pdq[f"{base}/image1.jpg"]}
    assert is_hma_error(hma.post("/h/hash", files={"file": ("p.jpg", photo, "image/jpeg")}), 400)
    assert is_hma_error(hma.post("/h/hash", files={"photo": ("p.jpg", photo), "video": ("q.jpg", photo)}), 400)
    assert is_hma_error(hma.post("/h/hash"), 400)


def _textured_video(path: Path, seconds: int = 4, fps: int = 10) -> Path:
    from tests.foundation.media_factory import write_video

    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    frames = []
    for i in range(seconds * fps):  # a slowly moving texture: every frame has a usable PDQ
        big = np.kron(np.roll(blocks, i // fps, axis=1), np.ones((16, 20, 1), dtype=np.uint8))
        frames.append(big[:120, :160])
    return write_video(path, frames=frames, fps=fps)


def test_video_hashes_and_matches(hma: Any, tmp_path: Path) -> None:
    video = _textured_video(tmp_path / "v.mp4").read_bytes()
    r = hma.post("/h/hash", files={"video": ("v.mp4", video, "video/mp4")})
    assert r.status_code == 200 and {"video_md5", "vpdq"} <= set(r.json()) and "md5" not in r.json()
    vpdq = r.json()["vpdq"]
    frames = json.loads(vpdq)  # python-threatexchange's form: a JSON list of "hex,quality,timestamp"
    assert frames and all(isinstance(f, str) and len(f.split(",")) == 3 for f in frames)

    create_bank(hma, "VIDEOS")
    cid = hma.post("/c/bank/VIDEOS/signal", json={"vpdq": vpdq}).json()["id"]
    r = hma.get("/m/lookup", params={"signal_type": "vpdq", "signal": vpdq})
    assert r.json()["VIDEOS"][0]["bank_content_id"] == cid
    assert r.json()["VIDEOS"][0]["distance"] == "100%[100%]"  # python-threatexchange's vPDQ distance
    # An HMA client's vPDQ signal (python-threatexchange's example shape) is accepted, not a 400.
    theirs = json.dumps([f"{SPECIMEN1},100,{t}.0" for t in range(3)])
    assert hma.post("/c/bank/VIDEOS/signal", json={"vpdq": theirs}).status_code == 200
    bad = hma.post("/c/bank/VIDEOS/signal", json={"vpdq": "[1, 2"})
    assert is_hma_error(bad, 400) and "Traceback" not in bad.text and "Expecting" not in bad.text


# ---------------------------------------------------------------------------------------------- exchanges


def test_exchanges_routes(hma: Any, tmp_path: Path) -> None:
    r = hma.delete("/c/exchange/TEST_EXCHANGE")
    assert r.status_code == 200 and r.json() == {"message": "Exchange deleted"}
    assert is_hma_error(hma.get("/c/exchange/NONEXISTENT_EXCHANGE/status"), 404)
    assert {"sample", "local_file", "fb_threatexchange"} <= set(hma.get("/c/exchanges/apis").json())
    assert hma.get("/c/exchanges/api/sample").json() == {
        "supports_authentification": False,
        "has_set_authentification": False,
    }
    tx = "/c/exchanges/api/fb_threatexchange"
    assert hma.get(tx).json() == {"supports_authentification": True, "has_set_authentification": False}
    r = hma.post(tx, json={"credential_json": {"api_token": "12345789|000000000000"}})
    assert r.status_code == 200 and r.json() == {"supports_authentification": True, "has_set_authentification": True}
    assert hma.get(tx).json()["has_set_authentification"] is True
    assert hma.post(tx, json={"credential_json": {}}).json()["has_set_authentification"] is False
    assert hma.post(tx, json={"credential_json": {"api_token": 5}}).status_code == 400
    assert hma.post("/c/exchanges/api/sample", json={"credential_json": {"api_token": "x"}}).status_code == 400
    assert hma.get("/c/exchanges/api/nope").status_code == 400
    schema = hma.get("/c/exchanges/api/local_file/schema").json()
    assert schema["credentials_schema"] is None
    fields = {f["name"]: f for f in schema["config_schema"]["fields"]}
    assert set(fields) == {"filename", "signal_type"} and fields["filename"]["required"] is True
    assert "pdq" in fields["signal_type"]["choices"]
    for f in fields.values():
        assert set(f) == {"name", "type", "required", "default", "help", "choices"}
    schema = hma.get("/c/exchanges/api/fb_threatexchange/schema").json()
    fields = {f["name"]: f for f in schema["config_schema"]["fields"]}
    assert fields["privacy_group"] == {**fields["privacy_group"], "type": "number", "required": True}
    assert [f["name"] for f in schema["credentials_schema"]["fields"]] == ["api_token"]
    assert hma.get("/c/exchanges/api/sample/schema").json() == {
        "config_schema": {"fields": []},
        "credentials_schema": None,
    }
    assert is_hma_error(hma.get("/c/exchanges/api/nope/schema"), 404)

    r = hma.post("/c/exchanges", json={"api": "sample", "bank": "BAR_EXCHANGE", "api_json": {}})
    assert r.status_code == 201 and r.json() == {"message": "Created successfully"}
    assert hma.get("/c/exchanges").json() == ["BAR_EXCHANGE"]
    status = hma.get("/c/exchange/BAR_EXCHANGE/status").json()
    for key in (
        "checkpoint_ts",
        "running_fetch_start_ts",
        "last_fetch_complete_ts",
        "last_fetch_succeeded",
        "up_to_date",
        "fetched_items",
    ):
        assert key in status
    cfg = hma.get("/c/exchange/BAR_EXCHANGE").json()
    assert cfg["name"] == "BAR_EXCHANGE" and cfg["api"] == "sample" and cfg["enabled"] is True
    assert hma.put("/c/exchange/BAR_EXCHANGE", json={"enabled": False}).json()["enabled"] is False
    for bad in (
        {"api": "sample", "bank": "lower"},
        {"api": "nope", "bank": "OK"},
        {"api": "sample", "bank": "OK", "api_json": []},
        {"bank": "OK"},
        {"api": "local_file", "bank": "OK", "api_json": {}},
        {"api": "fb_threatexchange", "bank": "OK", "api_json": {"privacy_group": "x"}},
    ):
        assert is_hma_error(hma.post("/c/exchanges", json=bad), 400), bad
    assert hma.delete("/c/exchange/BAR_EXCHANGE").json() == {"message": "Exchange deleted"}
    assert hma.get("/c/exchanges").json() == []


# ---------------------------------------------------------------------------------------------- a real server


def test_smoke_through_a_real_server(live_server: Any) -> None:
    """HMA's calls over HTTP to `deepshield serve`: health, a bank, a hash, a lookup, an error body."""
    import urllib.error
    import urllib.request

    from deepshield.accounts.service import create_api_key
    from deepshield.config import Settings
    from deepshield.store.db import reset_engines, session_scope

    settings = Settings(home=live_server.home)
    with session_scope(settings) as s:
        key, _ = create_api_key(s, ["curate", "match"], "hma-client")
    reset_engines()

    def call(method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(live_server.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read().decode()
                return resp.status, json.loads(raw) if raw.startswith(("{", "[")) else raw
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "null")

    deadline = time.monotonic() + 30
    while call("GET", "/status") != (200, "I-AM-ALIVE"):
        assert time.monotonic() < deadline, "the index never became ready"
        time.sleep(0.2)
    assert call("POST", "/c/banks", {"name": "SMOKE"}) == (201, {"name": "SMOKE", "matching_enabled_ratio": 1.0})
    assert call("POST", "/c/bank/SMOKE/signal", {"pdq": SPECIMEN1, "note": "n"}) == (
        200,
        {"id": 1, "signals": {"pdq": SPECIMEN1}},
    )
    status, found = call("GET", f"/m/lookup?signal_type=pdq&signal={SPECIMEN2}")
    assert status == 200 and found["SMOKE"][0]["bank_content_id"] == 1 and found["SMOKE"][0]["distance"] == "9"
    assert call("POST", "/m/compare", {"pdq": [SPECIMEN1, SPECIMEN2]}) == (200, {"pdq": [True, {"distance": 9}]})
    status, err = call("GET", "/c/bank/NOPE")
    assert status == 404 and set(err) == {"message"}
    assert call("DELETE", "/c/bank/NOPE") == (200, {"message": "Done"})


def test_upload_with_io_bytes(hma: Any) -> None:
    """A PNG sent as a photo hashes like any photo (HMA's field-name convention)."""
    buf = io.BytesIO()
    checkerboard(4).save(buf, format="PNG")
    r = hma.post("/h/hash", files={"photo": ("c.png", buf.getvalue(), "image/png")}, params={"types": "pdq"})
    assert r.status_code == 200 and set(r.json()) == {"pdq"}
