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
"""
from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .data import FLIP_INDICES

__all__ = ["BatchIterator", "FlipBatchIterator", "flip_permutation"]


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
        If ``batch_size`` is less than 1.

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
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state

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
        for key in ("X", "y", "generator"):
            state.pop(key, None)
        return state


def flip_permutation(n_columns: int, flip_indices: Sequence[tuple[int, int]]) -> np.ndarray:
    """Return the column order that swaps every (left, right) pair.

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
    perm = np.arange(n_columns)
    for a, b in flip_indices:
        if not (0 <= a < n_columns and 0 <= b < n_columns):
            raise ValueError(f"flip pair {(a, b)} is outside the {n_columns} target columns")
        perm[a], perm[b] = b, a
    return perm


class FlipBatchIterator(BatchIterator):
    """Mirror exactly half of each training batch (chosen at random, without replacement).

    Images are reversed along the width; every x target (even column) is negated and the
    ``flip_indices`` pairs are swapped. Works on copies: the caller's data never changes.
    An odd-sized batch has one row fewer mirrored than kept.

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

    def __init__(self, batch_size: int = 128,
                 flip_indices: Sequence[tuple[int, int]] = FLIP_INDICES,
                 shuffle: bool = False, random_state: int | None = None) -> None:
        super().__init__(batch_size, shuffle=shuffle, random_state=random_state)
        self.flip_indices = flip_indices

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
        Xb = torch.where(mask.view(-1, *([1] * (Xb.dim() - 1))), _mirror(Xb), Xb)
        if yb is not None:
            k = yb.shape[1]
            sign = torch.ones(k, dtype=yb.dtype, device=yb.device)
            sign[0::2] = -1
            perm = torch.as_tensor(flip_permutation(k, self.flip_indices), device=yb.device)
            flipped = yb[:, perm] * sign
            yb = torch.where(mask.view(-1, 1), flipped, yb)
        return Xb, yb


def _mirror(Xb):
    """Reverse images along the width, for (n, c, h, w) or flat (n, 96*96) batches."""
    if Xb.dim() == 4:
        return Xb.flip(-1)
    if Xb.dim() == 2:
        side = int(round(Xb.shape[1] ** 0.5))
        if side * side != Xb.shape[1]:
            raise ValueError(f"cannot mirror flat rows of {Xb.shape[1]} values: not a square image")
        return Xb.reshape(-1, side, side).flip(-1).reshape(Xb.shape)
    raise ValueError(f"cannot mirror a batch of shape {tuple(Xb.shape)}")
