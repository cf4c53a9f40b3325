"""Detectors by name, on the one registry style (`deepshield.registry`): a name maps to a factory, and a factory
may decline (no weights installed) by returning None."""

from __future__ import annotations

from collections.abc import Callable

from deepshield.detect.base import Detector
from deepshield.registry import FactoryRegistry

DetectorFactory = Callable[[], Detector | None]

#: Built-in detectors and the modules that register them (imported once, on first read).
DETECTORS: FactoryRegistry[Detector] = FactoryRegistry(
    "detector", {"sbi": "deepshield.detect.onnx_detector"}, missing_ok=True
)


def register_detector(name: str, factory: DetectorFactory) -> None:
    DETECTORS.register(name, factory)


def available_detectors() -> list[str]:
    return sorted(DETECTORS.names())


def get_detector(name: str | None = None) -> Detector | None:
    """The named detector, or the first one that can load; None when no detector is installed (or none is
    registered under `name`)."""
    return DETECTORS.first_available([name] if name else sorted(DETECTORS.names()))
