"""The recipe's nets, net1..net7, as factories of fresh, unfitted NeuralNets.

Each takes keyword overrides (``net4(max_epochs=50, verbose=0)``). Schedules are named
callbacks, so ``set_params(callbacks__adjust_lr__stop=1e-3)`` works.
"""
from __future__ import annotations

from .callbacks import AdjustVariable, EarlyStopping
from .iterators import FlipBatchIterator
from .layers import Conv2DLayer, DenseLayer, DropoutLayer, InputLayer, MaxPool2DLayer
from .net import NeuralNet
from .shared import float32, shared

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


def net1(**overrides):
    """One hidden layer of 100 units on the flat 9,216 pixels; fixed lr 0.01 / momentum 0.9."""
    layers = [("input", InputLayer), ("hidden", DenseLayer), ("output", DenseLayer)]
    kwargs = dict(input_shape=(None, 9216), hidden_num_units=100, output_num_units=30,
                  output_nonlinearity=None, update_learning_rate=0.01, update_momentum=0.9,
                  max_epochs=400)
    return _make(layers, kwargs, overrides)


def net2(**overrides):
    """Three conv/pool stages and two dense layers of 500; fixed lr 0.01 / momentum 0.9."""
    layers, kwargs = _conv_architecture()
    kwargs.update(update_learning_rate=0.01, update_momentum=0.9, max_epochs=1000)
    return _make(layers, kwargs, overrides)


def net3(**overrides):
    """net2 with flipped training batches."""
    layers, kwargs = _conv_architecture()
    kwargs.update(update_learning_rate=0.01, update_momentum=0.9, max_epochs=3000,
                  batch_iterator_train=FlipBatchIterator(batch_size=128))
    return _make(layers, kwargs, overrides)


def net4(**overrides):
    """net2 with the linear learning-rate and momentum schedule."""
    layers, kwargs = _conv_architecture()
    kwargs.update(max_epochs=3000, **_schedule())
    return _make(layers, kwargs, overrides)


def net5(**overrides):
    """net4 with flipped training batches."""
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


def net6(**overrides):
    """net5 with dropout 0.1/0.2/0.3 after the pools and 0.5 after hidden4; early stopping."""
    return _dropout_net(500, 3000, overrides)


def net7(**overrides):
    """net6 with 1,000-unit hidden layers, trained up to 10,000 epochs."""
    return _dropout_net(1000, 10000, overrides)


def get(name, **overrides):
    """A preset by name ('net1'..'net7')."""
    if name not in NETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(NETS)}")
    return globals()[name](**overrides)
