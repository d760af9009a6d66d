"""Plotting helpers (matplotlib).

Every function draws on a given ``Axes``/``Figure`` or builds a ``matplotlib.figure.Figure``
directly (never through ``pyplot``), so they work under the Agg backend, on headless machines
and in worker processes; they return the axes or figure and never call ``show``.  Save a
figure with ``fig.savefig(path)``.

Images are drawn with pixel ``i`` spanning ``[i, i + 1)`` (``extent=(0, 96, 96, 0)``), the
library's coordinate convention, so keypoints in pixels land on the features they mark.
"""
from __future__ import annotations

import numpy as np

from .data import IMAGE_SIDE, KEYPOINT_COLUMNS, PIXELS_PER_UNIT  # PIXELS_PER_UNIT: re-exported

__all__ = ["plot_face", "plot_faces", "keypoint_sides", "SIDE_COLORS", "plot_learning_curves",
           "plot_schedule", "plot_predictions"]

#: Marker colours for the subject's left, subject's right and centre keypoints.
SIDE_COLORS = {"left": "#ff3b30", "right": "#1e90ff", "centre": "#ffd60a"}


def keypoint_sides(columns=KEYPOINT_COLUMNS) -> list[str]:
    """'left', 'right' or 'centre' for each keypoint (x, y pair) of ``columns``."""
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
    kp = np.asarray(kp, dtype=np.float64).reshape(-1)
    return kp * PIXELS_PER_UNIT + PIXELS_PER_UNIT if scaled else kp


def plot_face(image, keypoints=None, ax=None, columns=KEYPOINT_COLUMNS, scaled=False,
              colors=None, marker="o", markersize=14, title=None):
    """Draw one 96x96 grayscale face and its keypoints on ``ax`` (created if None).

    ``image``: 9216 values or a 96x96 array, either 0..255 or 0..1 (any value above 1
    means the 0..255 scale).  ``keypoints``: 30 values in pixels,
    or in the library's scaled [-1, 1] units with ``scaled=True``; NaNs are skipped.
    Subject's-left, subject's-right and centre points get the colours of ``SIDE_COLORS``.
    Returns the axes.
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


def plot_faces(images, keypoints=None, fig=None, ncols=4, columns=KEYPOINT_COLUMNS,
               scaled=False, titles=None, figsize=None, legend=True, **kwargs):
    """Draw faces in a grid with ``ncols`` columns; returns the figure.

    ``images``: (n, 9216), (n, 96, 96) or (n, 1, 96, 96); ``keypoints``: (n, 30) or None.
    A new ``matplotlib.figure.Figure`` is made unless ``fig`` is given.  Extra keyword
    arguments go to :func:`plot_face`.
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
    import os

    if isinstance(history, (str, os.PathLike)):
        from .runs import read_history

        return read_history(history)
    if hasattr(history, "history_"):
        history = history.history_
    return [dict(h) for h in (history or [])]


def _as_runs(histories):
    """{label: records} from a single run, a dict of runs, or a list/tuple of paths/nets."""
    import os

    if isinstance(histories, dict):
        return {str(k): _records(v) for k, v in histories.items()}
    if isinstance(histories, (list, tuple)) and histories and not isinstance(histories[0], dict):
        paths = [h for h in histories if isinstance(h, (str, os.PathLike))]
        if len(paths) == len(histories):
            from .runs import run_labels

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


def plot_learning_curves(histories, ax=None, show_schedule=True, title=None):
    """Train (dashed) and valid (solid) RMSE in pixels per epoch, on a log axis.

    ``histories``: a net, a history (list of per-epoch dicts), the path of a run directory or
    model file; or several runs on one figure, as ``{label: any of those}`` or a list of
    paths (labelled by run directory name). With ``show_schedule`` the learning rate (dotted,
    log axis on the right) and the momentum (dash-dot, linear axis further right) each run
    trained with are drawn too: once in grey when every run used the same values, else in
    each run's colour. The legend sits below the plot: one entry per run (its colour) and
    one per line style. Returns the main axes; the figure is ``ax.figure`` (save it with
    ``ax.figure.savefig(path, bbox_inches='tight')``).
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
            # runs.rmse_px, written out: importing runs would import torch
            values = np.array([np.sqrt(r[key]) * PIXELS_PER_UNIT if r.get(key) is not None
                               else np.nan for r in records], dtype=float)
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


def plot_schedule(callbacks, n_epochs, ax=None, title=None, max_epochs=None):
    """The values AdjustVariable-like callbacks would set over ``n_epochs`` (``simulate``).

    Callbacks adjusting the same hyperparameter share an axis; a second hyperparameter
    (e.g. momentum next to the learning rate) gets its own axis on the right, dashed.
    ``max_epochs`` is the run length the schedules are scaled to (default ``n_epochs``).
    Returns the main axes.
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
        line, = target.plot(epochs, cb.simulate(n_epochs, max_epochs), style, lw=1.6,
                            color=next(colours),
                            label=f"{type(cb).__name__}({cb.name!r}, {cb.start:g} -> {cb.stop:g})")
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


def plot_predictions(images, y_pred, y_true=None, fig=None, ncols=4, scaled=True,
                     columns=KEYPOINT_COLUMNS, figsize=None, title=None):
    """A grid of faces with predicted keypoints (crosses coloured by side) and true ones
    (white rings); with ``y_true`` each face is titled with its RMSE in pixels.

    Keypoints are in the net's scaled units unless ``scaled=False``. Returns the figure.
    """
    from matplotlib.lines import Line2D

    y_pred = np.asarray(y_pred, dtype=float)
    titles = None
    if y_true is not None:
        y_true = np.asarray(y_true, dtype=float)
        err = (y_pred - y_true) * (PIXELS_PER_UNIT if scaled else 1.0)
        titles = [f"RMSE {np.sqrt(np.nanmean(e ** 2)):.1f} px" for e in err]
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
