"""Callbacks that change hyperparameters between epochs, stop early, and print the table.

Every callback here works two ways: as a skorch callback (``callbacks=[('adjust_lr', ...)]``)
and as a nolearn-style handler (``on_epoch_finished=[...]``, called as ``f(nn, history)``).
The shapes a schedule can take (cosine, exponential, warm-up, ...) are in
:mod:`facekeypoints.schedules`.
"""
from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from skorch.callbacks import Callback, PassthroughScoring, PrintLog

from ._notebook import LiveDisplay, in_notebook
from ._suggest import did_you_mean
from .schedules import cosine, exponential
from .shared import float32, is_shared
from .updates import check_hyperparameter

if TYPE_CHECKING:
    from skorch import NeuralNet

__all__ = ["AdjustVariable", "ConstructorParams", "CosineAdjustVariable", "EarlyStopping",
           "EpochSummary", "EpochTable", "ExponentialAdjustVariable", "NolearnHandlers"]


class ConstructorParams:
    """Mixin for skorch callbacks: ``get_params`` names the constructor's parameters only.

    skorch's callbacks report every attribute that does not end in ``_`` as a parameter, so
    private state set while training (``_stop``, ``_live``) would reach ``get_params`` and
    break ``sklearn.base.clone``, ``cross_val_score`` and ``GridSearchCV`` on a fitted net.
    Put this before ``Callback`` in a callback's bases; every callback the library ships has
    it.

    Examples
    --------
    >>> from skorch.callbacks import Callback
    >>> class Noisy(ConstructorParams, Callback):
    ...     def __init__(self, level=1):
    ...         self.level = level
    ...         self._seen = 0
    >>> Noisy().get_params()
    {'level': 1}
    """

    def _get_param_names(self):
        names = [k for k in super()._get_param_names() if not k.startswith("_")]
        params = inspect.signature(type(self).__init__).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return names
        accepted = {p.name for p in params}
        return [k for k in names if k in accepted]


