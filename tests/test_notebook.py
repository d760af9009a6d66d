"""Notebooks: every notebook in the repository runs, and the library behaves in a real kernel.

The notebooks run top to bottom in a real Jupyter kernel (nbclient + ipykernel, from the test
extra) with ``FACEKEYPOINTS_QUICK=1``, which shrinks their budgets (faces, epochs) so that
``examples/tutorial.ipynb`` takes about a minute on 2 CPU cores; any cell error fails the
test. Small notebooks built here check what only a kernel shows: a plotting function's picture
appears once, ``LivePlot`` redraws one display instead of adding figures, the epoch table is
one output refreshed in place, the progress bar is a widget, and a net displays itself.
Outside a kernel the same code displays nothing and never imports IPython.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints import _notebook
from facekeypoints.callbacks import EpochTable, _LiveTable
from facekeypoints.progress import EpochProgress, bar_class

from .conftest import tiny_data, tiny_net

REPO = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"node_modules", "build", "dist", "runs", "__pycache__"}


def repo_notebooks():
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        found += [Path(root) / f for f in sorted(files) if f.endswith(".ipynb")]
    return found


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernel spec that runs this interpreter (so the kernel imports this checkout)."""
    spec = tmp_path / "jupyter" / "kernels" / "facekeypoints-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "facekeypoints tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.delenv("FACEKEYPOINTS_NOTEBOOK", raising=False)
    return "facekeypoints-test"


