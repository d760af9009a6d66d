"""The package's import contract: five layers, imports pointing down, no cycles.

Every ``import`` and ``from ... import`` inside the package counts, at module level and inside
functions alike. A module may import from its own layer or a lower one, never a higher one,
and the graph of imports between modules has no cycle. A module's layer is the folder it
lives in (src/facekeypoints/helpers, datasets, core, application, cli),
so the tree is the documentation of the architecture.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import facekeypoints

PACKAGE = Path(facekeypoints.__file__).parent

# The layers, lowest first, and the folder each lives in. A module's layer is the folder that
# holds it: the tree is the architecture's documentation, and nothing here lists modules.
LAYERS = {"helpers": "helpers", "data": "datasets", "core": "core",
          "application": "application", "cli": "cli"}
RANK = {name: i for i, name in enumerate(LAYERS)}
FOLDER_LAYER = {folder: layer for layer, folder in LAYERS.items()}
# Pairs inside one layer that must not exist in this direction (the layer's own order).
FORBIDDEN = {("data", "synthetic"), ("_csv", "synthetic"), ("_csv_cache", "synthetic")}


def _public_name(path):
    """``core/net.py`` -> ``net`` (imported as facekeypoints.net); ``cli/sweep.py`` ->
    ``cli.sweep``; a layer folder's own ``__init__`` -> ``<folder>``."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    if parts and parts[0] in FOLDER_LAYER and parts[0] != "cli" and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)       # '' is the package itself


FILES = {_public_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def module_names():
    return list(FILES)


def layer_of(module):
    path = FILES.get(module)
    if path is None:
        return None
    rel = path.relative_to(PACKAGE)
    return FOLDER_LAYER.get(rel.parts[0]) if len(rel.parts) > 1 else None


def _resolve(module, node):
    """Package-relative names of the modules an import node brings in."""
    path = FILES.get(module)
    is_pkg = module == "" or (path is not None and path.name == "__init__.py")
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
        candidate = ".".join(base + [alias.name])
        found.append(candidate if candidate in FILES else ".".join(base))
    return found


def imports(module):
    tree = ast.parse(FILES[module].read_text())
    deps = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            deps.update(d for d in _resolve(module, node) if d != module)
    return deps


GRAPH = {m: imports(m) for m in module_names()}


def test_every_module_has_a_layer():
    missing = [m for m in GRAPH if m and layer_of(m) is None]
    assert not missing, f"move these modules into the folder of their layer: {missing}"


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


def test_the_tree_is_the_architecture():
    """The package's layer folders are the ones this contract ranks, and a module is one object
    under its public name and under its layer's name."""
    import importlib

    assert list(facekeypoints.LAYER_FOLDERS) + ["cli"] == list(LAYERS.values())
    for public, inner in [("net", "core.net"), ("data", "datasets.data"),
                          ("metrics", "helpers.metrics"), ("runs", "application.runs")]:
        module = importlib.import_module(f"facekeypoints.{public}")
        assert importlib.import_module(f"facekeypoints.{inner}") is module
        assert module.__name__ == f"facekeypoints.{public}"
        assert Path(module.__file__).parent.name == inner.split(".")[0]
    # the old recipe's import paths
    from facekeypoints.updates import nesterov_momentum  # noqa: F401
    from facekeypoints import layers
    assert layers.__name__ == "facekeypoints.layers"
