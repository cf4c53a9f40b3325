"""The app owns its long-lived services: its lifespan builds each once, routes share them, and when the
lifespan ends no thread of theirs is left running (the webhook worker and the scan workers used to outlive
the app, and two first requests could each build a scan or liveness service)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deepshield.api import services as services_module
from deepshield.api.app import create_app
from deepshield.cases.context import CasesContext
from deepshield.config import Settings, get_settings
from deepshield.detect.service import ScanService
from deepshield.liveness.service import LivenessService
from tests.conftest import auth
from tests.foundation.media_factory import png_bytes


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    built: Counter[str] = Counter()

    class CountedScans(ScanService):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built["scans"] += 1
            super().__init__(*args, **kwargs)

    class CountedLiveness(LivenessService):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built["liveness"] += 1
            super().__init__(*args, **kwargs)

    build_cases = CasesContext.build

    def counted_cases(settings: Settings, **kwargs: Any) -> CasesContext:
        built["cases"] += 1
        return build_cases(settings, **kwargs)

    monkeypatch.setattr(services_module, "ScanService", CountedScans)
    monkeypatch.setattr(services_module, "LivenessService", CountedLiveness)
    monkeypatch.setattr(services_module.CasesContext, "build", counted_cases)
    return built


def test_services_are_built_once_and_leave_no_thread_behind(
    ds_home: Path, api_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSHIELD_WEBHOOK_URL", "http://127.0.0.1:9/hooks")  # so the webhook worker runs
    get_settings.cache_clear()
    built = _count_builds(monkeypatch)
    scan_key, cases_key = auth(api_key("scan")), auth(api_key("cases"))
    before = set(threading.enumerate())
    app = create_app(get_settings())
    assert not built  # nothing is built before the app starts

    with TestClient(app) as client:
        assert built == {"scans": 1, "cases": 1, "liveness": 1}

        def requests(i: int) -> list[int]:
            return [
                client.get(f"/v1/scans/nope{i}", headers=scan_key).status_code,
                client.get(f"/v1/liveness/sessions/nope{i}", headers=scan_key).status_code,
                client.get("/v1/cases", headers=cases_key).status_code,
            ]

        with ThreadPoolExecutor(4) as pool:  # concurrent first requests: none builds a service of its own
            assert all(codes == [404, 404, 200] for codes in pool.map(requests, range(8)))
        r = client.post("/v1/scans", files={"file": ("x.png", png_bytes(), "image/png")}, headers=scan_key)
        assert r.status_code == 200, r.text
        running = {t.name for t in set(threading.enumerate()) - before}
        assert "deepshield-webhooks" in running and any(n.startswith("scan") for n in running), running
        assert "deepshield-exchange-fetcher" in running, running
        assert built == {"scans": 1, "cases": 1, "liveness": 1}

    # AnyIO's idle worker threads belong to the test client's event loop (they stop with it, unjoined).
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive() and not t.name.startswith("AnyIO")]
    assert left == [], f"threads outlived the app: {left}"
