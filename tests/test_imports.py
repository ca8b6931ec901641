"""The project's import graph: no cycles between modules, and no upward imports.

Every ``import`` statement counts, wherever it sits: at module level, inside a function
(a lazy import still runs) or under ``TYPE_CHECKING``. The layers, lowest first:

- ``twin`` — the pure core: imports nothing of the project but ``twin``;
- ``scenarios`` — loading and simulation: ``twin`` and ``scenarios`` only;
- ``detection`` — City Eye (torch): ``twin`` and ``scenarios``;
- ``actors`` — the live twin: anything below it, never ``api``;
- ``api`` — the HTTP edge.

Importing ``a.b`` also runs ``a/__init__.py``; those implicit edges to a parent package are
not counted (every package imports its own modules), only the modules an import names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("twin", "scenarios", "detection", "actors", "api")
PROJECT = (*CHECKED, "streetbrain", "viz", "benchmarks", "tools")
#: What each package may import of the project (besides itself).
ALLOWED = {
    "twin": set(),
    "scenarios": {"twin"},
    "detection": {"twin", "scenarios"},
    "actors": {"twin", "scenarios", "detection"},
    "api": {"twin", "scenarios", "detection", "actors", "streetbrain", "viz"},
}
#: Cycles that are known and being fixed elsewhere, as sets of modules.
KNOWN_CYCLES: list[set[str]] = []  # none: api.app <-> api.open311 was the last, removed with the routers


def _modules() -> dict[str, Path]:
    """Dotted name → file, for every module of the checked packages."""
    out = {}
    for pkg in CHECKED:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _project_module(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the project (``None``: not ours)."""
    if name.split(".")[0] not in PROJECT:
        return None
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in known or len(parts) == 1:
            return cand
        parts.pop()
    return None


def _imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported project module, line)`` for every import statement in ``path``."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _project_module(alias.name, known)
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = _project_module(full if full in known else base, known)
                if target:
                    yield target, node.lineno


def _graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], int]]:
    known = _modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    where: dict[tuple[str, str], int] = {}
    for module, path in known.items():
        for target, line in _imports(module, path, known):
            if target != module:
                graph[module].add(target)
                where.setdefault((module, target), line)
    return graph, where


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan), in a fixed order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=sorted)


def test_the_graph_sees_module_level_and_lazy_imports() -> None:
    graph, _ = _graph()
    assert "twin.catalog" in graph["twin.district"]  # module level
    assert "scenarios.simulate" in graph["scenarios"]  # inside a function


def test_no_import_cycles() -> None:
    graph, where = _graph()
    cycles = [sorted(c) for c in _cycles(graph) if c not in KNOWN_CYCLES]
    detail = [" ; ".join(f"{a} -> {b} (line {where[a, b]})" for a in c for b in sorted(graph[a]) if b in c)
              for c in map(set, cycles)]
    assert cycles == [], "\n".join(detail)


def test_known_cycles_still_exist() -> None:
    """A known cycle that is gone must leave the list (so that it cannot come back unseen)."""
    cycles = _cycles(_graph()[0])
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert gone == [], f"no longer cycles, remove them from KNOWN_CYCLES: {gone}"


def test_no_upward_imports() -> None:
    graph, where = _graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        layer = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != layer and other not in ALLOWED[layer]:
                wrong.append(f"{module} imports {target} (line {where[module, target]})")
    assert wrong == []
