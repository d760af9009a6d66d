"""Sphinx configuration of the facekeypoints documentation site.

Build it (the ``docs`` extra installs what it needs) and open it:

    sphinx-build -W -b html docs build/docs/html
    python -m webbrowser "file://$PWD/build/docs/html/index.html"

Offline: no intersphinx, no notebook execution (the tutorial is shown with its saved outputs).
The API pages list every public module of a layer folder, read from the tree at build time
(``.. facekeypoints-layer:: core`` in api/*.md), so a new module appears without an edit here;
every docs/*.md is a guide page (the index's toctree globs them).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import facekeypoints  # noqa: E402

project = "facekeypoints"
author = "the facekeypoints developers"
copyright = "facekeypoints developers, MIT license"
version = release = facekeypoints.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",        # the numpydoc sections of the docstrings
    "myst_nb",                    # Markdown pages (README, docs/*.md) and the notebook
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
root_doc = "index"

# The notebook is rendered with the outputs saved in it; nothing runs while building.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True          # Attributes as fields: properties are documented once
# Members defined in each module (a name a module re-exports is documented where it lives).
autodoc_default_options = {"members": True, "show-inheritance": True,
                           "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"        # the numpydoc sections name the types
# A reference to a facekeypoints name that does not exist is an error (-W); references to
# other projects' names are not checked (offline: no intersphinx inventories to check them).
nitpicky = True
# Private modules (``facekeypoints._rundir``) are not on the site; references to them are
# not checked either. A facade name (``facekeypoints.NeuralNet``) resolves to where the
# object is documented (``facekeypoints.net.NeuralNet``): see _resolve_facade.
nitpick_ignore_regex = [(r"py:.*", r"(?!facekeypoints\b).*"),
                        (r"py:.*", r"facekeypoints(\.\w+)*\._.*")]
suppress_warnings = ["myst.header"]

html_theme = "alabaster"
html_theme_options = {"description": "Facial keypoint CNNs with the nolearn recipe, on "
                                     "PyTorch + skorch", "fixed_sidebar": True}
html_static_path: list[str] = []
html_show_sourcelink = False

#: The layer folders, lowest first, and what each holds (the architecture in DESIGN.md).
LAYERS = {
    "helpers": "keypoint layout, metrics, small shared helpers",
    "datasets": "the Kaggle-format data API and the embedded synthetic faces",
    "core": "the net, its parts, presets, safe model files and exact resume",
    "application": "runs, reports and plots, sweeps, specialists, photos, export, tracking",
    "cli": "the ``facekeypoints`` command",
}


def public_modules(folder: str) -> list[str]:
    """The importable names of the public modules in one layer folder."""
    package = Path(facekeypoints.__file__).parent / folder
    names = sorted(p.stem for p in package.glob("*.py") if not p.stem.startswith("_"))
    if folder == "cli":
        return ["facekeypoints.cli"] + [f"facekeypoints.cli.{n}" for n in names]
    return [f"facekeypoints.{n}" for n in names]


def _expand_layers(app, docname, source):
    """Replace ``.. facekeypoints-layer:: NAME`` lines by an automodule per module there."""
    lines = []
    for line in source[0].splitlines():
        if line.startswith(".. facekeypoints-layer::"):
            folder = line.split("::", 1)[1].strip()
            for module in public_modules(folder):
                lines += ["", f"## `{module}`", "", "```{eval-rst}",
                          f".. automodule:: {module}", "```", ""]
        else:
            lines.append(line)
    source[0] = "\n".join(lines)


#: Where the README's links to repository files point on the site.
LINKS = {"examples/tutorial.ipynb": ".notebooks/tutorial.ipynb", "data/README.md": "data.md"}


def _site_link(target: str) -> str:
    """A README link target as seen from docs/ (pages, pictures, examples)."""
    path, hash_, anchor = target.partition("#")
    if "://" in path or not path:
        return target
    if path in LINKS:
        path = LINKS[path]
    elif path.startswith("docs/"):
        path = path[5:]                       # docs/cli.md -> the site's cli page
    elif path.startswith("examples/") and path.endswith(".py"):
        path = "examples.md"
    elif (ROOT / path).exists():
        path = os.path.relpath(ROOT / path, HERE)   # pictures and other files
    return path + hash_ + anchor


def readme_for_site() -> str:
    """The README without its title, its links rewritten for the site."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8").split("\n", 1)[1]
    return re.sub(r"(\]\()([^)\s]+)(\))",
                  lambda m: m.group(1) + _site_link(m.group(2)) + m.group(3), text)


def _expand_readme(app, docname, source):
    """Replace the ``.. facekeypoints-readme::`` line by the README's sections."""
    source[0] = source[0].replace(".. facekeypoints-readme::", readme_for_site())


def _skip_member(app, what, name, obj, skip, options):
    """scikit-learn's generated ``set_*_request`` methods (metadata routing) are not ours."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def copy_tutorial() -> None:
    """Put examples/tutorial.ipynb (its one home) into the site's sources, if it changed.

    Sphinx reads sources inside its source folder only (a symlink resolves outside it). The
    copy lives in a hidden folder, which the notebook tests (tests/test_notebook.py) skip.
    """
    import shutil
    import tempfile

    source, copy = ROOT / "examples" / "tutorial.ipynb", HERE / ".notebooks" / "tutorial.ipynb"
    copy.parent.mkdir(exist_ok=True)
    if copy.exists() and copy.read_bytes() == source.read_bytes():
        return
    with tempfile.NamedTemporaryFile(dir=copy.parent, suffix=".tmp", delete=False) as tmp:
        shutil.copyfileobj(source.open("rb"), tmp)
    os.replace(tmp.name, copy)


def _resolve_facade(app, env, node, contnode):
    """Resolve ``facekeypoints.<name>`` (and its attributes) to the documented object.

    A name the package does not have stays unresolved: Sphinx reports it (an error with -W).
    """
    import inspect

    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("facekeypoints."):
        return None
    obj = facekeypoints
    try:
        for part in target.split(".")[1:]:
            obj = getattr(obj, part)
    except Exception:       # noqa: BLE001 - not a name of the package: a real broken reference
        return None
    if inspect.ismodule(obj):
        home = obj.__name__
    elif getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
        home = f"{obj.__module__}.{obj.__qualname__}"
    else:
        return contnode     # it exists (an instance, say) but has no page: plain text
    domain = env.get_domain("py")
    for role in (node["reftype"], "obj"):
        found = domain.resolve_xref(env, node["refdoc"], app.builder, role, home, node,
                                    contnode)
        if found is not None:
            return found
    return contnode         # a real name without an entry of its own (a dataclass field)


def setup(app):
    app.connect("missing-reference", _resolve_facade)
    copy_tutorial()
    app.connect("source-read", _expand_layers)
    app.connect("source-read", _expand_readme)
    app.connect("autodoc-skip-member", _skip_member)
