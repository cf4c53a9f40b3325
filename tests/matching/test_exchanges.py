"""ThreatExchange interop: a signal exchange configured on `/c/exchanges` fills its bank from a file in
python-threatexchange's format and from a ThreatExchange-shaped Graph API served here (no internet), and hashes
round-trip bit for bit between `deepshield bank export` and python-threatexchange's own readers and writers."""

from __future__ import annotations

import json
import sys
import threading
import time
import types
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deepshield.config import get_settings
from deepshield.jsontypes import JsonValue
from deepshield.store.db import reset_engines

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
TOKEN = "1234567890|secret"


def their_vpdq() -> tuple[Any, Any]:
    """python-threatexchange's vPDQ text form (its `vpdq_util`; the native `vpdq` hasher is not needed for it)."""
    if "vpdq" not in sys.modules:
        stub = types.ModuleType("vpdq")
        stub.VpdqFeature = object  # type: ignore[attr-defined]
        sys.modules["vpdq"] = stub
    from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature, vpdq_to_json

    return VpdqCompactFeature, vpdq_to_json


def their_signal_file(path: Path) -> dict[tuple[str, str], object]:
    """What python-threatexchange's LocalFileSignalExchangeAPI reads from a file: {(type, signal): metadata}."""
    from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI

    cfg = FileCollaborationConfig(name="X", api="local_file", enabled=True, filename=str(path))
    [delta] = list(LocalFileSignalExchangeAPI(cfg).fetch_iter([], None))
    return dict(delta.updates)


@pytest.fixture()
def hma(match_client: Any, match_key: Any) -> Any:
    match_client.headers.update(match_key("curate", "match"))
    return match_client


@pytest.fixture()
def xfiles(match_settings: Any) -> Path:
    """The folder `local_file` exchanges read from: `$DEEPSHIELD_HOME/exchange-files`."""
    folder: Path = match_settings.home / "exchange-files"
    folder.mkdir(exist_ok=True)
    return folder


# ---------------------------------------------------------------------------------------------- local file


def test_local_file_exchange_and_round_trip(hma: Any, tmp_path: Path, xfiles: Path) -> None:
    feature, to_json = their_vpdq()
    vpdq = to_json([feature(PDQ_A, 100, 0.0), feature(PDQ_B, 87, 150.25)])  # 150.25 is written "1.5e+02"
    source = xfiles / "signals.txt"
    source.write_text(f"pdq {PDQ_A}\nvideo_md5 {MD5}\n\nvpdq {vpdq}\n", encoding="utf-8")
    theirs = their_signal_file(source)
    assert set(theirs) == {("pdq", PDQ_A), ("video_md5", MD5), ("vpdq", vpdq)}

    r = hma.post("/c/exchanges", json={"bank": "FROM_FILE", "api": "local_file", "api_json": {"filename": str(source)}})
    assert r.status_code == 201, r.text
    status = hma.post("/c/exchange/FROM_FILE/fetch").json()
    assert status["last_fetch_succeeded"] is True and status["fetched_items"] == 3 and status["error"] is None
    assert hma.get("/c/exchange/FROM_FILE/status").json()["fetched_items"] == 3
    assert hma.post("/c/exchange/FROM_FILE/fetch").json()["fetched_items"] == 0  # nothing new the second time
    found = hma.get("/m/lookup", params={"signal_type": "pdq", "signal": PDQ_A}).json()["FROM_FILE"][0]
    content = hma.get(f"/c/bank/FROM_FILE/content/{found['bank_content_id']}").json()
    assert content["metadata"]["collab"] == {"FROM_FILE": [f"pdq {PDQ_A}"]}  # HMA's provenance

    # Out again in their format: python-threatexchange reads exactly what went in, byte for byte.
    exported = hma.get("/c/bank/FROM_FILE/export", params={"file_format": "threatexchange"}).text
    assert exported == f"pdq {PDQ_A}\nvideo_md5 {MD5}\nvpdq {vpdq}\n"
    out = tmp_path / "exported.txt"
    out.write_text(exported, encoding="utf-8")
    assert their_signal_file(out) == theirs


