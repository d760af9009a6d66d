"""Errors in pixels measured from the predictions, and reading them back from a history.

:class:`PixelError` is one of the net's default callbacks. During every epoch it adds up the
squared errors of the predictions the training and validation steps already make (no second
forward pass), over the labelled target values only (NaN targets are left out), on the device:
each batch adds two device scalars, and the epoch ends with one host sync. It records
``valid_rmse_px`` (and ``train_rmse_px``) in pixels, whatever the loss: MSE, L1 or Wing.

:func:`epoch_px` and :func:`best_valid_px` read those numbers back. A history written before
they were measured has no ``valid_rmse_px``; for it, and only when the criterion was a mean
squared error, the pixels are derived as ``sqrt(valid_loss) * 48``; for other criteria there
is no pixel value (None).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from skorch.callbacks import Callback

from .losses import is_mse
from .metrics import PIXELS_PER_UNIT

__all__ = ["PixelError", "best_valid_px", "epoch_px"]

#: The criterion readers assume when they are not told: the library's default (masked MSE).
DEFAULT_CRITERION = None


class PixelError(Callback):
    """Record ``valid_rmse_px`` and ``train_rmse_px``: each epoch's RMSE in pixels.

    The RMSE is over every labelled target value of the epoch's batches (the training
    batches as the net saw them, augmented; the validation rows as they are), scaled to
    pixels by the net's keypoint layout (48 pixels per unit for Kaggle's 96-pixel faces).
    Epochs without validation batches record no ``valid_rmse_px``.
    """

    def on_epoch_begin(self, net, **kwargs):
        """Start the epoch's sums afresh."""
        self.sums_ = {}

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        """Add the batch's squared errors and labelled count, on the device (no sync)."""
        if y_pred is None or not getattr(net, "regression", True) \
                or not isinstance(batch, (tuple, list)) or len(batch) < 2:
            return
        yb = batch[1]
        if not isinstance(yb, torch.Tensor) or not yb.is_floating_point() \
                or not isinstance(y_pred, torch.Tensor) or y_pred.shape != yb.shape:
            return
        with torch.no_grad():
            labelled = ~torch.isnan(yb)
            diff = torch.where(labelled, y_pred.detach().float() - yb, 0.0)
            pair = torch.stack([(diff * diff).sum(), labelled.sum().float()])
        sums = getattr(self, "sums_", None)
        if sums is None:
            sums = self.sums_ = {}
        key = "train" if training else "valid"
        sums[key] = pair if key not in sums else sums[key] + pair

    def on_epoch_end(self, net, **kwargs):
        """Record the epoch's RMSE in pixels: one host sync for both phases."""
        sums = getattr(self, "sums_", None) or {}
        if not sums:
            return
        keys = sorted(sums)
        values = torch.stack([sums[k] for k in keys]).tolist()
        layout = net.keypoint_layout() if hasattr(net, "keypoint_layout") else None
        scale = layout.pixel_scale if layout is not None else PIXELS_PER_UNIT
        for key, (squares, count) in zip(keys, values):
            px = math.sqrt(squares / count) * scale if count else float("nan")
            net.history.record(f"{key}_rmse_px", px)
        if "valid" in sums:      # starred in the epoch table, like skorch's best losses
            earlier = [r.get("valid_rmse_px") for r in list(net.history)[:-1]]
            px = net.history[-1]["valid_rmse_px"]
            net.history.record("valid_rmse_px_best", all(
                e is None or not px >= e for e in earlier) and not math.isnan(px))
        self.sums_ = {}

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "sums_"}


def epoch_px(row: Mapping[str, Any], phase: str = "valid",
             criterion: Any = DEFAULT_CRITERION) -> float | None:
    """The RMSE in pixels of one history row, measured, or derived where that is exact.

    Parameters
    ----------
    row : mapping
        One epoch of a history.
    phase : {'valid', 'train'}, default 'valid'
        Which RMSE.
    criterion : object, optional
        The net's criterion (class, instance or name; None: the default, masked MSE). It
        matters only for rows without ``<phase>_rmse_px``: then the pixels are
        ``sqrt(<phase>_loss) * 48`` for a mean squared error, and None otherwise.

    Returns
    -------
    float or None
        Pixels, or None where the row has no such value.
    """
    value = row.get(f"{phase}_rmse_px")
    if value is not None:
        return float(value)
    loss = row.get(f"{phase}_loss")
    if loss is None or not is_mse(criterion):
        return None
    loss = float(loss)
    return math.sqrt(loss) * PIXELS_PER_UNIT if loss >= 0 else float("nan")


def best_valid_px(history: Sequence[Mapping[str, Any]],
                  criterion: Any = DEFAULT_CRITERION) -> tuple[float, int] | None:
    """The lowest validation RMSE in pixels of a history, and its epoch.

    Parameters
    ----------
    history : sequence of mapping
        Epoch rows (``net.history`` or ``read_history(...)``).
    criterion : object, optional
        The criterion the run trained with, for histories without ``valid_rmse_px`` (see
        :func:`epoch_px`).

    Returns
    -------
    (float, int) or None
        ``(pixels, epoch)``; None when no epoch has a validation RMSE in pixels.
    """
    best = None
    for i, row in enumerate(history):
        px = epoch_px(row, "valid", criterion)
        if px is None or math.isnan(px):
            continue
        epoch = int(row.get("epoch", i + 1))
        if best is None or px < best[0]:
            best = (px, epoch)
    return best
