"""Callbacks that change hyperparameters between epochs, stop early, and print the table.

Every callback here works two ways: as a skorch callback (``callbacks=[('adjust_lr', ...)]``)
and as a nolearn-style handler (``on_epoch_finished=[...]``, called as ``f(nn, history)``).
"""
from __future__ import annotations

import difflib
import math
import sys

import numpy as np
from skorch.callbacks import Callback, PrintLog

from .shared import float32, is_shared
from .updates import check_hyperparameter


class AdjustVariable(Callback):
    """Set the hyperparameter ``name`` to a value that depends only on training progress.

    Epoch e of a run of ``max_epochs`` uses ``schedule((e - 1) / (max_epochs - 1))``; past
    ``max_epochs`` (warm starts, ``partial_fit``) progress stays at 1. The default schedule is
    linear and gives exactly ``start`` in epoch 1 and exactly ``stop`` in the last.
    Subclasses override :meth:`schedule` alone (a warm-up may start anywhere)::

        class CosineDecay(AdjustVariable):
            def schedule(self, progress):
                return self.stop + (self.start - self.stop) * (1 + math.cos(math.pi * progress)) / 2

    ``name`` is an attribute of the net holding a float or a shared variable, e.g.
    ``'update_learning_rate'`` or ``'update_momentum'`` (beta1 for Adam).
    """

    def __init__(self, name, start=0.03, stop=0.001):
        self.name = name
        self.start = start
        self.stop = stop

    # -- the one method to override ----------------------------------------------------------
    def schedule(self, progress):
        """Map progress in [0, 1] (0 = first epoch, 1 = last) to the value to use."""
        return self.start * (1 - progress) + self.stop * progress  # exact at both ends

    # -- plumbing ---------------------------------------------------------------------------
    @staticmethod
    def progress(epoch, max_epochs):
        """Where 1-based ``epoch`` lies in a run of ``max_epochs``, clipped to [0, 1]."""
        if max_epochs <= 1:
            return 0.0
        return min(max((epoch - 1) / (max_epochs - 1), 0.0), 1.0)

    def value_at(self, epoch, max_epochs):
        """The value this schedule uses in ``epoch`` of a run of ``max_epochs``."""
        return float(self.schedule(self.progress(epoch, max_epochs)))

    def simulate(self, n_epochs, max_epochs=None):
        """Values for epochs 1..n_epochs (for plots and tests); ``max_epochs`` defaults to n."""
        max_epochs = n_epochs if max_epochs is None else max_epochs
        return np.array([self.value_at(e, max_epochs) for e in range(1, n_epochs + 1)])

    def check(self, net):
        """Fail before training when the net has no hyperparameter called ``name``, or when
        the schedule would set a value no run should use (lr <= 0, momentum >= 1)."""
        if hasattr(net, self.name):
            target = getattr(net, self.name)
            if is_shared(target) or isinstance(target, (int, float, np.number)):
                for epoch, value in enumerate(self.simulate(net.max_epochs), start=1):
                    try:
                        check_hyperparameter(self.name, value)
                    except ValueError as exc:
                        raise ValueError(f"{type(self).__name__}({self.name!r}, start={self.start}"
                                         f", stop={self.stop}) in epoch {epoch}: {exc}") from None
                return
            raise ValueError(f"{type(self).__name__}({self.name!r}): net.{self.name} is "
                             f"{target!r}, not a number or a shared variable")
        known = sorted(k for k in vars(net) if k.startswith("update_") and not k.endswith("_"))
        close = difflib.get_close_matches(self.name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{type(self).__name__}({self.name!r}): the net has no hyperparameter "
                         f"{self.name!r}; it has {', '.join(known)}.{hint}")

    def apply(self, net, epoch):
        """Write the value for ``epoch`` into the net's hyperparameter."""
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
        self.check(net)

    def on_epoch_begin(self, net, **kwargs):
        self.apply(net, len(net.history))

    def __call__(self, nn, train_history):
        """nolearn style: after an epoch, set the value for the next one."""
        self.apply(nn, len(train_history) + 1)


class CosineAdjustVariable(AdjustVariable):
    """Half-cosine from ``start`` to ``stop``: slow at both ends, fast in the middle."""

    def schedule(self, progress):
        return self.stop + (self.start - self.stop) * (1 + math.cos(math.pi * progress)) / 2


