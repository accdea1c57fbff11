"""The package's layers, read from the source: every import (inside functions too), no cycles, no climbing.

Floors from the ground up: ``errors`` < ``data`` < ``engine`` < ``metrics``,
``spatial``, ``intensity`` < the rest (presets, registration, datasets,
interop, preview, enhance, experiment) < ``cli``.  The engine and the data
model import nothing above themselves; the package root names the modules
that fill the engine's registry (:mod:`medaug.engine.registry`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import medaug

SRC = Path(medaug.__file__).parent
#: Top-level packages/modules that ``data`` and ``engine`` may never import.
ABOVE_ENGINE = {"spatial", "intensity", "presets", "datasets", "cli", "registration", "interop", "preview",
                "enhance", "experiment", "metrics"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every medaug module ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t.startswith("medaug") and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_data_and_engine_import_nothing_above_them():
    bad = []
    for mod, deps in _graph().items():
        if _top(mod) in ("data", "engine", "errors"):
            bad += [f"{mod} -> {d}" for d in deps if _top(d) in ABOVE_ENGINE or d == "medaug"]
        if _top(mod) == "data":
            bad += [f"{mod} -> {d}" for d in deps if _top(d) == "engine"]
    assert not bad, "imports that climb above the engine:\n" + "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (Tarjan's strongly connected components of more than one module).

    A package's ``__init__`` importing its own modules (to hand their names on) is
    not an edge of code: those edges are left out, and nothing else is forgiven.
    """
    graph = {m: {d for d in deps if d != "medaug" and not d.startswith(m + ".")} for m, deps in graph.items()
             if m != "medaug"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_a_cycle_between_modules_of_one_package_is_seen():
    """The check forgave any cycle whose modules all lay in one package with its __init__."""
    graph = {"medaug.p": {"medaug.p.a", "medaug.p.b"}, "medaug.p.a": {"medaug.p.b"},
             "medaug.p.b": {"medaug.p.a", "medaug.p"}}
    assert _cycles(graph) == [["medaug.p.a", "medaug.p.b"]]
    assert _cycles({"medaug.p": {"medaug.p.a"}, "medaug.p.a": {"medaug.p"}}) == []  # names handed on


def test_the_walk_sees_imports_inside_functions():
    graph = _graph()
    assert "medaug.datasets.nnunet" in graph["medaug.datasets.discover"]
    assert "medaug.data.io" in graph["medaug.data.field"]  # imported inside save_field only