def test_bare_signal_file_and_bad_lines(hma: Any, xfiles: Path) -> None:
    good = xfiles / "pdq.txt"
    good.write_text(f"{PDQ_A}\n{PDQ_B}\n", encoding="utf-8")
    api_json = {"filename": str(good), "signal_type": "pdq"}
    assert hma.post("/c/exchanges", json={"bank": "BARE", "api": "local_file", "api_json": api_json}).status_code == 201
    assert hma.post("/c/exchange/BARE/fetch").json()["fetched_items"] == 2

    bad = xfiles / "bad.txt"
    bad.write_text(f"pdq {PDQ_A}\npdq secret-line-from-some-file\n", encoding="utf-8")
    hma.post("/c/exchanges", json={"bank": "BAD", "api": "local_file", "api_json": {"filename": str(bad)}})
    status = hma.post("/c/exchange/BAD/fetch").json()
    assert status["last_fetch_succeeded"] is False and status["fetched_items"] == 0
    assert "signal 2: not a valid pdq signal" in status["error"] and "secret" not in status["error"]
    other = xfiles / "other.txt"
    other.write_text("root:x:0:0:root:/root:/bin/bash with words\n", encoding="utf-8")
    hma.post("/c/exchanges", json={"bank": "OTHER", "api": "local_file", "api_json": {"filename": str(other)}})
    assert "root" not in hma.post("/c/exchange/OTHER/fetch").json()["error"]  # not even the first word
    assert hma.get("/c/bank/BAD", params={"format": "deepshield"}).json()["entries"] == 0  # nothing half-done
    assert hma.get("/c/exchange/BAD/status").json()["last_fetch_succeeded"] is False

    hma.post("/c/exchanges", json={"bank": "GONE", "api": "local_file", "api_json": {"filename": "nonexistent"}})
    error = hma.post("/c/exchange/GONE/fetch").json()["error"]
    assert error == "No such file nonexistent"  # the name it was given, not the server's path
    hma.put("/c/exchange/GONE", json={"enabled": False})
    assert hma.post("/c/exchange/GONE/fetch").status_code == 400


