"""The package's shape: its subpackages are the pipeline's stages, imports point only down the
pipeline, and no two modules import each other, even lazily (README: "How the code is laid out")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "searcher"

# Lowest first. A module may import modules of its own layer or of a lower one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("searcher.records", "searcher.errors"),
    ("searcher.ingest",),
    ("searcher.embed",),
    ("searcher.store",),
    ("searcher.search",),
    ("searcher.analyze",),
    ("searcher", "searcher.api", "searcher.config", "searcher.indexing", "searcher.image_indexing", "searcher.watch"),
    ("searcher.interfaces", "searcher.integrations", "searcher.client", "searcher.__main__"),
)


def layer_of(module: str) -> int:
    """The layer of the longest prefix of ``module`` named in ``LAYERS``."""
    best, depth = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and p.count(".") > depth:
                best, depth = i, p.count(".")
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Every ``searcher`` module this source imports anywhere (top level, functions, TYPE_CHECKING):
    ``from .x import y`` counts as importing ``x.y`` when that is a module, else ``x``."""
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [(base, a.name) for a in node.names]
        else:
            continue
        for base, name in targets:
            if not base.startswith("searcher"):
                continue
            full = f"{base}.{name}" if name else base
            out.add(full if full in known else base)
    out.discard(module)
    return out


def graph(modules: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    known = set(modules)
    return {m: imports_of(src, m, pkg, known) for m, (src, pkg) in modules.items()}


def problems(edges: dict[str, set[str]]) -> list[str]:
    """Upward imports and import cycles, one line each."""
    found = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)}), a later stage"
             for a, targets in sorted(edges.items()) for b in sorted(targets) if layer_of(b) > layer_of(a)]
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:   # depth-first search; a grey node met again closes a cycle
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                found.append("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            elif n in edges and not state.get(n):
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if not state.get(m):
            visit(m)
    return found


def package_modules() -> dict[str, tuple[str, bool]]:
    return {module_name(p, PACKAGE): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
            for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_point_down_the_pipeline_and_never_loop():
    edges = graph(package_modules())
    assert len(edges) > 40 and sum(map(len, edges.values())) > 80   # the parser does see the imports
    assert problems(edges) == []


def test_every_stage_is_a_subpackage_with_a_docstring():
    for stage in ("ingest", "embed", "store", "search", "analyze", "interfaces"):
        init = PACKAGE / stage / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init} needs a docstring"


@pytest.mark.parametrize("module,source,expected", [
    ("searcher.store.sqlite", "from ..search.query import search\n", "a later stage"),
    ("searcher.embed.encoder", "def f():\n    from ..store.sqlite import Store\n", "a later stage"),
    ("searcher.embed.encoder", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .onnx import export\n",
     "import cycle"),
])
def test_the_check_catches_a_planted_bad_import(module, source, expected):
    """The checker on the real package plus one planted import: it must report it."""
    modules = package_modules()
    src, pkg = modules[module]
    modules[module] = (src + source, pkg)
    if expected == "import cycle":   # plant the other half of the loop too
        src2, pkg2 = modules["searcher.embed.onnx"]
        modules["searcher.embed.onnx"] = (src2 + "from .encoder import Encoder\n", pkg2)
    assert any(expected in p for p in problems(graph(modules))), problems(graph(modules))
