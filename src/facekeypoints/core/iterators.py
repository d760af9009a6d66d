"""Batch iterators over tensors that already live on the training device.

``BatchIterator(batch_size)`` cuts consecutive slices (no copies, no per-sample Python), or
gathers the rows of a fresh random permutation when ``shuffle=True``; ``transform(Xb, yb)``
is the hook for augmentation. ``FlipBatchIterator`` mirrors a random half of every training
batch: images reversed along the width, x coordinates negated and left/right keypoint
columns swapped, all vectorised on fresh tensors.

Subclasses written for the old numpy-based nolearn (``transform`` doing numpy fancy
indexing) still work: unless the class that defines ``transform`` sets
``tensor_transform = True`` in its own body (facekeypoints' own classes count as having
set it), its ``transform`` receives numpy copies and its result is moved back to the
device (slower; write tensor code and set the flag for speed).

Iterators are scikit-learn style parameter holders: ``get_params``/``set_params`` cover the
constructor's parameters, so ``net.set_params(batch_iterator_train__batch_size=64)``,
``--set`` and sweep grids reach them; the constructor is the one place that checks a
setting (``set_params`` builds through it). Each class is registered
(:func:`facekeypoints.registry.register_iterator`), so model files save it as its kind and
parameters; decorate a subclass of your own the same way to save it too.
"""
from __future__ import annotations

import copy
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .data import FLIP_INDICES
from .layout import KAGGLE, KeypointLayout, flip_columns, permutation_from_pairs
from .registry import parameter_names, register_iterator

__all__ = ["BatchIterator", "FlipBatchIterator", "flip_permutation", "route_iterator_params"]

#: The net's parameters that hold iterators: ``<name>__<setting>`` reaches the iterator's own.
_ITERATOR_PARAMS = ("batch_iterator_train", "batch_iterator_test")


