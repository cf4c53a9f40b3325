"""One registry style for every extension point (detectors, signal types, label kinds, liveness signals).

A `Registry[T]` maps a name to an entry: an instance (a label kind, a signal type) or a factory (a liveness
signal class, a detector loader). Built-in entries are named up front with the module that registers them, so
listing is ordered the same whatever was imported first, and those modules are imported once, on first read,
not when the package is: importing a domain stays cheap and free of import cycles. A new entry is a new module
that calls `register` (built-ins are also added to the `builtins` table of their registry).

`FactoryRegistry[T]` holds factories that may decline (return None: no weights installed) and builds the first
one that can.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from deepshield.errors import DeepshieldError

T = TypeVar("T")


class UnknownName(DeepshieldError):
    """A name no entry is registered under; the message lists the known names."""

    code = "unknown_name"
    http_status = 400


class Registry(Generic[T]):
    """Name -> entry, with the built-in modules imported once on first read."""

    def __init__(
        self,
        what: str,
        builtins: Mapping[str, str] | None = None,
        *,
        aliases: Mapping[str, str] | None = None,
        missing_ok: bool = False,
        error: type[DeepshieldError] = UnknownName,
    ) -> None:
        """`what` names an entry in messages ("liveness signal"); `builtins` maps each built-in name to the module
        that registers it, in listing order; `aliases` maps other systems' names to ours; with `missing_ok`, a
        built-in module that is not installed is skipped (its names stay unknown); `error` is raised for an
        unknown name (a `DeepshieldError`, so the API answers it with its code)."""
        self.what = what
        self._builtins = dict(builtins or {})
        self._aliases = dict(aliases or {})
        self._missing_ok = missing_ok
        self._error = error
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._loading = False
        self._lock = threading.RLock()

    def register(self, name: str, entry: T) -> T:
        """Add (or replace) the entry under `name`; returns it, so a module can write `X = REG.register(...)`."""
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry added with `register` (a test's stand-in, a source bound to a closed database)."""
        with self._lock:
            self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry under `name` (or an alias of it); raises the registry's error, listing the known names."""
        self._load()
        key = self._aliases.get(name, name)
        try:
            return self._entries[key]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise self._error(f"no such {self.what} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        """Registered names: the built-ins in the order of `builtins`, then the others in registration order."""
        self._load()
        first = [n for n in self._builtins if n in self._entries]
        return first + [n for n in self._entries if n not in self._builtins]

    def values(self) -> list[T]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and self._aliases.get(name, name) in self._entries

    def _load(self) -> None:
        """Import the built-in modules once. A failed import is raised and tried again on the next read; a module
        that imports without registering the name it is listed for is a programming error."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:  # `_loading`: a built-in module reading its own registry
                return
            self._loading = True
            try:
                absent: set[str] = set()
                for module in dict.fromkeys(self._builtins.values()):
                    try:
                        importlib.import_module(module)
                    except ModuleNotFoundError as e:
                        if not (self._missing_ok and e.name == module):
                            raise
                        absent.add(module)
                lost = [n for n, m in self._builtins.items() if m not in absent and n not in self._entries]
                if lost:
                    raise RuntimeError(f"built-in {self.what}(s) {lost} not registered by their modules")
                self._loaded = True
            finally:
                self._loading = False


class FactoryRegistry(Registry[Callable[[], T | None]]):
    """Factories that may decline by returning None (e.g. a detector whose weights are not installed)."""

    def build(self, name: str) -> T | None:
        """The named entry built, or None if its factory declines; an unknown name raises."""
        return self.get(name)()

    def first_available(self, names: list[str] | None = None) -> T | None:
        """The first of `names` (default: all, in listing order) whose factory builds; unknown names are skipped."""
        for n in names if names is not None else self.names():
            if n in self:
                built = self.get(n)()
                if built is not None:
                    return built
        return None
