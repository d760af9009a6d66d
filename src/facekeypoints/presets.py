"""The recipe's nets, net1..net7, as factories of fresh, unfitted NeuralNets.

Each takes keyword overrides (``net4(max_epochs=50, verbose=0)``). Schedules are named
callbacks, so ``set_params(callbacks__adjust_lr__stop=1e-3)`` works.

Every preset is a regression net with ``verbose=1`` on ``(None, 1, 96, 96)`` inputs (net1:
flat 9,216 pixels) and 30 linear outputs, trained with Nesterov momentum.

Examples
--------
>>> from facekeypoints import presets
>>> net = presets.net4(max_epochs=50, verbose=0)
>>> net.max_epochs, [name for name, _ in net.callbacks]
(50, ['adjust_lr', 'adjust_momentum'])
"""
from __future__ import annotations

from typing import Any

from .callbacks import AdjustVariable, EarlyStopping
from .iterators import FlipBatchIterator
from .layers import Conv2DLayer, DenseLayer, DropoutLayer, InputLayer, MaxPool2DLayer
from .net import NeuralNet
from .shared import float32, shared

__all__ = ["NETS", "get", "net1", "net2", "net3", "net4", "net5", "net6", "net7"]

NETS = ("net1", "net2", "net3", "net4", "net5", "net6", "net7")


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
    return NeuralNet(layers=layers, **params)


def net1(**overrides: Any) -> NeuralNet:
    """Build net1: 100 hidden units on the flat 9,216 pixels; fixed lr 0.01 / momentum 0.9.

    Up to 400 epochs.

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
    layers = [("input", InputLayer), ("hidden", DenseLayer), ("output", DenseLayer)]
    kwargs = dict(input_shape=(None, 9216), hidden_num_units=100, output_num_units=30,
                  output_nonlinearity=None, update_learning_rate=0.01, update_momentum=0.9,
                  max_epochs=400)
    return _make(layers, kwargs, overrides)


def net2(**overrides: Any) -> NeuralNet:
    """Build net2: three conv/pool stages, two dense layers of 500; fixed lr 0.01, momentum 0.9.

    Conv 32@3x3, 64@2x2 and 128@2x2, each followed by a 2x2 max-pool; up to 1,000 epochs.

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
    layers, kwargs = _conv_architecture()
    kwargs.update(update_learning_rate=0.01, update_momentum=0.9, max_epochs=1000)
    return _make(layers, kwargs, overrides)


def net3(**overrides: Any) -> NeuralNet:
    """Build net3: net2 with flipped training batches.

    Training batches come from a ``FlipBatchIterator(batch_size=128)``; up to 3,000 epochs.

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
    layers, kwargs = _conv_architecture()
    kwargs.update(update_learning_rate=0.01, update_momentum=0.9, max_epochs=3000,
                  batch_iterator_train=FlipBatchIterator(batch_size=128))
    return _make(layers, kwargs, overrides)


def net4(**overrides: Any) -> NeuralNet:
    """Build net4: net2 with the linear learning-rate and momentum schedule.

    The learning rate falls from 0.03 to 0.0001 and the momentum rises from 0.9 to 0.999
    (callbacks ``adjust_lr`` and ``adjust_momentum``); up to 3,000 epochs.

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
    layers, kwargs = _conv_architecture()
    kwargs.update(max_epochs=3000, **_schedule())
    return _make(layers, kwargs, overrides)


def net5(**overrides: Any) -> NeuralNet:
    """Build net5: net4 with flipped training batches.

    Up to 3,000 epochs.

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


def net6(**overrides: Any) -> NeuralNet:
    """Build net6: net5 with dropout (0.1/0.2/0.3 after the pools, 0.5 after hidden4).

    Early stopping (callback ``early_stopping``) waits 200 epochs for a better validation
    loss; up to 3,000 epochs.

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
    return _dropout_net(500, 3000, overrides)


def net7(**overrides: Any) -> NeuralNet:
    """Build net7: net6 with 1,000-unit hidden layers, trained up to 10,000 epochs.

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
    return _dropout_net(1000, 10000, overrides)


def get(name: str, **overrides: Any) -> NeuralNet:
    """Build a preset by name.

    Parameters
    ----------
    name : str
        One of ``NETS``: ``'net1'`` .. ``'net7'``.
    **overrides
        ``NeuralNet`` keywords passed on to the preset.

    Returns
    -------
    NeuralNet
        A fresh, unfitted net.

    Raises
    ------
    ValueError
        If ``name`` is not a preset.

    Examples
    --------
    >>> from facekeypoints import presets
    >>> presets.get("net1", max_epochs=5).max_epochs
    5
    """
    if name not in NETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(NETS)}")
    return globals()[name](**overrides)
