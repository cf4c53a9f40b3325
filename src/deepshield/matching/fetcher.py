"""Exchange fetches in the service: HMA's fetcher, which fetches every enabled exchange on a timer
(`exchange_fetch_minutes`), and the one fetch path it shares with `POST /c/exchange/<name>/fetch`.

At most one fetch of an exchange runs at a time in a process (a second is refused with 409 by the route and
skipped by the timer): two would bank the same signals twice and race on the checkpoint. Processes do not
see each other's fetches, so a deployment of several service processes sets the interval in one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.matching import exchanges
from deepshield.matching.storage import ExchangeRecord, as_store
from deepshield.store.db import session_scope
from deepshield.workers import PeriodicThread

log = logging.getLogger(__name__)

_running: dict[str, int] = {}
_running_lock = threading.Lock()


class FetchRunning(DeepshieldError):
    code = "fetch_running"
    http_status = 409


@contextmanager
def _claim(name: str) -> Iterator[None]:
    with _running_lock:
        if name in _running:
            raise FetchRunning(f"a fetch of exchange '{name}' is already running (since {_running[name]})")
        _running[name] = int(time.time())
    try:
        yield
    finally:
        with _running_lock:
            _running.pop(name, None)


def running_since(name: str) -> int | None:
    """When the fetch of an exchange now running in this process started (HMA's `running_fetch_start_ts`)."""
    with _running_lock:
        return _running.get(name)


def status(x: ExchangeRecord) -> dict[str, object]:
    """HMA's fetch status, with a fetch in progress."""
    return {**exchanges.status_json(x), "running_fetch_start_ts": running_since(x.name)}


def fetch_and_record(session: Session, name: str, settings: Settings) -> ExchangeRecord:
    """Fetch one exchange and commit: what it banked with its status, or, when it failed, only its status."""
    with _claim(name):
        x = exchanges.fetch(session, name, home=settings.home)
        if not x.last_fetch_succeeded:
            session.rollback()
        exchanges.record_fetch(session, x)
        session.commit()
    return x


class ExchangeFetcher(PeriodicThread):
    """The service's thread: every `exchange_fetch_minutes`, each enabled exchange in turn, each in its own
    transaction, so one failing exchange (its error recorded in its status) never stops the others."""

    def __init__(self, settings: Settings, interval_s: float | None = None) -> None:
        every = interval_s if interval_s is not None else settings.exchange_fetch_minutes * 60
        super().__init__("deepshield-exchange-fetcher", every, self.fetch_all, at_once=False)
        self.settings = settings

    def fetch_all(self) -> dict[str, bool]:
        """{exchange: whether its fetch worked} for the exchanges fetched this round."""
        with session_scope(self.settings) as s:
            names = [x.name for x in as_store(s).exchanges() if x.enabled]
        done: dict[str, bool] = {}
        for name in names:
            if self.stopping:
                break
            try:
                with session_scope(self.settings) as s:
                    done[name] = bool(fetch_and_record(s, name, self.settings).last_fetch_succeeded)
            except DeepshieldError as e:  # running already, or disabled / deleted since the listing
                log.info("exchange %s not fetched: %s", name, e.message)
            except Exception:  # noqa: BLE001 - the database failed under this one; the others still fetch
                log.exception("exchange %s: fetch failed", name)
        return done