def execute(nb, kernel, cwd, timeout=300):
    from nbclient import NotebookClient

    NotebookClient(nb, kernel_name=kernel, timeout=timeout, allow_errors=False,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def run_cells(sources, kernel, cwd):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    return execute(nb, kernel, cwd).cells


def images(cell):
    return [o for o in cell.outputs if "image/png" in o.get("data", {})]


def text_of(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


# -- the repository's notebooks ------------------------------------------------------------------

def test_the_repository_has_the_tutorial():
    assert REPO / "examples" / "tutorial.ipynb" in repo_notebooks()


@pytest.mark.parametrize("path", repo_notebooks(), ids=lambda p: str(p.relative_to(REPO)))
def test_notebook_runs_quickly_without_errors(path, kernel, monkeypatch, tmp_path):
    import nbformat

    monkeypatch.setenv("FACEKEYPOINTS_QUICK", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))   # what a notebook writes with tempfile
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    execute(nb, kernel, path.parent, timeout=600)   # raises CellExecutionError on any error
    took = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    print(f"{path.name}: {took:.0f} s with FACEKEYPOINTS_QUICK=1")


def test_the_tutorial_is_saved_with_its_outputs_and_stays_small():
    import nbformat

    path = REPO / "examples" / "tutorial.ipynb"
    assert path.stat().st_size < 2_000_000
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "run every cell before saving"
    assert sum(len(images(c)) for c in code) >= 6
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    # The saved outputs come from a full run, not a quick one.
    assert "FACEKEYPOINTS_QUICK" not in "".join(text_of(c) for c in code)
    assert any("budget: full" in text_of(c) for c in code)


# -- the library in a kernel ----------------------------------------------------------------------

PLOTS = [
    # 0: a function returning Axes, as the cell's last expression: one picture, no <Axes ...>
    """import numpy as np, facekeypoints as fk
records = [{"epoch": e, "train_loss": 0.01 / e, "valid_loss": 0.012 / e,
            "learning_rate": 0.01, "momentum": 0.9} for e in (1, 2, 3)]
fk.plots.plot_learning_curves(records)""",
    # 1: a function returning a Figure, assigned: one picture
    "fig = fk.plots.plot_faces(np.zeros((2, 96, 96)))",
    # 2: with pyplot's inline backend active, a returned Figure still shows once
    """import matplotlib.pyplot as plt
fk.plots.plot_predictions(np.zeros((2, 9216)), np.zeros((2, 30)))""",
    # 3: shown by the call, then named again in the same cell: once
    """ax = fk.plots.plot_schedule(fk.AdjustVariable("update_learning_rate", 0.03, 0.001), 10)
ax""",
    # 4: named in a later cell: shown again
    "ax",
    # 5: drawing into axes the caller made: nothing shown, the figure is the caller's
    """from matplotlib.figure import Figure
own = Figure(figsize=(8, 3))
left, right = own.subplots(1, 2)
fk.plots.plot_learning_curves(records, ax=left)
fk.plots.plot_face(np.zeros(9216), ax=right)
print("drawn")""",
    # 6: ... until shown
    "fk.notebook.show(own)",
    # 7: changed after it was shown: named again in the same cell, it is drawn again
    """ax2 = fk.plots.plot_face(np.zeros(9216))
ax2.set_title("changed")
ax2""",
    # 8: what ran in the kernel
    """import sys
print(fk.notebook.in_notebook(), "matplotlib.pyplot" in sys.modules)""",
]


def test_plotting_functions_show_their_picture_once_in_a_kernel(kernel, tmp_path):
    cells = run_cells(PLOTS, kernel, tmp_path)
    assert [len(images(c)) for c in cells] == [1, 1, 1, 1, 1, 0, 1, 2, 0]
    results = [o for c in cells for o in c.outputs if o.output_type == "execute_result"]
    assert results == [], "a shown figure or axes is not also the cell's result"
    assert "drawn" in text_of(cells[5])
    assert text_of(cells[8]).split() == ["True", "True"]


def test_live_plot_table_progress_and_net_display_in_a_kernel(kernel, tmp_path):
    cells = run_cells([
        """import numpy as np, facekeypoints as fk
from facekeypoints.layers import DenseLayer, InputLayer
from facekeypoints.progress import EpochProgress, bar_class
rng = np.random.default_rng(0)
X = rng.random((40, 1, 16, 16), dtype=np.float32)
y = rng.uniform(-1, 1, (40, 30)).astype(np.float32)
net = fk.NeuralNet(layers=[("input", InputLayer), ("hidden", DenseLayer), ("output", DenseLayer)],
                   input_shape=(None, 1, 16, 16), hidden_num_units=8, output_num_units=30,
                   output_nonlinearity=None, update_learning_rate=0.01, update_momentum=0.9,
                   max_epochs=7, verbose=1, random_state=0, device="cpu",
                   callbacks=[("live", fk.LivePlot(every=2)),
                              ("progress", EpochProgress(desc="tiny"))])
print(bar_class().__module__)
net.fit(X, y)
live = dict(net.callbacks_)["live"]
print(live.updates_, live.display_id_ is not None)""",
        "net",
    ], kernel, tmp_path)
    fit, shown = cells
    printed = text_of(fit).split()
    # epochs 1, 2, 4, 6 and the last (7): one picture, updated in place four times
    assert printed == ["tqdm.notebook", "4", "True"]
    assert len(images(fit)) == 1
    tables = [o for o in fit.outputs if o.output_type == "display_data"
              and "learnable parameters" in o.data.get("text/plain", "")]
    assert len(tables) == 1
    table = tables[0].data["text/plain"].splitlines()
    assert any("train_loss" in line for line in table)
    rows = [line.split()[0] for line in table if len(line.split()) >= 6
            and line.split()[0].isdigit()]
    assert rows == ["1", "2", "3", "4", "5", "6", "7"]
    assert "train_loss" not in text_of(fit), "no row printed line by line"
    widgets = [o for o in fit.outputs
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 1
    html = shown.outputs[0].data["text/html"]
    assert "fitted, 7 epochs" in html and "2,326" in html and "hidden" in html


# -- the same code outside a kernel ------------------------------------------------------------

def test_outside_a_kernel_nothing_is_displayed_and_ipython_is_not_imported():
    code = """
import sys, numpy as np, facekeypoints as fk
ax = fk.plots.plot_learning_curves([{"epoch": 1, "train_loss": 0.01, "valid_loss": 0.01}])
fig = fk.plots.plot_faces(np.zeros((2, 96, 96)))
from matplotlib._pylab_helpers import Gcf
print(type(ax).__name__, type(fig).__name__, fk.notebook.in_notebook(), fk.LivePlot.__name__,
      fk.progress.bar_class().__module__, Gcf.get_num_fig_managers(),
      sorted(m for m in ("IPython", "ipywidgets", "ipykernel", "matplotlib.pyplot",
                         "tqdm.notebook") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["Axes", "Figure", "False", "LivePlot", "tqdm.std", "0", "[]"]


def test_import_does_not_need_the_notebook_extras():
    code = ("import sys\n"
            "for name in ('IPython', 'ipywidgets', 'ipykernel', 'nbclient', 'nbformat'):\n"
            "    sys.modules[name] = None   # as if not installed\n"
            "import facekeypoints as fk, numpy as np\n"
            "fk.plots.plot_face(np.zeros(9216)); fk.notebook.show(fk.plots.plot_faces("
            "np.zeros((1, 96, 96))))\n"
            "print(fk.LivePlot(every=3).every, fk.progress.bar_class().__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["3", "tqdm.std"]


def test_live_plot_outside_a_notebook_says_so_once_and_draws_nothing(capsys):
    X, y = tiny_data()
    live = fk.LivePlot(every=1)
    net = tiny_net(max_epochs=2, callbacks=[("live", live)])
    net.fit(X, y)
    net.partial_fit(X, y)
    err = capsys.readouterr().err
    assert err.count("LivePlot: not in a notebook") == 1 and err.count("\n") == 1
    assert live.display_id_ is None and live.updates_ == 0


def test_live_plot_draws_the_whole_run_and_survives_pickling():
    import pickle

    X, y = tiny_data()
    live = fk.LivePlot(every=2, compare={"before": [{"epoch": 1, "train_loss": 0.02,
                                                    "valid_loss": 0.03}]})
    net = tiny_net(max_epochs=4, callbacks=[("live", live)]).fit(X, y)
    fig = live.figure(net)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.5, 4.5)
    assert "epoch 4 of 4" in ax.get_title()
    assert [line.get_label() for line in ax.lines] == ["before train", "before valid",
                                                       "this run train", "this run valid"]
    again = pickle.loads(pickle.dumps(net))
    assert isinstance(dict(again.callbacks_)["live"], fk.LivePlot)
    watched = tiny_net(max_epochs=2, callbacks=[("live", fk.LivePlot(compare={"net": net}))])
    kept = dict(pickle.loads(pickle.dumps(watched)).callbacks)["live"].compare["net"]
    assert kept == [dict(row) for row in net.history]
    with pytest.raises(ValueError, match="every must be a positive"):
        tiny_net(callbacks=[("live", fk.LivePlot(every=0))]).initialize()


def test_the_in_place_table_keeps_the_first_and_latest_rows():
    table = _LiveTable(max_rows=8, header=["  epoch  loss", "-------  ----"])
    table.lines.append("# summary")
    table.rows = [f"{i:7d}  0.{i:03d}" for i in range(1, 21)]
    lines = table.text().splitlines()
    assert lines[:3] == ["# summary", "  epoch  loss", "-------  ----"]
    shown = lines[3:]
    assert [r.split()[0] for r in shown[:3]] == ["1", "2", "3"]
    assert "12 more rows" in shown[3]
    assert [r.split()[0] for r in shown[4:]] == ["16", "17", "18", "19", "20"]
    assert len(shown) == 9


def test_epoch_table_outside_a_notebook_prints_rows_as_before(capsys):
    X, y = tiny_data()
    tiny_net(max_epochs=2, verbose=1).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# Neural Network with")
    assert [line.split()[0] for line in out[-2:]] == ["1", "2"]
    assert EpochTable().get_params()["live"] is True
    assert bar_class().__module__ == "tqdm.std"
    assert isinstance(EpochProgress(), EpochProgress)


def test_net_text_display_names_layers_count_and_status():
    from IPython.lib.pretty import pretty

    net = tiny_net()
    text = pretty(net)
    assert text.startswith("NeuralNet (not fitted): 3,702 learnable parameters")
    assert "conv1" in text and "Conv2DLayer" in text and "4x14x14" in text
    X, y = tiny_data()
    net.fit(X, y)
    assert pretty(net).startswith("NeuralNet (fitted, 3 epochs): 3,702")
    assert "best valid loss" in pretty(net)
    bundle = net._repr_mimebundle_()
    assert "fitted, 3 epochs" in bundle["text/html"] and bundle["text/plain"] == pretty(net)


def test_a_shown_figure_pickles_without_its_display_marker():
    import pickle

    from matplotlib.figure import Figure

    fig = Figure()
    fig._ipython_display_ = _notebook.ShownFigure(fig, 0)
    assert pickle.loads(pickle.dumps(fig))._ipython_display_ is None
    assert np.frombuffer(_notebook.figure_png(fig)[:8], np.uint8).tolist()[:4] == \
        [0x89, 0x50, 0x4E, 0x47]


def test_every_public_submodule_is_reachable_lazily():
    """``fk.<name>`` for every public submodule, none of them loaded by ``import facekeypoints``
    (beyond the light ones the package needs), and the notebook names among them."""
    import pkgutil

    public = sorted(info.name for info in pkgutil.iter_modules(fk.__path__)
                    if not info.name.startswith("_"))
    assert set(public) <= set(fk._SUBMODULES) | {"shared"}, \
        f"add to _SUBMODULES: {set(public) - set(fk._SUBMODULES)}"
    code = ("import sys, facekeypoints as fk\n"
            f"names = {[n for n in public if n != 'shared']!r}  # fk.shared: the function\n"
            "loaded = [n for n in names if 'facekeypoints.' + n in sys.modules]\n"
            "mods = [getattr(fk, n).__name__ for n in names]\n"
            "print(','.join(loaded))\n"
            "print(mods == ['facekeypoints.' + n for n in names], fk.LivePlot.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    # light (numpy only): the data API, its keypoint layout, metrics, shared, the embedded faces
    assert set(out[0].split(",")) <= {"data", "layout", "metrics", "shared", "synthetic"}
    assert out[1].split() == ["True", "facekeypoints.notebook"]
    assert "LivePlot" in dir(fk) and "notebook" in dir(fk)
