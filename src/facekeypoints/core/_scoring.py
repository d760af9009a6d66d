"""The net's ``score``: R^2 over the labelled targets (scikit-learn's regressor convention).

A NaN target is unlabelled: each output's R^2 is over the rows where it is labelled (outputs
with fewer than two labels are left out), then averaged. Without NaN this is exactly
``sklearn.metrics.r2_score(y, y_pred)``.
"""
from __future__ import annotations

import numpy as np
import torch

__all__: list[str] = []


def labelled_r2(y, y_pred):
    """R^2 of ``y_pred`` against ``y`` over the labelled values; ``(k,)`` targets of one face
    are taken as one row. ValueError when no output has two labelled targets."""
    from sklearn.metrics import r2_score

    y_true = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y_true.ndim == 1 and len(y_pred) == 1 and np.ndim(y_pred) == 2:
        y_true = y_true.reshape(1, -1)              # one face's targets
    if not (np.issubdtype(y_true.dtype, np.inexact) and np.isnan(y_true).any()):
        return r2_score(y_true, y_pred)
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred).reshape(len(y_pred), -1)
    scores = []
    for j in range(y_true.shape[1]):
        rows = ~np.isnan(y_true[:, j])
        if rows.sum() >= 2:
            scores.append(r2_score(y_true[rows, j], y_pred[rows, j]))
    if not scores:
        raise ValueError("score: no output has two labelled targets (the rest are NaN), "
                         "so R^2 is undefined")
    return float(np.mean(scores))
