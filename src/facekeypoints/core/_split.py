"""The data path of a fit: arrays moved to the device once, and nolearn's validation split.

:class:`DeviceData` holds the inputs and targets as tensors on the net's device, so that each
batch is a slice of them, in place of skorch's ``Dataset`` and ``DataLoader``.
:class:`DataSplit` is the net's part (a mixin of :class:`facekeypoints.NeuralNet`): moving the
data, checking the targets once, and holding out the first rows for validation as nolearn did.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import _inputs

__all__ = ["DeviceData"]


class DeviceData:
    """Inputs and targets as tensors on the training device, sliced by the batch iterators.

    What :meth:`NeuralNet.get_dataset` returns in place of skorch's ``Dataset``: the data
    are moved to the device once per fit, and each batch is a slice of these tensors.

    Parameters
    ----------
    X : torch.Tensor
        The inputs, float32, on the net's device.
    y : torch.Tensor, optional
        The targets, on the same device; None for prediction.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.net import DeviceData
    >>> data = DeviceData(torch.zeros(5, 4), torch.zeros(5, 2))
    >>> len(data), tuple(data.y.shape)
    (5, (5, 2))
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor | None = None) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)


class DataSplit:
    """The net's data path (a mixin of :class:`facekeypoints.NeuralNet`)."""

    def get_dataset(self, X: np.ndarray | torch.Tensor | DeviceData,
                    y: np.ndarray | torch.Tensor | None = None) -> DeviceData:
        """Move ``X`` and ``y`` to ``device_`` as tensors, once, instead of a skorch Dataset.

        Targets are float32 for regression (checked: no infinities, NaN only where the
        criterion ignores it, at least one label) and int64 class indices otherwise."""
        if isinstance(X, DeviceData):
            return X
        X = torch.as_tensor(_inputs.numeric(X, "X")).to(device=self.device_,
                                                         dtype=torch.float32)
        if y is None:
            return DeviceData(X)
        y = y if isinstance(y, torch.Tensor) else np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must match")
        if not self.regression:
            return DeviceData(X, torch.as_tensor(np.asarray(y)).long().to(self.device_))
        y = torch.as_tensor(_inputs.numeric(y, "y")).to(device=self.device_,
                                                         dtype=torch.float32)
        _inputs.check_labels(self, y, split=False)
        return DeviceData(X, y)

    def validation_size(self, n: int) -> int:
        """Return how many of ``n`` rows ``eval_size`` holds out: nolearn's first fold.

        Parameters
        ----------
        n : int
            Number of rows passed to ``fit``.

        Returns
        -------
        int
            The leading rows used for validation: ``ceil(n / round(1 / eval_size))``; 0
            when ``eval_size`` is 0 or None.

        Examples
        --------
        >>> import torch
        >>> from facekeypoints import NeuralNet
        >>> NeuralNet(module=torch.nn.Identity, eval_size=0.2).validation_size(2140)
        428
        """
        if not self.eval_size:
            return 0
        folds = max(2, int(round(1.0 / self.eval_size)))
        return n // folds + (1 if n % folds else 0)

    def train_valid_split(self, X: Any, y: Any = None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        """Split ``X`` (and ``y``) as ``fit`` does: the first rows validate, the rest train.

        Parameters
        ----------
        X : array-like
            Inputs, as passed to ``fit``.
        y : array-like, optional
            Targets.

        Returns
        -------
        tuple
            ``((X_train, y_train), (X_valid, y_valid))``; ``y`` parts None without ``y``.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from facekeypoints import NeuralNet
        >>> X, y = np.arange(10), np.arange(10) * 10
        >>> (X_train, y_train), (X_valid, y_valid) = NeuralNet(
        ...     module=torch.nn.Identity, eval_size=0.2).train_valid_split(X, y)
        >>> X_valid, y_train[:2]
        (array([0, 1]), array([20, 30]))
        """
        n_valid = self.validation_size(len(X))

        def pick(a, rows):
            return None if a is None else a[rows]

        return ((X[n_valid:], pick(y, slice(n_valid, None))),
                (X[:n_valid], pick(y, slice(None, n_valid))))

    def get_split_datasets(self, X: np.ndarray | torch.Tensor,
                           y: np.ndarray | torch.Tensor | None = None,
                           **fit_params: Any) -> tuple[DeviceData, DeviceData | None]:
        """Split as nolearn: the first ``validation_size(n)`` rows validate (no shuffling)."""
        if y is None:
            raise ValueError("fit needs targets: net.fit(X, y)")
        data = self.get_dataset(X, y)
        n_valid = self.validation_size(len(data))
        if n_valid == 0:
            return data, None
        if n_valid >= len(data):
            raise ValueError(f"{len(data)} rows are too few for eval_size={self.eval_size}")
        train = DeviceData(data.X[n_valid:], data.y[n_valid:])
        valid = DeviceData(data.X[:n_valid], data.y[:n_valid])
        return train, valid
