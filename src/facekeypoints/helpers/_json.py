"""Python values as plain JSON (one converter, strict or lenient) and the one JSON writer.

Every JSON text facekeypoints prints or writes goes through :func:`dumps`, which never emits
``NaN`` or ``Infinity`` (Python's ``json`` does by default; standard parsers reject them): a
value that is not a finite number is written as ``null``.
"""
from __future__ import annotations

import json
import math
import numbers

import numpy as np


def jsonable(value, fallback=None):
    """``value`` with tuples as lists and numpy scalars as Python numbers.

    Anything else that JSON cannot hold goes through ``fallback`` (e.g. ``repr``); without one
    it raises ``TypeError``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v, fallback) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v, fallback) for k, v in value.items()}
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        return float(value)
    if fallback is not None:
        return fallback(value)
    raise TypeError(value)


def strict(value, default=None):
    """``value`` as plain JSON data with ``None`` for every NaN or infinite number.

    Tuples, sets of keys and numpy arrays become lists, numpy scalars Python numbers, dict keys
    strings; anything else goes through ``default`` (e.g. ``str``), or raises ``TypeError``.
    What ``default`` returns is converted the same way.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, dict):
        return {str(k): strict(v, default) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v, default) for v in value]
    if isinstance(value, np.ndarray):
        return strict(value.tolist(), default)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if default is not None:
        return strict(default(value))
    raise TypeError(f"{type(value).__name__} is not JSON data")


def dumps(value, *, indent=None, default=None) -> str:
    """Standard JSON text of ``value``: ``null`` where a number is NaN or infinite.

    Parameters
    ----------
    value : object
        Plain data (dicts, lists, numbers, strings, None), numpy scalars and arrays included.
    indent : int, optional
        As ``json.dumps``.
    default : callable, optional
        Converts what is not JSON data (e.g. ``str``); without one such a value raises
        ``TypeError``.

    Returns
    -------
    str
        Text that any JSON parser reads (``allow_nan=False`` holds by construction).

    Examples
    --------
    >>> dumps({"x": float("nan"), "n": np.int64(3)})
    '{"x": null, "n": 3}'
    """
    return json.dumps(strict(value, default), indent=indent, allow_nan=False)
