"""Shared hyperparameters: mutable float32 boxes that callbacks change between epochs.

The old recipe kept the learning rate and momentum in Theano shared variables so that an
``on_epoch_finished`` callback could ``set_value`` them while training ran. ``shared`` gives
the same two methods; the net reads the value at the start of every epoch.

This module imports numpy only, so ``import facekeypoints`` stays fast.
"""
from __future__ import annotations

import numbers
from typing import Any, SupportsFloat

import numpy as np

__all__ = ["SharedVariable", "float32", "is_shared", "read_value", "shared"]


def float32(x: SupportsFloat | str) -> np.float32:
    """Return ``x`` as a numpy float32 scalar (the old recipe's ``float32`` helper).

    Parameters
    ----------
    x : float-like or str
        A Python or numpy number, a 0-d array, or a numeric string.

    Returns
    -------
    numpy.float32
        ``numpy.float32(x)``.

    Examples
    --------
    >>> from facekeypoints import float32
    >>> float32(0.03).dtype
    dtype('float32')
    """
    return np.float32(x)


class SharedVariable:
    """A float32 value with ``get_value``/``set_value``, like a Theano shared scalar.

    Create one with :func:`shared`. Two boxes compare equal when they hold the same value
    (scikit-learn's ``clone`` compares parameters that way); each box still hashes by identity.

    Parameters
    ----------
    value : float-like
        The initial value: one real number (a Python or numpy scalar, or a 0-d array).
    name : str, optional
        A label shown in the ``repr``.

    Raises
    ------
    TypeError
        If ``value`` is not a single number.

    See Also
    --------
    shared : The recipe's way to create one.

    Examples
    --------
    >>> from facekeypoints.shared import SharedVariable
    >>> momentum = SharedVariable(0.9, name="momentum")
    >>> momentum.set_value(0.95)
    >>> print(momentum.get_value())
    0.95
    """

    def __init__(self, value: SupportsFloat, name: str | None = None) -> None:
        self.name = name
        self.set_value(value)

    def get_value(self) -> np.float32:
        """Return the current value.

        Returns
        -------
        numpy.float32
            The value, as float32.
        """
        return np.float32(self._value)

    def set_value(self, value: SupportsFloat) -> None:
        """Replace the value; it is stored as float32.

        Parameters
        ----------
        value : float-like
            One real number (a Python or numpy scalar, or a 0-d array).

        Raises
        ------
        TypeError
            If ``value`` is an array with more than one element, or not numeric.
        """
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


def shared(value: SupportsFloat, name: str | None = None) -> SharedVariable:
    """Create a shared float32 hyperparameter, e.g. ``shared(float32(0.03))``.

    Parameters
    ----------
    value : float-like
        The initial value: one real number.
    name : str, optional
        A label shown in the ``repr``.

    Returns
    -------
    SharedVariable
        A box with ``get_value()`` and ``set_value(v)``.

    Examples
    --------
    >>> from facekeypoints import float32, shared
    >>> lr = shared(float32(0.03))
    >>> lr.set_value(float32(0.01))
    >>> print(lr.get_value())
    0.01
    """
    return SharedVariable(value, name=name)


def is_shared(obj: Any) -> bool:
    """Tell whether ``obj`` has callable ``get_value`` and ``set_value`` methods.

    That covers this module's :class:`SharedVariable` as well as Theano's and PyTensor's
    shared variables.

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool
        True when both methods exist and are callable.

    Examples
    --------
    >>> from facekeypoints.shared import is_shared, shared
    >>> is_shared(shared(0.1)), is_shared(0.1)
    (True, False)
    """
    return callable(getattr(obj, "get_value", None)) and callable(getattr(obj, "set_value", None))


def read_value(obj: Any) -> float:
    """Return the current number behind a plain number or a shared variable.

    Parameters
    ----------
    obj : float-like or shared variable
        A Python or numpy number, a numpy array of one element, or anything
        :func:`is_shared` accepts (its ``get_value()`` is read).

    Returns
    -------
    float
        The value as a Python float.

    Raises
    ------
    TypeError
        If the value is not a number or a numpy array.

    Examples
    --------
    >>> from facekeypoints.shared import read_value, shared
    >>> read_value(shared(0.5)), read_value(2)
    (0.5, 2.0)
    """
    value = obj.get_value() if is_shared(obj) else obj
    if not isinstance(value, (numbers.Number, np.number, np.ndarray)):
        raise TypeError(f"expected a number or a shared variable, got {obj!r}")
    return float(value)
