"""NeuralNet: skorch's training loop with the old nolearn recipe's vocabulary.

skorch provides the loop, the history, parameter routing and scikit-learn compatibility.
This subclass adds what the recipe needs: layer lists with ``<layer>_<param>`` keywords,
``update_*`` hyperparameters (floats or shared variables) read into the optimizer at the
start of every epoch, ``on_epoch_finished`` handlers, ``eval_size`` splits, and a fast data
path: the data are moved to the device once per fit and batches are slices of it.

A NaN regression target means "not labelled": the default criterion
(:class:`facekeypoints.losses.MaskedMSELoss`) leaves it out, and so do the epoch losses,
``score`` and the validation loss. ``predict(X, tta=True)`` averages each face's prediction
with the un-mirrored prediction of its mirror image (flip test-time augmentation).
"""
from __future__ import annotations

import contextlib
import inspect
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from skorch import NeuralNet as _SkorchNet
from skorch.callbacks import EpochTimer, PassthroughScoring
from skorch.utils import to_tensor
from tabulate import tabulate

from . import _memory
from .callbacks import EpochTable, NolearnHandlers, EpochSummary
from .data import FLIP_INDICES, KEYPOINT_COLUMNS
from .iterators import BatchIterator
from .layers import LayerStack, build_stack, split_layer_params
from .losses import MaskedMSELoss, get_criterion, ignores_nan, is_mse
from .precision import autocast, resolve_precision
from .shared import is_shared, read_value
from .updates import (build_optimizer, check_hyperparameter, drop_unavailable_kernels,
                      hyperparameter_slots, nesterov_momentum, set_hyperparameter)

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator, Sequence

    from skorch.callbacks import Callback
    from skorch.history import History

    from .layers import LayerSpec
    from .shared import SharedVariable

# ``is_shared`` is re-exported: code written against earlier versions imported it from here.
__all__ = ["DeviceData", "DivergenceError", "NeuralNet", "is_shared"]

# skorch knobs this class replaces with the recipe's own; using them is a mistake worth naming.
_REPLACED = {
    "lr": "update_learning_rate", "optimizer": "update", "batch_size":
    "batch_iterator_train=BatchIterator(batch_size) (and batch_iterator_test)",
    "iterator_train": "batch_iterator_train", "iterator_valid": "batch_iterator_test",
    "train_split": "eval_size", "dataset": "arrays or tensors passed to fit",
}


class DivergenceError(FloatingPointError):
    """Raised when the loss becomes NaN or infinite during ``fit``.

    It is raised before the optimizer applies the bad step, so the weights are those from
    before it. The message names the epoch, the phase (training or validation) and the
    learning rate and momentum in use. A subclass of ``FloatingPointError``.
    """


def _refuse_nonfinite(data, what, fix, chunk=2048):
    """Raise ValueError naming how many rows of ``data`` hold NaN or infinite values."""
    n = len(data)
    if isinstance(data, torch.Tensor) and data.device.type == "cpu" and data.dtype in (
            torch.float16, torch.float32, torch.float64):
        data = data.detach().numpy()        # no copy; numpy's chunked scan is faster here
    if isinstance(data, torch.Tensor):
        if not (data.is_floating_point() or data.is_complex()):
            return
        bad = (~torch.isfinite(data.reshape(n, -1)).all(dim=1)).cpu().numpy()
    else:
        if not np.issubdtype(data.dtype, np.inexact):
            return
        # In chunks: a boolean copy of a whole (7049, 9216) array would be 65 MB.
        bad = np.concatenate([~np.isfinite(data[i:i + chunk].reshape(
            len(data[i:i + chunk]), -1)).all(axis=1) for i in range(0, n, chunk)])
    rows = np.flatnonzero(bad)
    if len(rows):
        raise ValueError(f"{what} contains NaN or infinite values in {len(rows)} "
                         f"row{'s' if len(rows) != 1 else ''} (first: row {rows[0]}); {fix}")


#: Rows per chunk of ``predict(tta=True)``: a mirrored copy of this many faces at a time.
_TTA_CHUNK = 2048


def _mirror_images(X):
    """Faces reversed along their width: (n, c, h, w), (n, h, w) or flat square (n, side**2)
    rows; a new contiguous array or tensor."""
    shape = tuple(X.shape)
    if len(shape) == 2:
        side = int(round(shape[1] ** 0.5))
        if side * side != shape[1]:
            raise ValueError(f"predict(tta=True) mirrors images, but rows of {shape[1]} values "
                             "are not square images; pass (n, 1, 96, 96) or (n, 9216) faces")
        X = X.reshape(shape[0], side, side)
    elif len(shape) < 2:
        raise ValueError(f"predict(tta=True) mirrors images; X of shape {shape} holds none")
    if isinstance(X, torch.Tensor):
        return X.flip(-1).reshape(shape)
    return np.ascontiguousarray(X[..., ::-1]).reshape(shape)


class _LabelledScoring(PassthroughScoring):
    """skorch's epoch mean of the batch losses, each batch weighted by its labelled targets
    (``<train|valid>_labelled``, which :meth:`NeuralNet.on_batch_end` records; the batch size
    when every target is labelled, so that complete data average exactly as before)."""

    def get_avg_score(self, history):
        key = ("train" if self.on_train else "valid") + "_labelled"
        batches = [b for b in history[-1, "batches"] if self.name in b]
        if not batches or not all(key in b for b in batches):
            return super().get_avg_score(history)
        weights = [b[key] for b in batches]
        if not sum(weights):
            return float("nan")     # no labelled target in the whole epoch
        return np.average([b[self.name] for b in batches], weights=weights)


