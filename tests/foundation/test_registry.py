"""The generic registry: ordered built-ins loaded once on first read, aliases, typed errors, declining factories."""

from __future__ import annotations

import importlib.abc
import sys
import types
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec

import pytest

from deepshield.errors import DeepshieldError
from deepshield.registry import FactoryRegistry, Registry, UnknownName

Install = Callable[[str, Callable[[], object]], None]


@pytest.fixture()
def fake_modules() -> Iterator[Install]:
    """Make `import name` run `body`, so a registry's built-in modules can be stood in for."""

    class Loader(importlib.abc.Loader):
        def __init__(self, body: Callable[[], object]) -> None:
            self.body = body

        def create_module(self, spec: ModuleSpec) -> None:
            return None

        def exec_module(self, module: types.ModuleType) -> None:
            self.body()

    class Finder(importlib.abc.MetaPathFinder):
        def __init__(self, name: str, body: Callable[[], object]) -> None:
            self.name, self.body = name, body

        def find_spec(
            self, fullname: str, path: object, target: object = None
        ) -> importlib.machinery.ModuleSpec | None:
            return ModuleSpec(fullname, Loader(self.body)) if fullname == self.name else None

    finders: list[Finder] = []

    def install(name: str, body: Callable[[], object]) -> None:
        finder = Finder(name, body)
        sys.meta_path.insert(0, finder)
        finders.append(finder)

    yield install
    for f in finders:
        sys.meta_path.remove(f)
        sys.modules.pop(f.name, None)


def test_builtins_are_listed_in_table_order_whatever_registered_first(fake_modules: Install) -> None:
    reg: Registry[int] = Registry("number", {"one": "ds_test_reg_a", "two": "ds_test_reg_b"})
    imported: list[str] = []

    def module(tag: str, name: str, value: int) -> Callable[[], object]:
        def body() -> None:
            imported.append(tag)
            reg.register(name, value)

        return body

    fake_modules("ds_test_reg_a", module("a", "one", 1))
    fake_modules("ds_test_reg_b", module("b", "two", 2))
    reg.register("extra", 3)  # a plugin registered before anything was read
    assert imported == []  # nothing is imported until the registry is read
    assert reg.names() == ["one", "two", "extra"]
    assert reg.values() == [1, 2, 3]
    assert reg.get("two") == 2 and "one" in reg and "three" not in reg
    reg.names()
    assert imported == ["a", "b"]  # once


def test_unknown_names_raise_the_registrys_error_listing_the_known_ones() -> None:
    class NoSuchThing(DeepshieldError):
        code = "no_such_thing"

    reg: Registry[str] = Registry("thing", aliases={"video_md5": "md5"}, error=NoSuchThing)
    reg.register("md5", "M")
    assert reg.get("video_md5") == "M" and "video_md5" in reg
    with pytest.raises(NoSuchThing, match=r"no such thing 'sha1' \(known: md5\)"):
        reg.get("sha1")
    with pytest.raises(UnknownName):
        Registry[str]("thing").get("x")


def test_a_builtin_module_that_forgets_to_register_is_an_error(fake_modules: Install) -> None:
    reg: Registry[int] = Registry("number", {"one": "ds_test_reg_silent"})
    fake_modules("ds_test_reg_silent", lambda: None)
    with pytest.raises(RuntimeError, match="not registered"):
        reg.names()


def test_missing_builtin_modules_are_skipped_only_when_allowed() -> None:
    lenient: Registry[int] = Registry("number", {"one": "ds_test_reg_absent"}, missing_ok=True)
    assert lenient.names() == []
    strict: Registry[int] = Registry("number", {"one": "ds_test_reg_absent"})
    with pytest.raises(ModuleNotFoundError):
        strict.names()


def test_factories_may_decline_and_the_first_that_builds_wins() -> None:
    reg: FactoryRegistry[str] = FactoryRegistry("detector")
    reg.register("absent", lambda: None)
    reg.register("onnx", lambda: "onnx detector")
    assert reg.build("absent") is None
    assert reg.first_available() == "onnx detector"
    assert reg.first_available(["absent"]) is None
    assert reg.first_available(["nope", "onnx"]) == "onnx detector"
    with pytest.raises(UnknownName):
        reg.build("nope")
