"""Notebook helpers: learning curves that grow while a net trains, and showing figures.

In a Jupyter, VS Code or Colab kernel, :class:`LivePlot` redraws the learning curves (train
and valid RMSE in pixels, learning rate and momentum) in one output area, updated in place
every few epochs, the way fastai and Keras users watch a net train. Anywhere else (a script,
the command line, a plain IPython terminal) it does nothing but say so in one line, so the
same code runs in both places. Nothing here imports IPython unless a notebook kernel has
already loaded it.

The notebook behaviour of the rest of the library lives where it belongs: the plotting
functions of :mod:`facekeypoints.plots` show the figure they made,
:class:`~facekeypoints.callbacks.EpochTable` refreshes one table in place instead of
printing a row per epoch, :class:`~facekeypoints.progress.EpochProgress` is tqdm's widget
when ipywidgets is installed, and a :class:`~facekeypoints.NeuralNet` displays its layers,
parameter count and whether it is fitted. ``pip install 'facekeypoints[notebook]'`` adds
the kernel and the widgets; ``examples/tutorial.ipynb`` tells the recipe as a notebook.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from skorch.callbacks import Callback

from ._notebook import LiveDisplay, figure_bundle, in_notebook as _in_notebook, show_figure
from .callbacks import ConstructorParams
from .plots import plot_learning_curves

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from skorch import NeuralNet

__all__ = ["LivePlot", "in_notebook", "show"]


def in_notebook() -> bool:
    """Tell whether this code runs in a notebook kernel (Jupyter, VS Code, Colab).

    IPython is not imported to find out: outside a kernel the answer is False at once.
    ``FACEKEYPOINTS_NOTEBOOK=0`` in the environment turns every notebook behaviour of the
    library off.

    Returns
    -------
    bool
        True in a notebook kernel, False in a script, the command line or the plain
        IPython terminal.

    Examples
    --------
    >>> in_notebook()
    False
    """
    return _in_notebook()


def show(obj: Figure | Axes, dpi: float | None = None) -> Figure | Axes:
    """Show a figure (or the figure of an axes) in the notebook cell's output, once.

    For figures you build yourself, e.g. two plotting functions drawing into the axes of one
    ``Figure``: the plotting functions show only the figures they made. The object is marked
    as shown, so ending the cell with it does not draw it again. Outside a notebook this does
    nothing, so scripts may call it too.

    Parameters
    ----------
    obj : matplotlib.figure.Figure or matplotlib.axes.Axes
        What to show.
    dpi : float, optional
        Resolution of the picture (default 100 dots per inch).

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.axes.Axes
        ``obj``, for chaining.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(8, 3))
    >>> left, right = fig.subplots(1, 2)
    >>> show(fig) is fig            # in a script: nothing is displayed
    True
    """
    fig = getattr(obj, "figure", None) or obj
    show_figure(fig, also=obj if obj is not fig else None, dpi=dpi)
    return obj


class LivePlot(ConstructorParams, Callback):
    """Redraw the learning curves in place while a net trains (in a notebook).

    Every ``every`` epochs, and once more when training ends, the train (dashed) and valid
    (solid) RMSE in pixels and the learning rate and momentum the epochs used are drawn with
    :func:`facekeypoints.plots.plot_learning_curves` into one figure, which replaces the
    previous picture in the same output area (one display id): a run leaves one picture in
    the notebook, never one per epoch. The epoch axis spans the whole run (``max_epochs``)
    from the start, so the curves grow across it.

    Outside a notebook kernel it draws nothing and prints one line saying so, once; the
    command line and scripts are not affected. It is display only: it never changes
    training, and a pickled net keeps the callback but not its picture (nor the weights of
    the nets in ``compare``: their histories).

    Parameters
    ----------
    every : int, default 1
        Redraw after every ``every``-th epoch (and after the last one).
    compare : dict, optional
        Finished runs to draw with this one, ``{label: net or history}`` (e.g. a net trained
        earlier), so a new run can be watched against an old one.
    label : str, optional
        Label of the training run in the legend when ``compare`` is given (default
        ``'this run'``).
    title : str, optional
        Title of the plot (default: ``'learning curves, epoch k of n'``).
    figsize : tuple of float, default (7.0, 4.5)
        Size of the figure in inches.
    dpi : float, default 80
        Resolution of the picture; modest, so notebooks stay small.

    Attributes
    ----------
    display_id_ : str or None
        The display id of the output area this fit draws in (None outside a notebook).
    updates_ : int
        How many times the picture was redrawn in place during the last fit.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> net = fk.presets.net4(max_epochs=50)
    >>> net.callbacks.append(("live", fk.LivePlot(every=2)))
    >>> # net.fit(X, y) in a notebook now shows the curves growing
    """

    def __init__(self, every: int = 1, compare: Mapping[str, Any] | None = None,
                 label: str | None = None, title: str | None = None,
                 figsize: tuple[float, float] = (7.0, 4.5), dpi: float = 80) -> None:
        self.every = every
        self.compare = compare
        self.label = label
        self.title = title
        self.figsize = figsize
        self.dpi = dpi

    def initialize(self) -> LivePlot:
        """Check ``every`` and forget the previous fit's display."""
        if int(self.every) < 1:
            raise ValueError(f"LivePlot: every must be a positive number of epochs, "
                             f"got {self.every!r}")
        self.display_id_ = None
        self.updates_ = 0
        self._live = None
        self._figure = None
        self._noted = getattr(self, "_noted", False)
        return self

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        """Open a fresh output area in a notebook; elsewhere, say once that nothing is drawn."""
        self.display_id_ = None
        self.updates_ = 0
        self._drawn_epoch = None
        if _in_notebook():
            self._live = LiveDisplay()
        else:
            self._live = None
            if not getattr(self, "_noted", False):
                print("LivePlot: not in a notebook, so no live curves (draw them after "
                      "training with facekeypoints.plots.plot_learning_curves(net))",
                      file=sys.stderr)
                self._noted = True

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Redraw after every ``every``-th epoch."""
        if self._live is None or not len(net.history):
            return
        epoch = int(net.history[-1, "epoch"])
        if epoch == 1 or epoch % int(self.every) == 0:
            self._draw(net)

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Draw the last epoch, if the last redraw was before it."""
        if getattr(self, "_live", None) is None or not len(net.history):
            return
        if self._drawn_epoch != int(net.history[-1, "epoch"]):
            self._draw(net)
        self._figure = None   # the picture stays in the notebook; the figure is not needed

    def figure(self, net: NeuralNet) -> Figure:
        """Draw the curves of ``net`` so far into this callback's figure and return it.

        Parameters
        ----------
        net : NeuralNet
            The net being trained (its history so far is drawn).

        Returns
        -------
        matplotlib.figure.Figure
            The figure, reused from one redraw to the next.
        """
        if getattr(self, "_figure", None) is None:
            from matplotlib.figure import Figure

            self._figure = Figure(figsize=self.figsize)
        fig = self._figure
        fig.clear()
        ax = fig.add_subplot()
        history = [dict(row) for row in net.history]
        epoch = int(history[-1]["epoch"]) if history else 0
        last = max(int(net.max_epochs), epoch)
        if self.compare:
            runs = {str(k): v for k, v in self.compare.items()}
            runs[self.label or "this run"] = history
        else:
            runs = history
        plot_learning_curves(runs, ax=ax,
                             title=self.title or f"learning curves, epoch {epoch} of {last}")
        ax.set_xlim(0.5, last + 0.5)
        return fig

    def _draw(self, net):
        fig = self.figure(net)
        self._live.show(figure_bundle(fig, self.dpi))
        self.display_id_ = self._live.display_id
        self.updates_ = self._live.updates
        self._drawn_epoch = int(net.history[-1, "epoch"])

    def __getstate__(self):
        state = dict(self.__dict__)
        for key in ("_live", "_figure"):    # a live display and a figure are not training
            state[key] = None
        if self.compare:   # a compared net is pickled as its history, not its weights
            state["compare"] = {k: [dict(row) for row in v.history] if hasattr(v, "history")
                                else v for k, v in self.compare.items()}
        return state
