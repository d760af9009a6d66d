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

from .data import IMAGE_SIDE, KEYPOINT_COLUMNS

__all__ = ["plot_face", "plot_faces", "keypoint_sides", "SIDE_COLORS"]

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
    return kp * (IMAGE_SIDE / 2) + IMAGE_SIDE / 2 if scaled else kp


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

PIXELS_PER_UNIT = IMAGE_SIDE / 2  # targets are (y - 48) / 48, so RMSE px = sqrt(loss) * 48


def _records(history):
    """A list of per-epoch dicts from a net, a skorch History or a list of dicts."""
    if hasattr(history, "history_"):
        history = history.history_
    return [dict(h) for h in (history or [])]


def _new_axes(ax, figsize=(7, 4.5)):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize).add_subplot()


def plot_learning_curves(histories, ax=None, show_schedule=True, title=None):
    """Train (dashed) and valid (solid) RMSE in pixels per epoch, on a log axis.

    ``histories``: a net, a history, or ``{label: net or history}`` for several runs on one
    figure. With ``show_schedule`` the learning rate and momentum of the first run go on a
    second axis (right). Returns the main axes.
    """
    if not isinstance(histories, dict):
        histories = {"": histories}
    ax = _new_axes(ax)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for (label, history), colour in zip(histories.items(), colours * 10):
        records = _records(history)
        epochs = [r["epoch"] for r in records]
        prefix = f"{label} " if label else ""
        for key, style in (("train_loss", "--"), ("valid_loss", "-")):
            values = [np.sqrt(r[key]) * PIXELS_PER_UNIT if key in r else np.nan for r in records]
            if np.isfinite(values).any():
                ax.plot(epochs, values, style, color=colour, lw=1.6,
                        label=f"{prefix}{key.split('_')[0]}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (pixels)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "learning curves")
    handles, labels = ax.get_legend_handles_labels()
    if show_schedule:
        first = _records(next(iter(histories.values())))
        twin = None
        for key, style, colour in (("learning_rate", ":", "#555555"), ("momentum", "-.", "#aaaaaa")):
            if first and key in first[0]:
                twin = twin or ax.twinx()
                line, = twin.plot([r["epoch"] for r in first], [r[key] for r in first], style,
                                  color=colour, lw=1.2, label=key.replace("_", " "))
                handles.append(line)
                labels.append(line.get_label())
        if twin is not None:
            twin.set_ylabel("learning rate, momentum")
            twin.set_yscale("log")
    ax.legend(handles, labels, fontsize=8, loc="upper right", ncol=2)
    return ax


def plot_schedule(callbacks, n_epochs, ax=None, title=None):
    """The values AdjustVariable-like callbacks would set over ``n_epochs`` (``simulate``)."""
    ax = _new_axes(ax, figsize=(6, 3.5))
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    epochs = np.arange(1, n_epochs + 1)
    for cb in callbacks:
        ax.plot(epochs, cb.simulate(n_epochs), lw=1.6,
                label=f"{type(cb).__name__}({cb.name!r}, {cb.start:g} -> {cb.stop:g})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("value")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "schedule")
    return ax


def plot_predictions(images, y_pred, y_true=None, fig=None, ncols=4, scaled=True,
                     columns=KEYPOINT_COLUMNS, figsize=None):
    """A grid of faces with predicted keypoints (coloured by side) and true ones (white rings).

    Keypoints are in the net's scaled units unless ``scaled=False``. Returns the figure.
    """
    fig = plot_faces(images, y_pred, fig=fig, ncols=ncols, columns=columns, scaled=scaled,
                     figsize=figsize, marker="X", markersize=22)
    if y_true is not None:
        for ax, truth in zip(fig.axes, y_true):
            kp = _as_pixels(truth, scaled)
            ax.scatter(kp[0::2], kp[1::2], s=28, facecolors="none", edgecolors="white",
                       linewidths=0.9, zorder=2, label="true")
    return fig
