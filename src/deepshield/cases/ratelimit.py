"""Per-client sliding-window rate limits for the public endpoints (form, PIN sign-in, self-service API).

In-process: each service process keeps its own window. The PIN lockout itself is stored in the database, so
brute force stays hopeless even across processes; this limit protects the service from floods."""

from __future__ import annotations

import threading
import time
from collections import deque

from deepshield.config import FORM_RATE, LOGIN_ACCOUNT_RATE, LOGIN_CLIENT_RATE, PIN_RATE
from deepshield.errors import DeepshieldError


class RateLimited(DeepshieldError):
    code = "rate_limited"
    http_status = 429


class RateLimiter:
    def __init__(self, limit: int, per_s: float) -> None:
        self.limit, self.per_s = limit, per_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> None:
        """Raise `RateLimited` if `key` is at its limit, without counting this call (see `hit`)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._hits.get(key)
            if q:
                while q and q[0] <= now - self.per_s:
                    q.popleft()
                if len(q) >= self.limit:
                    raise RateLimited(f"too many attempts: try again in {int(q[0] + self.per_s - now) + 1} s")

    def hit(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.per_s:
                q.popleft()
            if len(q) >= self.limit:
                wait = int(q[0] + self.per_s - now) + 1
                raise RateLimited(f"too many requests: try again in {wait} s")
            q.append(now)
            if len(self._hits) > 50000:  # forget idle clients
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.per_s][:25000]:
                    del self._hits[k]


#: public report form: 10 per 10 minutes per client; PIN sign-in: 10 per 10 minutes per client
FORM = RateLimiter(*FORM_RATE.get())
PIN = RateLimiter(*PIN_RATE.get())
#: console sign-in, failed attempts only: 10 per 15 minutes per account, 20 per 10 minutes per client
LOGIN_ACCOUNT = RateLimiter(*LOGIN_ACCOUNT_RATE.get())
LOGIN_CLIENT = RateLimiter(*LOGIN_CLIENT_RATE.get())
