"""Python values as plain JSON (one converter, strict or lenient)."""
from __future__ import annotations

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
