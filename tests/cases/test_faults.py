"""A service killed with SIGKILL in the middle of a burst of intakes loses no acknowledged report, and the
audit
chain stays valid; retries with the same Idempotency-Key after the restart create no duplicates."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select

from deepshield.accounts.service import create_api_key
from deepshield.cases import audit
from deepshield.cases.models import Case
from deepshield.store.db import reset_engines, session_scope

from .conftest import Server

pytestmark = pytest.mark.slow


def _post(url: str, key: str, idem: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url + "/v1/reports",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Idempotency-Key": idem,
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {}


def test_sigkill_during_intake_burst_loses_no_acknowledged_report(settings, make_json):
    with session_scope(settings) as s:
        key, _ = create_api_key(s, ["cases"], "platform")
    reset_engines()
    server = Server(settings).start()
    acked: dict[str, str] = {}  # idempotency key -> case id
    attempted: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def client(n: int) -> None:
        for i in range(400):
            if killed.is_set():
                return
            idem = f"c{n}-{i}"
            with lock:
                attempted.append(idem)
            try:
                code, body = _post(server.url, key, idem, make_json(explanation=idem))
            except OSError:
                return
            if code in (200, 201):
                with lock:
                    acked[idem] = body["case_id"]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 30:
        threading.Event().wait(0.01)
    server.kill()
    killed.set()
    for t in threads:
        t.join()
    server.stop()
    assert len(acked) >= 30

    with session_scope(settings) as s:
        stored = {c.id: c for c in s.scalars(select(Case))}
        for idem, cid in acked.items():
            assert cid in stored, f"acknowledged report {cid} lost"
            assert stored[cid].explanation == idem
        res = audit.verify(s)
        assert res.ok, res.problems

    # The clients retry everything they sent with the same keys against the restarted service (in-process
    # here, to keep the test short): no duplicates, nothing lost.
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app

    reset_engines()
    with TestClient(create_app(settings)) as restarted:
        for idem in attempted:
            r = restarted.post(
                "/v1/reports",
                json=make_json(explanation=idem),
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
            )
            assert r.status_code in (200, 201)
            if idem in acked:
                assert r.status_code == 200 and r.json()["case_id"] == acked[idem]
    with session_scope(settings) as s:
        assert len(list(s.scalars(select(Case.id)))) == len(set(attempted))
        assert audit.verify(s).ok