def test_cli_round_trip_with_python_threatexchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`deepshield bank import/export --format threatexchange` against python-threatexchange's own writers
    (PdqSignal's examples, vpdq_to_json) and reader: the same bytes both ways, ours hashed here included."""
    from threatexchange.signal_type.pdq.signal import PdqSignal

    from deepshield.cli.main import app
    from tests.matching.test_hma_conformance import _textured_video

    feature, to_json = their_vpdq()
    theirs = [("pdq", h) for h in PdqSignal.get_examples()[:3]]
    theirs.append(("vpdq", to_json([feature(PDQ_A, 99, 1.0), feature(PDQ_B, 100, 123.456)])))
    theirs.append(("video_md5", MD5))
    src = tmp_path / "theirs.txt"
    src.write_text("".join(f"{t} {s}\n" for t, s in theirs), encoding="utf-8")

    monkeypatch.setenv("DEEPSHIELD_HOME", str(tmp_path / "cli"))
    get_settings.cache_clear()
    reset_engines()
    try:
        run = CliRunner().invoke
        r = run(app, ["bank", "import", str(src), "--into", "TX", "--format", "threatexchange"])
        assert r.exit_code == 0 and "imported 5" in r.output, r.output
        video = _textured_video(tmp_path / "v.mp4")
        assert run(app, ["bank", "add", "TX", str(video)]).exit_code == 0
        out = tmp_path / "out.txt"
        r = run(app, ["bank", "export", "TX", str(out), "--format", "threatexchange"])
        assert r.exit_code == 0, r.output
        lines = out.read_text(encoding="utf-8").splitlines()
        assert lines[:5] == [f"{t} {s}" for t, s in theirs]  # theirs, bit for bit
        read = their_signal_file(out)
        assert len(read) == len(lines)
        ours = {t: s for t, s in read if (t, s) not in set(theirs)}
        assert {"vpdq", "video_md5", "sha256"} <= set(ours)
        from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq

        frames = json_to_vpdq(ours["vpdq"])  # python-threatexchange parses our vPDQ
        assert frames and all(0 <= f.quality <= 100 for f in frames)
        # ... and our file, read back, is the same bank.
        r = run(app, ["bank", "import", str(out), "--into", "TX2", "--format", "threatexchange"])
        assert r.exit_code == 0, r.output
        out2 = tmp_path / "out2.txt"
        assert run(app, ["bank", "export", "TX2", str(out2), "--format", "threatexchange"]).exit_code == 0
        assert out2.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
        assert run(app, ["bank", "import", str(src), "--format", "threatexchange"]).exit_code != 0  # no --into
    finally:
        get_settings.cache_clear()
        reset_engines()


# ---------------------------------------------------------------------------------------------- ThreatExchange API


class FakeThreatExchange:
    """The Graph API's `/<privacy group>/threat_updates/` as python-threatexchange's client reads it: pages of
    `data` with `paging.next`, filtered by `start_time`, behind `access_token`."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.requests: list[dict[str, list[str]]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v26.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def update(
        self, uid: int, indicator: str, kind: str, when: int, delete: bool = False, tags: tuple[str, ...] = ()
    ) -> None:
        item: dict[str, Any] = {
            "id": str(uid),
            "indicator": indicator,
            "type": kind,
            "creation_time": when,
            "last_updated": when,
            "should_delete": delete,
            "tags": list(tags),
            "status": "MALICIOUS",
        }
        if not delete:
            item["descriptors"] = {"data": [{"id": str(uid * 10), "owner": {"id": "1"}}]}
        self.updates.append(item)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        te = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass

            def do_GET(self) -> None:  # noqa: N802 (the base class's name)
                parsed = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(parsed.query)
                te.requests.append(q)
                if q.get("access_token") != [TOKEN]:
                    return self._send(400, {"error": {"message": "Invalid OAuth access token.", "code": 190}})
                if not parsed.path.endswith("/4242/threat_updates/"):
                    return self._send(404, {"error": {"message": "Unknown path"}})
                since = int(q.get("start_time", ["0"])[0])
                offset = int(q.get("after", ["0"])[0])
                items = [u for u in te.updates if u["last_updated"] >= since]
                page = items[offset : offset + 2]
                body: dict[str, Any] = {"data": page}
                if offset + 2 < len(items):
                    nxt = dict(q, after=[str(offset + 2)])
                    body["paging"] = {"next": f"{te.url}{parsed.path[6:]}?{urllib.parse.urlencode(nxt, doseq=True)}"}
                self._send(200, body)

            def _send(self, code: int, body: object) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


@pytest.fixture()
def threatexchange() -> Iterator[FakeThreatExchange]:
    te = FakeThreatExchange()
    try:
        yield te
    finally:
        te.server.shutdown()


def test_fake_server_speaks_python_threatexchanges_client(threatexchange: FakeThreatExchange) -> None:
    """The test server is ThreatExchange-shaped: python-threatexchange's own client pages through it."""
    from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI

    for i in range(5):
        threatexchange.update(i + 1, PDQ_A[:-1] + str(i), "HASH_PDQ", 1000 + i)
    api = ThreatExchangeAPI(TOKEN, endpoint_override=threatexchange.url)
    seen = [u["indicator"] for page in api.get_threat_updates(4242, page_size=2) for u in page]
    assert seen == [u["indicator"] for u in threatexchange.updates]


def test_threatexchange_exchange(hma: Any, threatexchange: FakeThreatExchange) -> None:
    te = threatexchange
    te.update(1, PDQ_A, "HASH_PDQ", 1_700_000_000)
    te.update(2, MD5, "HASH_VIDEO_MD5", 1_700_000_001)
    te.update(3, "0cc175b9c0f1b6a831c399e269772661", "HASH_MD5", 1_700_000_002, tags=("media_type_video",))
    te.update(4, "92eb5ffee6ae2fec3ad71c777531578f", "HASH_MD5", 1_700_000_003)  # not a video: skipped
    te.update(5, "https://example.com/", "URI", 1_700_000_004)  # not a hash we bank
    api_json = {"privacy_group": 4242, "graph_api_url": te.url, "api_token": TOKEN}
    r = hma.post("/c/exchanges", json={"bank": "TX_BANK", "api": "fb_threatexchange", "api_json": api_json})
    assert r.status_code == 201, r.text
    assert "api_token" not in hma.get("/c/exchange/TX_BANK").json()  # never shown

    status = hma.post("/c/exchange/TX_BANK/fetch").json()
    assert status["last_fetch_succeeded"] is True and status["fetched_items"] == 3, status
    assert status["checkpoint_ts"] == 1_700_000_004
    assert len(te.requests) == 3  # 5 updates, 2 a page
    found = hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": PDQ_A}).json()["matches"]
    assert len(found) == 1
    got = hma.get(f"/c/bank/TX_BANK/content/{found[0]}", params={"include_signals": "true"}).json()
    assert got["signals"] == {"pdq": PDQ_A} and got["metadata"]["collab"] == {"TX_BANK": ["1"]}
    assert hma.get("/m/raw_lookup", params={"signal_type": "video_md5", "signal": MD5}).json()["matches"]

    # The next fetch asks from the checkpoint on; a withdrawn indicator leaves the bank.
    te.update(1, PDQ_A, "HASH_PDQ", 1_700_000_100, delete=True)
    te.update(6, PDQ_B, "HASH_PDQ", 1_700_000_101)
    status = hma.post("/c/exchange/TX_BANK/fetch").json()
    assert te.requests[-1]["start_time"] == ["1700000004"]
    assert status["fetched_items"] == 1 and status["checkpoint_ts"] == 1_700_000_101
    assert hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": PDQ_A}).json() == {"matches": []}
    assert hma.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": PDQ_B}).json()["matches"]


def test_threatexchange_failures_are_recorded(hma: Any, threatexchange: FakeThreatExchange) -> None:
    threatexchange.update(1, PDQ_A, "HASH_PDQ", 1_700_000_000)
    api_json = {"privacy_group": 4242, "graph_api_url": threatexchange.url, "api_token": "wrong|token"}
    hma.post("/c/exchanges", json={"bank": "TX_WRONG", "api": "fb_threatexchange", "api_json": api_json})
    before = int(time.time())
    status = hma.post("/c/exchange/TX_WRONG/fetch").json()
    assert status["last_fetch_succeeded"] is False and "400" in status["error"] and status["up_to_date"] is False
    assert status["last_fetch_complete_ts"] >= before
    api_json = {"privacy_group": 4242, "graph_api_url": "http://127.0.0.1:9/v26.0", "api_token": TOKEN}
    hma.post("/c/exchanges", json={"bank": "TX_DOWN", "api": "fb_threatexchange", "api_json": api_json})
    assert hma.post("/c/exchange/TX_DOWN/fetch").json()["error"]
    hma.post("/c/exchanges", json={"bank": "TX_NOTOKEN", "api": "fb_threatexchange", "api_json": {"privacy_group": 1}})
    assert "token" in hma.post("/c/exchange/TX_NOTOKEN/fetch").json()["error"]
    # The token set as HMA sets it (`/c/exchanges/api/fb_threatexchange`) serves exchanges without their own.
    api_json = {"privacy_group": 4242, "graph_api_url": threatexchange.url}
    hma.post("/c/exchanges", json={"bank": "TX_SHARED", "api": "fb_threatexchange", "api_json": api_json})
    hma.post("/c/exchanges/api/fb_threatexchange", json={"credential_json": {"api_token": TOKEN}})
    assert hma.post("/c/exchange/TX_SHARED/fetch").json()["fetched_items"] == 1
    assert TOKEN not in hma.get("/c/exchange/TX_SHARED").text


# ---------------------------------------------------------------------------------------------- on a timer


def _wait_for(check: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_service_fetches_on_a_timer_and_stops_on_shutdown(
    match_settings: Any, match_key: Any, xfiles: Path
) -> None:
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app

    source = xfiles / "signals.txt"
    source.write_text(f"pdq {PDQ_A}\n", encoding="utf-8")
    settings = match_settings.model_copy(update={"exchange_fetch_minutes": 0.002})  # every 0.12 s
    with TestClient(create_app(settings)) as c:
        c.headers.update(match_key("curate", "match"))
        api_json = {"filename": str(source)}
        assert (
            c.post("/c/exchanges", json={"bank": "TIMED", "api": "local_file", "api_json": api_json}).status_code == 201
        )
        status = _wait_for(lambda: (s := c.get("/c/exchange/TIMED/status").json())["last_fetch_succeeded"] and s)
        assert status["fetched_items"] == 1 and status["error"] is None  # fetched with nobody asking
        assert c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": PDQ_A}).json()["matches"]
        source.write_text(f"pdq {PDQ_A}\npdq {PDQ_B}\n", encoding="utf-8")
        _wait_for(lambda: c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": PDQ_B}).json()["matches"])
        assert "deepshield-exchange-fetcher" in {t.name for t in threading.enumerate()}
    assert "deepshield-exchange-fetcher" not in {t.name for t in threading.enumerate() if t.is_alive()}


def test_a_failing_exchange_keeps_its_error_and_the_others_still_fetch(match_settings: Any, xfiles: Path) -> None:
    from deepshield.matching import exchanges, fetcher
    from deepshield.matching.storage import SqlMatchStore
    from deepshield.store.db import session_scope

    good = xfiles / "good.txt"
    good.write_text(f"pdq {PDQ_A}\n", encoding="utf-8")
    home = match_settings.home
    with session_scope(match_settings) as s:
        exchanges.create_exchange(s, "A_GOOD", "local_file", {"filename": str(good)}, home=home)
        exchanges.create_exchange(s, "B_BROKEN", "local_file", {"filename": "missing.txt"}, home=home)
        exchanges.create_exchange(s, "C_GOOD", "local_file", {"filename": "good.txt"}, home=home)
        exchanges.create_exchange(s, "D_OFF", "local_file", {"filename": "good.txt"}, enabled=False, home=home)
    worker = fetcher.ExchangeFetcher(match_settings, interval_s=0.05)
    assert worker.fetch_all() == {"A_GOOD": True, "B_BROKEN": False, "C_GOOD": True}  # D_OFF: disabled
    with session_scope(match_settings) as s:
        broken = SqlMatchStore(s).exchange("B_BROKEN")
        assert broken is not None and broken.last_fetch_succeeded is False and "No such file" in (broken.error or "")
        assert SqlMatchStore(s).exchange("C_GOOD").fetched_items == 1  # type: ignore[union-attr]
        assert SqlMatchStore(s).exchange("D_OFF").last_fetch_complete_ts == 0  # type: ignore[union-attr]

    # Never two fetches of one exchange at once: while one runs, the timer skips it and the route answers 409.
    with fetcher._claim("A_GOOD"):
        assert "A_GOOD" not in worker.fetch_all()
        with session_scope(match_settings) as s, pytest.raises(fetcher.FetchRunning):
            fetcher.fetch_and_record(s, "A_GOOD", match_settings)

    # The thread fetches on its own, round after round, and stop() ends it.
    worker.start()
    good.write_text(f"pdq {PDQ_A}\npdq {PDQ_B}\n", encoding="utf-8")

    def refetched() -> bool:
        with session_scope(match_settings) as s:
            store = SqlMatchStore(s)
            return store.count_entries(store.bank("C_GOOD").id) == 2  # type: ignore[union-attr]

    _wait_for(refetched)
    worker.stop()
    assert not worker._thread.is_alive()


def test_manual_fetch_while_one_runs_is_409(hma: Any, xfiles: Path) -> None:
    from deepshield.matching import fetcher

    source = xfiles / "signals.txt"
    source.write_text(f"pdq {PDQ_A}\n", encoding="utf-8")
    hma.post("/c/exchanges", json={"bank": "BUSY", "api": "local_file", "api_json": {"filename": str(source)}})
    with fetcher._claim("BUSY"):
        r = hma.post("/c/exchange/BUSY/fetch")
        assert r.status_code == 409 and "already running" in r.json()["message"]
        assert isinstance(hma.get("/c/exchange/BUSY/status").json()["running_fetch_start_ts"], int)
    assert hma.post("/c/exchange/BUSY/fetch").json()["fetched_items"] == 1
    assert hma.get("/c/exchange/BUSY/status").json()["running_fetch_start_ts"] is None


# ---------------------------------------------------------------------------------------------- hardening


def test_a_local_file_outside_the_exchange_files_folder_is_refused(
    hma: Any, match_settings: Any, xfiles: Path, tmp_path: Path
) -> None:
    """A curator's HTTP request must not make the server read any file it can: only files in
    `$DEEPSHIELD_HOME/exchange-files`, by name or by a path inside it."""
    from deepshield.matching.storage import ExchangeRecord, SqlMatchStore
    from deepshield.store.db import session_scope

    outside = tmp_path / "outside.txt"
    outside.write_text(f"pdq {PDQ_A}\n", encoding="utf-8")
    (xfiles / "link.txt").symlink_to(outside)
    for i, name in enumerate([str(outside), "../deepshield.db", "/etc/passwd", "link.txt", ".", "sub/../../x"]):
        r = hma.post("/c/exchanges", json={"bank": f"ESC_{i}", "api": "local_file", "api_json": {"filename": name}})
        assert r.status_code == 400, (name, r.text)
        assert "outside the exchange files folder" in r.json()["message"]
        assert hma.get(f"/c/exchange/ESC_{i}").status_code == 404
    (xfiles / "inside.txt").write_text(f"pdq {PDQ_A}\n", encoding="utf-8")
    for i, name in enumerate(["inside.txt", str(xfiles / "inside.txt")]):
        r = hma.post("/c/exchanges", json={"bank": f"IN_{i}", "api": "local_file", "api_json": {"filename": name}})
        assert r.status_code == 201 and hma.post(f"/c/exchange/IN_{i}/fetch").json()["fetched_items"] == 1

    # A row stored before the folder existed, naming any file: its fetch fails, reading nothing.
    with session_scope(match_settings) as s:
        store = SqlMatchStore(s)
        store.save_exchange(ExchangeRecord(name="IN_0", api="local_file", bank="IN_0", api_json={"filename": "x"}))
        old = ExchangeRecord(name="OLD", api="local_file", bank="IN_0", api_json={"filename": str(outside)})
        store.save_exchange(old)
    status = hma.post("/c/exchange/OLD/fetch").json()
    assert status["last_fetch_succeeded"] is False and "outside the exchange files folder" in status["error"]


def test_threatexchange_tokens_are_sealed_in_the_database_and_never_shown(
    hma: Any, match_settings: Any, threatexchange: FakeThreatExchange
) -> None:
    import sqlite3

    from deepshield.matching.exchange_secrets import ExchangeSecrets
    from deepshield.matching.storage import ExchangeRecord, SqlMatchStore
    from deepshield.store.db import session_scope

    threatexchange.update(1, PDQ_A, "HASH_PDQ", 1_700_000_000)
    api_json = {"privacy_group": 4242, "graph_api_url": threatexchange.url, "api_token": TOKEN}
    assert hma.post(
        "/c/exchanges", json={"bank": "TX_OWN", "api": "fb_threatexchange", "api_json": api_json}
    ).is_success
    shared = "987654321|shared-secret"
    assert hma.post("/c/exchanges/api/fb_threatexchange", json={"credential_json": {"api_token": shared}}).json() == {
        "supports_authentification": True,
        "has_set_authentification": True,
    }
    api_json = {"privacy_group": 4242, "graph_api_url": threatexchange.url}
    hma.post("/c/exchanges", json={"bank": "TX_TYPE", "api": "fb_threatexchange", "api_json": api_json})
    assert hma.post("/c/exchange/TX_OWN/fetch").json()["fetched_items"] == 1  # the sealed token opens
    assert threatexchange.requests[-1]["access_token"] == [TOKEN]
    hma.post("/c/exchange/TX_TYPE/fetch")
    assert threatexchange.requests[-1]["access_token"] == [shared]

    shown = [hma.get(p).text for p in ("/c/exchanges", "/c/exchange/TX_OWN", "/c/exchange/TX_OWN/status")]
    shown.append(hma.get("/c/exchanges/api/fb_threatexchange").text)
    assert not any("secret" in text or "1234567890" in text for text in shown)
    db = sqlite3.connect(match_settings.home / "deepshield.db")
    rows = [
        *db.execute("SELECT api_json FROM match_exchanges"),
        *db.execute("SELECT * FROM match_exchange_credentials"),
    ]
    db.close()
    dump = repr(rows)
    assert "secret" not in dump and "1234567890" not in dump and "987654321" not in dump
    assert dump.count("sealed:v1:") == 2
    key = match_settings.home / "keys" / "exchange-secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600

    # A failing library's message may hold the URL with the token: the recorded error never does.
    bad_url: dict[str, JsonValue] = {
        "privacy_group": 4242,
        "graph_api_url": threatexchange.url + " x",
        "api_token": TOKEN,
    }
    r = hma.post("/c/exchanges", json={"bank": "TX_BADURL", "api": "fb_threatexchange", "api_json": bad_url})
    assert r.status_code == 400 and "graph_api_url" in r.json()["message"]
    with session_scope(match_settings) as s:  # a row stored before that check
        sealed: dict[str, JsonValue] = {**bad_url, "api_token": ExchangeSecrets(match_settings.home).seal(TOKEN)}
        SqlMatchStore(s).save_exchange(ExchangeRecord("TX_BADURL", "fb_threatexchange", "TX_OWN", sealed))
    error = hma.post("/c/exchange/TX_BADURL/fetch").json()["error"]
    assert error and "secret" not in error and "<token>" in error


def test_tokens_stored_in_plain_text_keep_working_and_are_sealed_at_start(
    match_settings: Any, match_key: Any, threatexchange: FakeThreatExchange
) -> None:
    import sqlite3

    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app
    from deepshield.matching.banks import create_bank
    from deepshield.matching.storage import ExchangeRecord, SqlMatchStore
    from deepshield.store.db import session_scope

    threatexchange.update(1, PDQ_A, "HASH_PDQ", 1_700_000_000)
    with session_scope(match_settings) as s:  # rows as an earlier version stored them
        store = SqlMatchStore(s)
        create_bank(store, "OLD_TX")
        api_json: dict[str, JsonValue] = {
            "privacy_group": 4242,
            "graph_api_url": threatexchange.url,
            "api_token": TOKEN,
        }
        store.save_exchange(ExchangeRecord(name="OLD_TX", api="fb_threatexchange", bank="OLD_TX", api_json=api_json))
        store.set_exchange_credentials("fb_threatexchange", {"api_token": "plain|shared"})
    with TestClient(create_app(match_settings)) as c:
        c.headers.update(match_key("curate", "match"))
        assert c.post("/c/exchange/OLD_TX/fetch").json()["fetched_items"] == 1
        assert threatexchange.requests[-1]["access_token"] == [TOKEN]
    db = sqlite3.connect(match_settings.home / "deepshield.db")
    dump = repr(
        [*db.execute("SELECT api_json FROM match_exchanges"), *db.execute("SELECT * FROM match_exchange_credentials")]
    )
    db.close()
    assert "secret" not in dump and "plain|shared" not in dump and dump.count("sealed:v1:") == 2
