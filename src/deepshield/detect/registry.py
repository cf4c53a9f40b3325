"""Detector registry: a name maps to a factory; a factory may decline (no weights installed) by returning None."""

from __future__ import annotations

from collections.abc import Callable

from deepshield.detect.base import Detector

DetectorFactory = Callable[[], Detector | None]

_FACTORIES: dict[str, DetectorFactory] = {}
_BUILTINS_LOADED = False


def register_detector(name: str, factory: DetectorFactory) -> None:
    _FACTORIES[name] = factory


def _load_builtins() -> None:
    """Import the modules that ship detectors, so their registration runs once."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import importlib

    for mod in ("deepshield.detect.onnx_detector",):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def available_detectors() -> list[str]:
    _load_builtins()
    return sorted(_FACTORIES)


def get_detector(name: str | None = None) -> Detector | None:
    """The named detector, or the first one that can load; None when no detector is installed."""
    _load_builtins()
    names = [name] if name else sorted(_FACTORIES)
    for n in names:
        factory = _FACTORIES.get(n)
        if factory is None:
            continue
        det = factory()
        if det is not None:
            return det
    return None
