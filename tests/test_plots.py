"""facekeypoints.plots: each function returns its axes/figure, draws what it says, and leaves
pyplot alone."""
import json

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import facekeypoints as fk
from facekeypoints import plots


def history(n=6, lr=None, momentum=None, scale=1.0):
    records = []
    for e in range(1, n + 1):
        r = {"epoch": e, "train_loss": scale * 0.01 / e, "valid_loss": scale * 0.012 / e,
             "dur": 0.1}
        if lr is not None:
            r["learning_rate"] = lr(e)
        if momentum is not None:
            r["momentum"] = momentum(e)
        records.append(r)
    return records


def scheduled(n=6):
    return history(n, lr=lambda e: 0.03 - 0.005 * (e - 1), momentum=lambda e: 0.9 + 0.01 * e)


def fixed(n=6):
    return history(n, lr=lambda e: 0.01, momentum=lambda e: 0.9, scale=2.0)


@pytest.fixture(autouse=True)
def no_pyplot_leaks():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def twins(ax):
    """The other axes of ax's figure (learning-rate and momentum axes)."""
    return [a for a in ax.figure.axes if a is not ax]


def test_learning_curves_one_run_with_schedule():
    ax = plots.plot_learning_curves(scheduled())
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    assert len(ax.lines) == 2                                   # train, valid
    assert ax.get_yscale() == "log"
    train, valid = ax.lines
    np.testing.assert_allclose(valid.get_ydata(), np.sqrt(0.012 / np.arange(1, 7)) * 48)
    lr_ax, mom_ax = twins(ax)
    assert lr_ax.get_yscale() == "log" and len(lr_ax.lines) == 1
    assert mom_ax.get_yscale() == "linear" and len(mom_ax.lines) == 1
    expected = [r["learning_rate"] for r in scheduled()]
    np.testing.assert_allclose(lr_ax.lines[0].get_ydata(), expected)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["train", "valid", "learning rate", "momentum"]


def test_learning_curves_several_runs_one_figure():
    ax = plots.plot_learning_curves({"net3": fixed(), "net4": scheduled(4)}, title="x")
    assert len(ax.lines) == 4                                   # 2 runs x (train, valid)
    colours = [{line.get_color() for line in lines} for lines in (ax.lines[:2], ax.lines[2:])]
    assert colours[0] != colours[1]
    lr_ax, mom_ax = twins(ax)
    assert len(lr_ax.lines) == 2 and len(mom_ax.lines) == 2     # schedules differ: one each
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["net3", "net4"] and "learning rate" in labels
    # the same schedule in every run is drawn once
    ax = plots.plot_learning_curves({"a": scheduled(), "b": scheduled()})
    assert [len(a.lines) for a in twins(ax)] == [1, 1]


