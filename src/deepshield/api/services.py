"""The app's long-lived services, built once when the app starts and closed when it stops, so no two requests
race to build one and no worker thread or model outlives the app. Routes get them through the dependencies
in `deps` (`ScansDep`, `CasesDep`, `LivenessDep`)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from deepshield.cases.context import CasesContext
from deepshield.config import Settings
from deepshield.consent.service import ConsentService
from deepshield.detect.service import ScanService
from deepshield.liveness.service import LivenessService
from deepshield.matching.fetcher import ExchangeFetcher
from deepshield.matching.retro_jobs import ArchiveSearchService


@dataclass
class Services:
    scans: ScanService
    cases: CasesContext
    liveness: LivenessService
    archive_searches: ArchiveSearchService
    consent: ConsentService
    fetcher: ExchangeFetcher | None = None

    @classmethod
    def build(cls, settings: Settings, cases: CasesContext | None = None) -> Services:
        """`cases`: a context the caller built (tests: an in-memory bank, no detector); it is closed with the
        rest. What was built before a failure is closed again, so a failed start leaves nothing running."""
        with ExitStack() as built:
            scans = ScanService(settings, take_any=True)  # shares the database's queue
            built.callback(scans.shutdown)
            # The detector screener scans through the app's scan service: one scan path, one configuration.
            cases = cases or CasesContext.build(settings, scans=scans)
            built.callback(cases.close)
            liveness = LivenessService(settings)
            built.callback(liveness.close)
            archive_searches = ArchiveSearchService(settings)
            built.callback(archive_searches.close)
            consent = ConsentService(settings, liveness)
            built.callback(consent.close)
            fetcher = ExchangeFetcher(settings).start() if settings.exchange_fetch_minutes > 0 else None
            built.pop_all()
        return cls(scans, cases, liveness, archive_searches, consent, fetcher)

    def close(self) -> None:
        """The exchange fetcher first (a fetch in progress finishes), then scans (a running scan finishes, queued
        ones are cancelled), then cases (the webhook worker and the screeners' models), then liveness; one that
        fails to close does not keep the others open."""
        with ExitStack() as stack:  # callbacks run last-in first-out
            stack.callback(self.liveness.close)
            stack.callback(self.archive_searches.close)
            stack.callback(self.consent.close)
            stack.callback(self.cases.close)
            stack.callback(self.scans.shutdown)
            if self.fetcher is not None:
                stack.callback(self.fetcher.stop)