@register_iterator
class BatchIterator:
    """Yield ``(Xb, yb)`` batches of ``batch_size`` rows, in order unless ``shuffle``.

    Calling the iterator with data, ``it(X, y)``, returns a bound copy; iterating over that
    copy yields the batches (the last one may be shorter) and ``len`` gives their number.
    Subclasses override :meth:`transform` to augment each batch.

    Parameters
    ----------
    batch_size : int, default 128
        Rows per batch.
    shuffle : bool, default False
        Visit the rows in a new random order on every pass instead of in order.
    random_state : int, optional
        Seed for shuffling and augmentation (see :meth:`rng`); None draws one from torch's
        global generator. ``NeuralNet`` passes its own generator, seeded from this value
        when set (else from the net's ``random_state``).

    Raises
    ------
    ValueError
        If ``batch_size`` is not an integer of at least 1, ``shuffle`` is not a bool or
        ``random_state`` is neither None nor an integer.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.iterators import BatchIterator
    >>> X, y = torch.zeros(5, 4), torch.zeros(5, 2)
    >>> batches = BatchIterator(batch_size=2)(X, y)
    >>> len(batches), [tuple(Xb.shape) for Xb, yb in batches]
    (3, [(2, 4), (2, 4), (1, 4)])
    """

    tensor_transform = True

    def __init__(self, batch_size: int = 128, shuffle: bool = False,
                 random_state: int | None = None) -> None:
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
        if random_state is not None and not _is_int(random_state):
            raise ValueError(f"random_state must be None or an integer seed, got "
                             f"{random_state!r}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state

    # -- parameters (scikit-learn's protocol) ------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters and their values, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn; iterators hold no nested estimators.

        Returns
        -------
        dict
            ``{name: value}`` for every parameter of ``type(self).__init__`` kept as an
            attribute of the same name.
        """
        return {name: getattr(self, name) for name in parameter_names(type(self))
                if hasattr(self, name)}

    def set_params(self, **params: Any) -> BatchIterator:
        """Change constructor parameters, checked by the constructor itself.

        The new values are merged with the current ones and passed to ``type(self)(...)``,
        so a value the constructor refuses raises its own message and leaves this iterator
        unchanged; otherwise the iterator takes the new settings.

        Parameters
        ----------
        **params
            Constructor parameters, e.g. ``batch_size=64`` or ``rotate=45``.

        Returns
        -------
        BatchIterator
            ``self``.

        Raises
        ------
        ValueError
            For a name that is not a constructor parameter, or a value it refuses.

        Examples
        --------
        >>> from facekeypoints.iterators import FlipBatchIterator
        >>> FlipBatchIterator(128).set_params(batch_size=32, shuffle=True)
        FlipBatchIterator(batch_size=32)
        """
        if not params:
            return self
        names = parameter_names(type(self))
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter(s) {', '.join(unknown)}; "
                             f"it takes {', '.join(names) or 'none'}")
        try:
            fresh = type(self)(**{**self.get_params(), **params})
        except TypeError:       # a subclass whose constructor does not keep its parameters
            vars(self).update(params)
            return self
        keep = {k: v for k, v in vars(self).items() if k in ("X", "y", "generator")}
        vars(self).clear()
        vars(self).update(vars(fresh), **keep)
        return self

    def __sklearn_clone__(self) -> BatchIterator:
        """A deep copy without bound data (what ``sklearn.base.clone`` of a net makes)."""
        return copy.deepcopy(self)

    # -- binding ---------------------------------------------------------------------------
    def __call__(self, X: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray | None = None,
                 generator: torch.Generator | None = None) -> BatchIterator:
        """Return a copy of this iterator bound to the data (nolearn's calling convention)."""
        bound = copy.copy(self)
        bound.X, bound.y = X, y
        bound.generator = generator
        return bound

    def rng(self) -> torch.Generator:
        """Return the random generator of this bound iterator.

        The generator passed when binding is used if there was one; otherwise one is made on
        first use, on the device of ``X``, seeded with ``random_state``.

        Returns
        -------
        torch.Generator
            The generator for shuffling and augmentation.
        """
        if self.generator is None:
            device = self.X.device if isinstance(self.X, torch.Tensor) else "cpu"
            seed = self.random_state
            if seed is None:
                seed = int(torch.randint(0, 2**62, (1,)).item())
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(int(seed))
        return self.generator

    def __len__(self):
        if not hasattr(self, "X"):
            raise TypeError(f"{type(self).__name__} has no data yet: len() counts the batches "
                            "of a bound copy, it(X, y)")
        return (len(self.X) + self.batch_size - 1) // self.batch_size

    def __bool__(self):
        # An iterator is a setting, true whether or not it is bound (``it or default`` works).
        return True

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        X, y, bs = self.X, self.y, int(self.batch_size)
        n = len(X)
        order = None
        if self.shuffle:
            gen = self.rng()
            order = torch.randperm(n, generator=gen, device=gen.device)
        for start in range(0, n, bs):
            if order is None:
                Xb = X[start:start + bs]
                yb = y[start:start + bs] if y is not None else None
            else:
                idx = order[start:start + bs]
                Xb = X[idx]
                yb = y[idx] if y is not None else None
            yield self._apply_transform(Xb, yb)

    def _apply_transform(self, Xb, yb):
        if type(self).transform is BatchIterator.transform:
            return Xb, yb
        if self._transform_takes_tensors() or not isinstance(Xb, torch.Tensor):
            return self.transform(Xb, yb)
        # An old-style numpy transform: hand it numpy copies, bring the result back.
        device = Xb.device
        Xn = Xb.detach().cpu().numpy().copy()
        yn = yb.detach().cpu().numpy().copy() if yb is not None else None
        Xn, yn = self.transform(Xn, yn)
        Xt = torch.as_tensor(np.ascontiguousarray(Xn), device=device)
        yt = torch.as_tensor(np.ascontiguousarray(yn), device=device) if yn is not None else None
        return Xt, yt

    def _transform_takes_tensors(self):
        """True when ``transform`` is ours or its class says ``tensor_transform = True``."""
        owner = next(c for c in type(self).__mro__ if "transform" in vars(c))
        return vars(owner).get("tensor_transform", owner.__module__.startswith("facekeypoints."))

    def transform(self, Xb: torch.Tensor, yb: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the batch unchanged; override to augment it.

        Parameters
        ----------
        Xb : torch.Tensor
            The batch's inputs (numpy arrays for old-style subclasses, see the module notes).
        yb : torch.Tensor or None
            The batch's targets; None when predicting.

        Returns
        -------
        Xb : torch.Tensor
            The (new) inputs; do not change the caller's data in place.
        yb : torch.Tensor or None
            The (new) targets.
        """
        return Xb, yb

    def __repr__(self):
        return f"{type(self).__name__}(batch_size={self.batch_size})"

    # Bound data and the generator never travel with a pickle or deep copy (sklearn's clone).
    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("X", "y", "generator", "_permutations"):
            state.pop(key, None)
        return state


def route_iterator_params(net: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``batch_iterator_train__<name>`` (and ``_test``) settings to the net's iterators.

    What ``NeuralNet.set_params`` calls first: each such key goes to that iterator's own
    :meth:`BatchIterator.set_params` (the constructor checks it); the other keys are
    returned for skorch. An iterator given in the same call is the one changed; a net
    without one gets the default ``BatchIterator(128)`` first.

    Parameters
    ----------
    net : NeuralNet
        The net whose ``batch_iterator_train`` / ``batch_iterator_test`` to change.
    params : mapping
        ``set_params`` keywords.

    Returns
    -------
    dict
        The keywords left for skorch's ``set_params`` (a default iterator made here is among
        them, under its parameter name).

    Raises
    ------
    ValueError
        For a setting the iterator does not have or refuses (its own message, prefixed by
        the net parameter).

    Examples
    --------
    >>> import facekeypoints as fk
    >>> from facekeypoints.iterators import route_iterator_params
    >>> net = fk.presets.net3(verbose=0)
    >>> rest = route_iterator_params(net, {"batch_iterator_train__batch_size": 16,
    ...                                    "max_epochs": 5})
    >>> rest, net.batch_iterator_train.batch_size
    ({'max_epochs': 5}, 16)
    """
    rest = dict(params)
    for head in _ITERATOR_PARAMS:
        prefix = head + "__"
        settings = {k[len(prefix):]: rest.pop(k) for k in list(rest) if k.startswith(prefix)}
        if not settings:
            continue
        iterator = rest.get(head, getattr(net, head, None))
        if iterator is None:
            iterator = rest[head] = BatchIterator(128)
        if not callable(getattr(iterator, "set_params", None)):
            raise ValueError(f"{head} is {iterator!r}, which has no set_params; give "
                             f"{head}=<a BatchIterator> to change {', '.join(settings)}")
        try:
            iterator.set_params(**settings)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{head}: {exc}") from None
    return rest


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _as_layout(layout):
    """None, a KeypointLayout, or its ``to_dict()`` form -> a KeypointLayout (or None)."""
    if layout is None or isinstance(layout, KeypointLayout):
        return layout
    if isinstance(layout, Mapping):
        return KeypointLayout.from_dict(layout)
    raise ValueError(f"layout must be a facekeypoints.layout.KeypointLayout (or None), got "
                     f"{type(layout).__name__}")


def _check_flip_indices(flip_indices):
    """Pairs of distinct, non-negative column indices, each column in one pair at most."""
    try:
        pairs = [tuple(p) for p in flip_indices]
    except TypeError:
        pairs = None
    if pairs is None or not all(len(p) == 2 and all(_is_int(i) and i >= 0 for i in p)
                                for p in pairs):
        raise ValueError(f"flip_indices must be pairs of target column indices such as "
                         f"[(0, 2), (1, 3)], got {str(flip_indices)[:80]}")
    used = [int(i) for p in pairs for i in p]
    if len(set(used)) != len(used):
        raise ValueError(f"a target column is in two flip_indices pairs: {pairs}")
    return tuple((int(a), int(b)) for a, b in pairs)


def flip_permutation(n_columns: int, flip_indices: Sequence[tuple[int, int]]) -> np.ndarray:
    """Return the column order that swaps every (left, right) pair.

    The old name of :func:`facekeypoints.layout.permutation_from_pairs`.

    Parameters
    ----------
    n_columns : int
        Number of target columns.
    flip_indices : sequence of (int, int)
        Pairs of column indices to swap.

    Returns
    -------
    numpy.ndarray
        ``perm`` such that ``y[:, perm]`` has every pair swapped.

    Raises
    ------
    ValueError
        If a pair names a column outside ``range(n_columns)``.

    Examples
    --------
    >>> from facekeypoints.iterators import flip_permutation
    >>> flip_permutation(6, [(0, 2), (1, 3)]).tolist()
    [2, 3, 0, 1, 4, 5]
    """
    return permutation_from_pairs(n_columns, flip_indices)


@register_iterator
class FlipBatchIterator(BatchIterator):
    """Mirror exactly half of each training batch (chosen at random, without replacement).

    Images are reversed along the width; every x target (even column) is negated and the
    ``flip_indices`` pairs are swapped (the layout's flip rule,
    :meth:`facekeypoints.layout.KeypointLayout.flip_targets` and ``mirror_images``). Works
    on copies: the caller's data never changes. An odd-sized batch has one row fewer
    mirrored than kept.

    Parameters
    ----------
    batch_size : int, default 128
        Rows per batch.
    flip_indices : sequence of (int, int), default FLIP_INDICES
        Pairs of target columns that trade places when a face is mirrored (left eye and
        right eye, ...); the default fits the 30 Kaggle keypoint columns.
    shuffle : bool, default False
        Visit the rows in a new random order on every pass.
    random_state : int, optional
        Seed for shuffling and for choosing the rows to mirror.
    layout : KeypointLayout, optional
        The targets' layout (a subset's, for fewer keypoints): its flip pairs replace
        ``flip_indices``, which is then left at its default.

    Raises
    ------
    ValueError
        For flip pairs that are not pairs of column indices (or share a column), a
        ``layout`` that is not one, or both ``layout`` and other ``flip_indices``; and
        for the settings :class:`BatchIterator` checks.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.iterators import FlipBatchIterator
    >>> X = torch.arange(16.).reshape(4, 1, 2, 2)
    >>> y = torch.tensor([[-0.5, 0.1, 0.5, 0.2]]).repeat(4, 1)
    >>> it = FlipBatchIterator(batch_size=4, flip_indices=[(0, 2), (1, 3)], random_state=0)
    >>> Xb, yb = next(iter(it(X, y)))
    >>> flipped = (yb != y).any(dim=1)
    >>> int(flipped.sum()), torch.equal(Xb[flipped], X[flipped].flip(-1))
    (2, True)
    >>> [round(v, 2) for v in yb[flipped][0].tolist()]
    [-0.5, 0.2, 0.5, 0.1]
    """

    layout = None       # the default, also for iterators pickled before it was a parameter

    def __init__(self, batch_size: int = 128,
                 flip_indices: Sequence[tuple[int, int]] = FLIP_INDICES,
                 shuffle: bool = False, random_state: int | None = None,
                 layout: KeypointLayout | None = None) -> None:
        super().__init__(batch_size, shuffle=shuffle, random_state=random_state)
        self.flip_indices = flip_indices
        self.layout = layout
        self.flip_pairs()                     # checked here, once

    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """The column pairs this iterator swaps: the layout's, else ``flip_indices``.

        Returns
        -------
        tuple of (int, int)
            Column-index pairs.

        Raises
        ------
        ValueError
            As the constructor does.
        """
        layout = _as_layout(self.layout)
        pairs = _check_flip_indices(self.flip_indices)
        if layout is None:
            return pairs
        if pairs not in (tuple(FLIP_INDICES), layout.column_flip_pairs):
            raise ValueError("give the flip pairs once: layout= (its pairs) or flip_indices=, "
                             "not both")
        return layout.column_flip_pairs

    def _permutation(self, n_columns, device):
        """The flip permutation as a tensor on ``device``, made once per bound iterator."""
        cache = vars(self).setdefault("_permutations", {})
        key = (n_columns, str(device))
        if key not in cache:
            layout = _as_layout(self.layout)
            if layout is not None and 2 * layout.n_keypoints != n_columns:
                raise ValueError(f"targets have {n_columns} columns; the iterator's layout has "
                                 f"{2 * layout.n_keypoints}")
            perm = permutation_from_pairs(n_columns, self.flip_pairs())
            cache[key] = torch.as_tensor(perm, device=device)
        return cache[key]

    def transform(self, Xb: torch.Tensor, yb: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mirror a random half of the batch and adjust its targets to match.

        Parameters
        ----------
        Xb : torch.Tensor
            Images, ``(n, channels, height, width)`` or flat square rows ``(n, side * side)``.
        yb : torch.Tensor or None
            Keypoint targets ``(n, k)``, x and y alternating; None when predicting.

        Returns
        -------
        Xb : torch.Tensor
            A new tensor with the chosen rows mirrored.
        yb : torch.Tensor or None
            A new tensor with the chosen rows' x negated and pairs swapped.
        """
        n = Xb.shape[0]
        gen = self.rng()
        chosen = torch.randperm(n, generator=gen, device=gen.device)[: n // 2]
        chosen = chosen.to(Xb.device)
        mask = torch.zeros(n, dtype=torch.bool, device=Xb.device)
        mask[chosen] = True
        mirrored = (_as_layout(self.layout) or KAGGLE).mirror_images(Xb)
        Xb = torch.where(mask.view(-1, *([1] * (Xb.dim() - 1))), mirrored, Xb)
        if yb is not None:
            flipped = flip_columns(yb, self._permutation(yb.shape[1], yb.device))
            yb = torch.where(mask.view(-1, 1), flipped, yb)
        return Xb, yb

