"""The recipe's nets, net1..net7, and ``modern``, as factories of fresh, unfitted NeuralNets.

Each takes keyword overrides (``net4(max_epochs=50, verbose=0)``). Schedules are named
callbacks, so ``set_params(callbacks__adjust_lr__stop=1e-3)`` works.

Presets register themselves with the :func:`preset` decorator; :func:`get` builds any
registered one by name (your own too), and ``NETS`` is the built-in ones, in order::

    @fk.presets.preset
    def tiny(**overrides):
        '''A small net for smoke tests.'''
        return fk.NeuralNet(layers=[...], **overrides)

    fk.presets.get("tiny", max_epochs=2)

Every preset is a regression net with ``verbose=1`` on ``(None, 1, 96, 96)`` inputs (net1:
flat 9,216 pixels) and 30 linear outputs. net1..net7 train with Nesterov momentum;
``modern`` is the post-2014 design: BatchNorm conv blocks, AdamW, a warm-up and cosine decay.

Examples
--------
>>> from facekeypoints import presets
>>> net = presets.net4(max_epochs=50, verbose=0)
>>> net.max_epochs, [name for name, _ in net.callbacks]
(50, ['adjust_lr', 'adjust_momentum'])
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .augment import AffineBatchIterator
from .callbacks import AdjustVariable, EarlyStopping
from .iterators import FlipBatchIterator
from .layers import (BatchNormLayer, Conv2DLayer, DenseLayer, DropoutLayer, InputLayer,
                     MaxPool2DLayer)
from .net import NeuralNet
from .registry import PRESETS, register_preset
from .schedules import cosine, warmup
from .shared import float32, read_value, shared
from .updates import adamw

__all__ = ["NETS", "available", "get", "modern", "modern_schedule", "net1", "net2", "net3",
           "net4", "net5", "net6", "net7", "preset"]

F = TypeVar("F", bound=Callable[..., NeuralNet])

# The docstring sections every preset shares; :func:`preset` adds them.
_OVERRIDES_DOC = """
    Parameters
    ----------
    **overrides
        Any ``NeuralNet`` keyword (``max_epochs=50``, ``verbose=0``, a ``<layer>_<param>``
        value, ...); each replaces the preset's value.

    Returns
    -------
    NeuralNet
        A fresh, unfitted net.
