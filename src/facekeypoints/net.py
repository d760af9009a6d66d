"""NeuralNet: skorch's training loop with the old nolearn recipe's vocabulary.

skorch provides the loop, the history, parameter routing and scikit-learn compatibility.
This subclass adds what the recipe needs: layer lists with ``<layer>_<param>`` keywords,
``update_*`` hyperparameters (floats or shared variables) read into the optimizer at the
start of every epoch, ``on_epoch_finished`` handlers, ``eval_size`` splits, and a fast data
path: the data are moved to the device once per fit and batches are slices of it.
"""
from __future__ import annotations

import contextlib
import inspect
import warnings

import numpy as np
import torch
from skorch import NeuralNet as _SkorchNet
from skorch.callbacks import EpochTimer, PassthroughScoring
from tabulate import tabulate

from . import _memory
from .callbacks import EpochTable, NolearnHandlers, EpochSummary
from .iterators import BatchIterator
from .layers import LayerStack, build_stack, split_layer_params
from .shared import is_shared, read_value
from .updates import (build_optimizer, check_hyperparameter, drop_unavailable_kernels,
                      hyperparameter_slots, nesterov_momentum, set_hyperparameter)

# skorch knobs this class replaces with the recipe's own; using them is a mistake worth naming.
_REPLACED = {
    "lr": "update_learning_rate", "optimizer": "update", "batch_size":
    "batch_iterator_train=BatchIterator(batch_size) (and batch_iterator_test)",
    "iterator_train": "batch_iterator_train", "iterator_valid": "batch_iterator_test",
    "train_split": "eval_size", "dataset": "arrays or tensors passed to fit",
}


class DivergenceError(FloatingPointError):
    """The loss became NaN or infinite; the weights are those from before the bad step."""


class DeviceData:
    """Inputs and targets as tensors on the training device, sliced by the batch iterators."""

    def __init__(self, X, y=None):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)


