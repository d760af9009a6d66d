"""Plotting helpers (matplotlib).

Every function draws on a given ``Axes``/``Figure`` or builds a ``matplotlib.figure.Figure``
directly (never through ``pyplot``), so they work under the Agg backend, on headless machines
and in worker processes, and a script never accumulates open figures; they return the axes
or figure.  Save a figure with ``fig.savefig(path)``.

In a notebook (a Jupyter, VS Code or Colab kernel), a function called without ``ax``/``fig``
also shows the figure it made in the cell's output, once: the returned axes or figure is
marked as shown, so being the cell's last expression neither draws it again nor prints
``<Axes: ...>``. A figure you pass in is yours to show (``facekeypoints.notebook.show``);
calls made by the library itself (run directories, the command line) show nothing. Outside
a notebook nothing is displayed and IPython is never imported.

Images are drawn with pixel ``i`` spanning ``[i, i + 1)`` (``extent=(0, 96, 96, 0)``), the
library's coordinate convention, so keypoints in pixels land on the features they mark.

Importing this module loads neither matplotlib nor torch: matplotlib is imported by the
functions that draw, and a model file is only read (through :mod:`facekeypoints.reports`)
when a learning curve is asked for by path.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from ._notebook import in_notebook, show_figure
from .data import KEYPOINT_COLUMNS
from .pixels import epoch_px
from .metrics import IMAGE_SIDE, squared_errors_px, to_pixels
from .reports import read_history, run_labels

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

__all__ = ["plot_face", "plot_faces", "keypoint_sides", "SIDE_COLORS", "plot_learning_curves",
           "plot_schedule", "plot_predictions", "plot_lr_find", "plot_ced",
           "plot_keypoint_errors", "plot_worst_faces"]

#: Marker colours for the subject's left, subject's right and centre keypoints.
SIDE_COLORS = {"left": "#ff3b30", "right": "#1e90ff", "centre": "#ffd60a"}


def _shows(target: str):
    """Decorate a plotting function: in a notebook, show the figure it made, once.

    ``target`` names its ``ax`` or ``fig`` parameter: only a call that left it None made
    the figure, and only a call from outside the package (not run directories, the CLI, or
    one plotting function drawing through another) shows it.
    """
    def decorate(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            result = func(*args, **kwargs)
            if in_notebook():
                caller = sys._getframe(1).f_globals.get("__name__", "")
                made_here = signature.bind(*args, **kwargs).arguments.get(target) is None
                if made_here and caller.split(".")[0] != __name__.split(".")[0]:
                    show_figure(result if target == "fig" else result.figure, also=result)
            return result

        return wrapper

    return decorate


def keypoint_sides(columns: Sequence[str] = KEYPOINT_COLUMNS) -> list[str]:
    """The side of the face each keypoint is on: ``'left'``, ``'right'`` or ``'centre'``.

    Parameters
    ----------
    columns : sequence of str, default KEYPOINT_COLUMNS
        Keypoint column names in x, y pairs; the x column of each pair names the keypoint.

    Returns
    -------
    list of str
        One entry per keypoint (pair of columns): ``'left'`` when its name holds "left"
        (the subject's left), ``'right'`` when it holds "right", else ``'centre'``.

    Examples
    --------
    >>> keypoint_sides()[:3]
    ['left', 'right', 'left']
    >>> keypoint_sides(["nose_tip_x", "nose_tip_y", "mouth_right_corner_x",
    ...                 "mouth_right_corner_y"])
    ['centre', 'right']
    """
    sides = []
    for name in list(columns)[0::2]:
        if "left" in name:
            sides.append("left")
        elif "right" in name:
            sides.append("right")
        else:
            sides.append("centre")
    return sides


def _as_image(image) -> np.ndarray:
    img = np.asarray(image, dtype=np.float64)
    return img.reshape(IMAGE_SIDE, IMAGE_SIDE)


def _as_pixels(kp, scaled: bool) -> np.ndarray:
    return to_pixels(np.asarray(kp, dtype=np.float64).reshape(-1), scaled)


@_shows("ax")
def plot_face(image: ArrayLike, keypoints: ArrayLike | None = None, ax: Axes | None = None,
              columns: Sequence[str] = KEYPOINT_COLUMNS, scaled: bool = False,
              colors: Mapping[str, str] | None = None, marker: str = "o",
              markersize: float = 14, title: str | None = None) -> Axes:
    """Draw one 96x96 grayscale face and its keypoints.

    Subject's-left, subject's-right and centre points get the colours of ``SIDE_COLORS``.

    Parameters
    ----------
    image : array-like
        9216 values or a 96x96 array, either 0..255 or 0..1 (any value above 1 means the
        0..255 scale).
    keypoints : array-like, optional
        Keypoint coordinates in x, y pairs (30 values for ``columns`` of 30), in pixels, or
        in the library's scaled [-1, 1] units with ``scaled=True``; NaNs are skipped.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default the axes of a new 3x3 inch ``Figure``.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the keypoint columns; they decide each point's side (and colour).
    scaled : bool, default False
        Whether ``keypoints`` are scaled targets rather than pixels.
    colors : dict, optional
        Colours by side (``'left'``, ``'right'``, ``'centre'``) overriding ``SIDE_COLORS``.
    marker : str, default 'o'
        Matplotlib marker of the keypoints.
    markersize : float, default 14
        Marker area in points squared (``scatter``'s ``s``).
    title : str, optional
        Axes title (small print).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on; each side with points present is one labelled scatter.

    Examples
    --------
    >>> import numpy as np
    >>> ax = plot_face(np.zeros(9216), np.full(30, 48.0), title="blank")
    >>> [c.get_label() for c in ax.collections]
    ['left', 'right', 'centre']
    """
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(3, 3)).add_subplot()
    img = _as_image(image)
    vmax = 255.0 if img.max() > 1.0 else 1.0
    ax.imshow(img, cmap="gray", vmin=0.0, vmax=vmax, extent=(0, IMAGE_SIDE, IMAGE_SIDE, 0),
              interpolation="nearest")
    if keypoints is not None:
        colors = dict(SIDE_COLORS, **(colors or {}))
        kp = _as_pixels(keypoints, scaled)
        xs, ys = kp[0::2], kp[1::2]
        sides = np.array(keypoint_sides(columns))
        for side in ("left", "right", "centre"):
            sel = (sides == side) & np.isfinite(xs) & np.isfinite(ys)
            if sel.any():
                ax.scatter(xs[sel], ys[sel], s=markersize, c=colors[side], marker=marker,
                           edgecolors="black", linewidths=0.4, label=side, zorder=3)
    ax.set_xlim(0, IMAGE_SIDE)
    ax.set_ylim(IMAGE_SIDE, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)
    return ax


@_shows("fig")
def plot_faces(images: ArrayLike, keypoints: ArrayLike | None = None, fig: Figure | None = None,
               ncols: int = 4, columns: Sequence[str] = KEYPOINT_COLUMNS, scaled: bool = False,
               titles: Sequence[str] | None = None, figsize: tuple[float, float] | None = None,
               legend: bool = True, **kwargs: Any) -> Figure:
    """Draw faces and their keypoints in a grid.

    Parameters
    ----------
    images : array-like
        Faces of shape (n, 9216), (n, 96, 96) or (n, 1, 96, 96).
    keypoints : array-like of shape (n, 30), optional
        Keypoints of each face (see :func:`plot_face`).
    fig : matplotlib.figure.Figure, optional
        Where to draw; a new ``Figure`` is made unless given.
    ncols : int, default 4
        Columns of the grid (at most n); grid cells past the last face are left blank.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the keypoint columns.
    scaled : bool, default False
        Whether ``keypoints`` are scaled targets rather than pixels.
    titles : sequence of str, optional
        One title per face.
    figsize : tuple of float, optional
        Size of a new figure in inches (default: 2 inches per grid cell).
    legend : bool, default True
        Whether to put a legend of the sides below the grid (only with ``keypoints``).
    **kwargs
        Passed on to :func:`plot_face` (``colors``, ``marker``, ``markersize``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes per grid cell.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_faces(np.zeros((3, 96, 96)), ncols=2)
    >>> len(fig.axes), sum(ax.axison for ax in fig.axes)
    (4, 3)
    """
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(int(ncols), n))
    nrows = -(-n // ncols)
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize or (2.0 * ncols, 2.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        plot_face(images[i], None if keypoints is None else keypoints[i], ax=ax,
                  columns=columns, scaled=scaled,
                  title=None if titles is None else titles[i], **kwargs)
    if legend and keypoints is not None:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        names = {"left": "subject's left", "right": "subject's right", "centre": "centre"}
        if handles:
            fig.legend(handles, [names.get(lb, lb) for lb in labels], loc="lower center",
                       ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.98, bottom=0.06 if legend else 0.02,
                        wspace=0.05, hspace=0.05)
    return fig


# -- training pictures -------------------------------------------------------------------------

#: Colours of successive runs in learning-curve plots.
RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
              "#17becf"]


def _records(history):
    """A list of per-epoch dicts from a net, a skorch History, a list of dicts, or the path
    of a run directory or model file."""
    if isinstance(history, (str, os.PathLike)):
        return read_history(history)
    if hasattr(history, "history_"):
        history = history.history_
    return [dict(h) for h in (history or [])]


def _as_runs(histories):
    """{label: records} from a single run, a dict of runs, or a list/tuple of paths/nets."""
    if isinstance(histories, dict):
        return {str(k): _records(v) for k, v in histories.items()}
    if isinstance(histories, (list, tuple)) and histories and not isinstance(histories[0], dict):
        paths = [h for h in histories if isinstance(h, (str, os.PathLike))]
        if len(paths) == len(histories):
            return dict(zip(run_labels(paths), (_records(p) for p in paths)))
        return {f"run {i + 1}": _records(h) for i, h in enumerate(histories)}
    return {"": _records(histories)}


def _new_axes(ax, figsize=(7, 4.5)):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize).add_subplot()


def _plain_log_ticks(axis):
    """Ticks on a log axis labelled with plain numbers (20, 5, 0.001): a few per decade when
    the range is short, so a curve from 17.3 to 18.5 px still gets labels."""
    from matplotlib.ticker import FuncFormatter, Locator, LogLocator, MaxNLocator, NullFormatter

    class PlainLogLocator(Locator):
        def __call__(self):
            lo, hi = self.axis.get_view_interval()
            return self.tick_values(lo, hi)

        def tick_values(self, vmin, vmax):
            vmin, vmax = sorted((vmin, vmax))
            if vmin <= 0:
                vmin = vmax / 1000 if vmax > 0 else 1e-3
            decades = np.log10(vmax / vmin)
            if decades < 0.5:
                ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
                return ticks[ticks > 0]
            subs = ((1, 1.5, 2, 3, 4, 5, 6, 8) if decades < 1.0 else (1, 2, 5) if decades < 2.5
                    else (1.0,))
            return LogLocator(subs=subs).tick_values(vmin, vmax)

    axis.set_major_locator(PlainLogLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.4g}"))
    axis.set_minor_formatter(NullFormatter())


def _schedule_of(records, key):
    values = [r.get(key) for r in records]
    if not values or any(v is None for v in values):
        return None
    return [r["epoch"] for r in records], values


@_shows("ax")
def plot_learning_curves(histories: Any, ax: Axes | None = None, show_schedule: bool = True,
                         title: str | None = None, criterion: Any = None) -> Axes:
    """Draw train (dashed) and valid (solid) RMSE in pixels per epoch, on a log axis.

    The pixels are those each epoch measured from the predictions (``train_rmse_px``,
    ``valid_rmse_px``), whatever the loss.

    The legend sits below the plot: one entry per run (its colour) and one per line style.

    Parameters
    ----------
    histories : net, list of dict, str or path-like, dict or list
        One run: a net, a history (list of per-epoch dicts, or skorch's ``History``), or the
        path of a run directory or model file. Several runs on one figure: ``{label: any of
        those}``, a list of paths (labelled by run directory name, see
        :func:`facekeypoints.reports.run_labels`), or a list of nets or histories (labelled
        ``run 1``, ``run 2``, ...).
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default the axes of a new 7x4.5 inch ``Figure``.
    show_schedule : bool, default True
        Also draw the learning rate (dotted, log axis on the right) and the momentum
        (dash-dot, linear axis further right) each run trained with, where its history
        records them: once in grey when every run used the same values, else in each run's
        colour.
    title : str, optional
        Axes title (default ``'learning curves'``).
    criterion : object, optional
        The criterion the runs trained with, for histories written before the pixels were
        measured: ``sqrt(loss) * 48`` is drawn for a mean squared error (None, the default
        masked MSE, included), nothing for other losses.

    Returns
    -------
    matplotlib.axes.Axes
        The main axes; the figure is ``ax.figure`` (save it with
        ``ax.figure.savefig(path, bbox_inches='tight')``).

    Examples
    --------
    >>> records = [{"epoch": e, "train_loss": 0.01 / e, "valid_loss": 0.012 / e}
    ...            for e in (1, 2, 3)]
    >>> ax = plot_learning_curves(records, title="one run")
    >>> ax.get_title(), [line.get_label() for line in ax.lines]
    ('one run', ['train', 'valid'])
    >>> ax = plot_learning_curves({"a": records, "b": records[:2]})
    >>> [line.get_label() for line in ax.lines]
    ['a train', 'a valid', 'b train', 'b valid']
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    runs = _as_runs(histories)
    ax = _new_axes(ax)
    colours = dict(zip(runs, RUN_COLORS * 10))
    several = len(runs) > 1
    dots = max((len(r) for r in runs.values()), default=0) < 12
    # Later runs draw thinner, so a run hidden under an identical one still shows as a rim.
    widths = {label: max(1.0, 2.4 - 0.5 * i) if several else 1.6
              for i, label in enumerate(runs)}
    for label, records in runs.items():
        epochs = [r["epoch"] for r in records]
        for key, style in (("train_loss", "--"), ("valid_loss", "-")):
            values = np.array([epoch_px(r, key.split("_")[0], criterion) for r in records],
                              dtype=float)    # None (no pixels) becomes NaN
            if np.isfinite(values).any():
                ax.plot(epochs, values, style, color=colours[label], lw=widths[label],
                        marker="." if dots else None,
                        label=f"{label} {key.split('_')[0]}".strip())
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (pixels), log scale")
    ax.grid(True, which="major", alpha=0.35)
    ax.set_title(title or "learning curves")
    ink = "black" if several else colours[next(iter(runs))]
    handles = [Line2D([], [], color=c, lw=3, label=label) for label, c in colours.items()
               ] if several else []
    handles += [Line2D([], [], ls="--", color=ink, lw=1.6, label="train"),
                Line2D([], [], ls="-", color=ink, lw=1.6, label="valid")]
    if show_schedule:
        handles += _draw_schedules(ax, runs, colours, several, Line2D, widths)
    ax.legend(handles=handles, fontsize=8, loc="upper center", frameon=False,
              ncol=len(handles) if len(handles) <= 8 else -(-len(handles) // 2),
              bbox_to_anchor=(0.5, -0.13))
    return ax


def _draw_schedules(ax, runs, colours, several, Line2D, widths):
    """Learning rate on a log twin axis, momentum on a linear twin axis further right."""
    lrs = {label: _schedule_of(r, "learning_rate") for label, r in runs.items()}
    moms = {label: _schedule_of(r, "momentum") for label, r in runs.items()}
    lrs = {k: v for k, v in lrs.items() if v is not None}
    moms = {k: v for k, v in moms.items() if v is not None}
    handles = []
    spec = [("learning rate", lrs, ":", "#444444", "log", 1.0),
            ("momentum", moms, "-.", "#8c6d31", "linear", 1.14)]
    for name, series, style, grey, scale, position in spec:
        if not series:
            continue
        same = len({tuple(v[1]) for v in series.values()}) <= 1
        twin = ax.twinx()
        twin.set_yscale(scale)
        if position != 1.0:
            twin.spines["right"].set_position(("axes", position))
        drawn = list(series.items())[:1] if same else list(series.items())
        for label, (epochs, values) in drawn:
            twin.plot(epochs, values, style, color=grey if same else colours[label],
                      lw=1.3 if same else widths[label] * 0.8,
                      label=f"{label} {name}".strip() if several and not same else name)
        ink = grey if same else "black"
        handles.append(Line2D([], [], ls=style, color=ink, lw=1.3, label=name))
        twin.set_ylabel(f"{name} ({'dotted' if style == ':' else 'dash-dot'})",
                        color=grey if same else "black")
        twin.tick_params(axis="y", colors=grey if same else "black", labelsize=8)
        # A constant value gets a range that puts the lr line high and the momentum line
        # low, so the two never hide each other.
        values = np.concatenate([np.asarray(v[1], dtype=float) for v in series.values()])
        lo, hi = float(values.min()), float(values.max())
        if scale == "log":
            _plain_log_ticks(twin.yaxis)
            if lo > 0 and hi / lo < 1.5:
                twin.set_ylim(lo / 30, hi * 3)
        elif hi - lo < 0.01:
            twin.set_ylim(lo - 0.05, max(hi + 0.1, 1.0) if hi < 1 else hi + 0.1)
    return handles


@_shows("ax")
def plot_schedule(callbacks: Any, n_epochs: int, ax: Axes | None = None,
                  title: str | None = None, max_epochs: int | None = None) -> Axes:
    """Draw the values AdjustVariable-like callbacks would set over ``n_epochs`` epochs.

    The values are each callback's ``simulate(n_epochs, max_epochs)``; the legend names each
    callback with its first and last values, or with the composed schedule it was given as
    ``schedule=``. Callbacks adjusting the same hyperparameter share an axis; a second
    hyperparameter (e.g. momentum next to the learning rate) gets its own axis on the right,
    dashed, and a third one further right.

    Parameters
    ----------
    callbacks : AdjustVariable or list
        One callback, or a list of callbacks or of ``(name, callback)`` pairs (as in a net's
        ``callbacks``); each needs ``name``, ``start``, ``stop`` and ``simulate``.
    n_epochs : int
        Epochs to draw.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default the axes of a new 6.5x3.8 inch ``Figure``.
    title : str, optional
        Axes title (default ``'schedule'``).
    max_epochs : int, optional
        The run length the schedules are scaled to (default ``n_epochs``).

    Returns
    -------
    matplotlib.axes.Axes
        The main axes (the first hyperparameter's).

    Examples
    --------
    >>> import facekeypoints as fk
    >>> ax = plot_schedule([fk.AdjustVariable("update_learning_rate", 0.03, 0.0001),
    ...                     fk.AdjustVariable("update_momentum", 0.9, 0.999)], 100)
    >>> ax.get_ylabel(), len(ax.figure.axes)
    ('learning rate', 2)
    """
    from matplotlib.ticker import MaxNLocator

    ax = _new_axes(ax, figsize=(6.5, 3.8))
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    callbacks = [cb[1] if isinstance(cb, (tuple, list)) else cb for cb in callbacks]
    names = list(dict.fromkeys(cb.name for cb in callbacks))
    epochs = np.arange(1, n_epochs + 1)
    axes = {names[0]: ax}
    for name in names[1:]:
        twin = ax.twinx()
        if len(axes) > 1:
            twin.spines["right"].set_position(("axes", 1.0 + 0.13 * (len(axes) - 1)))
        axes[name] = twin
    handles = []
    colours = iter(RUN_COLORS * 10)
    for cb in callbacks:
        target = axes[cb.name]
        style = "-" if target is ax else "--"
        values = cb.simulate(n_epochs, max_epochs)   # first -> last: right for any schedule
        given = getattr(cb, "__dict__", {}).get("schedule")   # a composed schedule= shape
        shape = (f"{values[0]:g} -> {values[-1]:g}" if given is None else
                 given.__name__ if inspect.isfunction(given) else repr(given))
        line, = target.plot(epochs, values, style, lw=1.6, color=next(colours),
                            label=f"{type(cb).__name__}({cb.name!r}, {shape})")
        handles.append(line)
    for name, target in axes.items():
        label = name.replace("update_", "").replace("_", " ")
        target.set_ylabel(label + ("" if target is ax else " (dashed)"))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15),
              ncol=1 if len(handles) > 2 else len(handles), frameon=False)
    ax.set_title(title or "schedule")
    return ax


@_shows("fig")
def plot_predictions(images: ArrayLike, y_pred: ArrayLike, y_true: ArrayLike | None = None,
                     fig: Figure | None = None, ncols: int = 4, scaled: bool = True,
                     columns: Sequence[str] = KEYPOINT_COLUMNS,
                     figsize: tuple[float, float] | None = None,
                     title: str | None = None) -> Figure:
    """Draw a grid of faces with predicted keypoints and, optionally, the true ones.

    Predictions are crosses coloured by side, true keypoints white rings; a legend below
    the grid names both.

    Parameters
    ----------
    images : array-like
        Faces of shape (n, 9216), (n, 96, 96) or (n, 1, 96, 96).
    y_pred : array-like of shape (n, k)
        Predicted keypoints (x, y pairs named by ``columns``).
    y_true : array-like of shape (n, k), optional
        True keypoints; with them each face is titled with its RMSE in pixels (NaNs, i.e.
        missing keypoints, left out).
    fig : matplotlib.figure.Figure, optional
        Where to draw; a new ``Figure`` is made unless given.
    ncols : int, default 4
        Columns of the grid (at most n).
    scaled : bool, default True
        Whether the keypoints are in the net's scaled units; ``False`` for pixels.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the keypoint columns.
    figsize : tuple of float, optional
        Size of a new figure in inches (default: about 2 inches per grid cell).
    title : str, optional
        Figure title above the grid.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_predictions(np.zeros((2, 9216)), np.zeros((2, 30)),
    ...                        y_true=np.full((2, 30), 0.1), title="validation faces")
    >>> [ax.get_title() for ax in fig.axes]
    ['RMSE 4.8 px', 'RMSE 4.8 px']
    """
    from matplotlib.lines import Line2D

    y_pred = np.asarray(y_pred, dtype=float)
    titles = None
    if y_true is not None:
        y_true = np.asarray(y_true, dtype=float)
        sq = squared_errors_px(y_true, y_pred, scaled=scaled)
        titles = [f"RMSE {np.sqrt(np.nanmean(e)):.1f} px" for e in sq]
    n = len(images)
    ncols = max(1, min(int(ncols), n))
    nrows = -(-n // ncols)
    if figsize is None and fig is None:
        figsize = (2.0 * ncols, (2.15 if titles else 2.0) * nrows + (0.75 if title else 0.4))
    fig = plot_faces(images, y_pred, fig=fig, ncols=ncols, columns=columns, scaled=scaled,
                     figsize=figsize, marker="X", markersize=22, titles=titles, legend=False)
    if y_true is not None:
        from matplotlib import patheffects

        outline = patheffects.withStroke(linewidth=1.8, foreground="black")
        for ax, truth in zip((a for a in fig.axes if a.images), y_true):
            kp = _as_pixels(truth, scaled)
            ax.scatter(kp[0::2], kp[1::2], s=28, facecolors="none", edgecolors="white",
                       linewidths=0.9, zorder=2, label="true",
                       path_effects=[outline])   # a dark rim: visible on pale skin too
    names = {"left": "predicted, subject's left", "right": "predicted, subject's right",
             "centre": "predicted, centre"}
    handles = [Line2D([], [], ls="", marker="X", markersize=7, markerfacecolor=SIDE_COLORS[s],
                      markeredgecolor="black", markeredgewidth=0.4, label=names[s])
               for s in ("left", "right", "centre") if s in keypoint_sides(columns)]
    if y_true is not None:
        handles.append(Line2D([], [], ls="", marker="o", markersize=6, markerfacecolor="none",
                              markeredgecolor="black", label="true"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    height = fig.get_figheight()
    top = 1 - (0.45 if title else 0.1) / height
    fig.subplots_adjust(top=top, bottom=0.32 / height, hspace=0.18 if titles else 0.05)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / height, va="top")
    return fig


@_shows("ax")
def plot_lr_find(result: Any, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw a learning-rate range test: loss against learning rate, the suggestion marked.

    Parameters
    ----------
    result : facekeypoints.lr_find.LRFindResult
        What :func:`facekeypoints.lr_find.lr_find` (or ``net.lr_find``) returned.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    title : str, optional
        The axes' title.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on: the raw loss (faint), the smoothed loss, the suggested and the
        steepest learning rates as vertical lines, a log x axis.
    """
    ax = _new_axes(ax)
    lrs = np.asarray(result.learning_rates, dtype=float)
    ax.plot(lrs, result.losses, color="#bbbbbb", linewidth=0.8, label="loss")
    ax.plot(lrs, result.smoothed, color="#1f77b4", linewidth=1.8, label="smoothed loss")
    finite = np.asarray(result.smoothed, dtype=float)
    finite = finite[np.isfinite(finite)]
    raw = np.asarray(result.losses, dtype=float)
    raw = raw[np.isfinite(raw)]
    if finite.size:       # the blow-up at the end would squash the interesting part
        low = float(min(finite.min(), raw.min() if raw.size else finite.min()))
        high = float(np.percentile(finite, 90))
        ax.set_ylim(low - 0.05 * (high - low + 1e-12), high + 0.3 * (high - low + 1e-12))
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="#d62728", linestyle="--",
                   label=f"suggested {result.suggestion:.3g}")
    if result.steepest is not None:
        ax.axvline(result.steepest, color="#2ca02c", linestyle=":",
                   label=f"steepest {result.steepest:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return ax


# -- error analysis pictures -------------------------------------------------------------------

@_shows("ax")
def plot_ced(errors: Any, max_error: float = 0.1, ax: Axes | None = None,
             title: str | None = None, threshold: float | None = None) -> Axes:
    """Cumulative error distribution (CED) curves of one or several runs on one axes.

    Each curve is the share of faces whose NME is at most the value on the x axis; the
    legend gives each run's NME and AUC at ``threshold``.

    Parameters
    ----------
    errors : NormalizedErrors or dict
        One :class:`facekeypoints.metrics.NormalizedErrors` (from ``normalized_errors``),
        or ``{label: NormalizedErrors}`` for several runs.
    max_error : float, default 0.1
        The right end of the x axis.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default the axes of a new 6x4 inch ``Figure``.
    title : str, optional
        Axes title (default: ``'cumulative error distribution'``).
    threshold : float, optional
        The AUC threshold in the legend (default ``max_error``); a dotted line marks it.

    Returns
    -------
    matplotlib.axes.Axes
        The axes, one line per run.

    Examples
    --------
    >>> import numpy as np
    >>> from facekeypoints.metrics import normalized_errors
    >>> y = np.zeros((4, 30)); y[:, 6], y[:, 10] = -0.5, 0.5
    >>> ax = plot_ced({"a": normalized_errors(y, y + 0.02), "b": normalized_errors(y, y + 0.05)})
    >>> [line.get_label().split(":")[0] for line in ax.get_lines()[:2]]
    ['a', 'b']
    """
    runs = errors if isinstance(errors, dict) else {"": errors}
    threshold = max_error if threshold is None else threshold
    ax = _new_axes(ax, figsize=(6, 4))
    for i, (label, e) in enumerate(runs.items()):
        grid, curve = e.ced(max_error, steps=501)
        name = f"{label}: " if label else ""
        ax.plot(grid, curve, color=RUN_COLORS[i % len(RUN_COLORS)], lw=1.8, drawstyle="steps-post",
                label=f"{name}NME {e.nme():.4f}, AUC@{threshold:g} {e.auc(threshold):.3f} "
                      f"({e.faces_measured} faces)")
    if threshold < max_error:
        ax.axvline(threshold, ls=":", color="#666666", lw=1)
    by = {e.by for e in runs.values()}
    ax.set_xlim(0, max_error)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"NME ({', '.join(sorted(by))})")
    ax.set_ylabel("share of faces")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "cumulative error distribution")
    return ax


@_shows("ax")
def plot_keypoint_errors(images: ArrayLike, y_true: ArrayLike, y_pred: ArrayLike,
                         columns: Sequence[str] = KEYPOINT_COLUMNS, scaled: bool = True,
                         ax: Axes | None = None, title: str | None = None) -> Axes:
    """Where on the face the errors are: the mean face with a circle per keypoint whose
    radius is that keypoint's RMSE in pixels (drawn to scale).

    Parameters
    ----------
    images : array-like
        The faces, (n, 9216), (n, 96, 96) or (n, 1, 96, 96); their mean is the background.
    y_true, y_pred : array-like of shape (n, k)
        True and predicted keypoints; NaN in ``y_true`` marks an unlabelled value. The
        circles are centred on the mean true position of each keypoint.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the keypoint columns.
    scaled : bool, default True
        Whether the keypoints are scaled targets rather than pixels.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default the axes of a new 4.5x4.5 inch ``Figure``.
    title : str, optional
        Axes title (default: ``'RMSE per keypoint (px), circles to scale'``).

    Returns
    -------
    matplotlib.axes.Axes
        The axes; one circle patch per keypoint that some face has.

    Examples
    --------
    >>> import numpy as np
    >>> ax = plot_keypoint_errors(np.zeros((2, 9216)), np.zeros((2, 30)), np.full((2, 30), 0.1))
    >>> len(ax.patches)
    15
    """
    from matplotlib.patches import Circle

    images = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    sq = squared_errors_px(y_true, y_pred, scaled=scaled)
    truth = to_pixels(y_true, scaled)
    ax = plot_face(images.mean(axis=0), ax=ax if ax is not None else _new_axes(None, (4.5, 4.5)))
    sides = keypoint_sides(columns)
    for j, side in enumerate(sides):
        part = sq[:, 2 * j:2 * j + 2]
        labelled = np.isfinite(part)
        if not labelled.any():
            continue
        radius = float(np.sqrt(part[labelled].mean()))
        cx = float(np.nanmean(truth[:, 2 * j]))
        cy = float(np.nanmean(truth[:, 2 * j + 1]))
        ax.add_patch(Circle((cx, cy), radius, fill=False, lw=1.5, color=SIDE_COLORS[side],
                            zorder=4))
        ax.plot([cx], [cy], ".", color=SIDE_COLORS[side], ms=3, zorder=5)
        ax.annotate(f"{radius:.1f}", (cx, cy), xytext=(3, 3), textcoords="offset points",
                    fontsize=6, color="white", zorder=6)
    ax.set_title(title or "RMSE per keypoint (px), circles to scale", fontsize=9)
    return ax


@_shows("fig")
def plot_worst_faces(images: ArrayLike, y_true: ArrayLike, y_pred: ArrayLike,
                     table: Any, columns: Sequence[str] = KEYPOINT_COLUMNS, scaled: bool = True,
                     fig: Figure | None = None, title: str | None = None) -> Figure:
    """The faces of an error table side by side: labelled keypoints left, predicted right.

    Parameters
    ----------
    images : array-like
        The faces, (n, 9216), (n, 96, 96) or (n, 1, 96, 96), in the order of ``y_true``.
    y_true, y_pred : array-like of shape (n, k)
        True and predicted keypoints (NaN in ``y_true``: unlabelled).
    table : pandas.DataFrame
        :func:`facekeypoints.reports.face_errors`' table, or part of it; its index holds the
        row numbers given to it, and its ``position`` column (when present) or, without one,
        ``index - 1`` is each face's position in ``images``.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the keypoint columns.
    scaled : bool, default True
        Whether the keypoints are scaled targets rather than pixels.
    fig : matplotlib.figure.Figure, optional
        Where to draw; a new ``Figure`` is made unless given.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes per face (labelled, predicted), one face per row of at most two faces.

    Examples
    --------
    >>> import numpy as np
    >>> from facekeypoints.reports import face_errors
    >>> y = np.zeros((3, 30)); y[:, 6], y[:, 10] = -0.5, 0.5
    >>> table = face_errors(y, y + 0.1, worst=2)
    >>> fig = plot_worst_faces(np.zeros((3, 9216)), y, y + 0.1, table)
    >>> len(fig.axes), fig.axes[0].get_title().split(":")[0]
    (4, 'row 1')
    """
    from matplotlib.figure import Figure as _Figure

    images = np.asarray(images)
    n = len(table)
    if n == 0:
        raise ValueError("the error table has no faces to draw")
    positions = (table["position"].to_numpy() if "position" in table.columns
                 else np.asarray(table.index) - 1)
    pairs = min(2, n)
    nrows = -(-n // pairs)
    if fig is None:
        fig = _Figure(figsize=(4.2 * pairs, 2.3 * nrows + (0.5 if title else 0.2)))
    axes = fig.subplots(nrows, 2 * pairs, squeeze=False)
    for k, (row, r) in enumerate(table.iterrows()):
        i = int(positions[k])
        left, right = axes.flat[2 * k], axes.flat[2 * k + 1]
        nme = f"RMSE {r['rmse_px']:.1f} px" if not np.isfinite(r["nme"]) else \
            f"NME {r['nme']:.3f}"
        plot_face(images[i], y_true[i], ax=left, columns=columns, scaled=scaled,
                  title=f"row {row}: labelled")
        plot_face(images[i], y_pred[i], ax=right, columns=columns, scaled=scaled, marker="X",
                  markersize=20, title=f"predicted, {nme}")
    for ax in list(axes.flat)[2 * n:]:
        ax.set_axis_off()
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, wspace=0.05, hspace=0.25,
                        top=1 - (0.5 if title else 0.3) / fig.get_figheight())
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