"""


def preset(factory: F | None = None, *, name: str | None = None) -> F:
    """Decorator: register a preset and give its docstring the shared ``**overrides`` part.

    The ``Parameters`` and ``Returns`` sections are added before an ``Examples`` section
    (or at the end). :func:`get` then builds it by name.

    Parameters
    ----------
    factory : callable, optional
        ``factory(**overrides) -> NeuralNet``.
    name : str, optional
        The name :func:`get` and the command line use (default: the function's name).

    Returns
    -------
    callable
        ``factory`` (registered, docstring completed), or a decorator when called with
        ``name=`` only.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> from facekeypoints.layers import DenseLayer, InputLayer
    >>> @fk.presets.preset(name="doc_tiny")
    ... def tiny(**overrides):
    ...     '''One dense layer on 4 inputs.'''
    ...     return fk.NeuralNet(layers=[("input", InputLayer), ("output", DenseLayer)],
    ...                         input_shape=(None, 4), output_num_units=2, **overrides)
    >>> fk.presets.get("doc_tiny", max_epochs=3).max_epochs
    3
    """
    if factory is None:
        return lambda f: preset(f, name=name)
    doc = inspect.cleandoc(factory.__doc__ or "")
    if "**overrides" not in doc:
        head, sep, tail = doc.partition("\nExamples\n--------\n")
        shared_part = inspect.cleandoc(_OVERRIDES_DOC)
        doc = f"{head.rstrip()}\n\n{shared_part}\n" + (f"\n{sep.lstrip()}{tail}" if sep else "")
        factory.__doc__ = doc
    return register_preset(factory, name=name)


def _conv_architecture(hidden_units=500, dropout=False):
    """net2's layers (conv32@3x3, conv64@2x2, conv128@2x2, each + pool 2; dense, dense, 30)."""
    layers = [("input", InputLayer)]
    kwargs = {"input_shape": (None, 1, 96, 96)}
    for i, (filters, size) in enumerate([(32, 3), (64, 2), (128, 2)], start=1):
        layers += [(f"conv{i}", Conv2DLayer), (f"pool{i}", MaxPool2DLayer)]
        kwargs.update({f"conv{i}_num_filters": filters, f"conv{i}_filter_size": (size, size),
                       f"pool{i}_pool_size": (2, 2)})
        if dropout:
            layers.append((f"dropout{i}", DropoutLayer))
            kwargs[f"dropout{i}_p"] = (0.1, 0.2, 0.3)[i - 1]
    layers.append(("hidden4", DenseLayer))
    if dropout:
        layers.append(("dropout4", DropoutLayer))
        kwargs["dropout4_p"] = 0.5
    layers += [("hidden5", DenseLayer), ("output", DenseLayer)]
    kwargs.update(hidden4_num_units=hidden_units, hidden5_num_units=hidden_units,
                  output_num_units=30, output_nonlinearity=None)
    return layers, kwargs


def _schedule():
    """The recipe's linear lr (0.03 -> 0.0001) and momentum (0.9 -> 0.999) ramps."""
    return dict(
        update_learning_rate=shared(float32(0.03)),
        update_momentum=shared(float32(0.9)),
        callbacks=[("adjust_lr", AdjustVariable("update_learning_rate", start=0.03, stop=0.0001)),
                   ("adjust_momentum", AdjustVariable("update_momentum", start=0.9, stop=0.999))],
    )


def _make(layers, kwargs, overrides):
    params = dict(regression=True, verbose=1, **kwargs)
    params.update(overrides)
    if params.get("callbacks") is None:   # a list, so net.callbacks.append(...) works on all
        params["callbacks"] = []
    return NeuralNet(layers=layers, **params)


@preset
def net1(**overrides: Any) -> NeuralNet:
    """Build net1: 100 hidden units on the flat 9,216 pixels; fixed lr 0.01 / momentum 0.9.

    Up to 400 epochs.
    """
    layers = [("input", InputLayer), ("hidden", DenseLayer), ("output", DenseLayer)]
    kwargs = dict(input_shape=(None, 9216), hidden_num_units=100, output_num_units=30,
                  output_nonlinearity=None, update_learning_rate=0.01, update_momentum=0.9,
                  max_epochs=400)
    return _make(layers, kwargs, overrides)


@preset
def net2(**overrides: Any) -> NeuralNet:
    """Build net2: three conv/pool stages, two dense layers of 500; fixed lr 0.01, momentum 0.9.

    Conv 32@3x3, 64@2x2 and 128@2x2, each followed by a 2x2 max-pool; up to 1,000 epochs.
    """
    layers, kwargs = _conv_architecture()
    kwargs.update(update_learning_rate=0.01, update_momentum=0.9, max_epochs=1000)
    return _make(layers, kwargs, overrides)


@preset
def net3(**overrides: Any) -> NeuralNet:
    """Build net3: net2 with flipped training batches.

    Training batches come from a ``FlipBatchIterator(batch_size=128)``; up to 3,000 epochs.
    """
    layers, kwargs = _conv_architecture()
    kwargs.update(update_learning_rate=0.01, update_momentum=0.9, max_epochs=3000,
                  batch_iterator_train=FlipBatchIterator(batch_size=128))
    return _make(layers, kwargs, overrides)


@preset
def net4(**overrides: Any) -> NeuralNet:
    """Build net4: net2 with the linear learning-rate and momentum schedule.

    The learning rate falls from 0.03 to 0.0001 and the momentum rises from 0.9 to 0.999
    (callbacks ``adjust_lr`` and ``adjust_momentum``); up to 3,000 epochs.
    """
    layers, kwargs = _conv_architecture()
    kwargs.update(max_epochs=3000, **_schedule())
    return _make(layers, kwargs, overrides)


@preset
def net5(**overrides: Any) -> NeuralNet:
    """Build net5: net4 with flipped training batches.

    Up to 3,000 epochs.
    """
    layers, kwargs = _conv_architecture()
    kwargs.update(max_epochs=3000, batch_iterator_train=FlipBatchIterator(batch_size=128),
                  **_schedule())
    return _make(layers, kwargs, overrides)


def _dropout_net(hidden_units, max_epochs, overrides):
    layers, kwargs = _conv_architecture(hidden_units=hidden_units, dropout=True)
    schedule = _schedule()
    schedule["callbacks"].append(("early_stopping", EarlyStopping(patience=200)))
    kwargs.update(max_epochs=max_epochs, batch_iterator_train=FlipBatchIterator(batch_size=128),
                  **schedule)
    return _make(layers, kwargs, overrides)


@preset
def net6(**overrides: Any) -> NeuralNet:
    """Build net6: net5 with dropout (0.1/0.2/0.3 after the pools, 0.5 after hidden4).

    Early stopping (callback ``early_stopping``) waits 200 epochs for a better validation
    loss; up to 3,000 epochs.
    """
    return _dropout_net(500, 3000, overrides)


@preset
def net7(**overrides: Any) -> NeuralNet:
    """Build net7: net6 with 1,000-unit hidden layers, trained up to 10,000 epochs.
    """
    return _dropout_net(1000, 10000, overrides)


#: modern's conv blocks: (filters, 2x2 max-pool after the block?). 96 -> 3 pixels a side.
_MODERN_BLOCKS = ((16, True), (32, True), (64, True), (64, False), (128, True), (128, True))


def modern_schedule(peak: float = 2e-3, max_epochs: int = 40, warmup_epochs: int = 2,
                    ) -> warmup:
    """The learning rate of :func:`modern`: a linear warm-up, then half a cosine to ~0.

    Epoch 1 uses ``peak / 10``; the rate rises linearly to ``peak``, reached in epoch
    ``1 + warmup_epochs``, then falls along half a cosine to ``peak / 1000`` in the last
    epoch. Give it to ``AdjustVariable('update_learning_rate', schedule=...)``. The warm-up
    is a fraction of the run (``warmup_epochs / (max_epochs - 1)``, at most half of it), so
    a net whose ``max_epochs`` changes later keeps the same shape, stretched.

    Parameters
    ----------
    peak : float, default 2e-3
        The highest learning rate, at the end of the warm-up.
    max_epochs : int, default 40
        The run length the warm-up is measured against.
    warmup_epochs : int, default 2
        Epochs from the first to the one that uses ``peak``; 0 starts at ``peak``.

    Returns
    -------
    facekeypoints.schedules.warmup
        A picklable function of training progress.

    Raises
    ------
    ValueError
        If ``peak`` is not > 0, or ``warmup_epochs`` or ``max_epochs`` is negative.

    Examples
    --------
    >>> from facekeypoints.callbacks import AdjustVariable
    >>> from facekeypoints.presets import modern_schedule
    >>> adjust = AdjustVariable('update_learning_rate', schedule=modern_schedule(2e-3, 5))
    >>> [f"{lr:.2e}" for lr in adjust.simulate(5)]
    ['2.00e-04', '1.10e-03', '2.00e-03', '1.00e-03', '2.00e-06']
    """
    peak = float(peak)
    if not peak > 0:
        raise ValueError(f"the peak learning rate must be > 0, got {peak!r}")
    if int(max_epochs) < 1 or int(warmup_epochs) < 0:
        raise ValueError(f"max_epochs must be >= 1 and warmup_epochs >= 0, got "
                         f"{max_epochs!r} and {warmup_epochs!r}")
    fraction = min(int(warmup_epochs) / max(int(max_epochs) - 1, 1), 0.5)
    return warmup(fraction, cosine(peak, peak / 1000), start=peak / 10)


@preset
def modern(**overrides: Any) -> NeuralNet:
    """Build modern: BatchNorm conv blocks, AdamW, warm-up + cosine; affine aug, flips, TTA.

    Six blocks of a 3x3 'same' convolution without bias, a :class:`BatchNormLayer` and a
    ReLU (Lasagne's ``batch_norm(conv)``), with 16, 32, 64, 64, 128 and 128 filters; a
    2x2 max-pool follows every block but the fourth, so the last is 128 maps of 3x3. Then
    a dense layer of 256 ReLUs, a dropout layer (``dropout_p=0``: off, there to be tuned)
    and 30 linear outputs whose weights start at a tenth of the usual scale
    (``output_W=0.1``), so that the first predictions lie near the centre instead of tens
    of pixels off it. AdamW (:func:`facekeypoints.updates.adamw`) with learning rate 2e-3
    and weight decay 1e-2; the learning rate follows :func:`modern_schedule` (callback
    ``adjust_lr``): two warm-up epochs from a tenth of the peak, then half a cosine down
    to a thousandth. Training batches of 64 come shuffled from an
    :class:`~facekeypoints.augment.AffineBatchIterator`: each image rotated by up to 12
    degrees, scaled by up to 8% and shifted by up to 5 px, and half of them mirrored, with
    the keypoints moved exactly (replace it with one keyword, ``batch_iterator_train=``;
    ``FlipBatchIterator(64, shuffle=True)`` for flips only). ``predict`` averages each face
    with its mirror image (``tta=True``). 40 epochs.

    What is on by default was chosen by a side-by-side run at equal wall-clock time
    (``benchmarks/modern_ablation.py``, table in the README): on complete faces BatchNorm,
    geometric augmentation and flip TTA each helped. Partial labels (``fit`` on
    ``load2d(dropna=False)``) are supported but made a 4-minute run worse.

    On the embedded faces (1,700 training faces) an epoch took 5.7 s on a quiet 2-core AMD
    EPYC, against 9.2 s for net5 at batch 16. The net leaves the mean-keypoint plateau
    (3.6 px on the held-out faces) by its third epoch (2.1 px), where net5 needs 14 epochs
    of batch 16 and net4 30 or more of batch 128; 0.91 px after 46 epochs (4 minutes).

    ``max_epochs`` and a numeric ``update_learning_rate`` (the peak) given as overrides
    shape the schedule too; after construction, change it with
    ``set_params(callbacks__adjust_lr__schedule=modern_schedule(...))``.

    Examples
    --------
    >>> from facekeypoints import presets
    >>> net = presets.modern(max_epochs=20, verbose=0)
    >>> net.update.__name__, net.update_learning_rate, net.n_parameters()
    ('adamw', 0.002, 584974)
    """
    layers = [("input", InputLayer)]
    kwargs = {"input_shape": (None, 1, 96, 96)}
    for i, (filters, pool) in enumerate(_MODERN_BLOCKS, start=1):
        layers += [(f"conv{i}", Conv2DLayer), (f"bn{i}", BatchNormLayer)]
        kwargs.update({f"conv{i}_num_filters": filters, f"conv{i}_filter_size": (3, 3),
                       f"conv{i}_pad": "same", f"conv{i}_nonlinearity": None,
                       f"conv{i}_b": None, f"bn{i}_nonlinearity": "relu"})
        if pool:
            layers.append((f"pool{i}", MaxPool2DLayer))
            kwargs[f"pool{i}_pool_size"] = (2, 2)
    layers += [("hidden", DenseLayer), ("dropout", DropoutLayer), ("output", DenseLayer)]
    kwargs.update(hidden_num_units=256, dropout_p=0.0, output_num_units=30,
                  output_nonlinearity=None, output_W=0.1)
    max_epochs = overrides.get("max_epochs", 40)
    peak = overrides.get("update_learning_rate", 2e-3)
    peak = peak if isinstance(peak, (int, float)) else read_value(peak)
    kwargs.update(
        max_epochs=40, update=adamw, update_learning_rate=2e-3, update_weight_decay=1e-2,
        batch_iterator_train=AffineBatchIterator(batch_size=64, shuffle=True), tta=True,
        callbacks=[("adjust_lr", AdjustVariable(
            "update_learning_rate", schedule=modern_schedule(peak, max_epochs)))])
    return _make(layers, kwargs, overrides)


def available() -> tuple[str, ...]:
    """The names of every registered preset: the built-in ones, then yours, in order.

    Returns
    -------
    tuple of str
        Names :func:`get` takes.

    Examples
    --------
    >>> from facekeypoints import presets
    >>> presets.available()[:3]
    ('net1', 'net2', 'net3')
    """
    return tuple(PRESETS)


def get(name: str, **overrides: Any) -> NeuralNet:
    """Build a registered preset by name.

    Parameters
    ----------
    name : str
        One of :func:`available`: ``'net1'`` .. ``'net7'``, ``'modern'``, or one registered
        with :func:`preset`.
    **overrides
        ``NeuralNet`` keywords passed on to the preset.

    Returns
    -------
    NeuralNet
        A fresh, unfitted net.

    Raises
    ------
    ValueError
        If ``name`` is not a registered preset.

    Examples
    --------
    >>> from facekeypoints import presets
    >>> presets.get("net1", max_epochs=5).max_epochs
    5
    """
    factory = PRESETS.get(name)
    if factory is None:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return factory(**overrides)


#: The built-in presets' names, in order (what the command line offers): derived from the
#: registry when this module is defined, so presets registered later are not in it (see
#: :func:`available`).
NETS = tuple(PRESETS)
