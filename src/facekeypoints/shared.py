"""Shared hyperparameters: mutable float32 boxes that callbacks change between epochs.

The old recipe kept the learning rate and momentum in Theano shared variables so that an
``on_epoch_finished`` callback could ``set_value`` them while training ran. ``shared`` gives
the same two methods; the net reads the value at the start of every epoch.
"""
from __future__ import annotations

import numbers

import numpy as np


def float32(x):
    """Return ``x`` as a numpy float32 scalar (the old recipe's ``float32`` helper)."""
    return np.float32(x)


class SharedVariable:
    """A float32 value with ``get_value``/``set_value``, like a Theano shared scalar."""

    def __init__(self, value, name=None):
        self.name = name
        self.set_value(value)

    def get_value(self):
        return np.float32(self._value)

    def set_value(self, value):
        value = np.asarray(value)
        if value.ndim != 0 or not np.issubdtype(value.dtype, np.number):
            raise TypeError(
                f"shared hyperparameters hold one number; got {value!r}. "
                "Pass a float, e.g. shared(float32(0.03)).")
        self._value = np.float32(value)

    def __float__(self):
        return float(self._value)

    def __repr__(self):
        label = f", name={self.name!r}" if self.name else ""
        return f"shared({float(self._value)!r}{label})"

    def __eq__(self, other):
        # Two boxes are equal when they hold the same value: sklearn's clone compares params.
        if isinstance(other, SharedVariable):
            return float(self) == float(other)
        return NotImplemented

    __hash__ = object.__hash__


def shared(value, name=None):
    """Create a shared float32 hyperparameter, e.g. ``shared(float32(0.03))``."""
    return SharedVariable(value, name=name)


def is_shared(obj):
    """True for anything with ``get_value`` and ``set_value`` (ours, Theano's, PyTensor's)."""
    return callable(getattr(obj, "get_value", None)) and callable(getattr(obj, "set_value", None))


def read_value(obj):
    """The current number behind a float or a shared variable, as a Python float."""
    value = obj.get_value() if is_shared(obj) else obj
    if not isinstance(value, (numbers.Number, np.number, np.ndarray)):
        raise TypeError(f"expected a number or a shared variable, got {obj!r}")
    return float(value)