def _takes_schedule(cls):
    """Whether ``cls(...)`` accepts ``schedule=`` (a subclass may have its own ``__init__``)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return any(p.name == "schedule" or p.kind is p.VAR_KEYWORD for p in params)


def _show(value):
    return str(value) if isinstance(value, (int, float, np.number)) else repr(value)


class AdjustVariable(ConstructorParams, Callback):
    """Set the hyperparameter ``name`` to a value that depends only on training progress.

    Epoch e of a run of ``max_epochs`` uses ``schedule((e - 1) / (max_epochs - 1))``; past
    ``max_epochs`` (warm starts, ``partial_fit``) progress stays at 1. The default schedule is
    linear and gives exactly ``start`` in epoch 1 and exactly ``stop`` in the last.

    There are two ways to another shape. Pass a function of progress as ``schedule=`` (the
    ones in :mod:`facekeypoints.schedules` pickle, print readably and compose), or subclass
    and override the method :meth:`schedule` alone, which may use ``self.start`` and
    ``self.stop``. A ``schedule`` given to the constructor (or by ``set_params``) wins over
    the method; ``schedule=None`` selects the method again.

    Parameters
    ----------
    name : str
        The net's attribute holding the hyperparameter, a float or a shared variable, e.g.
        ``'update_learning_rate'`` or ``'update_momentum'`` (beta1 for Adam).
    start : float, default 0.03
        The value in epoch 1 for the default linear schedule and for subclasses.
    stop : float, default 0.001
        The value in the last epoch for the default linear schedule and for subclasses.
    schedule : callable, optional
        ``f(progress) -> value`` for progress in [0, 1]; when given, ``start`` and ``stop``
        are not used. Define it at module level (or use :mod:`facekeypoints.schedules`) so
        that the net pickles.

    See Also
    --------
    facekeypoints.schedules : linear, cosine, exponential, constant, join, warmup.

    Examples
    --------
    The recipe's linear ramps, then a composed warm-up and cosine decay:

    >>> import facekeypoints as fk
    >>> from facekeypoints.schedules import cosine, warmup
    >>> fk.AdjustVariable('update_learning_rate', 0.03, 0.0001).simulate(3)
    array([0.03   , 0.01505, 0.0001 ])
    >>> adjust = fk.AdjustVariable('update_learning_rate',
    ...                            schedule=warmup(0.1, cosine(0.03, 0.0001), start=0.0001))
    >>> adjust.value_at(1, 100), adjust.value_at(100, 100)
    (0.0001, 0.0001)

    The same by subclassing: override one method.

    >>> import math
    >>> class CosineDecay(fk.AdjustVariable):
    ...     def schedule(self, progress):
    ...         w = (1 + math.cos(math.pi * progress)) / 2
    ...         return self.start * w + self.stop * (1 - w)
    >>> CosineDecay('update_learning_rate', 1.0, 0.0).simulate(3)
    array([1. , 0.5, 0. ])
    """

    def __init__(self, name: str, start: float = 0.03, stop: float = 0.001,
                 schedule: Callable[[float], float] | None = None):
        self.name = name
        self.start = start
        self.stop = stop
        self.schedule = schedule  # None: the method below (see __setattr__)

    # The constructor parameter ``schedule`` and the method ``schedule`` share a name: a
    # given function lives in the instance's __dict__ and so wins over the method; None is
    # never stored there, so that the method (a subclass's override) stays visible.
    def __setattr__(self, key, value):
        if key == "schedule" and value is None:
            self.__dict__.pop("schedule", None)
        else:
            super().__setattr__(key, value)

    def _get_param_names(self):
        names = super()._get_param_names()  # skorch: the instance's public attributes
        if "schedule" not in names and _takes_schedule(type(self)):
            names.append("schedule")
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool, default True
            Also return the parameters of parameters that are estimators.

        Returns
        -------
        dict
            Parameter names mapped to values; ``schedule`` is ``None`` when the
            :meth:`schedule` method is in use.
        """
        params = super().get_params(deep=deep)
        if "schedule" in params:
            params["schedule"] = self.__dict__.get("schedule")
        return params

    def __repr__(self):
        params = self.get_params(deep=False)
        params.pop("name", None)
        if params.get("schedule") is None:
            params.pop("schedule", None)
        else:                                    # start and stop play no part then
            params.pop("start", None)
            params.pop("stop", None)
        shown = "".join(f", {k}={_show(v)}" for k, v in params.items())
        return f"{type(self).__name__}({self.name!r}{shown})"

    # -- the one method to override ----------------------------------------------------------
    def schedule(self, progress: float) -> float:
        """Map progress in [0, 1] (0 = first epoch, 1 = last) to the value to use.

        The default is linear from ``start`` to ``stop``. Subclasses override this method;
        a ``schedule`` given to the constructor replaces it on the instance.

        Parameters
        ----------
        progress : float
            Where the epoch lies in the run, from 0 (epoch 1) to 1 (epoch ``max_epochs``).

        Returns
        -------
        float
            The hyperparameter's value for that epoch.
        """
        return self.start * (1 - progress) + self.stop * progress  # exact at both ends

    # -- plumbing ---------------------------------------------------------------------------
    @staticmethod
    def progress(epoch: int, max_epochs: int) -> float:
        """Where 1-based ``epoch`` lies in a run of ``max_epochs``, clipped to [0, 1].

        Parameters
        ----------
        epoch : int
            The epoch, counted from 1.
        max_epochs : int
            The length of the run; with 1 or fewer, progress is always 0.

        Returns
        -------
        float
            ``(epoch - 1) / (max_epochs - 1)``, clipped to [0, 1].
        """
        if max_epochs <= 1:
            return 0.0
        return min(max((epoch - 1) / (max_epochs - 1), 0.0), 1.0)

    def value_at(self, epoch: int, max_epochs: int) -> float:
        """The value this schedule uses in ``epoch`` of a run of ``max_epochs``.

        Parameters
        ----------
        epoch : int
            The epoch, counted from 1; past ``max_epochs`` the last value is kept.
        max_epochs : int
            The length of the run.

        Returns
        -------
        float
            The value set before that epoch trains.
        """
        return float(self.schedule(self.progress(epoch, max_epochs)))

    def simulate(self, n_epochs: int, max_epochs: int | None = None) -> np.ndarray:
        """Values for epochs 1..n_epochs, for plots and tests, without training.

        Parameters
        ----------
        n_epochs : int
            How many epochs to list.
        max_epochs : int, optional
            The run length the schedule is scaled to; default ``n_epochs``.

        Returns
        -------
        numpy.ndarray
            ``n_epochs`` floats, the value of each epoch in order.
        """
        max_epochs = n_epochs if max_epochs is None else max_epochs
        return np.array([self.value_at(e, max_epochs) for e in range(1, n_epochs + 1)])

    def check(self, net: NeuralNet) -> None:
        """Fail before training when the schedule cannot run on ``net``.

        Parameters
        ----------
        net : NeuralNet
            The net about to train; its ``max_epochs`` sets the epochs checked.

        Raises
        ------
        ValueError
            When the net has no hyperparameter called ``name`` (with a suggestion), when it
            is neither a number nor a shared variable, or when the schedule would set a value
            no run should use (lr <= 0, momentum outside [0, 1), not finite), naming the epoch.
        TypeError
            When ``schedule`` is given and is not callable.
        """
        given = self.__dict__.get("schedule")
        if given is not None and not callable(given):
            raise TypeError(f"{self!r}: schedule must be a function of progress in [0, 1], "
                            f"got {type(given).__name__}")
        if hasattr(net, self.name):
            target = getattr(net, self.name)
            if is_shared(target) or isinstance(target, (int, float, np.number)):
                for epoch, value in enumerate(self.simulate(net.max_epochs), start=1):
                    try:
                        check_hyperparameter(self.name, value)
                    except ValueError as exc:
                        raise ValueError(f"{self!r} in epoch {epoch}: {exc}") from None
                return
            raise ValueError(f"{type(self).__name__}({self.name!r}): net.{self.name} is "
                             f"{target!r}, not a number or a shared variable")
        known = sorted(k for k in vars(net) if k.startswith("update_") and not k.endswith("_"))
        raise ValueError(f"{type(self).__name__}({self.name!r}): the net has no hyperparameter "
                         f"{self.name!r}; it has {', '.join(known)}."
                         f"{did_you_mean(self.name, known)}")

    def apply(self, net: NeuralNet, epoch: int) -> None:
        """Write the value for ``epoch`` into the net's hyperparameter.

        Parameters
        ----------
        net : NeuralNet
            The net whose attribute ``name`` is set (``set_value`` on a shared variable).
        epoch : int
            The epoch about to train, counted from 1.

        Raises
        ------
        ValueError
            When the schedule gives a value that is not finite.
        """
        value = self.value_at(epoch, net.max_epochs)
        if not math.isfinite(value):
            raise ValueError(f"{type(self).__name__}({self.name!r}) produced {value} "
                             f"for epoch {epoch}")
        target = getattr(net, self.name)
        if is_shared(target):
            target.set_value(float32(value))
        else:
            setattr(net, self.name, value)

    def on_train_begin(self, net, **kwargs):
        """Check the schedule against the net before the first epoch."""
        self.check(net)

    def on_epoch_begin(self, net, **kwargs):
        """Set the value for the epoch about to train."""
        self.apply(net, len(net.history))

    def __call__(self, nn: NeuralNet, train_history: Sequence[Mapping[str, Any]]) -> None:
        """nolearn style: after an epoch, set the value for the next one."""
        self.apply(nn, len(train_history) + 1)


