"""No import loops between deepshield's packages: what two packages both need lives below both.

Imports inside functions count too: a loop hidden in a function (as `detect.service` importing `reports.html`
while `reports.html` imported `detect.pipeline`) is a loop all the same.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "deepshield"
#: The entry points: they load the domains, so no domain may import them.
ENTRY_POINTS = {"api", "cli"}


def _unit(module: str) -> str:
    """`deepshield.detect.pipeline` -> `detect`; a top-level module such as `deepshield.scan_result` is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        source = _unit(".".join(path.relative_to(SRC).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("deepshield.") and _unit(name) != source:
                    edges[source].add(_unit(name))
    return edges


def _path(edges: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
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
    edges = _graph()
    assert edges["detect"] and edges["cli"], "the import graph came out empty: the walk is broken"
    loops = []
    for a in sorted(edges):
        for b in sorted(edges[a]):
            back = _path(edges, b, a)
            if back is not None:
                loops.append(" -> ".join([a, *back]))
    assert not loops, "import loops between packages:\n" + "\n".join(loops)


def test_no_domain_imports_the_entry_points() -> None:
    edges = _graph()
    wrong = {a: sorted(edges[a] & ENTRY_POINTS) for a in edges if a not in ENTRY_POINTS and edges[a] & ENTRY_POINTS}
    assert not wrong, f"these import the CLI or the API, which load them: {wrong}"
