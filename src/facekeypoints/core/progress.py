"""A live progress bar for long runs: epochs done, ETA, current lr and momentum (tqdm).

On a terminal it is tqdm's text bar; in a notebook kernel (Jupyter, VS Code, Colab) it is
tqdm's widget when ipywidgets is installed (``pip install 'facekeypoints[notebook]'``), and
the text bar otherwise. The choice is made when a bar opens, without importing IPython or
ipywidgets outside a notebook.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skorch.callbacks import Callback

from ._notebook import in_notebook, widgets_available

if TYPE_CHECKING:
    from skorch import NeuralNet

__all__ = ["EpochProgress", "bar_class"]


def bar_class() -> type:
    """The tqdm class a progress bar opened here and now would be.

    Returns
    -------
    type
        ``tqdm.notebook.tqdm`` (a widget) in a notebook kernel with ipywidgets installed,
        else ``tqdm.std.tqdm`` (the text bar).

    Examples
    --------
    >>> bar_class().__module__        # in a script or a terminal
    'tqdm.std'
    """
    if in_notebook() and widgets_available():
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


class EpochProgress(Callback):
    """One tqdm bar per fit; pair it with ``EpochTable(sink=tqdm.write)`` so rows print above it.

    The bar counts the epochs left in this fit (``max_epochs`` minus those already in the
    history) and shows the latest learning rate, momentum and validation loss. With
    ``disable=None`` tqdm turns the bar off when its output is not a terminal (logs stay
    clean); in a notebook the bar shows, as a widget when ipywidgets is installed (see
    :func:`bar_class`).

    Parameters
    ----------
    desc : str, optional
        Label shown in front of the bar.
    disable : bool, optional
        True hides the bar, False always shows it, None (the default) lets tqdm decide.

    Examples
    --------
    >>> from tqdm.auto import tqdm
    >>> from facekeypoints import presets
    >>> from facekeypoints.callbacks import EpochTable
    >>> from facekeypoints.progress import EpochProgress
    >>> net = presets.net4(max_epochs=5)
    >>> net = net.set_params(callbacks__print_log=EpochTable(sink=tqdm.write))
    >>> net.callbacks.append(("progress", EpochProgress(desc="net4")))
    """

    def __init__(self, desc: str | None = None, disable: bool | None = None) -> None:
        self.desc = desc
        self.disable = disable

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        """Open the bar for the epochs this fit has left."""
        done = len(net.history)
        tqdm = bar_class()
        # A notebook's output is no terminal, but a bar there is wanted: tqdm's text bar
        # would turn itself off for disable=None.
        disable = False if self.disable is None and in_notebook() else self.disable
        self.bar_ = tqdm(total=max(net.max_epochs - done, 0), desc=self.desc, unit="epoch",
                         disable=disable, leave=False, dynamic_ncols=True)

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Advance the bar by one epoch and show the epoch's lr, momentum and valid loss."""
        entry = net.history[-1]
        post = {k: f"{entry[k]:.4g}" for k in ("learning_rate", "momentum", "valid_loss")
                if k in entry}
        self.bar_.set_postfix(post, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Close the bar."""
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()
