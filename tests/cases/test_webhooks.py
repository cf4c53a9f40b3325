"""Webhooks to a real HTTP endpoint on loopback that fails, then recovers: each delivered exactly once."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import select, update

from deepshield.cases import flows, webhooks
from deepshield.cases.models import WebhookDelivery
from deepshield.cases.policy import WebhookConfig
from deepshield.store.db import session_scope
from deepshield.store.timeutil import utcnow

from .conftest import file_notice

SECRET = "s3cret"


class Platform:
    """A platform endpoint that verifies signatures, dedups on Idempotency-Key and fails on demand."""

    def __init__(self, fail_first: int, lose_response_of_first_success: bool = False) -> None:
        self.fail_left = fail_first
        self.lose_once = lose_response_of_first_success
        self.applied: dict[str, dict] = {}
        self.requests = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        platform = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with platform.lock:
                    platform.requests += 1
                    if not webhooks.verify_signature(SECRET, self.headers.get(webhooks.SIGNATURE_HEADER, ""), body):
                        platform.bad_signatures += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                    if platform.fail_left > 0:
                        platform.fail_left -= 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    key = self.headers["Idempotency-Key"]
                    platform.applied.setdefault(key, json.loads(body))  # apply once per key
                    if platform.lose_once:
                        platform.lose_once = False
                        self.send_response(500)  # applied, but the answer is "lost"
                        self.end_headers()
                        return
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _drain(ctx, cfg: WebhookConfig, rounds: int = 20) -> None:
    for _ in range(rounds):
        webhooks.deliver_due(ctx.settings, cfg, now=utcnow() + dt.timedelta(days=1))


def _case(ctx, make_fields) -> str:
    return file_notice(ctx, make_fields())[0]


def test_failing_then_recovering_endpoint_gets_each_action_once(ctx, make_fields):
    platform = Platform(fail_first=3, lose_response_of_first_success=True)
    cfg = WebhookConfig(url=platform.url, secret=SECRET, max_attempts=10, base_delay_s=0.0, timeout_s=5)
    try:
        cid = _case(ctx, make_fields)
        flows.decide(ctx, cid, ["remove", "bank"], actor="rev", actor_kind="human", reason="ncii")
        _drain(ctx, cfg)
        with session_scope(ctx.settings) as s:
            rows = list(s.scalars(select(WebhookDelivery)))
        assert {r.status for r in rows} == {"delivered"}
        assert sorted(p["event"] for p in platform.applied.values()) == ["action.bank", "action.remove"]
        stmt = next(p["statement"] for p in platform.applied.values() if p["event"] == "action.remove")
        assert stmt["decision"] == "remove+bank" and stmt["redress"]
        assert set(platform.applied) == {r.idempotency_key for r in rows}
        assert platform.requests == 3 + 1 + len(rows)  # 3 failures, 1 lost answer, then one success each
        assert platform.bad_signatures == 0
    finally:
        platform.close()


def test_dead_letter_then_requeue(ctx, make_fields):
    platform = Platform(fail_first=10**6)
    cfg = WebhookConfig(url=platform.url, secret=SECRET, max_attempts=3, base_delay_s=0.0, timeout_s=5)
    try:
        cid = _case(ctx, make_fields)
        flows.decide(ctx, cid, ["restrict"], actor="rev", actor_kind="human", reason="impersonation")
        _drain(ctx, cfg, rounds=5)
        with session_scope(ctx.settings) as s:
            dead = webhooks.dead_letters(s)
            assert len(dead) == 1 and dead[0].attempts == 3 and "503" in dead[0].last_error
        platform.fail_left = 0
        with session_scope(ctx.settings) as s:
            assert webhooks.requeue(s) == 1
        _drain(ctx, cfg, rounds=2)
        with session_scope(ctx.settings) as s:
            assert webhooks.dead_letters(s) == []
        assert [p["event"] for p in platform.applied.values()] == ["action.restrict"]
    finally:
        platform.close()


def test_wrong_secret_is_rejected_by_receiver():
    body = b'{"a":1}'
    sig = webhooks.sign("other", body)
    assert not webhooks.verify_signature(SECRET, sig, body)
    assert webhooks.verify_signature("other", sig, body)
    assert not webhooks.verify_signature("other", sig, body + b" ")
    old = webhooks.sign("other", body, timestamp=1)
    assert not webhooks.verify_signature("other", old, body)


def test_claimed_row_is_not_posted_twice(ctx, make_fields):
    """Two workers racing on one due row: the conditional claim lets only one post it."""
    platform = Platform(fail_first=0)
    cfg = WebhookConfig(url=platform.url, secret=SECRET, max_attempts=3, base_delay_s=0.0, timeout_s=5)
    try:
        cid = _case(ctx, make_fields)
        flows.decide(ctx, cid, ["remove"], actor="rev", actor_kind="human", reason="x")
        barrier = threading.Barrier(4)

        def run() -> None:
            barrier.wait()
            webhooks.deliver_due(ctx.settings, cfg)

        ts = [threading.Thread(target=run) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert platform.requests == 1
        # A crash after the platform applied it but before we recorded it: the re-post carries the same key.
        with session_scope(ctx.settings) as s:
            s.execute(update(WebhookDelivery).values(status="pending", delivered_at=None))
        _drain(ctx, cfg, rounds=1)
        assert platform.requests == 2 and len(platform.applied) == 1
    finally:
        platform.close()


def test_a_malformed_url_is_a_failed_attempt_not_an_exception(ctx, make_fields):
    """A URL urllib cannot parse (here a port that is not a number) used to raise out of `deliver_due` from the
    request's construction, stopping every delivery behind it. It is now one failed attempt with its reason,
    retried and dead-lettered like any other, and the row is kept."""
    cfg = WebhookConfig(url="http://127.0.0.1:notaport/hook", secret=SECRET, max_attempts=2, base_delay_s=0.0)
    cid = _case(ctx, make_fields)
    flows.decide(ctx, cid, ["restrict"], actor="rev", actor_kind="human", reason="impersonation")
    assert webhooks.deliver_due(ctx.settings, cfg, now=utcnow() + dt.timedelta(days=1)) == 0
    _drain(ctx, cfg, rounds=2)
    with session_scope(ctx.settings) as s:
        dead = webhooks.dead_letters(s)
        assert len(dead) == 1 and dead[0].attempts == 2
        assert "invalid webhook URL" in dead[0].last_error and "port" in dead[0].last_error
