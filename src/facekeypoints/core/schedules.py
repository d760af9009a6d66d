"""Schedules: small functions of training progress, composed into warm-ups and decays.

A schedule is any callable ``f(progress) -> float``, where ``progress`` runs from 0 (the first
epoch) to 1 (the last). Give one to :class:`facekeypoints.AdjustVariable` as ``schedule=``::

    from facekeypoints.schedules import cosine, warmup

    # 5% linear warm-up from 1e-4 to 0.03, then half a cosine down to 1e-4
    fk.AdjustVariable('update_learning_rate',
                      schedule=warmup(0.05, cosine(0.03, 1e-4), start=1e-4))

The building blocks follow fastai's ``callback/schedule.py`` (``SchedLin``, ``SchedCos``,
``SchedExp``, ``SchedNo``, ``combine_scheds``), written as small classes rather than closures
so that they pickle (nets are pickled, cloned by scikit-learn, sent to Dask or loky workers
and checkpointed), compare equal when built alike, and print as the call that made them.
Every schedule gives exactly its ``start`` at progress 0 and its ``stop`` at 1.

A plain function works as a schedule too; define it at module level (not as a lambda) when
the net has to be pickled. Subclass :class:`Schedule` to get the repr and equality for free.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable

__all__ = ["Schedule", "constant", "cosine", "exponential", "join", "linear", "one_cycle",
           "one_cycle_momentum", "warmup"]

#: A piece of :class:`join`: the fraction of training it covers, and its schedule.
Piece = tuple[float, Callable[[float], float]]


class Schedule:
    """Base class of the schedules here: a picklable callable of progress in [0, 1].

    Subclasses store their constructor arguments, list their names in ``_fields`` and
    implement ``_at(progress)``; ``__call__`` checks the progress, and the repr, equality and
    hash come from the fields.

    Examples
    --------
    >>> class step(Schedule):
    ...     _fields = ("high", "low")
    ...     def __init__(self, high, low):
    ...         self.high, self.low = float(high), float(low)
    ...     def _at(self, progress):
    ...         return self.high if progress < 0.5 else self.low
    >>> step(1, 0.1)
    step(1.0, 0.1)
    >>> step(1, 0.1)(0.75)
    0.1
    """

    _fields: tuple[str, ...] = ()

    def __call__(self, progress: float) -> float:
        """The value at ``progress`` (0 = first epoch, 1 = last)."""
        progress = float(progress)
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"{self!r}: progress must be in [0, 1], got {progress}")
        return float(self._at(progress))

    def _at(self, progress):
        raise NotImplementedError

    def _values(self):
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(repr(v) for v in self._values())})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self):
        return hash((type(self).__name__, self._values()))


class linear(Schedule):
    """Straight line from ``start`` (progress 0) to ``stop`` (progress 1).

    Parameters
    ----------
    start : float
        The value at progress 0.
    stop : float
        The value at progress 1.

    Examples
    --------
    >>> linear(0.03, 0.01)(0.5)
    0.02
    """

    _fields = ("start", "stop")

    def __init__(self, start: float, stop: float):
        self.start, self.stop = float(start), float(stop)

    def _at(self, progress):
        return self.start * (1 - progress) + self.stop * progress  # exact at both ends


class cosine(Schedule):
    """Half a cosine from ``start`` to ``stop``: slow at both ends, fast in the middle.

    Parameters
    ----------
    start : float
        The value at progress 0.
    stop : float
        The value at progress 1.

    Examples
    --------
    >>> cosine(1.0, 0.0)(0.5)
    0.5
    """

    _fields = ("start", "stop")

    def __init__(self, start: float, stop: float):
        self.start, self.stop = float(start), float(stop)

    def _at(self, progress):
        weight = (1 + math.cos(math.pi * progress)) / 2   # 1 at 0, exactly 0 at 1
        return self.start * weight + self.stop * (1 - weight)


class exponential(Schedule):
    """Geometric interpolation from ``start`` to ``stop``: the same factor every epoch.

    Parameters
    ----------
    start : float
        The value at progress 0; must be > 0.
    stop : float
        The value at progress 1; must be > 0.

    Raises
    ------
    ValueError
        When ``start`` or ``stop`` is not > 0.

    Examples
    --------
    >>> round(exponential(1.0, 0.01)(0.5), 12)
    0.1
    """

    _fields = ("start", "stop")

    def __init__(self, start: float, stop: float):
        self.start, self.stop = float(start), float(stop)
        if not (self.start > 0 and self.stop > 0):
            raise ValueError(f"exponential needs start > 0 and stop > 0, got "
                             f"start={start!r}, stop={stop!r}")

    def _at(self, progress):
        return self.start ** (1 - progress) * self.stop ** progress  # exact at both ends


class constant(Schedule):
    """The same ``value`` all the way.

    Parameters
    ----------
    value : float
        The value at every progress.

    Examples
    --------
    >>> constant(0.9)(0.3)
    0.9
    """

    _fields = ("value",)

    def __init__(self, value: float):
        self.value = float(value)

    def _at(self, progress):
        return self.value


class join(Schedule):
    """Run schedules one after another, each over its own fraction of training.

    Piece ``i`` sees its own progress from 0 to 1 while the overall progress crosses its
    fraction (fastai's ``combine_scheds``). A boundary belongs to the piece that starts there.

    Parameters
    ----------
    *pieces : tuple of (float, callable)
        ``(fraction, schedule)`` pairs, in order; fractions are > 0 and sum to 1.

    Raises
    ------
    ValueError
        When there are no pieces, a fraction is not > 0, or the fractions do not sum to 1.

    See Also
    --------
    warmup : a linear warm-up joined to a schedule, the common case.

    Examples
    --------
    >>> s = join((0.25, linear(0.0, 1.0)), (0.75, cosine(1.0, 0.0)))
    >>> [s(p) for p in (0.0, 0.125, 0.25, 1.0)]
    [0.0, 0.5, 1.0, 0.0]
    """

    _fields = ("pieces",)

    def __init__(self, *pieces: Piece):
        self.pieces = tuple((float(fraction), schedule) for fraction, schedule in pieces)
        if not self.pieces:
            raise ValueError("join needs at least one (fraction, schedule) piece")
        for fraction, schedule in self.pieces:
            if not fraction > 0:
                raise ValueError(f"join: every fraction must be > 0, got {fraction}")
            if not callable(schedule):
                raise ValueError(f"join: {schedule!r} is not a schedule (a callable)")
        total = math.fsum(fraction for fraction, _ in self.pieces)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"join: the fractions must sum to 1, got {total:g}")
        starts, edge = [], 0.0
        for fraction, _ in self.pieces:
            starts.append(round(edge, 12))  # 0.1 + 0.2 is 0.30000000000000004: the user meant 0.3
            edge += fraction
        self._starts = starts
        self._ends = starts[1:] + [1.0]

    def _at(self, progress):
        i = min(max(bisect.bisect_right(self._starts, progress) - 1, 0), len(self.pieces) - 1)
        lo, hi = self._starts[i], self._ends[i]
        local = min(max((progress - lo) / (hi - lo), 0.0), 1.0)
        return self.pieces[i][1](local)

    def __repr__(self):
        return f"join({', '.join(repr(piece) for piece in self.pieces)})"


class warmup(Schedule):
    """A linear warm-up from ``start`` over the first ``fraction`` of training, then ``then``.

    The warm-up ends at ``then(0)``, so the two pieces meet without a jump; ``then`` is
    squeezed into the rest of training. The same as
    ``join((fraction, linear(start, then(0))), (1 - fraction, then))``.

    Parameters
    ----------
    fraction : float
        The part of training spent warming up, in [0, 1); 0 means no warm-up.
    then : callable
        The schedule after the warm-up, e.g. ``cosine(0.03, 1e-4)``.
    start : float, default 0.0
        The value in the first epoch.

    Raises
    ------
    ValueError
        When ``fraction`` is outside [0, 1) or ``then`` is not callable.

    Examples
    --------
    >>> s = warmup(0.2, linear(1.0, 0.0), start=0.0)
    >>> [round(s(p), 12) for p in (0.0, 0.1, 0.2, 0.6, 1.0)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    _fields = ("fraction", "then", "start")

    def __init__(self, fraction: float, then: Callable[[float], float], start: float = 0.0):
        self.fraction, self.then, self.start = float(fraction), then, float(start)
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"warmup: fraction must be in [0, 1), got {fraction}")
        if not callable(then):
            raise ValueError(f"warmup: then={then!r} is not a schedule (a callable)")
        self._joined = (then if self.fraction == 0 else
                        join((self.fraction, linear(self.start, then(0.0))),
                             (1.0 - self.fraction, then)))

    def _at(self, progress):
        return self._joined(progress)

    def __repr__(self):
        return f"warmup({self.fraction!r}, {self.then!r}, start={self.start!r})"


class one_cycle(Schedule):
    """The learning rate of fastai's ``fit_one_cycle``: up to ``lr_max``, then far below.

    Half a cosine from ``lr_max / div`` up to ``lr_max`` over the first ``pct_start`` of
    training, then half a cosine down to ``lr_max / (div * div_final)`` (fastai's defaults:
    ``pct_start=0.25``, ``div=25``, ``div_final=1e5``). Pair it with
    :class:`one_cycle_momentum`, which moves the momentum the opposite way::

        fk.AdjustVariable('update_learning_rate', schedule=one_cycle(0.03))
        fk.AdjustVariable('update_momentum', schedule=one_cycle_momentum())

    Parameters
    ----------
    lr_max : float
        The peak learning rate (> 0).
    pct_start : float, default 0.25
        The part of training spent rising, in (0, 1).
    div : float, default 25.0
        The first value is ``lr_max / div`` (>= 1).
    div_final : float, default 1e5
        The last value is ``lr_max / (div * div_final)`` (>= 1).

    Raises
    ------
    ValueError
        For values outside those ranges.

    Examples
    --------
    >>> s = one_cycle(0.05, pct_start=0.25, div=25, div_final=1e4)
    >>> [round(s(p), 8) for p in (0.0, 0.25, 1.0)]
    [0.002, 0.05, 2e-07]
    """

    _fields = ("lr_max", "pct_start", "div", "div_final")

    def __init__(self, lr_max: float, pct_start: float = 0.25, div: float = 25.0,
                 div_final: float = 1e5):
        self.lr_max, self.pct_start = float(lr_max), float(pct_start)
        self.div, self.div_final = float(div), float(div_final)
        if not (self.lr_max > 0 and 0 < self.pct_start < 1 and self.div >= 1
                and self.div_final >= 1):
            raise ValueError(f"one_cycle needs lr_max > 0, 0 < pct_start < 1, div >= 1 and "
                             f"div_final >= 1; got {self!r}")
        self._joined = join((self.pct_start, cosine(self.lr_max / self.div, self.lr_max)),
                            (1 - self.pct_start,
                             cosine(self.lr_max, self.lr_max / (self.div * self.div_final))))

    def _at(self, progress):
        return self._joined(progress)


class one_cycle_momentum(Schedule):
    """The momentum of fastai's ``fit_one_cycle``: down while the learning rate rises, back up.

    Half a cosine from ``high`` to ``low`` over the first ``pct_start`` of training, then from
    ``low`` back to ``high`` (fastai's ``moms=(0.95, 0.85, 0.95)``). Use the same
    ``pct_start`` as the :class:`one_cycle` it goes with. For Adam-style rules, the momentum
    is ``beta1`` (``update_beta1``).

    Parameters
    ----------
    high : float, default 0.95
        The momentum at the start and at the end.
    low : float, default 0.85
        The momentum at the learning rate's peak.
    pct_start : float, default 0.25
        The part of training spent going down, in (0, 1).

    Raises
    ------
    ValueError
        For ``pct_start`` outside (0, 1).

    Examples
    --------
    >>> m = one_cycle_momentum()
    >>> [round(m(p), 6) for p in (0.0, 0.25, 1.0)]
    [0.95, 0.85, 0.95]
    """

    _fields = ("high", "low", "pct_start")

    def __init__(self, high: float = 0.95, low: float = 0.85, pct_start: float = 0.25):
        self.high, self.low, self.pct_start = float(high), float(low), float(pct_start)
        if not 0 < self.pct_start < 1:
            raise ValueError(f"one_cycle_momentum needs 0 < pct_start < 1, got {pct_start!r}")
        self._joined = join((self.pct_start, cosine(self.high, self.low)),
                            (1 - self.pct_start, cosine(self.low, self.high)))

    def _at(self, progress):
        return self._joined(progress)
