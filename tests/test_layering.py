"""The layering of `src/deepshield`, checked on its import graph (read with `ast`, nothing is imported).

1. The foundation (media, faces, store and the top-level helper modules) sits below the domains: it never
   imports a domain, the API or the CLI.
2. No domain imports the API or the CLI: they sit on top and call down.
3. A runtime package never imports its training or attack subpackage (`TRAINING_SUBPACKAGES`), so serving never
   loads what builds and measures models; only the subpackage itself and the domain's command-line module
   (`<package>.cli`, an entry point like `deepshield.cli`) may.
4. No import loops between packages: what two packages both need lives below both (a loop hidden in a function,
   as `detect.service` importing `reports.html` while `reports.html` imported `detect.pipeline`, is one too).

Every import counts, at module level or inside a function or a `TYPE_CHECKING` block, and so does a string
constant naming a module of the tree (`importlib`, a registry's table of built-ins), since those load it too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

FOUNDATION = (
    "deepshield.media",
    "deepshield.faces",
    "deepshield.store",
    "deepshield.config",
    "deepshield.errors",
    "deepshield.jsontypes",
    "deepshield.registry",
    "deepshield.textfiles",
    "deepshield.workers",
    "deepshield.scale",
)
DOMAINS = (
    "deepshield.detect",
    "deepshield.labels",
    "deepshield.matching",
    "deepshield.liveness",
    "deepshield.cases",
    "deepshield.accounts",
    "deepshield.reports",
    "deepshield.consent",
)
TOP = ("deepshield.api", "deepshield.cli")
#: runtime package -> its training / attack subpackage.
TRAINING_SUBPACKAGES = {
    "deepshield.liveness": "deepshield.liveness.attacks",
    "deepshield.detect": "deepshield.detect.training",
}


def _within(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "deepshield").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the tree that `module` imports (a `from a import b` of a submodule names `a.b`)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            out.add(node.value)
    return {m for m in out if _within(m, ["deepshield"]) and m != "deepshield"}


@dataclass(frozen=True)
class Rule:
    name: str
    importers: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed_importers: tuple[str, ...] = ()


def _rules() -> list[Rule]:
    rules = [
        Rule("foundation-below-domains", FOUNDATION, DOMAINS + TOP),
        Rule("domains-below-api-and-cli", DOMAINS, TOP),
    ]
    for runtime, sub in TRAINING_SUBPACKAGES.items():
        rules.append(Rule(f"{runtime}-never-imports-{sub}", (runtime,), (sub,), (sub, f"{runtime}.cli")))
    return rules


_MODULES = _modules()
GRAPH = {m: _imports(m, p, set(_MODULES)) for m, p in _MODULES.items()}


def _offenders(rule: Rule) -> set[str]:
    return {
        f"{importer} -> {imported}"
        for importer, imports in GRAPH.items()
        if _within(importer, rule.importers) and not _within(importer, rule.allowed_importers)
        for imported in imports
        if _within(imported, rule.forbidden)
    }


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.name)
def test_layering(rule: Rule) -> None:
    found = _offenders(rule)
    assert not found, f"{rule.name}: imports that break the layering:\n" + "\n".join(sorted(found))


def test_the_graph_sees_each_kind_of_import() -> None:
    """Guards the reader: relative, `from a import submodule`, in-function and by-name imports are all edges."""
    assert "deepshield.liveness.attacks.suite" in GRAPH["deepshield.liveness.cli"]  # inside a function
    assert "deepshield.liveness.signals.blink" in GRAPH["deepshield.liveness.signals"]  # a registry's table
    assert "deepshield.errors" in GRAPH["deepshield.textfiles"]
    assert "deepshield.terminal" in GRAPH["deepshield.liveness.cli"]


def test_a_runtime_import_of_the_attack_suite_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = next(r for r in _rules() if r.forbidden == ("deepshield.liveness.attacks",))
    monkeypatch.setitem(GRAPH, "deepshield.liveness.service", {"deepshield.liveness.attacks.suite"})
    assert _offenders(rule) == {"deepshield.liveness.service -> deepshield.liveness.attacks.suite"}


def _package(module: str) -> str:
    """`deepshield.detect.pipeline` -> `detect`; a top-level module such as `deepshield.scan_result` is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _chain(edges: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The import chain from `start` to `goal`, if there is one."""
    stack, seen = [[start]], {start}
    while stack:
        chain = stack.pop()
        for nxt in sorted(edges.get(chain[-1], ())):
            if nxt == goal:
                return [*chain, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append([*chain, nxt])
    return None


def test_no_package_imports_back_into_a_package_that_imports_it() -> None:
    edges: dict[str, set[str]] = {}
    for importer, imports in GRAPH.items():
        for imported in imports:
            if _package(imported) != _package(importer):
                edges.setdefault(_package(importer), set()).add(_package(imported))
    assert edges.get("detect") and edges.get("cli"), "the import graph came out empty: the reader is broken"
    loops = [" -> ".join([a, *back]) for a in sorted(edges) for b in sorted(edges[a]) if (back := _chain(edges, b, a))]
    assert not loops, "import loops between packages:\n" + "\n".join(loops)