class NeuralNet(_SkorchNet):
    """A scikit-learn estimator for keypoint regression, configured like nolearn's NeuralNet.

    Either ``layers=[('input', InputLayer), ...]`` with ``<layer>_<param>`` keywords, or
    ``module=`` any ``torch.nn.Module`` class or instance. ``update_learning_rate`` and
    ``update_momentum`` (and any other ``update_<name>``) may be floats or shared variables;
    the value used in an epoch is the one set before it starts.
    """

    def __init__(self, layers=None, module=None, criterion=None, update=nesterov_momentum,
                 update_learning_rate=0.01, update_momentum=None, max_epochs=100,
                 batch_iterator_train=None, batch_iterator_test=None, eval_size=0.2,
                 regression=True, on_epoch_finished=None, on_training_finished=None,
                 callbacks=None, verbose=0, device="auto", random_state=None,
                 warm_start=False, **kwargs):
        replaced = sorted(set(kwargs) & set(_REPLACED))
        if replaced:
            raise TypeError("; ".join(f"{k}= is skorch's name, here use {_REPLACED[k]}"
                                      for k in replaced))
        super().__init__(module=module, criterion=criterion, max_epochs=max_epochs,
                         callbacks=callbacks, verbose=verbose, device=device,
                         warm_start=warm_start, **kwargs)
        for name in _REPLACED:
            vars(self).pop(name, None)
        self.layers = layers
        self.update = update
        self.update_learning_rate = update_learning_rate
        self.update_momentum = update_momentum
        self.batch_iterator_train = batch_iterator_train
        self.batch_iterator_test = batch_iterator_test
        self.eval_size = eval_size
        self.regression = regression
        self.on_epoch_finished = on_epoch_finished
        self.on_training_finished = on_training_finished
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def _layer_names(self):
        return [name for name, _ in (self.layers or [])]

    def _layer_kwargs(self):
        names = self._layer_names()
        return {k: v for k, v in vars(self).items()
                if not k.endswith("_") and any(k.startswith(n + "_") for n in names)}

    def _update_attrs(self):
        """{'learning_rate': 'update_learning_rate', ...} for every update_* attribute."""
        return {k[len("update_"):]: k for k in vars(self)
                if k.startswith("update_") and not k.endswith("_")}

    def _validate_params(self):
        own = {k for k in self._params_to_validate
               if k.startswith("update_") or k in self._layer_kwargs()}
        saved = self._params_to_validate
        self._params_to_validate = saved - own
        try:
            super()._validate_params()
        finally:
            self._params_to_validate = saved

    def _check_configuration(self):
        if self.layers is None and self.module is None:
            raise ValueError("give the net either layers=[('input', InputLayer), ...] "
                             "or module=<a torch.nn.Module class or instance>")
        if self.layers is not None and self.module is not None:
            raise ValueError("give either layers= or module=, not both")
        if not isinstance(self.max_epochs, (int, np.integer)) or self.max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive integer, got {self.max_epochs!r}")
        if self.eval_size is not None and not 0 <= self.eval_size < 1:
            raise ValueError(f"eval_size must be in [0, 1), got {self.eval_size!r}")

    # ------------------------------------------------------------------ initialisation
    def initialize(self):
        self._check_configuration()
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.rng_states_ = None
        return super().initialize()

    def fit(self, X, y=None, resume=None, **fit_params):
        """Train from scratch, or with ``resume=`` a checkpoint, continue that run exactly."""
        if resume is None:
            return super().fit(X, y, **fit_params)
        from .checkpoint import restore_checkpoint

        self.initialize()
        restore_checkpoint(self, resume)
        remaining = self.max_epochs - len(self.history)
        if remaining > 0:
            self.partial_fit(X, y, epochs=remaining, **fit_params)
        return self

    @contextlib.contextmanager
    def _seeded(self, offset=0, state=None):
        """Run a block under ``random_state`` (or a saved generator state) without disturbing
        torch's global generator."""
        if self.random_state is None and state is None:
            yield
            return
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            if state is not None:
                torch.set_rng_state(state["torch"])
                if devices and state.get("cuda") is not None:
                    torch.cuda.set_rng_state(state["cuda"])
            else:
                torch.manual_seed(int(self.random_state) + offset)
            yield

    def rng_state(self):
        """Generator states at the end of the last epoch (dropout and batch order/flips)."""
        return getattr(self, "rng_states_", None)

    def set_rng_state(self, state):
        """Continue from generator states saved by :meth:`rng_state` (used to resume)."""
        self.rng_states_ = state

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                             **kwargs)
        generator = getattr(self, "batch_generator_", None)
        self.rng_states_ = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if str(self.device).startswith("cuda") else None,
            "batches": generator.get_state() if generator is not None else None,
        }

    def get_default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("train_val", EpochSummary()),
            ("print_log", EpochTable()),
        ]

    def _yield_callbacks(self):
        # Defaults (table included) first, then the user's callbacks, then nolearn handlers:
        # the epoch row is printed before a handler may stop training.
        for item in self.get_default_callbacks() + list(self.callbacks or []):
            if isinstance(item, (tuple, list)):
                yield item[0], item[1], True
            else:
                cb = item
                yield (cb.__name__ if isinstance(cb, type) else type(cb).__name__), cb, False
        handlers = NolearnHandlers(self.on_epoch_finished or (), self.on_training_finished or ())
        yield "nolearn_handlers", handlers, True

    def initialize_module(self):
        with self._seeded():
            if self.layers is not None:
                grouped, _ = split_layer_params(self.layers, self._layer_kwargs())
                self.module_ = build_stack(self.layers, grouped)
            else:
                super().initialize_module()
        if any(p.dim() == 4 for p in self.module_.parameters()):
            # NHWC convolutions and pooling are several times faster on CPUs.
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize_criterion(self):
        criterion = self.criterion
        if criterion is None:
            criterion = torch.nn.MSELoss if self.regression else torch.nn.CrossEntropyLoss
        self.criterion_ = self.initialized_instance(criterion, self.get_params_for("criterion"))
        return self

    def _rule_accepts(self):
        update = self.update
        if isinstance(update, type) and issubclass(update, torch.optim.Optimizer):
            names = set(inspect.signature(update.__init__).parameters) - {"self", "params"}
            return names | {"learning_rate"}
        return set(list(inspect.signature(update).parameters)[1:])

    def update_hyperparameters(self):
        """The current ``update_*`` values the update rule takes, as Python floats."""
        accepts = self._rule_accepts()
        values = {}
        for name, attr in self._update_attrs().items():
            raw = getattr(self, attr)
            if raw is None:
                continue
            if name not in accepts:
                if name == "momentum":  # e.g. sgd: nothing to set
                    continue
                raise ValueError(f"{attr} is not a hyperparameter of the update rule "
                                 f"{getattr(self.update, '__name__', self.update)}; it takes "
                                 f"{', '.join('update_' + a for a in sorted(accepts))}")
            values[name] = check_hyperparameter(attr, read_value(raw))
        return values

    def initialize_optimizer(self, triggered_directly=None):
        self.optimizer_ = build_optimizer(self.update, self.module_.parameters(),
                                          self.update_hyperparameters())
        return self

    # ------------------------------------------------------------------ data
    def get_dataset(self, X, y=None):
        if isinstance(X, DeviceData):
            return X
        return DeviceData(self._to_device(X, "X"), None if y is None else self._targets(y, len(X)))

    def _to_device(self, X, what):
        if isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor):
            raise TypeError(f"pass {what} as a numpy array or a tensor, not a torch Dataset")
        array = X if isinstance(X, torch.Tensor) else np.asarray(X)
        if not isinstance(X, torch.Tensor) and not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"{what} must be numeric, got dtype {array.dtype}")
        tensor = torch.as_tensor(array).to(device=self.device, dtype=torch.float32)
        return tensor

    def _targets(self, y, n):
        y = y if isinstance(y, torch.Tensor) else np.asarray(y)
        if len(y) != n:
            raise ValueError(f"X has {n} rows but y has {len(y)}; they must match")
        if not self.regression:
            return torch.as_tensor(np.asarray(y)).long().to(self.device)
        t = self._to_device(y, "y")
        if not torch.isfinite(t).all():
            raise ValueError("y contains NaN or infinite values (missing keypoints?): drop "
                             "incomplete rows first (fk.load does) or narrow them with cols=")
        return t

    def _n_valid(self, n):
        if not self.eval_size:
            return 0
        folds = max(2, int(round(1.0 / self.eval_size)))
        # nolearn: the first of k unshuffled folds is the validation set (KFold sizes).
        return n // folds + (1 if n % folds else 0)

    def get_split_datasets(self, X, y=None, **fit_params):
        if y is None:
            raise ValueError("fit needs targets: net.fit(X, y)")
        data = self.get_dataset(X, y)
        n_valid = self._n_valid(len(data))
        if n_valid == 0:
            return data, None
        if n_valid >= len(data):
            raise ValueError(f"{len(data)} rows are too few for eval_size={self.eval_size}")
        train = DeviceData(data.X[n_valid:], data.y[n_valid:])
        valid = DeviceData(data.X[:n_valid], data.y[:n_valid])
        return train, valid

    def get_iterator(self, dataset, training=False):
        iterator = self.batch_iterator_train if training else self.batch_iterator_test
        if iterator is None:
            iterator = BatchIterator(128)
        if not training:
            return iterator(dataset.X, dataset.y)
        # The training batches' generator (shuffling, flips) lives on the net, so that its
        # state can be checkpointed and a resumed run draws exactly the same flips.
        generator = torch.Generator(device=dataset.X.device)
        saved = (self.rng_state() or {}).get("batches")
        if saved is not None:
            generator.set_state(saved)
        else:
            seed = self.random_state if iterator.random_state is None else iterator.random_state
            if seed is None:
                seed = int(torch.randint(0, 2**62, (1,)).item())
            generator.manual_seed(int(seed) + 1)
        self.batch_generator_ = generator
        return iterator(dataset.X, dataset.y, generator=generator)

    # ------------------------------------------------------------------ training
    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        with _memory.keep_large_buffers(), self._seeded(offset=2, state=self.rng_state()):
            try:
                super().fit_loop(X, y, epochs=epochs, **fit_params)
            except StopIteration:
                pass  # an on_epoch_finished handler asked to stop (nolearn's protocol)
            finally:
                vars(self).pop("batch_generator_", None)
        return self

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            self._apply_hyperparameters()
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def _apply_hyperparameters(self):
        """Read the update_* values into the optimizer and record what this epoch uses."""
        for name, value in self.update_hyperparameters().items():
            set_hyperparameter(self.optimizer_, self.update, name, value)
        group = self.optimizer_.param_groups[0]
        slots = hyperparameter_slots(self.update)
        for name in ("learning_rate", "momentum"):
            slot = slots.get(name)
            if slot and slot[0] in group:
                value = group[slot[0]] if len(slot) == 1 else group[slot[0]][slot[1]]
                self.history.record(name, float(value))

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        self._check_finite(step["loss"], "training")
        return step

    def validation_step(self, batch, **fit_params):
        step = super().validation_step(batch, **fit_params)
        self._check_finite(step["loss"], "validation")
        return step

    def _check_finite(self, loss, phase):
        if torch.isfinite(loss):
            return
        entry = self.history[-1] if len(self.history) else {}
        hyper = ", ".join(f"{k} {entry[k]:g}" for k in ("learning_rate", "momentum") if k in entry)
        raise DivergenceError(
            f"training diverged in epoch {entry.get('epoch', '?')}: the {phase} loss is "
            f"{loss.item()} ({hyper}). The weights are those from before this step; lower "
            "update_learning_rate or check the inputs for NaNs.")

    def forward_iter(self, X, training=False, device="cpu"):
        with _memory.keep_large_buffers():
            yield from super().forward_iter(X, training=training, device=device)

    # ------------------------------------------------------------------ results
    @property
    def train_history_(self):
        """nolearn's name for the history: a list of per-epoch dicts."""
        if getattr(self, "history_", None) is None:
            raise AttributeError("train_history_ exists after fit")
        return self.history_

    def predict(self, X):
        y = super().predict(X)
        return y if self.regression else y.argmax(axis=1)

    def score(self, X, y):
        """R^2 for regression, accuracy for classification (scikit-learn's conventions)."""
        from sklearn.metrics import accuracy_score, r2_score
        y_pred = self.predict(X)
        return r2_score(y, y_pred) if self.regression else accuracy_score(y, y_pred)

    def n_parameters(self):
        """Number of learnable parameters."""
        return sum(p.numel() for p in self.module_.parameters() if p.requires_grad)

    def layer_summary(self):
        """nolearn's opening lines: parameter count and one row per layer with its output size."""
        lines = [f"# Neural Network with {self.n_parameters()} learnable parameters", ""]
        if isinstance(self.module_, LayerStack):
            rows = [(i, name, "x".join(str(s) for s in shape))
                    for i, (name, shape) in enumerate(self.module_.shapes.items())]
            lines += ["## Layer information", "",
                      tabulate(rows, headers=["#", "name", "size"]), ""]
        return "\n".join(lines)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("batch_generator_", None)  # a live torch.Generator; its state is in rng_states_
        return state

    def __setstate__(self, state):
        auto = state.get("device") == "auto"  # an unfitted net: skorch cannot map "auto"
        with warnings.catch_warnings():
            # skorch warns when a CUDA net is loaded where CUDA is missing; we say it plainly.
            warnings.simplefilter("ignore")
            want_cuda = str(state.get("device", "cpu")).startswith("cuda")
            super().__setstate__({**state, "device": "cpu"} if auto else state)
        if auto:
            self.device = "auto"
        elif want_cuda and not torch.cuda.is_available():
            self.device = "cpu"
        if getattr(self, "optimizer_", None) is not None:
            drop_unavailable_kernels(self.optimizer_)


__all__ = ["NeuralNet", "DivergenceError", "is_shared"]