class DeviceData:
    """Inputs and targets as tensors on the training device, sliced by the batch iterators.

    What :meth:`NeuralNet.get_dataset` returns in place of skorch's ``Dataset``: the data
    are moved to the device once per fit, and each batch is a slice of these tensors.

    Parameters
    ----------
    X : torch.Tensor
        The inputs, float32, on the net's device.
    y : torch.Tensor, optional
        The targets, on the same device; None for prediction.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.net import DeviceData
    >>> data = DeviceData(torch.zeros(5, 4), torch.zeros(5, 2))
    >>> len(data), tuple(data.y.shape)
    (5, (5, 2))
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor | None = None) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)


class NeuralNet(_SkorchNet):
    """A scikit-learn estimator for keypoint regression, configured like nolearn's NeuralNet.

    skorch's ``NeuralNet`` runs the training loop; this subclass speaks the old recipe's
    vocabulary. The network is either a ``layers=[('input', InputLayer), ...]`` list whose
    layers are configured by ``<layer>_<param>`` keywords, or ``module=`` any
    ``torch.nn.Module`` class or instance, as in skorch. ``update_learning_rate`` and
    ``update_momentum`` (and any other ``update_<name>`` the update rule takes) may be floats
    or shared variables (anything with ``get_value``/``set_value``, such as
    :func:`facekeypoints.shared`): they are read into the optimizer at the start of every
    epoch, so a callback that calls ``set_value`` after epoch k changes epoch k+1.

    In addition to the parameters listed below, keywords with these shapes go through
    ``**kwargs``:

    - ``<layer>_<param>``, for a layer named in ``layers``: that layer's parameter, e.g.
      ``conv1_num_filters=32``, ``conv1_filter_size=(3, 3)``, ``pool1_pool_size=(2, 2)``,
      ``hidden4_num_units=500``, ``dropout1_p=0.1``, ``output_nonlinearity=None``, and
      ``input_shape=(None, 1, 96, 96)`` for the input layer. An unknown one is named in the
      error ``initialize`` raises.
    - ``update_<name>``: a hyperparameter of ``update`` other than the learning rate and
      momentum, e.g. ``update_beta2=0.999`` for :func:`facekeypoints.updates.adam`; a float
      or a shared variable, read each epoch like ``update_learning_rate``.
    - skorch's own keywords: ``predict_nonlinearity``, ``compile``, ``use_caching``,
      ``torch_load_kwargs``, and double-underscore routing such as ``module__<arg>`` (the
      ``module=`` class's constructor arguments), ``criterion__<arg>`` and
      ``callbacks__<name>__<param>``.

    skorch's ``lr``, ``optimizer``, ``batch_size``, ``iterator_train``, ``iterator_valid``,
    ``train_split`` and ``dataset`` are replaced by the recipe's names and raise a TypeError
    naming the replacement.

    Parameters
    ----------
    layers : list of (str, layer) tuples, optional
        The network as ``(name, layer)`` pairs, e.g. ``[('input', InputLayer),
        ('conv1', Conv2DLayer), ('pool1', MaxPool2DLayer), ('hidden4', DenseLayer),
        ('output', DenseLayer)]``. A layer is a class from :mod:`facekeypoints.layers`, an
        instance of one (with its parameters), or its name. Give either ``layers`` or
        ``module``, not both.
    module : torch.nn.Module class or instance, optional
        The network, as in skorch; a class is instantiated with the ``module__<arg>``
        keywords.
    criterion : torch.nn.Module class or instance, or str, optional
        The loss. None means :class:`facekeypoints.losses.MaskedMSELoss` for regression (the
        mean squared error over the labelled targets: NaN targets are left out; with none it
        equals ``torch.nn.MSELoss`` bit for bit) and ``torch.nn.CrossEntropyLoss``
        otherwise. A name picks one of :mod:`facekeypoints.losses`: ``'mse'``, ``'l1'`` or
        ``'wing'`` (their parameters as ``criterion__width=...``). Only criteria that ignore
        NaN (``ignores_nan``) accept targets with NaN.
    update : callable or type of torch.optim.Optimizer, default nesterov_momentum
        The update rule: one of :mod:`facekeypoints.updates` (``nesterov_momentum``,
        ``momentum``, ``sgd``, ``adam``), a function ``rule(params, learning_rate=..., **hyper)``
        returning a torch optimizer, or a torch optimizer class (``learning_rate`` is passed
        as its ``lr``).
    update_learning_rate : float or shared variable, default 0.01
        The learning rate; a shared variable lets a callback change it between epochs.
    update_momentum : float or shared variable, optional
        The momentum, for rules that take one; None leaves the rule's default (0.9 for
        ``nesterov_momentum``). Ignored by rules without momentum, such as ``sgd``.
    max_epochs : int, default 100
        The number of epochs ``fit`` trains for.
    batch_iterator_train : BatchIterator, optional
        Cuts the training data into batches (and augments them, e.g.
        :class:`facekeypoints.FlipBatchIterator`). None means ``BatchIterator(128)``. Its
        shuffling and flips draw from a generator seeded from its ``random_state`` or else the
        net's.
    batch_iterator_test : BatchIterator, optional
        Cuts validation and prediction data into batches. None means ``BatchIterator(128)``.
    eval_size : float, default 0.2
        The fraction held out for validation, as nolearn: the first of
        ``round(1 / eval_size)`` unshuffled folds (see :meth:`validation_size`). 0 or None
        trains on all rows and records no ``valid_loss``.
    regression : bool, default True
        True for regression (float targets, NaN for an unlabelled one; masked MSE loss).
        False for classification: integer class targets, cross-entropy loss, and
        :meth:`predict` returns class indices.
    on_epoch_finished : list of callable, optional
        nolearn-style handlers ``f(nn, train_history)`` called after every epoch, after the
        epoch's table row is printed; ``train_history`` is the list of per-epoch dicts.
        Raising ``StopIteration`` ends training cleanly. skorch callbacks (such as
        :class:`facekeypoints.AdjustVariable`) also get their other hooks.
    on_training_finished : list of callable, optional
        Handlers ``f(nn, train_history)`` called once when training ends.
    callbacks : list of skorch callbacks or (name, callback) tuples, optional
        Extra skorch callbacks, run after the default ones (timer, losses, epoch table) and
        before the ``on_epoch_finished`` handlers.
    verbose : int, default 0
        1 or more prints the layer summary, then one table row per epoch: epoch, train loss,
        valid loss, train/val ratio, duration, and the learning rate and momentum when they
        are scheduled. 0 prints nothing.
    device : str or torch.device, default 'auto'
        Where the net trains and predicts: ``'auto'`` is CUDA when available, else the CPU.
        The resolved device is ``device_``; ``device`` itself stays as given.
    precision : {'32', 'bf16', 'auto'}, default '32'
        Precision of the forward pass: float32, or bfloat16 mixed precision (the forward
        pass under ``torch.autocast``, outputs cast back to float32; weights, optimizer state,
        loss and history stay float32). ``'auto'`` is bf16 where the device runs it natively
        (see :mod:`facekeypoints.precision`). The resolved value is ``precision_``.
    tta : bool, default False
        What :meth:`predict` does when not told: with True, flip test-time augmentation
        (each face's prediction averaged with the un-mirrored prediction of its mirror
        image). Training and the validation loss never use it.
    random_state : int, optional
        Seeds weight initialisation, dropout, and batch shuffling and flips, without
        touching torch's global generator; the same seed on the same machine gives the same
        run. None draws from torch's global generator.
    warm_start : bool, default False
        If True, ``fit`` continues from the current weights instead of re-initializing.
    **kwargs
        ``<layer>_<param>`` and ``update_<name>`` keywords, and skorch's remaining keywords,
        as described above.

    Attributes
    ----------
    device_ : str
        The device the net was initialized on: ``device`` with ``'auto'`` resolved (see
        :meth:`resolve_device`).
    precision_ : str
        ``'32'`` or ``'bf16'``: ``precision`` with ``'auto'`` resolved for ``device_``.
    module_ : torch.nn.Module
        The initialized network; a ``LayerStack`` for ``layers=`` nets.
    optimizer_ : torch.optim.Optimizer
        The optimizer built by ``update``.
    criterion_ : torch.nn.Module
        The initialized loss.
    history_ : skorch.history.History
        One dict per finished epoch: ``epoch`` (1-based), ``train_loss``, ``valid_loss``,
        ``train_val``, ``dur``, ``learning_rate``, ``momentum`` and per-batch entries (for
        regression with ``train_labelled``/``valid_labelled``: the batch's labelled targets
        divided by the targets per row, its weight in the epoch's mean loss).
        Also reachable as ``train_history_`` (nolearn's name).
    rng_states_ : dict or None
        The random generator states at the end of the last epoch (torch, CUDA and the batch
        generator), saved in checkpoints so that a resumed run draws the same numbers; None
        before the first epoch.
    columns_ : list of str or None
        The keypoint column names the net predicts, where known: set by
        :func:`facekeypoints.load_model` and the specialists, and recorded in model files;
        ``predict(X, tta=True)`` mirrors by them (without them, 30 outputs are taken to be
        ``KEYPOINT_COLUMNS``).

    See Also
    --------
    facekeypoints.presets : The recipe's configured nets, ``net1`` to ``net7``.
    facekeypoints.load_model : Rebuild a net saved with ``save_model``.

    Examples
    --------
    A tiny convolutional net with the recipe's keywords, whose learning rate falls linearly
    from 0.01 to 0.001:

    >>> import numpy as np
    >>> import facekeypoints as fk
    >>> from facekeypoints.layers import Conv2DLayer, DenseLayer, InputLayer
    >>> net = fk.NeuralNet(
    ...     layers=[('input', InputLayer), ('conv1', Conv2DLayer), ('hidden', DenseLayer),
    ...             ('output', DenseLayer)],
    ...     input_shape=(None, 1, 8, 8), conv1_num_filters=2, conv1_filter_size=(3, 3),
    ...     hidden_num_units=8, output_num_units=2, output_nonlinearity=None,
    ...     update_learning_rate=fk.shared(0.01), update_momentum=0.9,
    ...     on_epoch_finished=[fk.AdjustVariable('update_learning_rate', start=0.01,
    ...                                          stop=0.001)],
    ...     max_epochs=3, random_state=0)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((20, 1, 8, 8), dtype=np.float32)
    >>> y = rng.uniform(-1, 1, (20, 2)).astype(np.float32)
    >>> net.fit(X, y).predict(X).shape
    (20, 2)
    >>> [row['epoch'] for row in net.train_history_]
    [1, 2, 3]
    >>> [round(row['learning_rate'], 4) for row in net.train_history_]
    [0.01, 0.0055, 0.001]
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

    # ------------------------------------------------------------------ parameters
    def layer_params(self) -> dict[str, Any]:
        """Return the per-layer keywords of a ``layers=`` net, as given.

        Returns
        -------
        dict
            ``{'<layer>_<param>': value}``, e.g. ``{'conv1_num_filters': 32,
            'input_shape': (None, 1, 96, 96)}``; empty for ``module=`` nets.

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

    def hyperparameter_attributes(self) -> dict[str, str]:
        """Map the update rule's hyperparameter names to the attributes that hold them.

        Returns
        -------
        dict
            ``{'learning_rate': 'update_learning_rate', 'momentum': 'update_momentum', ...}``
            for every ``update_<name>`` attribute of the net.

        Examples
        --------
        >>> import torch
        >>> from facekeypoints import NeuralNet
        >>> net = NeuralNet(module=torch.nn.Identity, update_beta2=0.99)
        >>> attributes = net.hyperparameter_attributes()
        >>> sorted(attributes), attributes['beta2']
        (['beta2', 'learning_rate', 'momentum'], 'update_beta2')
        """
        return {k[len("update_"):]: k for k in vars(self)
                if k.startswith("update_") and not k.endswith("_")}

    def hyperparameter_values(self) -> dict[str, float]:
        """Return the current value of every set ``update_*`` hyperparameter, as a float.

        Shared variables are read with ``get_value``; attributes set to None are left out.
        This is the snapshot that model files and checkpoints store.

        Returns
        -------
        dict
            ``{'update_learning_rate': 0.03, 'update_momentum': 0.9}`` and so on.

        Examples
        --------
        >>> import torch
        >>> import facekeypoints as fk
        >>> net = fk.NeuralNet(module=torch.nn.Identity, update_learning_rate=fk.shared(0.5))
        >>> net.hyperparameter_values()
        {'update_learning_rate': 0.5}
        """
        return {attr: read_value(getattr(self, attr))
                for attr in self.hyperparameter_attributes().values()
                if getattr(self, attr) is not None}

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
    def resolve_device(self) -> str:
        """Return the device this net trains on: ``device``, with ``'auto'`` resolved.

        Returns
        -------
        str
            ``'cuda'`` for ``device='auto'`` where CUDA is available, ``'cpu'`` for 'auto'
            elsewhere, else ``device`` itself.

        Examples
        --------
        >>> import torch
        >>> from facekeypoints import NeuralNet
        >>> NeuralNet(module=torch.nn.Identity, device='cpu').resolve_device()
        'cpu'
        """
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def initialize(self) -> NeuralNet:
        """Check the configuration, resolve the device into ``device_`` and build everything.

        Unlike skorch's, this leaves ``device`` as given (``'auto'`` stays ``'auto'``) and
        places the module, criterion and data on ``device_``.

        Returns
        -------
        NeuralNet
            ``self``, initialized (skorch's ``initialize``).
        """
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
        """Run the module on a batch, moved to the net's resolved device (``device_``).

        Parameters
        ----------
        x : torch.Tensor or array-like
            A batch of inputs.
        **fit_params
            Passed to the module's ``forward``.

        Returns
        -------
        torch.Tensor
            The module's output.
        """
        x = to_tensor(x, device=self.device_)
        precision = getattr(self, "precision_", "32")
        if precision == "32":
            return self.module_(x, **fit_params)
        with autocast(precision, self.device_):
            out = self.module_(x, **fit_params)
        return out.float()  # the loss, the history and the predictions stay float32

    def get_loss(self, y_pred: torch.Tensor, y_true: torch.Tensor | np.ndarray,
                 X: Any = None, training: bool = False) -> torch.Tensor:
        """Compute the criterion on a batch, with the targets moved to ``device_``.

        Parameters
        ----------
        y_pred : torch.Tensor
            The module's output.
        y_true : torch.Tensor or array-like
            The targets.
        X : object, optional
            The inputs (unused; skorch's signature).
        training : bool, default False
            Whether the batch is a training batch (unused; skorch's signature).

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        return self.criterion_(y_pred, to_tensor(y_true, device=self.device_))

    def fit(self, X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor | None = None,
            resume: str | os.PathLike[str] | None = None, **fit_params: Any) -> NeuralNet:
        """Train from scratch, or with ``resume=`` a checkpoint, continue that run exactly.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Inputs, e.g. ``(n, 1, 96, 96)`` images or ``(n, 9216)`` rows (reshaped to the
            input layer's shape); numeric, moved to ``device_`` as float32 once per fit.
            The first ``validation_size(n)`` rows are held out for validation.
        y : array-like or torch.Tensor
            Targets, ``(n, k)`` floats for regression (NaN where a keypoint is not labelled,
            e.g. from ``fk.load(dropna=False)``; no infinities) or ``(n,)`` class indices for
            classification. Required.
        resume : str or path-like, optional
            A checkpoint file written by :class:`facekeypoints.checkpoint.Checkpoint` (or a
            folder holding ``checkpoint.pt``). The net is initialized, the checkpoint's
            weights, optimizer state, hyperparameters, callback state, history and random
            states are restored, and training continues for the epochs left up to
            ``max_epochs``; on the same machine and seed it ends with the same weights as
            an uninterrupted run.
        **fit_params
            Passed on to skorch's ``fit`` (and from there to the module's ``forward``).

        Returns
        -------
        NeuralNet
            ``self``, fitted.

        Raises
        ------
        ValueError
            Before training starts, for data the net cannot train on: no rows, ``X`` and
            ``y`` of different lengths, NaN or infinite inputs or infinite targets (the
            message counts the rows and names the first), NaN targets with a criterion that
            does not ignore them, no labelled target at all (or none among the validation
            or the training rows), or rows shaped unlike the input layer or the output
            layer (e.g. ``y`` with 29 columns, or of shape ``(n,)``, for a 30-unit output
            layer).
        TypeError
            For a torch Dataset or non-numeric data.
        DivergenceError
            If the loss becomes NaN or infinite.
        facekeypoints.checkpoint.CheckpointError
            If ``resume`` is missing, damaged, or from a different architecture.
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
        """Check ``X`` and ``y`` against the net, then train on (skorch's ``partial_fit``).

        The checks run before any callback or epoch starts, so that data the net cannot
        train on end in a ValueError that names the problem and the fix instead of a torch
        error, a silently broadcast loss or a DivergenceError.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Inputs, as for :meth:`fit`: at least one row, all values finite, each row as
            many values as the input layer takes.
        y : array-like or torch.Tensor
            Targets, as for :meth:`fit`: one per row of ``X``; for regression without
            infinities (NaN: unlabelled), and each row shaped as the net's output
            (``(n, 30)`` for a 30-unit output layer).
        classes : object, optional
            Unused (scikit-learn's signature).
        **fit_params
            Passed on to skorch's ``partial_fit``.

        Returns
        -------
        NeuralNet
            ``self``, trained for ``epochs`` (a fit parameter) or ``max_epochs`` more epochs.

        Raises
        ------
        ValueError
            For no rows, ``X`` and ``y`` of different lengths, NaN or infinite inputs,
            infinite targets, unusable NaN targets (see :meth:`fit`), or rows shaped unlike
            the net's input or output layer.
        TypeError
            For a torch Dataset or non-numeric data.
        """
        if not self.initialized_:
            self.initialize()
        self._check_fit_data(X, y)
        return super().partial_fit(X, y, classes=classes, **fit_params)

    def _check_fit_data(self, X, y):
        """Refuse data the net cannot train on, with messages that say how to fix them."""
        if isinstance(X, DeviceData):
            return
        if y is None:
            raise ValueError("fit needs targets: net.fit(X, y)")
        X = self._numeric(X, "X")
        n = len(X)
        if n == 0:
            raise ValueError(f"X has no rows (shape {tuple(X.shape)}): fit needs at least one; "
                             "check how the data were loaded (a cols= or filter that dropped "
                             "every row?)")
        y = self._numeric(y, "y")
        if len(y) != n:
            raise ValueError(f"X has {n} rows but y has {len(y)}; they must match")
        stack = self._layer_stack()
        if stack is not None:
            need, got = int(np.prod(stack.input_shape)), int(np.prod(X.shape[1:]))
            if need != got:
                shape = "x".join(map(str, stack.input_shape))
                raise ValueError(
                    f"X rows have {got} values (shape {tuple(X.shape[1:])}) but the input "
                    f"layer takes {shape if shape == str(need) else f'{shape} = {need}'}: "
                    "pass rows of that size, or set input_shape=(None, ...) to the data's")
        _refuse_nonfinite(X, "X", "clean or drop them before fit (the net cannot learn from "
                                   "them; they would make every loss NaN)")
        if not self.regression:
            return
        self._check_labels(y, split=True)
        out = self._output_shape(X)
        if out is None or tuple(y.shape[1:]) == out:
            return
        what = ("the net's output layer has" if stack is not None
                else "the module's output has")
        if len(out) == 1 and y.ndim == 2:
            fix = (f"set output_num_units={y.shape[1]}" if stack is not None
                   else "change the module's output size")
            columns = f"{y.shape[1]} column{'s' if y.shape[1] != 1 else ''}"
            raise ValueError(f"y has {columns} but {what} {out[0]} units: pass "
                             f"targets with {out[0]} columns, or {fix}")
        if len(out) == 1 and y.ndim == 1:
            fix = ("y.reshape(-1, 1)" if out[0] == 1
                   else f"y of shape ({n}, {out[0]}), one column per output")
            raise ValueError(f"y has shape {tuple(y.shape)}, one value per row, but {what} "
                             f"{out[0]} unit{'s' if out[0] != 1 else ''}: pass {fix}")
        raise ValueError(f"y rows have shape {tuple(y.shape[1:])} but {what} shape {out} per "
                         "row; they must match")

    def _numeric(self, data, what):
        """``data`` as a numpy array or tensor; TypeError for a Dataset or non-numeric data."""
        if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.Tensor):
            raise TypeError(f"pass {what} as a numpy array or a tensor, not a torch Dataset")
        array = data if isinstance(data, torch.Tensor) else np.asarray(data)
        if not isinstance(data, torch.Tensor) and not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"{what} must be numeric, got dtype {array.dtype}")
        if array.ndim == 0:
            raise ValueError(f"{what} is a single value; pass one row per sample")
        return array

    def _layer_stack(self):
        module = getattr(self, "module_", None)
        module = getattr(module, "_orig_mod", module)      # under torch.compile
        return module if isinstance(module, LayerStack) else None

    def _output_shape(self, X):
        """The per-row output shape: a layer list's last layer, else one row run through the
        module in eval mode (None when that is not possible)."""
        stack = self._layer_stack()
        if stack is not None:
            return tuple(list(stack.shapes.values())[-1])
        module = getattr(self, "module_", None)
        if module is None or self.compile:
            return None
        was_training = module.training
        try:
            row = torch.as_tensor(np.asarray(X[:1]) if not isinstance(X, torch.Tensor)
                                  else X[:1]).to(device=self.device_, dtype=torch.float32)
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                module.eval()
                out = module(row)
        except Exception:  # noqa: BLE001 - training will raise the module's own error
            return None
        finally:
            module.train(was_training)
        return tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None

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

    def rng_state(self) -> dict[str, Any] | None:
        """Return the random generator states at the end of the last epoch.

        They drive dropout and the batch order and flips; :func:`save_checkpoint
        <facekeypoints.checkpoint.save_checkpoint>` stores them so that a resumed run draws
        the same numbers.

        Returns
        -------
        dict or None
            ``{'torch': ByteTensor, 'cuda': ByteTensor or None, 'batches': ByteTensor or
            None}`` (``rng_states_``); None before the first epoch.
        """
        return getattr(self, "rng_states_", None)

    def set_rng_state(self, state: dict[str, Any] | None) -> None:
        """Continue from generator states saved by :meth:`rng_state` (used to resume).

        Parameters
        ----------
        state : dict or None
            What :meth:`rng_state` returned; the next epoch starts from these states. None
            seeds the next ``fit`` from ``random_state`` again.
        """
        self.rng_states_ = state

    def on_batch_end(self, net: NeuralNet, batch: Any = None, training: bool | None = None,
                     **kwargs: Any) -> None:
        """Record the batch's labelled targets, its weight in the epoch's mean loss.

        ``<train|valid>_labelled`` is the number of labelled (non-NaN) target values divided
        by the values per row: the batch size when every target is labelled.

        Parameters
        ----------
        net : NeuralNet
            This net (skorch's hook signature).
        batch : tuple, optional
            ``(Xb, yb)``.
        training : bool, optional
            Whether it was a training batch.
        **kwargs
            Passed on to skorch's hook.
        """
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        if not self.regression or not isinstance(batch, (tuple, list)) or len(batch) < 2:
            return
        yb = batch[1]
        if not isinstance(yb, torch.Tensor) or not yb.is_floating_point() or not yb.numel():
            return
        per_row = yb.numel() // len(yb)
        labelled = int(torch.count_nonzero(~torch.isnan(yb)))   # after the loss's sync
        self.history.record_batch(("train" if training else "valid") + "_labelled",
                                  labelled / per_row)

    def on_epoch_end(self, net: NeuralNet, dataset_train: DeviceData | None = None,
                     dataset_valid: DeviceData | None = None, **kwargs: Any) -> None:
        """Run skorch's epoch-end hook, then record the generator states in ``rng_states_``.

        Parameters
        ----------
        net : NeuralNet
            This net (skorch's hook signature).
        dataset_train : DeviceData, optional
            The training data.
        dataset_valid : DeviceData, optional
            The validation data.
        **kwargs
            Passed on to skorch's hook.
        """
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                             **kwargs)
        generator = getattr(self, "batch_generator_", None)
        self.rng_states_ = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if str(self.device_).startswith("cuda") else None,
            "batches": generator.get_state() if generator is not None else None,
        }

    def get_default_callbacks(self) -> list[tuple[str, Callback]]:
        """Return the callbacks every net runs: the recipe's in place of skorch's.

        Returns
        -------
        list of (str, Callback)
            ``epoch_timer``, ``train_loss`` and ``valid_loss`` (the epoch's mean losses, each
            batch weighted by its labelled targets, so that with NaN targets the epoch loss
            is the mean over every labelled value), ``train_val`` (the losses as floats and
            their ratio) and ``print_log`` (the recipe's epoch table, printed when
            ``verbose``).
        """
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", _LabelledScoring(name="train_loss", on_train=True)),
            ("valid_loss", _LabelledScoring(name="valid_loss")),
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

    def initialize_module(self) -> NeuralNet:
        """Build the module from ``layers`` (or skorch's way from ``module``) on ``device_``.

        Weights are drawn under ``random_state``; nets with convolutions use the
        channels-last memory format.
        """
        with self._seeded():
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

    def _rule_accepts(self):
        update = self.update
        if isinstance(update, type) and issubclass(update, torch.optim.Optimizer):
            names = set(inspect.signature(update.__init__).parameters) - {"self", "params"}
            return names | {"learning_rate"}
        return set(list(inspect.signature(update).parameters)[1:])

    def update_hyperparameters(self) -> dict[str, float]:
        """Return the current ``update_*`` values the update rule takes, as Python floats.

        The net calls this at the start of every training epoch and writes the values into
        the optimizer.

        Returns
        -------
        dict
            By the rule's names, e.g. ``{'learning_rate': 0.01, 'momentum': 0.9}``; unset
            (None) attributes are left out, and so is ``update_momentum`` for a rule without
            momentum.

        Raises
        ------
        ValueError
            If an ``update_<name>`` is not a hyperparameter of ``update``, or a value is not
            a finite number the rule accepts.

        Examples
        --------
        >>> import torch
        >>> from facekeypoints import NeuralNet
        >>> from facekeypoints.updates import sgd
        >>> NeuralNet(module=torch.nn.Identity, update=sgd, update_learning_rate=0.1,
        ...           update_momentum=0.9).update_hyperparameters()
        {'learning_rate': 0.1}
        """
        accepts = self._rule_accepts()
        values = {}
        for name, attr in self.hyperparameter_attributes().items():
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

    def initialize_optimizer(self, triggered_directly: bool | None = None) -> NeuralNet:
        """Build the optimizer with ``update`` and the current ``update_*`` values."""
        self.optimizer_ = build_optimizer(self.update, self.module_.parameters(),
                                          self.update_hyperparameters())
        return self

    # ------------------------------------------------------------------ data
    def get_dataset(self, X: np.ndarray | torch.Tensor | DeviceData,
                    y: np.ndarray | torch.Tensor | None = None) -> DeviceData:
        """Move ``X`` and ``y`` to ``device_`` as tensors, once, instead of a skorch Dataset.

        Parameters
        ----------
        X : array-like, torch.Tensor or DeviceData
            Numeric inputs (moved as float32); a DeviceData is returned as it is.
        y : array-like or torch.Tensor, optional
            Targets: float32 for regression (no infinities; NaN: unlabelled), int64 class
            indices otherwise.

        Returns
        -------
        DeviceData
            The data as tensors on ``device_``.

        Raises
        ------
        TypeError
            For a torch Dataset or non-numeric data.
        ValueError
            If ``X`` and ``y`` differ in length, or regression targets hold infinities, NaN
            the criterion cannot ignore, or no label at all.
        """
        if isinstance(X, DeviceData):
            return X
        return DeviceData(self._to_device(X, "X"), None if y is None else self._targets(y, len(X)))

    def _to_device(self, X, what):
        array = self._numeric(X, what)
        return torch.as_tensor(array).to(device=self.device_, dtype=torch.float32)

    def _targets(self, y, n):
        y = y if isinstance(y, torch.Tensor) else np.asarray(y)
        if len(y) != n:
            raise ValueError(f"X has {n} rows but y has {len(y)}; they must match")
        if not self.regression:
            return torch.as_tensor(np.asarray(y)).long().to(self.device_)
        t = self._to_device(y, "y")
        self._check_labels(t, split=False)
        return t

    def _check_labels(self, y, split):
        """Refuse regression targets the net cannot learn from: infinities, NaN (unlabelled)
        with a criterion that does not ignore it, or no label at all (with ``split``: none
        among the validation rows or among the training rows)."""
        n = len(y)
        if n == 0:
            return
        if isinstance(y, torch.Tensor):
            if not y.is_floating_point():
                return
            flat = y.detach().reshape(n, -1)
            inf_rows = torch.isinf(flat).any(dim=1).cpu().numpy()
            labelled = (~torch.isnan(flat)).sum(dim=1).cpu().numpy()
            per_row = flat.shape[1]
        else:
            y = np.asarray(y)
            if not np.issubdtype(y.dtype, np.inexact):
                return
            flat = y.reshape(n, -1)
            inf_rows = np.isinf(flat).any(axis=1)
            labelled = (~np.isnan(flat)).sum(axis=1)
            per_row = flat.shape[1]
        rows = np.flatnonzero(inf_rows)
        if len(rows):
            raise ValueError(
                f"y contains infinite values in {len(rows)} row{'s' if len(rows) != 1 else ''} "
                f"(first: row {rows[0]}); a target is a finite number, or NaN where the "
                "keypoint is not labelled: fix or drop those rows")
        gaps = np.flatnonzero(labelled < per_row)
        if not len(gaps):
            return
        if not self._criterion_ignores_nan():
            criterion = getattr(self, "criterion_", None) or self.criterion
            name = getattr(criterion, "__name__", type(criterion).__name__)
            raise ValueError(
                f"y contains NaN (unlabelled) values in {len(gaps)} "
                f"row{'s' if len(gaps) != 1 else ''} (first: row {gaps[0]}), but the criterion "
                f"{name} does not ignore them: use one that does (the default, "
                "facekeypoints.losses.MaskedMSELoss, or MaskedL1Loss or WingLoss), or drop "
                "incomplete rows first (fk.load does unless dropna=False)")
        if not labelled.any():
            raise ValueError(f"y has no labelled value: all {n} rows are NaN (NaN means "
                             "'not labelled'), so there is nothing to learn; load faces that "
                             "have keypoints")
        n_valid = self.validation_size(n) if split else 0
        if 0 < n_valid < n:
            for part, what in ((slice(None, n_valid), f"the {n_valid} validation rows (the "
                                f"first {n_valid}, eval_size={self.eval_size})"),
                               (slice(n_valid, None), f"the {n - n_valid} training rows")):
                if not labelled[part].any():
                    raise ValueError(f"{what} have no labelled value (all NaN): shuffle the "
                                     "rows (fk.load does) or change eval_size")

    def _criterion_ignores_nan(self):
        criterion = getattr(self, "criterion_", None)
        if criterion is None:
            criterion = self.criterion if self.criterion is not None else MaskedMSELoss
        return ignores_nan(criterion)

    def validation_size(self, n: int) -> int:
        """How many of ``n`` rows ``eval_size`` holds out for validation.

        nolearn's rule: the first of ``round(1 / eval_size)`` unshuffled folds (KFold sizes).

        Parameters
        ----------
        n : int
            Number of rows passed to ``fit``.

        Returns
        -------
        int
            The number of leading rows used for validation (0 when ``eval_size`` is 0/None).

        Examples
        --------
        >>> NeuralNet(module=torch.nn.Identity, eval_size=0.2).validation_size(2140)
        428
        """
        if not self.eval_size:
            return 0
        folds = max(2, int(round(1.0 / self.eval_size)))
        return n // folds + (1 if n % folds else 0)

    def train_valid_split(self, X: Any, y: Any = None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        """Split ``X`` (and ``y``) as ``fit`` does: the first rows validate, the rest train.

        Parameters
        ----------
        X : array-like
            Inputs, as passed to ``fit``.
        y : array-like, optional
            Targets.

        Returns
        -------
        tuple
            ``((X_train, y_train), (X_valid, y_valid))``; the ``y`` parts are None without
            ``y``, and the validation part is empty when ``eval_size`` is 0.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from facekeypoints import NeuralNet
        >>> X, y = np.arange(10), np.arange(10) * 10
        >>> (X_train, y_train), (X_valid, y_valid) = NeuralNet(
        ...     module=torch.nn.Identity, eval_size=0.2).train_valid_split(X, y)
        >>> X_valid, y_train[:2]
        (array([0, 1]), array([20, 30]))
        """
        n_valid = self.validation_size(len(X))

        def pick(a, rows):
            return None if a is None else a[rows]

        return ((X[n_valid:], pick(y, slice(n_valid, None))),
                (X[:n_valid], pick(y, slice(None, n_valid))))

    def get_split_datasets(self, X: np.ndarray | torch.Tensor,
                           y: np.ndarray | torch.Tensor | None = None,
                           **fit_params: Any) -> tuple[DeviceData, DeviceData | None]:
        """Split as nolearn: the first ``validation_size(n)`` rows validate (no shuffling).

        Parameters
        ----------
        X : array-like or torch.Tensor
            Inputs, as passed to ``fit``.
        y : array-like or torch.Tensor
            Targets; required.
        **fit_params
            Unused (skorch's signature).

        Returns
        -------
        tuple of DeviceData
            ``(train, valid)``; ``valid`` is None when ``eval_size`` is 0 or None.
        """
        if y is None:
            raise ValueError("fit needs targets: net.fit(X, y)")
        data = self.get_dataset(X, y)
        n_valid = self.validation_size(len(data))
        if n_valid == 0:
            return data, None
        if n_valid >= len(data):
            raise ValueError(f"{len(data)} rows are too few for eval_size={self.eval_size}")
        train = DeviceData(data.X[n_valid:], data.y[n_valid:])
        valid = DeviceData(data.X[:n_valid], data.y[:n_valid])
        return train, valid

    def get_iterator(self, dataset: DeviceData, training: bool = False) -> BatchIterator:
        """Bind ``batch_iterator_train``/``_test`` to the data, with the net's batch generator.

        The training iterator draws its order and flips from a generator held on the net
        (restored from a checkpoint when resuming), not from a DataLoader.

        Parameters
        ----------
        dataset : DeviceData
            The data to batch.
        training : bool, default False
            True for the training iterator, else the test iterator.

        Returns
        -------
        BatchIterator
            A copy of the configured iterator (``BatchIterator(128)`` when None), bound to
            the data.
        """
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
    def fit_loop(self, X: np.ndarray | torch.Tensor | DeviceData,
                 y: np.ndarray | torch.Tensor | None = None, epochs: int | None = None,
                 **fit_params: Any) -> NeuralNet:
        """Run skorch's loop under ``random_state``, ending quietly on ``StopIteration``.

        A handler raising ``StopIteration`` (nolearn's protocol, used by EarlyStopping) ends
        training after the current epoch; large CPU buffers are kept allocated meanwhile.
        """
        with _memory.keep_large_buffers(), self._seeded(offset=2, state=self.rng_state()):
            try:
                super().fit_loop(X, y, epochs=epochs, **fit_params)
            except StopIteration:
                pass  # an on_epoch_finished handler asked to stop (nolearn's protocol)
            finally:
                vars(self).pop("batch_generator_", None)
        return self

    def run_single_epoch(self, iterator: BatchIterator | None, training: bool, prefix: str,
                         step_fn: Callable[..., Any], **fit_params: Any) -> None:
        """Before a training epoch, read the ``update_*`` values into the optimizer."""
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

    def train_step_single(self, batch: tuple[torch.Tensor, torch.Tensor],
                          **fit_params: Any) -> dict[str, Any]:
        """Take skorch's training step, then raise DivergenceError if the loss is not finite."""
        step = super().train_step_single(batch, **fit_params)
        self._check_finite(step["loss"], "training")
        return step

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor],
                        **fit_params: Any) -> dict[str, Any]:
        """Take skorch's validation step, then raise DivergenceError if the loss is not finite."""
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
            f"{loss.item()} ({hyper}). The weights are those from before this step. fit "
            "checked that X is finite and y holds no infinity (NaN targets are unlabelled "
            "and left out of the loss), so the steps are too large: lower "
            "update_learning_rate (or scale the targets to about [-1, 1]).")

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
        """Predict with skorch's ``predict``; for ``regression=False``, return class indices.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Inputs shaped as for ``fit``.
        tta : bool, optional
            Flip test-time augmentation (None, the default: the net's ``tta`` setting), for
            keypoint regression nets: average each face's
            prediction with the un-mirrored prediction of its mirror image (the image
            reversed along its width; the mirror's x coordinates negated and its left/right
            columns swapped back, by ``FLIP_INDICES``). The outputs must be known
            keypoints: 30 in ``KEYPOINT_COLUMNS`` order, or the columns named by
            ``columns_`` (set by :func:`facekeypoints.load_model` and the specialists),
            each with its mirror image among them. Twice the prediction time.

        Returns
        -------
        numpy.ndarray
            ``(n, k)`` float32 predictions for regression; ``(n,)`` class indices (the
            argmax of the module's output) for classification.

        Raises
        ------
        ValueError
            With ``tta=True``: for a classification net, inputs that are not images, or
            outputs that are not known keypoint columns (the message says which).

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
        if tta is None:
            tta = bool(getattr(self, "tta", False))
        if not tta:
            y = super().predict(X)
            return y if self.regression else y.argmax(axis=1)
        if not self.regression:
            raise ValueError("predict(tta=True) averages mirrored keypoint predictions; it is "
                             "for regression nets, not classification (regression=False)")
        if not isinstance(X, torch.Tensor):
            X = np.asarray(X)
        out, flip = [], None
        for start in range(0, len(X), _TTA_CHUNK):
            chunk = X[start:start + _TTA_CHUNK]
            plain = super().predict(chunk)
            if flip is None:
                flip = self._mirror_columns(plain.shape[1] if plain.ndim == 2 else None)
            perm, sign = flip
            mirrored = super().predict(_mirror_images(chunk))
            out.append((plain + mirrored[:, perm] * sign) * np.float32(0.5))
        if not out:
            return super().predict(X)
        return np.concatenate(out)

    def _mirror_columns(self, n_outputs):
        """``(perm, sign)`` that turn predictions for mirrored faces back: ``y[:, perm] *
        sign`` swaps every left/right keypoint and negates x."""
        if n_outputs is None:
            raise ValueError("predict(tta=True) needs (n, k) keypoint outputs")
        columns = getattr(self, "columns_", None)
        if columns:
            columns = list(columns)
            if len(columns) != n_outputs:
                raise ValueError(f"predict(tta=True): the net has {n_outputs} outputs but "
                                 f"columns_ names {len(columns)}")
        elif n_outputs == len(KEYPOINT_COLUMNS):
            columns = list(KEYPOINT_COLUMNS)
        else:
            raise ValueError(
                f"predict(tta=True) must know which keypoint each output is, to swap left and "
                f"right back; this net has {n_outputs} outputs and no columns_: use it on a "
                "net with 30 outputs (KEYPOINT_COLUMNS order), or set net.columns_ to its "
                "keypoint column names (load_model and the specialists do)")
        unknown = [c for c in columns if c not in KEYPOINT_COLUMNS]
        if unknown:
            raise ValueError(f"predict(tta=True): columns_ holds {unknown[0]!r}, which is not "
                             "a Kaggle keypoint column, so its mirror image is unknown")
        mirror = {}
        for a, b in FLIP_INDICES:
            mirror[KEYPOINT_COLUMNS[a]] = KEYPOINT_COLUMNS[b]
            mirror[KEYPOINT_COLUMNS[b]] = KEYPOINT_COLUMNS[a]
        perm = []
        for c in columns:
            partner = mirror.get(c, c)
            if partner not in columns:
                raise ValueError(f"predict(tta=True): the net predicts {c!r} but not its mirror "
                                 f"image {partner!r}, so a mirrored face cannot be turned back")
            perm.append(columns.index(partner))
        sign = np.array([-1.0 if c.endswith("_x") else 1.0 for c in columns], dtype=np.float32)
        return np.array(perm), sign

    def score(self, X: np.ndarray | torch.Tensor, y: np.ndarray) -> float:
        """Return R^2 for regression, accuracy for classification (scikit-learn's conventions).

        For regression, NaN targets are unlabelled: each output's R^2 is over the rows where
        it is labelled (outputs with fewer than two labels are left out), then averaged.
        Without NaN this is exactly ``r2_score(y, predict(X))``.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Inputs shaped as for ``fit``.
        y : array-like
            The true targets (NaN where unlabelled, for regression).

        Returns
        -------
        float
            ``sklearn.metrics.r2_score`` (averaged uniformly over the outputs) or
            ``accuracy_score`` of :meth:`predict` against ``y``.

        Raises
        ------
        ValueError
            For regression targets where no output has two labelled values.
        """
        from sklearn.metrics import accuracy_score, r2_score
        y_pred = self.predict(X)
        if not self.regression:
            return accuracy_score(y, y_pred)
        y_true = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if not (np.issubdtype(y_true.dtype, np.inexact) and np.isnan(y_true).any()):
            return r2_score(y, y_pred)
        y_true = y_true.reshape(len(y_true), -1)
        y_pred = np.asarray(y_pred).reshape(len(y_pred), -1)
        scores = []
        for j in range(y_true.shape[1]):
            rows = ~np.isnan(y_true[:, j])
            if rows.sum() >= 2:
                scores.append(r2_score(y_true[rows, j], y_pred[rows, j]))
        if not scores:
            raise ValueError("score: no output has two labelled targets (the rest are NaN), "
                             "so R^2 is undefined")
        return float(np.mean(scores))

    def n_parameters(self) -> int:
        """Return the number of learnable parameters.

        An initialized net counts its module; a ``layers=`` net that is not initialized yet is
        built on torch's meta device to count them, which allocates no weights.

        Returns
        -------
        int
            Elements of all parameters with ``requires_grad``.

        Examples
        --------
        >>> from facekeypoints import NeuralNet
        >>> from facekeypoints.layers import DenseLayer, InputLayer
        >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
        ...                 input_shape=(None, 4), output_num_units=2, device='cpu')
        >>> net.n_parameters(), net.initialize().n_parameters()
        (10, 10)
        """
        module = getattr(self, "module_", None) if getattr(self, "initialized_", False) \
            else None
        if module is None:
            if self.layers is None:
                raise AttributeError("n_parameters of a module= net needs net.initialize() first")
            with torch.device("meta"):
                grouped, _ = split_layer_params(self.layers, self.layer_params())
                module = build_stack(self.layers, grouped)
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    def layer_summary(self) -> str:
        """Return nolearn's opening lines: parameter count, then each layer's output size.

        The layer table is there for ``layers=`` nets only; the net prints this first when
        ``verbose``.

        Returns
        -------
        str
            The summary, several lines.

        Examples
        --------
        >>> from facekeypoints import NeuralNet
        >>> from facekeypoints.layers import DenseLayer, InputLayer
        >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
        ...                 input_shape=(None, 4), output_num_units=2, device='cpu')
        >>> print(net.initialize().layer_summary())
        # Neural Network with 10 learnable parameters
        <BLANKLINE>
        ## Layer information
        <BLANKLINE>
          #  name      size
        ---  ------  ------
          0  input        4
          1  output       2
        <BLANKLINE>
        """
        lines = [f"# Neural Network with {self.n_parameters()} learnable parameters", ""]
        if isinstance(self.module_, LayerStack):
            rows = [(i, name, "x".join(str(s) for s in shape))
                    for i, (name, shape) in enumerate(self.module_.shapes.items())]
            lines += ["## Layer information", "",
                      tabulate(rows, headers=["#", "name", "size"]), ""]
        return "\n".join(lines)

    # -- notebook display: IPython's rich reprs (scikit-learn's estimator diagram replaced) ---
    def _display_facts(self):
        """What the notebook displays show: status, layer rows, parameter count, settings."""
        history = getattr(self, "history_", None) if getattr(self, "initialized_", False) \
            else None
        epochs = len(history) if history is not None else 0
        status = (f"fitted, {epochs} epoch{'s' * (epochs != 1)}" if epochs else
                  "initialized, no training history" if getattr(self, "initialized_", False)
                  else "not fitted")
        module = getattr(self, "module_", None) if getattr(self, "initialized_", False) \
            else None
        if module is None and self.layers is not None:
            try:    # the shapes and counts without allocating: build on torch's meta device
                with torch.device("meta"):
                    grouped, _ = split_layer_params(self.layers, self.layer_params())
                    module = build_stack(self.layers, grouped)
            except Exception:
                module = None
        rows, n_params = [], None
        if module is not None:
            n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
            if isinstance(module, LayerStack):
                kinds = dict(self.layers or ())
                for i, (name, shape) in enumerate(module.shapes.items()):
                    sub = module.layers[name] if name in module.layers else None
                    spec = kinds.get(name)
                    kind = getattr(spec, "__name__", None) or type(spec).__name__ \
                        if not isinstance(spec, str) else spec
                    rows.append((i, name, kind, "x".join(map(str, shape)),
                                 sum(p.numel() for p in sub.parameters()) if sub else 0))
            else:
                for i, (name, sub) in enumerate(module.named_children()):
                    rows.append((i, name, type(sub).__name__, "",
                                 sum(p.numel() for p in sub.parameters())))
        facts = [("update", getattr(self.update, "__name__", type(self.update).__name__))]
        for key, label in (("update_learning_rate", "learning rate"),
                           ("update_momentum", "momentum")):
            value = getattr(self, key, None)
            if value is not None:
                try:
                    facts.append((label, f"{read_value(value):.6g}"
                                  + (" (shared)" if is_shared(value) else "")))
                except Exception:
                    facts.append((label, repr(value)))
        facts += [("max_epochs", str(self.max_epochs)), ("eval_size", str(self.eval_size)),
                  ("device", str(getattr(self, "device_", None) or self.device))]
        callbacks = [item[0] if isinstance(item, (tuple, list)) else type(item).__name__
                     for item in (self.callbacks or [])]
        if callbacks:
            facts.append(("callbacks", ", ".join(map(str, callbacks))))
        if epochs:
            losses = [(row.get("valid_loss"), row.get("epoch")) for row in history]
            losses = [(v, e) for v, e in losses if v is not None]
            if losses:
                best, at = min(losses)
                text = f"{best:.6f} at epoch {at}"
                if self.regression and is_mse(self.criterion):
                    from .metrics import rmse_px
                    text += f" (RMSE {rmse_px(best):.2f} px)"
                facts.append(("best valid loss", text))
        return status, rows, n_params, facts

    def _repr_pretty_(self, printer, cycle):
        if cycle:
            printer.text(f"{type(self).__name__}(...)")
            return
        status, rows, n_params, facts = self._display_facts()
        count = "?" if n_params is None else f"{n_params:,}"
        lines = [f"{type(self).__name__} ({status}): {count} learnable parameters"]
        if rows:
            lines += ["", tabulate([r[1:] for r in rows],
                                   headers=["layer", "type", "output", "parameters"],
                                   intfmt=",", disable_numparse=False), ""]
        lines += [f"{k}: {v}" for k, v in facts]
        printer.text("\n".join(lines))

    def _repr_html_(self) -> str:
        import html

        status, rows, n_params, facts = self._display_facts()
        esc = html.escape
        colour = "#2e7d32" if status.startswith("fitted") else "#8a6d00"
        count = "not known until initialized" if n_params is None else f"{n_params:,}"
        cell = "padding:1px 10px;text-align:{};"
        head = "".join(f"<th style='{cell.format(a)}'>{h}</th>" for h, a in
                       (("#", "right"), ("layer", "left"), ("type", "left"),
                        ("output", "right"), ("parameters", "right")))
        body = "".join(
            "<tr>" + "".join(f"<td style='{cell.format(a)}'>{esc(str(v))}</td>" for v, a in
                             zip((i, name, kind, size, f"{n:,}" if n else ""),
                                 ("right", "left", "left", "right", "right"))) + "</tr>"
            for i, name, kind, size, n in rows)
        table = (f"<table style='border-collapse:collapse;font-size:90%;margin:4px 0'>"
                 f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>") if rows else ""
        settings = "".join(f"<tr><td style='{cell.format('left')}color:#666'>{esc(k)}</td>"
                           f"<td style='{cell.format('left')}'>{esc(v)}</td></tr>"
                           for k, v in facts)
        return (f"<div style='border:1px solid #bbb;border-radius:4px;padding:6px 10px;"
                f"display:inline-block;font-family:monospace'>"
                f"<div><b>{esc(type(self).__name__)}</b> "
                f"<span style='color:white;background:{colour};border-radius:3px;"
                f"padding:0 5px;font-size:85%'>{esc(status)}</span> "
                f"&middot; {esc(count)} learnable parameters</div>{table}"
                f"<details><summary>settings</summary><table style='font-size:90%'>"
                f"{settings}</table></details></div>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        from io import StringIO

        try:
            from IPython.lib.pretty import PrettyPrinter
        except ImportError:
            return {"text/html": self._repr_html_(), "text/plain": repr(self)}
        stream = StringIO()
        printer = PrettyPrinter(stream)
        self._repr_pretty_(printer, False)
        printer.flush()
        return {"text/html": self._repr_html_(), "text/plain": stream.getvalue()}

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("batch_generator_", None)  # a live torch.Generator; its state is in rng_states_
        return state

    def __setstate__(self, state):
        requested = state.get("device", "cpu")
        placed = state.get("device_") or ("cpu" if requested == "auto" else requested)
        with warnings.catch_warnings():
            # skorch warns when a CUDA net is loaded where CUDA is missing; it then falls back
            # to the CPU, as we want.
            warnings.simplefilter("ignore")
            super().__setstate__({**state, "device": placed})
        landed = str(self.device)  # where skorch mapped the tensors
        if "device_" in state:
            self.device_ = landed
        # 'auto' stays 'auto'; an explicit device that is missing here becomes the CPU (skorch's
        # rule), so that the loaded net can predict and train on.
        self.device = requested if requested == "auto" or landed == str(placed) else landed
        if getattr(self, "optimizer_", None) is not None:
            drop_unavailable_kernels(self.optimizer_)

