"""NeuralNet: skorch's training loop with the old nolearn recipe's vocabulary.

skorch provides the loop, the history, parameter routing and scikit-learn compatibility.
This subclass adds what the recipe needs: layer lists with ``<layer>_<param>`` keywords,
``update_*`` hyperparameters (floats or shared variables) read into the optimizer at the
start of every epoch, ``on_epoch_finished`` handlers, ``eval_size`` splits, and a fast data
path: the data are moved to the device once per fit and batches are slices of it.

The other jobs live in modules of their own, which the class calls: input checks
(``_inputs``), flip test-time augmentation and the keypoint layout of the outputs (``_tta``),
random-state bookkeeping (``_random_state``), divergence checks (``_divergence``), pixel
errors measured each epoch (``_pixels``) and the notebook displays (``_display``). The full
reference is docs/neuralnet.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from skorch import NeuralNet as _SkorchNet
from skorch.callbacks import EpochTimer
from skorch.utils import to_tensor

from . import _inputs, _memory, _random_state, _tta
from ._display import Display
from ._divergence import DivergenceError, check_finite
from ._hyperparameters import Hyperparameters
from ._inputs import InputScaleWarning
from .lr_find import LRFinder
from .pixels import PixelError
from ._random_state import RandomStateBookkeeping
from ._pickling import Pickling
from ._scoring import labelled_r2
from ._split import DataSplit, DeviceData
from .callbacks import EpochSummary, EpochTable, LabelledCount, LabelledScoring, NolearnHandlers
from .iterators import BatchIterator, route_iterator_params
from .layers import build_stack, split_layer_params
from .losses import MaskedMSELoss, get_criterion
from .precision import autocast, resolve_precision
from .shared import is_shared
from .updates import (build_optimizer, hyperparameter_slots,
                      nesterov_momentum, set_hyperparameter)

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator, Sequence

    from skorch.callbacks import Callback
    from skorch.history import History

    from .layers import LayerSpec
    from .layout import KeypointLayout
    from .shared import SharedVariable

# ``is_shared`` is re-exported: code written against earlier versions imported it from here.
__all__ = ["DeviceData", "DivergenceError", "InputScaleWarning", "NeuralNet", "is_shared"]

# skorch knobs this class replaces with the recipe's own; using them is a mistake worth naming.
_REPLACED = {
    "lr": "update_learning_rate", "optimizer": "update", "batch_size":
    "batch_iterator_train=BatchIterator(batch_size) (and batch_iterator_test)",
    "iterator_train": "batch_iterator_train", "iterator_valid": "batch_iterator_test",
    "train_split": "eval_size", "dataset": "arrays or tensors passed to fit",
}


class NeuralNet(Hyperparameters, Display, Pickling, RandomStateBookkeeping, DataSplit, LRFinder,
                _SkorchNet):
    """A scikit-learn estimator for keypoint regression, configured like nolearn's NeuralNet.

    The network is a ``layers=[('input', InputLayer), ...]`` list configured by
    ``<layer>_<param>`` keywords (``conv1_num_filters=32``), or ``module=`` a torch module.
    ``update_<name>`` values (floats or shared variables) are read into the optimizer every
    epoch; ``history_`` records ``valid_rmse_px`` each epoch. The full reference (keywords,
    attributes, what ``fit`` refuses) is docs/neuralnet.md.

    Parameters
    ----------
    layers : list of (str, layer) tuples, optional
        The network as ``(name, layer)`` pairs; give ``layers`` or ``module``, not both.
    module : torch.nn.Module class or instance, optional
        The network, as in skorch (``module__<arg>`` keywords for a class).
    criterion : torch.nn.Module class or instance, or str, optional
        The loss: None is masked MSE (NaN targets left out); ``'mse'``, ``'l1'``, ``'wing'``.
    update : callable or type of torch.optim.Optimizer, default nesterov_momentum
        The update rule, e.g. one of :mod:`facekeypoints.updates`.
    update_learning_rate : float or shared variable, default 0.01
        The learning rate; a shared variable lets a callback change it between epochs.
    update_momentum : float or shared variable, optional
        The momentum, for rules that take one; None leaves the rule's default.
    max_epochs : int, default 100
        The number of epochs ``fit`` trains for.
    batch_iterator_train : BatchIterator, optional
        Cuts (and augments) the training data; None means ``BatchIterator(128)``.
    batch_iterator_test : BatchIterator, optional
        Cuts validation and prediction data; None means ``BatchIterator(128)``.
    eval_size : float, default 0.2
        The fraction held out for validation (the first rows, see :meth:`validation_size`).
    regression : bool, default True
        True for keypoint regression; False for classification (class index targets).
    on_epoch_finished : list of callable, optional
        nolearn handlers ``f(nn, train_history)`` after every epoch; ``StopIteration`` stops.
    on_training_finished : list of callable, optional
        Handlers ``f(nn, train_history)`` called once when training ends.
    callbacks : list of skorch callbacks or (name, callback) tuples, optional
        Extra skorch callbacks, run after the default ones.
    verbose : int, default 0
        1 or more prints the layer summary and the epoch table.
    device : str or torch.device, default 'auto'
        ``'auto'`` is CUDA when available; the resolved device is ``device_``.
    random_state : int, optional
        Seeds weights, dropout, shuffling and flips without touching torch's generator.
    warm_start : bool, default False
        If True, ``fit`` continues from the current weights.
    precision : {'32', 'bf16', 'auto'}, default '32'
        Forward-pass precision; the resolved value is ``precision_``.
    tta : bool, default False
        Whether :meth:`predict` uses flip test-time augmentation when not told.
    layout : KeypointLayout, optional
        What the outputs are (see :meth:`keypoint_layout`); None: Kaggle's 30 columns, or
        those ``columns_`` names.
    **kwargs
        ``<layer>_<param>``, ``update_<name>`` and skorch's remaining keywords.

    Examples
    --------
    >>> import numpy as np
    >>> import facekeypoints as fk
    >>> from facekeypoints.layers import DenseLayer, InputLayer
    >>> net = fk.NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
    ...                    input_shape=(None, 16), output_num_units=2, max_epochs=2,
    ...                    random_state=0, device='cpu')
    >>> X = np.random.default_rng(0).random((20, 16), dtype=np.float32)
    >>> net.fit(X, X[:, :2] - 0.5).predict(X).shape
    (20, 2)
    >>> sorted(k for k in net.history[-1] if k.endswith('_px'))
    ['train_rmse_px', 'valid_rmse_px']
    """

    def __init__(
        self,
        layers: Sequence[tuple[str, str | type[LayerSpec] | LayerSpec]] | None = None,
        module: type[torch.nn.Module] | torch.nn.Module | None = None,
        criterion: type[torch.nn.Module] | torch.nn.Module | str | None = None,
        update: Callable[..., torch.optim.Optimizer] | type[torch.optim.Optimizer]
        = nesterov_momentum,
        update_learning_rate: float | SharedVariable | Any = 0.01,
        update_momentum: float | SharedVariable | Any | None = None,
        max_epochs: int = 100,
        batch_iterator_train: BatchIterator | None = None,
        batch_iterator_test: BatchIterator | None = None,
        eval_size: float | None = 0.2,
        regression: bool = True,
        on_epoch_finished: Sequence[Callable[..., Any]] | None = None,
        on_training_finished: Sequence[Callable[..., Any]] | None = None,
        callbacks: Sequence[Callback | tuple[str, Callback]] | None = None,
        verbose: int = 0,
        device: str | torch.device = "auto",
        random_state: int | None = None,
        warm_start: bool = False,
        precision: str = "32",
        tta: bool = False,
        layout: KeypointLayout | None = None,
        **kwargs: Any,
    ) -> None:
        replaced = sorted(set(kwargs) & set(_REPLACED))
        if replaced:
            raise TypeError("; ".join(f"{k}= is skorch's name, here use {_REPLACED[k]}"
                                      for k in replaced))
        # The recipe's own keywords (update_*, <layer>_<param>) are set here; skorch validates
        # only the rest, so that a typo still gets skorch's "unexpected argument" message.
        names = [name for name, _ in (layers or [])]
        own = {k: kwargs.pop(k) for k in list(kwargs)
               if k.startswith("update_") or any(k.startswith(n + "_") for n in names)}
        super().__init__(module=module, criterion=criterion, max_epochs=max_epochs,
                         callbacks=callbacks, verbose=verbose, device=device,
                         warm_start=warm_start, **kwargs)
        # skorch's knobs that the recipe replaces (lr, optimizer, batch_size, ...) are not
        # parameters of this class: drop them so get_params/clone show the recipe's names only.
        for name in _REPLACED:
            vars(self).pop(name, None)
        vars(self).update(own)
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
        self.precision = precision
        self.tta = tta
        self.layout = layout

    # ------------------------------------------------------------------ parameters
    def set_params(self, **params: Any) -> NeuralNet:
        """Run skorch's ``set_params``, where ``batch_iterator_train__<name>`` (and ``_test``)
        reach the iterator's own ``set_params``, as scikit-learn routes nested parameters.

        Parameters
        ----------
        **params
            Constructor parameters and routed ones (``callbacks__adjust_lr__stop=1e-3``,
            ``batch_iterator_train__rotate=45``).

        Returns
        -------
        NeuralNet
            ``self``.
        """
        return super().set_params(**route_iterator_params(self, params))

    def layer_params(self) -> dict[str, Any]:
        """Return the per-layer keywords of a ``layers=`` net, as given.

        Returns
        -------
        dict
            ``{'<layer>_<param>': value}``, e.g. ``{'conv1_num_filters': 32}``; empty for
            ``module=`` nets.

        Examples
        --------
        >>> from facekeypoints import NeuralNet
        >>> from facekeypoints.layers import DenseLayer, InputLayer
        >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
        ...                 input_shape=(None, 4), output_num_units=2)
        >>> net.layer_params()
        {'input_shape': (None, 4), 'output_num_units': 2}
        """
        names = [name for name, _ in (self.layers or [])]
        return {k: v for k, v in vars(self).items()
                if not k.endswith("_") and any(k.startswith(n + "_") for n in names)}

    def keypoint_layout(self) -> KeypointLayout | None:
        """Return the keypoint layout of the outputs, or None where it is not known.

        ``layout`` when given; else the Kaggle columns named by ``columns_`` (set by
        :func:`facekeypoints.load_model`); else :data:`facekeypoints.layout.KAGGLE` for 30
        outputs (or a size not known yet). A specialist passes ``layout=KAGGLE.subset(cols)``.

        Returns
        -------
        KeypointLayout or None
            The layout (its ``pixel_scale`` turns targets into pixels), or None.
        """
        return _tta.keypoint_layout(self)

    # skorch's version also returns its private ``_params_to_validate``: get_params (and so
    # clone and the search tools) should name constructor parameters only.
    def _get_param_names(self):
        return [k for k in super()._get_param_names() if not k.startswith("_")]

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
        if self.layout is not None and not hasattr(self.layout, "flip_targets"):
            raise ValueError(f"layout must be a facekeypoints.layout.KeypointLayout (e.g. "
                             f"KAGGLE.subset(columns)), got {self.layout!r}")

    # ------------------------------------------------------------------ initialisation
    def resolve_device(self) -> str:
        """Return the device this net trains on: ``device``, with ``'auto'`` resolved.

        Returns
        -------
        str
            ``'cuda'`` for ``'auto'`` where CUDA is available, else ``'cpu'``; or ``device``.
        """
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def initialize(self) -> NeuralNet:
        """Check the configuration, resolve ``device_`` and ``precision_``, and build everything.

        Unlike skorch's, this leaves ``device`` as given (``'auto'`` stays ``'auto'``)."""
        self._check_configuration()
        self.device_ = self.resolve_device()
        self.precision_ = resolve_precision(self.precision, self.device_)
        self.rng_states_ = None
        return super().initialize()

    # skorch's version moves the module to ``self.device``, which may be 'auto': ours is
    # placed on ``device_`` by initialize_module.
    def _initialize_module(self, reason=None):
        with self._current_init_context("module"):
            self.initialize_module()
            self.module_ = self.torch_compile(self.module_, name="module")
        return self

    # The same for the criterion (placed on ``device_`` by initialize_criterion).
    def _initialize_criterion(self, reason=None):
        with self._current_init_context("criterion"):
            self.initialize_criterion()
            self.criterion_ = self.torch_compile(self.criterion_, name="criterion")
        return self

    def infer(self, x: torch.Tensor | np.ndarray, **fit_params: Any) -> torch.Tensor:
        """Run the module on a batch on ``device_``, under ``precision_`` (outputs float32)."""
        x = to_tensor(x, device=self.device_)
        precision = getattr(self, "precision_", "32")
        if precision == "32":
            return self.module_(x, **fit_params)
        with autocast(precision, self.device_):
            out = self.module_(x, **fit_params)
        return out.float()  # the loss, the history and the predictions stay float32

    def get_loss(self, y_pred: torch.Tensor, y_true: torch.Tensor | np.ndarray,
                 X: Any = None, training: bool = False) -> torch.Tensor:
        """Compute the criterion on a batch, with the targets moved to ``device_``."""
        return self.criterion_(y_pred, to_tensor(y_true, device=self.device_))

    def fit(self, X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor | None = None,
            resume: str | os.PathLike[str] | None = None, **fit_params: Any) -> NeuralNet:
        """Train from scratch, or with ``resume=`` a checkpoint, continue that run exactly.

        Parameters
        ----------
        X : array-like or torch.Tensor
            ``(n, 1, 96, 96)`` images or ``(n, 9216)`` rows scaled to [0, 1] (``X / 255``).
            The first ``validation_size(n)`` rows are held out for validation.
        y : array-like or torch.Tensor
            ``(n, k)`` targets scaled to about [-1, 1] (``(y - 48) / 48``; NaN: unlabelled),
            or ``(n,)`` class indices for classification.
        resume : str or path-like, optional
            A checkpoint written by :class:`facekeypoints.checkpoint.Checkpoint` (or its
            folder): training continues from it, exactly, up to ``max_epochs``.
        **fit_params
            Passed on to skorch's ``fit``.

        Returns
        -------
        NeuralNet
            ``self``, fitted.

        Raises
        ------
        ValueError
            Before training, for data the net cannot train on (docs/neuralnet.md lists them).
        DivergenceError
            If the loss becomes NaN or infinite.
        """
        if resume is None:
            return super().fit(X, y, **fit_params)
        from .checkpoint import restore_checkpoint

        self.initialize()
        restore_checkpoint(self, resume)
        remaining = self.max_epochs - len(self.history)
        if remaining > 0:
            self.partial_fit(X, y, epochs=remaining, **fit_params)
        return self

    def partial_fit(self, X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor | None = None,
                    classes: Any = None, **fit_params: Any) -> NeuralNet:
        """Check ``X`` and ``y`` against the net (as :meth:`fit` does), then train on.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Inputs, as for :meth:`fit`.
        y : array-like or torch.Tensor
            Targets, as for :meth:`fit`.
        classes : object, optional
            Unused (scikit-learn's signature).
        **fit_params
            Passed on to skorch's ``partial_fit`` (e.g. ``epochs=``).

        Returns
        -------
        NeuralNet
            ``self``, trained on.
        """
        if not self.initialized_:
            self.initialize()
        if not isinstance(X, DeviceData):
            _inputs.check_fit_data(self, X, y)
        return super().partial_fit(X, y, classes=classes, **fit_params)


    # ------------------------------------------------------------------ callbacks
    def get_default_callbacks(self) -> list[tuple[str, Callback]]:
        """Return the callbacks every net runs, the recipe's in place of skorch's.

        Returns
        -------
        list of (str, Callback)
            ``epoch_timer``, ``labelled`` (each batch's labelled targets), ``train_loss`` and
            ``valid_loss`` (means weighted by labelled targets), ``pixel_error``
            (``train_rmse_px``, ``valid_rmse_px``), ``train_val`` and ``print_log``.
        """
        return [
            ("epoch_timer", EpochTimer()),
            ("labelled", LabelledCount()),
            ("train_loss", LabelledScoring(name="train_loss", on_train=True)),
            ("valid_loss", LabelledScoring(name="valid_loss")),
            ("pixel_error", PixelError()),
            ("train_val", EpochSummary()),
            ("print_log", EpochTable()),
        ]

    # skorch yields PrintLog last; nolearn handlers must come after the table, so that a
    # handler raising StopIteration still lets the epoch's row print.
    def _yield_callbacks(self):
        for item in self.get_default_callbacks() + list(self.callbacks or []):
            if isinstance(item, (tuple, list)):
                yield item[0], item[1], True
            else:
                cb = item
                yield (cb.__name__ if isinstance(cb, type) else type(cb).__name__), cb, False
        handlers = NolearnHandlers(self.on_epoch_finished or (), self.on_training_finished or ())
        yield "nolearn_handlers", handlers, True

    # ------------------------------------------------------------------ module, loss, update
    def initialize_module(self) -> NeuralNet:
        """Build the module from ``layers`` (or skorch's way) on ``device_``, seeded.

        Nets with convolutions use the channels-last memory format (faster on CPUs)."""
        with _random_state.seeded(self.random_state):
            if self.layers is not None:
                grouped, _ = split_layer_params(self.layers, self.layer_params())
                self.module_ = build_stack(self.layers, grouped)
            else:
                super().initialize_module()
        self.module_ = self.module_.to(self.device_)
        if any(p.dim() == 4 for p in self.module_.parameters()):
            # NHWC convolutions and pooling are several times faster on CPUs.
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize_criterion(self) -> NeuralNet:
        """Build the criterion on ``device_``: by ``regression`` when None (masked MSE or
        cross-entropy), by name for a string (see :func:`facekeypoints.losses.get_criterion`)."""
        criterion = self.criterion
        if criterion is None:
            criterion = MaskedMSELoss if self.regression else torch.nn.CrossEntropyLoss
        elif isinstance(criterion, str):
            criterion = get_criterion(criterion)
        self.criterion_ = self.initialized_instance(criterion, self.get_params_for("criterion"))
        if isinstance(self.criterion_, torch.nn.Module):
            self.criterion_ = self.criterion_.to(self.device_)
        return self

    def initialize_optimizer(self, triggered_directly: bool | None = None) -> NeuralNet:
        """Build the optimizer with ``update`` and the current ``update_*`` values."""
        self.optimizer_ = build_optimizer(self.update, self.module_.parameters(),
                                          self.update_hyperparameters())
        return self


    # ------------------------------------------------------------------ training
    def fit_loop(self, X: np.ndarray | torch.Tensor | DeviceData,
                 y: np.ndarray | torch.Tensor | None = None, epochs: int | None = None,
                 **fit_params: Any) -> NeuralNet:
        """Run skorch's loop under ``random_state``; ``StopIteration`` ends it quietly.

        On Ctrl-C the history keeps the finished epochs only and ``interrupted_`` is True.
        """
        self.interrupted_ = False
        with _memory.keep_large_buffers(), _random_state.seeded(
                self.random_state, offset=2, state=self.rng_state()):
            try:
                super().fit_loop(X, y, epochs=epochs, **fit_params)
            except StopIteration:
                pass  # an on_epoch_finished handler asked to stop (nolearn's protocol)
            except KeyboardInterrupt:  # skorch ends fit quietly: keep finished epochs only
                from .checkpoint import drop_unfinished_epoch

                self.interrupted_ = True
                drop_unfinished_epoch(self.history)
                raise
            finally:
                vars(self).pop("batch_generator_", None)
        return self

    def run_single_epoch(self, iterator: BatchIterator | None, training: bool, prefix: str,
                         step_fn: Callable[..., Any], **fit_params: Any) -> None:
        """Before a training epoch, read the ``update_*`` values into the optimizer (and
        record the learning rate and momentum the epoch uses)."""
        if training:
            for name, value in self.update_hyperparameters().items():
                set_hyperparameter(self.optimizer_, self.update, name, value)
            group = self.optimizer_.param_groups[0]
            for name in ("learning_rate", "momentum"):
                slot = hyperparameter_slots(self.update).get(name)
                if slot and slot[0] in group:
                    value = group[slot[0]] if len(slot) == 1 else group[slot[0]][slot[1]]
                    self.history.record(name, float(value))
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def train_step_single(self, batch: tuple[torch.Tensor, torch.Tensor],
                          **fit_params: Any) -> dict[str, Any]:
        """Take skorch's training step, then raise DivergenceError if the loss is not finite."""
        step = super().train_step_single(batch, **fit_params)
        check_finite(self.history, step["loss"], "training")
        return step

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor],
                        **fit_params: Any) -> dict[str, Any]:
        """Take skorch's validation step, then raise DivergenceError if the loss is not finite."""
        step = super().validation_step(batch, **fit_params)
        check_finite(self.history, step["loss"], "validation")
        return step

    def forward_iter(self, X: Any, training: bool = False,
                     device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
        """Yield skorch's per-batch outputs, keeping large CPU buffers allocated meanwhile."""
        with _memory.keep_large_buffers():
            yield from super().forward_iter(X, training=training, device=device)

    # ------------------------------------------------------------------ results
    @property
    def train_history_(self) -> History:
        """nolearn's name for the history: a list of per-epoch dicts."""
        if getattr(self, "history_", None) is None:
            raise AttributeError("train_history_ exists after fit")
        return self.history_

    def predict(self, X: np.ndarray | torch.Tensor, tta: bool | None = None) -> np.ndarray:
        """Predict keypoints (or, for ``regression=False``, class indices).

        Parameters
        ----------
        X : array-like or torch.Tensor
            A batch as for :meth:`fit`, or one face on its own, ``(9216,)``, ``(96, 96)`` or
            ``(1, 96, 96)`` (a ``module=`` net: ``(9216,)``), taken as a batch of one. Other
            shapes, and no rows, raise a ValueError naming the shapes accepted.
        tta : bool, optional
            Flip test-time augmentation (None: the net's ``tta``): each face's prediction
            averaged with the un-mirrored prediction of its mirror image, by the flip pairs
            of :meth:`keypoint_layout`. Twice the prediction time.

        Returns
        -------
        numpy.ndarray
            ``(n, k)`` float32 predictions, ``(1, k)`` for one face; ``(n,)`` class indices.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from facekeypoints import NeuralNet
        >>> net = NeuralNet(module=torch.nn.Sequential(torch.nn.Flatten(),
        ...                                            torch.nn.Linear(16, 30)),
        ...                 device='cpu', random_state=0).initialize()
        >>> X = np.random.default_rng(0).random((3, 1, 4, 4), dtype=np.float32)
        >>> net.predict(X, tta=True).shape
        (3, 30)
        """
        if not isinstance(X, DeviceData):
            X = _inputs.as_batch(self, X, "predict")
            _inputs.warn_pixel_units(X, regression=False)
        if tta is None:
            tta = bool(getattr(self, "tta", False))
        if tta:
            return _tta.predict_tta(self, X, super().predict)
        y = super().predict(X)
        return y if self.regression else y.argmax(axis=1)

    def score(self, X: np.ndarray | torch.Tensor, y: np.ndarray) -> float:
        """Return R^2 for regression (over the labelled targets), accuracy for classification.

        Each output's R^2 is over the rows where it is labelled (outputs with fewer than two
        labels left out), then averaged; without NaN exactly ``r2_score(y, predict(X))``.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Inputs as for :meth:`predict` (one face on its own is a batch of one).
        y : array-like
            The true targets (NaN where unlabelled); ``(k,)`` for one face.

        Returns
        -------
        float
            The score.
        """
        from sklearn.metrics import accuracy_score

        y_pred = self.predict(X)
        return labelled_r2(y, y_pred) if self.regression else accuracy_score(y, y_pred)