class CosineAdjustVariable(AdjustVariable):
    """Half-cosine from ``start`` to ``stop``: slow at both ends, fast in the middle.

    The same as ``AdjustVariable(name, schedule=schedules.cosine(start, stop))``, with
    ``start`` and ``stop`` as parameters of their own (for ``set_params`` and searches).

    Parameters
    ----------
    name : str
        The net's attribute holding the hyperparameter.
    start : float, default 0.03
        The value in epoch 1.
    stop : float, default 0.001
        The value in the last epoch.
    schedule : callable, optional
        As for :class:`AdjustVariable`: when given, it replaces the cosine.

    Examples
    --------
    >>> CosineAdjustVariable('update_learning_rate', 1.0, 0.0).simulate(3)
    array([1. , 0.5, 0. ])
    """

    def schedule(self, progress: float) -> float:
        """The cosine from ``start`` to ``stop`` at ``progress``.

        Parameters
        ----------
        progress : float
            From 0 (epoch 1) to 1 (the last epoch).

        Returns
        -------
        float
            The value for that epoch.
        """
        return cosine(self.start, self.stop)(progress)


class ExponentialAdjustVariable(AdjustVariable):
    """Geometric interpolation: the same factor every epoch (needs start and stop > 0).

    The same as ``AdjustVariable(name, schedule=schedules.exponential(start, stop))``, with
    ``start`` and ``stop`` as parameters of their own (for ``set_params`` and searches).

    Parameters
    ----------
    name : str
        The net's attribute holding the hyperparameter.
    start : float, default 0.03
        The value in epoch 1; must be > 0.
    stop : float, default 0.001
        The value in the last epoch; must be > 0.
    schedule : callable, optional
        As for :class:`AdjustVariable`: when given, it replaces the exponential.

    Examples
    --------
    >>> ExponentialAdjustVariable('update_learning_rate', 1.0, 0.01).simulate(3)
    array([1.  , 0.1 , 0.01])
    """

    def schedule(self, progress: float) -> float:
        """The geometric interpolation from ``start`` to ``stop`` at ``progress``.

        Parameters
        ----------
        progress : float
            From 0 (epoch 1) to 1 (the last epoch).

        Returns
        -------
        float
            The value for that epoch.

        Raises
        ------
        ValueError
            When ``start`` or ``stop`` is not > 0.
        """
        if self.start <= 0 or self.stop <= 0:
            raise ValueError("ExponentialAdjustVariable needs start > 0 and stop > 0")
        return exponential(self.start, self.stop)(progress)


