"""The package's import contract: five layers, imports pointing down, no cycles.

Every ``import`` and ``from ... import`` inside the package counts, at module level and inside
functions alike. A module may import from its own layer or a lower one, never a higher one,
and the graph of imports between modules has no cycle. A new module must be given a layer
here, so the map stays the documentation of the architecture (see DESIGN.md).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import facekeypoints

PACKAGE = Path(facekeypoints.__file__).parent

LAYERS = {
    "helpers": ["_version", "metrics", "_suggest", "_cache", "_safe_io", "_json", "_memory",
                "_literals", "_notebook", "_signals", "_rundir"],
    "data": ["_csv", "_csv_cache", "data", "synthetic"],
    "core": ["shared", "precision", "losses", "layers", "updates", "iterators", "augment",
             "schedules", "callbacks",
             "progress", "net", "presets", "persist", "checkpoint"],
    "application": ["reports", "plots", "runs", "sweep", "sweep_report", "specialists",
                    "notebook"],
    "cli": ["cli"],
}
RANK = {name: i for i, name in enumerate(LAYERS)}
# Pairs inside one layer that must not exist in this direction (the layer's own order).
FORBIDDEN = {("data", "synthetic"), ("_csv", "synthetic"), ("_csv_cache", "synthetic")}


def module_names():
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        names.append(".".join(parts))       # '' is the package itself
    return names


def layer_of(module):
    top = module.split(".")[0]
    for layer, members in LAYERS.items():
        if top in members:
            return layer
    return None


def _resolve(module, node):
    """Package-relative names of the modules an import node brings in."""
    is_pkg = (PACKAGE / module.replace(".", "/") / "__init__.py").exists() if module else True
    here = module.split(".") if module else []
    if isinstance(node, ast.Import):
        return [a.name.split(".", 1)[1] for a in node.names
                if a.name.startswith("facekeypoints.")]
    if node.level == 0:
        if not (node.module or "").startswith("facekeypoints"):
            return []
        base = node.module.split(".")[1:]
    else:
        package = here if is_pkg else here[:-1]
        base = package[:len(package) - (node.level - 1)] + (node.module.split(".")
                                                            if node.module else [])
    found = []
    for alias in node.names:      # `from . import presets` names a submodule
        candidate = base + [alias.name]
        path = PACKAGE.joinpath(*candidate)
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            found.append(".".join(candidate))
        else:
            found.append(".".join(base))
    return found


def imports(module):
    rel = module.replace(".", "/")
    path = PACKAGE / (rel + ".py") if (PACKAGE / (rel + ".py")).exists() and module \
        else PACKAGE / rel / "__init__.py"
    tree = ast.parse(path.read_text())
    deps = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            deps.update(d for d in _resolve(module, node) if d != module)
    return deps


GRAPH = {m: imports(m) for m in module_names()}


def test_every_module_has_a_layer():
    missing = [m for m in GRAPH if m and layer_of(m) is None]
    assert not missing, f"give these modules a layer in tests/test_architecture.py: {missing}"


@pytest.mark.parametrize("module", [m for m in GRAPH if m])
def test_imports_point_down(module):
    upward = []
    for dep in GRAPH[module]:
        if dep == "":
            upward.append("facekeypoints (the package facade, which sits above every layer)")
            continue
        if RANK[layer_of(dep)] > RANK[layer_of(module)]:
            upward.append(f"{dep} ({layer_of(dep)})")
        if (module.split(".")[0], dep.split(".")[0]) in FORBIDDEN:
            upward.append(f"{dep} (the layer's own order forbids it)")
    assert not upward, f"{module} ({layer_of(module)}) imports upward: {upward}"


def test_no_import_cycles():
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for dep in sorted(GRAPH.get(m, ())):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = "done"

    for m in sorted(GRAPH):
        if m and m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_contract_sees_every_kind_of_import():
    assert "plots" in GRAPH["runs"]                  # from .plots import ... (module level)
    assert "persist" in GRAPH["specialists"]         # from .persist import ... in a function
    assert "presets" in GRAPH["cli.training"]        # from .. import presets, in a function
    assert "cli._common" in GRAPH["cli.training"]    # from ._common import ... in a package
