"""Signed webhooks to the platform's own endpoint: an outbox with retries, idempotency keys and a
dead-letter list.

A delivery row is written in the same transaction as the action it announces, so a crash never loses one; the
worker posts it until the platform answers 2xx (then `delivered`) or the attempts run out (then `dead`, listed
for an admin to requeue). Every attempt of one delivery carries the same `Idempotency-Key`, so a platform that
deduplicates on it applies each action exactly once even when a response is lost and we retry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from deepshield.cases.models import WebhookDelivery
from deepshield.cases.policy import WebhookConfig
from deepshield.config import Settings
from deepshield.store.db import session_scope
from deepshield.store.timeutil import utcnow
from deepshield.workers import PeriodicThread

log = logging.getLogger("deepshield.cases.webhooks")
SIGNATURE_HEADER = "X-Deepshield-Signature"
MAX_DELAY_S = 3600.0


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: int = 300, now: float | None = None) -> bool:
    """For receivers: check the HMAC and that the timestamp is recent (stops replays of old requests)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def enqueue(session: Session, event: str, payload: dict[str, Any], case_id: str | None = None) -> WebhookDelivery:
    key = uuid.uuid4().hex
    body = {
        "event": event,
        "idempotency_key": key,
        "case_id": case_id,
        "created_at": utcnow().isoformat(),
        **payload,
    }
    row = WebhookDelivery(
        idempotency_key=key,
        case_id=case_id,
        event=event,
        payload=json.dumps(body, sort_keys=True),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        last_error="",
    )
    session.add(row)
    session.flush()
    return row


def _post(cfg: WebhookConfig, row: WebhookDelivery) -> tuple[bool, str]:
    """One attempt: (delivered, what happened). Every failure, a malformed URL included, is an outcome of the
    attempt (recorded, retried with backoff), never an exception that would stop the other deliveries."""
    body = row.payload.encode()
    try:
        req = urllib.request.Request(
            cfg.url or "",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": row.idempotency_key,
                "X-Deepshield-Event": row.event,
                SIGNATURE_HEADER: sign(cfg.secret, body),
                "User-Agent": "deepshield-webhooks/1",
            },
        )
        with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:  # noqa: S310 - configured URL
            code = resp.status
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return False, f"{type(e).__name__}: {getattr(e, 'reason', e)}"
    except (ValueError, http.client.InvalidURL) as e:  # a URL urllib cannot parse ("unknown url type", a bad port)
        return False, f"invalid webhook URL: {e}"
    except http.client.HTTPException as e:  # a reply that is not HTTP (a bad status line, a truncated header)
        return False, f"{type(e).__name__}: {e}"
    return (200 <= code < 300), f"HTTP {code}"


def deliver_due(settings: Settings, cfg: WebhookConfig, limit: int = 50, now: dt.datetime | None = None) -> int:
    """Try every due delivery once; returns how many were delivered. Safe to run in several processes: each
    row
    is claimed with a conditional UPDATE before it is posted."""
    if not cfg.url:
        return 0
    now = now or utcnow()
    delivered = 0
    with session_scope(settings) as s:
        ids = list(
            s.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(limit)
            )
        )
    for did in ids:
        lease = now + dt.timedelta(seconds=cfg.timeout_s * 3)
        with session_scope(settings) as s:
            claimed = s.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == did,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                )
                .values(next_attempt_at=lease)
            ).rowcount  # type: ignore[attr-defined]
            if claimed != 1:
                continue
            row = s.get(WebhookDelivery, did)
            assert row is not None
            s.expunge(row)
        ok, info = _post(cfg, row)
        with session_scope(settings) as s:
            attempts = row.attempts + 1
            if ok:
                values: dict[str, Any] = {
                    "status": "delivered",
                    "attempts": attempts,
                    "delivered_at": utcnow(),
                    "last_error": "",
                }
                delivered += 1
            elif attempts >= cfg.max_attempts:
                values = {"status": "dead", "attempts": attempts, "last_error": info}
                log.warning("webhook %s dead after %d attempts: %s", row.idempotency_key, attempts, info)
            else:
                delay = min(MAX_DELAY_S, cfg.base_delay_s * 2 ** (attempts - 1))
                values = {
                    "attempts": attempts,
                    "last_error": info,
                    "next_attempt_at": utcnow() + dt.timedelta(seconds=delay),
                }
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id == did).values(**values))
    return delivered


def dead_letters(session: Session) -> list[WebhookDelivery]:
    return list(
        session.scalars(select(WebhookDelivery).where(WebhookDelivery.status == "dead").order_by(WebhookDelivery.id))
    )


def requeue(session: Session, delivery_id: int | None = None) -> int:
    """Put dead deliveries (one, or all) back in the queue with a fresh attempt budget (same idempotency
    key)."""
    q = update(WebhookDelivery).where(WebhookDelivery.status == "dead")
    if delivery_id is not None:
        q = q.where(WebhookDelivery.id == delivery_id)
    return int(session.execute(q.values(status="pending", attempts=0, next_attempt_at=utcnow())).rowcount)  # type: ignore[attr-defined]


def pending_count(session: Session) -> int:
    return len(list(session.scalars(select(WebhookDelivery.id).where(or_(WebhookDelivery.status == "pending")))))


class WebhookWorker(PeriodicThread):
    """Background thread that drains the outbox; `kick()` after a commit makes it post at once."""

    def __init__(
        self,
        settings: Settings,
        cfg: WebhookConfig,
        poll_s: float = 1.0,
        periodic: Callable[[], object] | None = None,
        periodic_s: float = 60.0,
    ) -> None:
        super().__init__("deepshield-webhooks", poll_s, self._round)
        self.periodic, self.periodic_s, self._last_periodic = periodic, periodic_s, 0.0
        self.settings, self.cfg = settings, cfg

    def _round(self) -> None:
        if self.periodic is not None and time.monotonic() - self._last_periodic >= self.periodic_s:
            self._last_periodic = time.monotonic()
            try:
                self.periodic()
            except Exception:  # noqa: BLE001 - the deliveries below still run
                log.exception("periodic task failed")
        deliver_due(self.settings, self.cfg)  # a failure is logged by the thread; the rows stay pending