class ExponentialAdjustVariable(AdjustVariable):
    """Geometric interpolation: the same factor every epoch (needs start and stop > 0)."""

    def schedule(self, progress):
        if self.start <= 0 or self.stop <= 0:
            raise ValueError("ExponentialAdjustVariable needs start > 0 and stop > 0")
        return self.start * (self.stop / self.start) ** progress


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; keep the best weights.

    The best weights are restored when it fires and also when training ends by
    ``max_epochs`` (the old recipe's version only did the former).
    """

    def __init__(self, patience=100, monitor="valid_loss", verbose=True):
        self.patience = patience
        self.monitor = monitor
        self.verbose = verbose

    def initialize(self):
        self.best_loss_ = math.inf
        self.best_epoch_ = 0
        self.best_weights_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        if int(self.patience) < 1:
            raise ValueError(f"EarlyStopping patience must be >= 1, got {self.patience}")
        if not hasattr(self, "best_loss_"):
            self.initialize()

    def __call__(self, nn, train_history):
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
        self(net, net.history)

    def restore(self, net):
        """Load the best weights seen so far into the net."""
        if self.best_weights_ is not None:
            net.module_.load_state_dict(self.best_weights_)

    def on_train_end(self, net, **kwargs):
        self.restore(net)

    def state_dict(self):
        """What a checkpoint keeps, so a resumed run stops where the original would."""
        return {"best_loss": float(self.best_loss_), "best_epoch": int(self.best_epoch_),
                "best_weights": dict(self.best_weights_ or {})}

    def load_state_dict(self, state):
        self.best_loss_ = float(state["best_loss"])
        self.best_epoch_ = int(state["best_epoch"])
        self.best_weights_ = dict(state["best_weights"]) or None


class NolearnHandlers(Callback):
    """Run nolearn-style ``on_epoch_finished`` / ``on_training_finished`` callables.

    Handlers that are skorch callbacks also get their ``on_train_begin``/``on_epoch_begin``
    hooks, so a built-in AdjustVariable uses ``start`` in epoch 1 from either list.
    """

    def __init__(self, on_epoch_finished=(), on_training_finished=()):
        self.on_epoch_finished = on_epoch_finished
        self.on_training_finished = on_training_finished

    def callback_objects(self):
        """The handlers that are skorch callbacks, each once, in order."""
        seen = []
        for h in list(self.on_epoch_finished or ()) + list(self.on_training_finished or ()):
            if isinstance(h, Callback) and all(h is not s for s in seen):
                seen.append(h)
        return seen

    def initialize(self):
        for cb in self.callback_objects():
            cb.initialize()
        return self

    def on_train_begin(self, net, **kwargs):
        for cb in self.callback_objects():
            cb.on_train_begin(net, **kwargs)

    def on_epoch_begin(self, net, **kwargs):
        for cb in self.on_epoch_finished or ():
            if isinstance(cb, Callback):
                cb.on_epoch_begin(net, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        for handler in self.on_epoch_finished or ():
            handler(net, net.history)

    def on_train_end(self, net, **kwargs):
        for cb in self.callback_objects():
            if cb not in (self.on_training_finished or ()):
                cb.on_train_end(net, **kwargs)
        for handler in self.on_training_finished or ():
            handler(net, net.history)


class EpochSummary(Callback):
    """Store the epoch's losses as Python floats and ``train_val`` = train / valid loss."""

    def on_epoch_end(self, net, **kwargs):
        entry = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            if key in entry:
                net.history.record(key, float(entry[key]))
        if "train_loss" in entry and entry.get("valid_loss"):
            net.history.record("train_val", entry["train_loss"] / entry["valid_loss"])


class EpochTable(PrintLog):
    """The recipe's epoch table: epoch | train loss | valid loss | train/val | dur | lr | momentum.

    Best values are coloured on a terminal and starred elsewhere. With ``verbose`` the
    layer summary and parameter count come first.
    """

    ORDER = ("epoch", "train_loss", "valid_loss", "train_val", "dur",
             "learning_rate", "momentum")

    def __init__(self, keys_ignored=("train_batch_count", "valid_batch_count"), sink=print,
                 tablefmt="simple", floatfmt=".6f", stralign="right"):
        super().__init__(keys_ignored=list(keys_ignored), sink=sink, tablefmt=tablefmt,
                         floatfmt=floatfmt, stralign=stralign)

    def _sorted_keys(self, keys):
        rest = [k for k in super()._sorted_keys(keys) if k not in self.ORDER]
        return [k for k in self.ORDER if k in keys and k not in self.keys_ignored_] + rest

    def format_row(self, row, key, color):
        if key == "epoch":
            return str(row[key])
        if key == "dur":
            return f"{row[key]:6.2f}s"  # fixed width: rows print one at a time
        colour = color if self.sink is print and sys.stdout.isatty() else ""
        text = super().format_row(row, key, colour)
        if not colour and row.get(key + "_best"):
            text = text.replace("\x1b[0m", "") + "*"
        return text

    def on_train_begin(self, net, **kwargs):
        if net.verbose and not len(net.history):
            self.sink(net.layer_summary())