class EarlyStopping(ConstructorParams, Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; keep the best weights.

    The best weights are restored when it fires and also when training ends by
    ``max_epochs`` (the old recipe's version only did the former). Works as a skorch
    callback and in ``on_epoch_finished``.

    Parameters
    ----------
    patience : int, default 100
        Epochs without a new best value before training stops.
    monitor : str, default 'valid_loss'
        The history key to watch; lower is better.
    verbose : bool, default True
        Print a line naming the best epoch when it stops training.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> net = fk.presets.net4(on_epoch_finished=[fk.EarlyStopping(patience=100)])
    """

    def __init__(self, patience: int = 100, monitor: str = "valid_loss", verbose: bool = True):
        self.patience = patience
        self.monitor = monitor
        self.verbose = verbose

    def initialize(self):
        """Forget the best value and weights seen so far."""
        self.best_loss_ = math.inf
        self.best_epoch_ = 0
        self.best_weights_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        """Check ``patience`` and start tracking, unless resuming."""
        if int(self.patience) < 1:
            raise ValueError(f"EarlyStopping patience must be >= 1, got {self.patience}")
        if not hasattr(self, "best_loss_"):
            self.initialize()

    def __call__(self, nn: NeuralNet, train_history: Sequence[Mapping[str, Any]]) -> None:
        """nolearn style: after an epoch, note a new best or stop with ``StopIteration``."""
        entry = train_history[-1]
        if self.monitor not in entry:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which the history does not "
                             "have; is eval_size 0? Use monitor='train_loss' then.")
        loss, epoch = entry[self.monitor], entry["epoch"]
        if loss < self.best_loss_:
            self.best_loss_, self.best_epoch_ = loss, epoch
            self.best_weights_ = {k: v.detach().clone()
                                  for k, v in nn.module_.state_dict().items()}
        elif epoch - self.best_epoch_ >= self.patience:
            if self.verbose:
                print(f"Early stopping: best {self.monitor} {self.best_loss_:.6f} "
                      f"was at epoch {self.best_epoch_}.")
            self.restore(nn)
            raise StopIteration()

    def on_epoch_end(self, net, **kwargs):
        """Note a new best value, or stop training when patience has run out."""
        self(net, net.history)

    def restore(self, net: NeuralNet) -> None:
        """Load the best weights seen so far into the net.

        Parameters
        ----------
        net : NeuralNet
            The net whose module gets the weights; unchanged when none were seen yet.
        """
        if self.best_weights_ is not None:
            net.module_.load_state_dict(self.best_weights_)

    def on_train_end(self, net, **kwargs):
        """Restore the best weights, also when training ran to ``max_epochs``."""
        self.restore(net)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps, so a resumed run stops where the original would.

        Returns
        -------
        dict
            ``best_loss``, ``best_epoch`` and ``best_weights`` (a state dict, maybe empty).
        """
        return {"best_loss": float(self.best_loss_), "best_epoch": int(self.best_epoch_),
                "best_weights": dict(self.best_weights_ or {})}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take up tracking from what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            ``best_loss``, ``best_epoch`` and ``best_weights``, as :meth:`state_dict` gives.
        """
        self.best_loss_ = float(state["best_loss"])
        self.best_epoch_ = int(state["best_epoch"])
        self.best_weights_ = dict(state["best_weights"]) or None


class NolearnHandlers(ConstructorParams, Callback):
    """Run nolearn-style ``on_epoch_finished`` / ``on_training_finished`` callables.

    Handlers that are skorch callbacks also get their ``on_train_begin``/``on_epoch_begin``
    hooks, so a built-in AdjustVariable uses ``start`` in epoch 1 from either list. The net
    adds one of these itself; there is rarely a reason to build one by hand.

    Parameters
    ----------
    on_epoch_finished : sequence of callable, default ()
        Called as ``f(net, history)`` after every epoch.
    on_training_finished : sequence of callable, default ()
        Called as ``f(net, history)`` once training ends.
    """

    def __init__(self, on_epoch_finished: Sequence[Callable] = (),
                 on_training_finished: Sequence[Callable] = ()):
        self.on_epoch_finished = on_epoch_finished
        self.on_training_finished = on_training_finished

    def callback_objects(self) -> list[Callback]:
        """The handlers that are skorch callbacks, each once, in order.

        Returns
        -------
        list of skorch.callbacks.Callback
            From ``on_epoch_finished`` then ``on_training_finished``, without repeats.
        """
        seen = []
        for h in list(self.on_epoch_finished or ()) + list(self.on_training_finished or ()):
            if isinstance(h, Callback) and all(h is not s for s in seen):
                seen.append(h)
        return seen

    def initialize(self):
        """Initialize the handlers that are skorch callbacks."""
        for cb in self.callback_objects():
            cb.initialize()
        return self

    def on_train_begin(self, net, **kwargs):
        """Pass ``on_train_begin`` on to the handlers that are skorch callbacks."""
        for cb in self.callback_objects():
            cb.on_train_begin(net, **kwargs)

    def on_epoch_begin(self, net, **kwargs):
        """Pass ``on_epoch_begin`` on to the epoch handlers that are skorch callbacks."""
        for cb in self.on_epoch_finished or ():
            if isinstance(cb, Callback):
                cb.on_epoch_begin(net, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        """Call every ``on_epoch_finished`` handler as ``f(net, history)``."""
        for handler in self.on_epoch_finished or ():
            handler(net, net.history)

    def on_train_end(self, net, **kwargs):
        """End the callbacks, then call every ``on_training_finished`` handler."""
        for cb in self.callback_objects():
            if cb not in (self.on_training_finished or ()):
                cb.on_train_end(net, **kwargs)
        for handler in self.on_training_finished or ():
            handler(net, net.history)


class LabelledCount(ConstructorParams, Callback):
    """Record each regression batch's labelled targets, its weight in the epoch's mean loss.

    ``<train|valid>_labelled`` is the number of labelled (non-NaN) target values divided by
    the values per row: the batch size when every target is labelled.
    """

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        """Record ``<train|valid>_labelled`` for the batch."""
        if not net.regression or not isinstance(batch, (tuple, list)) or len(batch) < 2:
            return
        yb = batch[1]
        if not isinstance(yb, torch.Tensor) or not yb.is_floating_point() or not yb.numel():
            return
        per_row = yb.numel() // len(yb)
        labelled = int(torch.count_nonzero(~torch.isnan(yb)))   # after the loss's sync
        net.history.record_batch(("train" if training else "valid") + "_labelled",
                                 labelled / per_row)


class LabelledScoring(ConstructorParams, PassthroughScoring):
    """skorch's epoch mean of the batch losses, each batch weighted by its labelled targets
    (``<train|valid>_labelled``, which :class:`LabelledCount` records; the batch size when
    every target is labelled, so that complete data average exactly as before)."""

    def get_avg_score(self, history):
        """The epoch's mean loss over every labelled value (NaN when none is labelled)."""
        key = ("train" if self.on_train else "valid") + "_labelled"
        batches = [b for b in history[-1, "batches"] if self.name in b]
        if not batches or not all(key in b for b in batches):
            return super().get_avg_score(history)
        weights = [b[key] for b in batches]
        if not sum(weights):
            return float("nan")     # no labelled target in the whole epoch
        return np.average([b[self.name] for b in batches], weights=weights)


class EpochSummary(ConstructorParams, Callback):
    """Store the epoch's losses as Python floats and ``train_val`` = train / valid loss."""

    def on_epoch_end(self, net, **kwargs):
        """Record the losses as floats and their ratio in the last history row."""
        entry = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            if key in entry:
                net.history.record(key, float(entry[key]))
        if "train_loss" in entry and entry.get("valid_loss"):
            net.history.record("train_val", entry["train_loss"] / entry["valid_loss"])


class EpochTable(ConstructorParams, PrintLog):
    """The recipe's epoch table: epoch | train loss | valid loss | valid px | train/val | dur | lr.

    ``valid_rmse_px`` is the validation RMSE in pixels measured from the predictions
    (whatever the loss); the learning rate and momentum columns show when they are recorded.

    Best values are coloured on a terminal and starred elsewhere. With ``verbose`` the
    layer summary and parameter count come first.

    In a notebook (a Jupyter, VS Code or Colab kernel) the rows do not pile up in the cell:
    the summary and the table are one text output, refreshed in place after every epoch,
    showing the first rows and the latest ones when there are more than ``max_rows``. The
    whole history stays in ``net.history``.

    Parameters
    ----------
    keys_ignored : sequence of str, default ('train_batch_count', 'valid_batch_count', \
'train_rmse_px')
        History keys left out of the table.
    sink : callable, default print
        Where each line goes.
    tablefmt : str, default 'simple'
        The ``tabulate`` table format.
    floatfmt : str, default '.6f'
        The format of the losses.
    stralign : str, default 'right'
        The alignment of the columns.
    live : bool, default True
        In a notebook, and when ``sink`` is ``print``, refresh one table in place; False
        prints a line per epoch there too.
    max_rows : int, default 30
        Rows an in-place table shows at most: the first three, then the latest.
    """

    ORDER = ("epoch", "train_loss", "valid_loss", "valid_rmse_px", "train_val", "dur",
             "learning_rate", "momentum")

    def __init__(self, keys_ignored: Sequence[str] = ("train_batch_count", "valid_batch_count",
                                                      "train_rmse_px"),
                 sink: Callable[[str], Any] = print, tablefmt: str = "simple",
                 floatfmt: str = ".6f", stralign: str = "right", live: bool = True,
                 max_rows: int = 30):
        super().__init__(keys_ignored=keys_ignored, sink=sink, tablefmt=tablefmt,
                         floatfmt=floatfmt, stralign=stralign)   # as given: clone checks it
        self.live = live
        self.max_rows = max_rows

    def _sorted_keys(self, keys):
        rest = [k for k in super()._sorted_keys(keys) if k not in self.ORDER]
        return [k for k in self.ORDER if k in keys and k not in self.keys_ignored_] + rest

    def format_row(self, row, key, color):
        """Format one cell: epoch as is, duration in seconds, best values marked."""
        if key == "epoch":
            return str(row[key])
        if key == "dur":
            return f"{row[key]:6.2f}s"  # fixed width: rows print one at a time
        colour = color if self.sink is print and sys.stdout.isatty() else ""
        if key.endswith("_rmse_px") and isinstance(row[key], float):
            text = f"{row[key]:.3f}"      # pixels: three decimals say enough
            best = row.get(key + "_best")
            return (f"{colour}{text}\x1b[0m" if colour else text + "*") if best else text
        text = super().format_row(row, key, colour)
        if not colour and row.get(key + "_best"):
            text = text.replace("\x1b[0m", "") + "*"
        return text

    def on_train_begin(self, net, **kwargs):
        """Print the layer summary first when the net is verbose and starts afresh."""
        live = self.live and self.sink is print and net.verbose and in_notebook()
        self.live_ = _LiveTable(self.max_rows, getattr(self, "live_header_", None)) \
            if live else None
        if net.verbose and not len(net.history):
            if self.live_ is not None:
                self.live_.lines.append(net.layer_summary())
            else:
                self.sink(net.layer_summary())

    def on_epoch_end(self, net, **kwargs):
        """Print the epoch's row, or refresh the in-place table with it."""
        live = getattr(self, "live_", None)
        if live is None:
            return super().on_epoch_end(net, **kwargs)
        lines = self.table(net.history[-1]).split("\n")
        if live.header is None or self.first_iteration_:
            live.header = self.live_header_ = lines[:2]
            self.first_iteration_ = False
        live.rows.append(lines[-1])
        live.refresh()

    def on_train_end(self, net, **kwargs):
        """Let go of the notebook output (it keeps the table)."""
        self.live_ = None

    def __getstate__(self):
        return {**self.__dict__, "live_": None}   # a notebook output is no training state


class _LiveTable:
    """The summary and the epoch table as one notebook output, refreshed in place."""

    def __init__(self, max_rows, header=None):
        self.max_rows = max(int(max_rows), 5)
        self.lines, self.header, self.rows = [], header, []
        self.display = LiveDisplay()

    def text(self):
        rows = self.rows
        if len(rows) > self.max_rows:
            tail = self.max_rows - 3
            hidden = len(rows) - 3 - tail
            rows = rows[:3] + [f"    ... {hidden} more rows (net.history has every epoch)"] \
                + rows[-tail:]
        return "\n".join([*self.lines, *(self.header or []), *rows])

    def refresh(self):
        self.display.show({"text/plain": self.text()})