def test_learning_curves_options_and_inputs(tmp_path):
    ax = plots.plot_learning_curves(history(), show_schedule=True)
    assert twins(ax) == []                                      # no lr/momentum recorded
    ax = plots.plot_learning_curves(scheduled(), show_schedule=False)
    assert twins(ax) == []
    fig = Figure()
    given = fig.add_subplot()
    assert plots.plot_learning_curves(scheduled(), ax=given) is given
    # run directories by path, labelled by their names
    for name in ("net4", "net5"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.json").write_text(json.dumps(scheduled()))
    ax = plots.plot_learning_curves([tmp_path / "net4", str(tmp_path / "net5")])
    assert len(ax.lines) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["net4", "net5"]


def test_learning_curves_label_a_narrow_log_range():
    flat = [{"epoch": e, "train_loss": (17.5 / 48) ** 2 * (1 - 0.001 * e),
             "valid_loss": (18.0 / 48) ** 2 * (1 - 0.001 * e)} for e in range(1, 4)]
    ax = plots.plot_learning_curves(flat)
    FigureCanvasAgg(ax.figure).draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 2, labels                             # not a bare log axis
    assert all("10^" not in lb and "times" not in lb for lb in labels)


def test_learning_curves_of_a_fitted_net():
    from tests.conftest import tiny_data, tiny_net

    X, y = tiny_data()
    net = tiny_net(max_epochs=2).fit(X, y)
    ax = plots.plot_learning_curves(net)
    assert len(ax.lines) == 2 and len(ax.lines[0].get_xdata()) == 2


def test_schedule_plot_shares_an_axis_per_hyperparameter():
    callbacks = [fk.AdjustVariable("update_learning_rate", 0.03, 0.0001),
                 fk.CosineAdjustVariable("update_learning_rate", 0.03, 0.0001),
                 ("adjust_momentum", fk.AdjustVariable("update_momentum", 0.9, 0.999))]
    ax = plots.plot_schedule(callbacks, 20)
    assert isinstance(ax, Axes) and len(ax.lines) == 2
    (mom_ax,) = twins(ax)
    assert len(mom_ax.lines) == 1
    np.testing.assert_allclose(ax.lines[1].get_ydata(), callbacks[1].simulate(20))
    np.testing.assert_allclose(mom_ax.lines[0].get_ydata(), np.linspace(0.9, 0.999, 20))
    assert len(ax.get_legend().get_texts()) == 3
    ax = plots.plot_schedule(callbacks[0], 10, max_epochs=5)
    assert ax.lines[0].get_ydata()[-1] == pytest.approx(0.0001)


def test_predictions_grid():
    rng = np.random.default_rng(0)
    images = rng.random((5, 1, 96, 96))
    truth = rng.uniform(-0.5, 0.5, (5, 30))
    fig = plots.plot_predictions(images, truth + 1 / 48, truth, ncols=3, title="t")
    faces = [a for a in fig.axes if a.images]
    assert len(faces) == 5 and len(fig.axes) == 6               # 2 rows of 3, one left blank
    for ax in faces:
        assert len(ax.collections) == 4                         # left, right, centre, true
        assert ax.get_title() == "RMSE 1.0 px"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[-1] == "true" and len(legend) == 4
    fig = plots.plot_predictions(images[:2], truth[:2])         # no truth: no rings, no titles
    assert [len(a.collections) for a in fig.axes] == [3, 3]
    assert fig.axes[0].get_title() == ""


def test_faces_and_face():
    rng = np.random.default_rng(1)
    kp = rng.uniform(20, 76, (3, 30))
    kp[0, :4] = np.nan                                          # missing keypoints are skipped
    fig = plots.plot_faces(rng.integers(0, 256, (3, 9216)), kp, ncols=2)
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.images]) == 3
    offsets = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    assert len(offsets) == 13
    ax = plots.plot_face(rng.random((96, 96)), kp[1], title="one")
    assert isinstance(ax, Axes) and ax.get_title() == "one" and len(ax.collections) == 3


def test_schedule_plot_names_a_composed_schedule():
    from facekeypoints.schedules import cosine, warmup

    shape = warmup(0.2, cosine(0.03, 0.0001), start=0.003)
    ax = plots.plot_schedule([fk.AdjustVariable("update_learning_rate", 0.03, 0.0001),
                              fk.AdjustVariable("update_learning_rate", schedule=shape)], 10)
    assert [line.get_label() for line in ax.lines] == [
        "AdjustVariable('update_learning_rate', 0.03 -> 0.0001)",
        f"AdjustVariable('update_learning_rate', {shape!r})"]


def test_plotting_functions_keep_their_signatures_and_docs():
    """They are wrapped to show themselves in notebooks; help() and doctests see the original."""
    import inspect

    for name in ("plot_face", "plot_faces", "plot_learning_curves", "plot_schedule",
                 "plot_predictions"):
        func = getattr(plots, name)
        assert func.__doc__ == func.__wrapped__.__doc__ and func.__module__ == plots.__name__
        assert inspect.signature(func) == inspect.signature(func.__wrapped__)
    assert "ax" in inspect.signature(plots.plot_learning_curves).parameters


def test_outside_a_notebook_a_figure_is_only_returned(monkeypatch):
    shown = []
    monkeypatch.setattr(plots, "show_figure", lambda *a, **k: shown.append(a))
    ax = plots.plot_learning_curves(history())
    fig = plots.plot_faces(np.zeros((2, 96, 96)))
    assert isinstance(ax, Axes) and isinstance(fig, Figure) and shown == []
    assert not hasattr(fig, "_ipython_display_")
