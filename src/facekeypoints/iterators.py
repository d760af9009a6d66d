"""Batch iterators over tensors that already live on the training device.

``BatchIterator(batch_size)`` cuts consecutive slices (no copies, no per-sample Python);
``transform(Xb, yb)`` is the hook for augmentation. ``FlipBatchIterator`` mirrors a random
half of every training batch: images reversed along the width, x coordinates negated and
left/right keypoint columns swapped, all vectorised on fresh tensors.

Subclasses written for the old numpy-based nolearn (``transform`` doing numpy fancy
indexing) still work: unless the class that defines ``transform`` sets
``tensor_transform = True``, its ``transform`` receives numpy copies and its result is moved
back to the device (slower; write tensor code and set the flag for speed).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from .data import FLIP_INDICES


class BatchIterator:
    """Yield ``(Xb, yb)`` batches of ``batch_size`` rows, in order unless ``shuffle``."""

    tensor_transform = True

    def __init__(self, batch_size=128, shuffle=False, random_state=None):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state

    # -- binding ---------------------------------------------------------------------------
    def __call__(self, X, y=None, generator=None):
        """Return a copy of this iterator bound to the data (nolearn's calling convention)."""
        bound = copy.copy(self)
        bound.X, bound.y = X, y
        bound.generator = generator
        return bound

    def rng(self):
        """The random generator of this bound iterator (made on first use, on the data's device)."""
        if self.generator is None:
            device = self.X.device if isinstance(self.X, torch.Tensor) else "cpu"
            seed = self.random_state
            if seed is None:
                seed = int(torch.randint(0, 2**62, (1,)).item())
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(int(seed))
        return self.generator

    def __len__(self):
        return (len(self.X) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
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

    def transform(self, Xb, yb):
        """Override to augment a batch; return the (new) ``(Xb, yb)``."""
        return Xb, yb

    def __repr__(self):
        return f"{type(self).__name__}(batch_size={self.batch_size})"

    # Bound data never travels with get_params/clone/pickle of an unfitted iterator.
    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("X", "y", "generator"):
            state.pop(key, None)
        return state


def flip_permutation(n_columns, flip_indices):
    """Column order that swaps every (left, right) pair."""
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
    """

    def __init__(self, batch_size=128, flip_indices=FLIP_INDICES, shuffle=False,
                 random_state=None):
        super().__init__(batch_size, shuffle=shuffle, random_state=random_state)
        self.flip_indices = flip_indices

    def transform(self, Xb, yb):
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
