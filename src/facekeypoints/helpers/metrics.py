"""Pixel scale and errors in pixels: the one place that knows one target unit is 48 pixels.

Targets are scaled as ``(pixel - 48) / 48`` so that ``[-1, 1]`` spans the 96-pixel image.
An MSE loss on those targets is therefore an RMSE of ``sqrt(loss) * 48`` pixels, the number
the recipe quotes ("a valid RMSE of 1.65 px").

A NaN target means "not labelled" (``fk.load(dropna=False)`` keeps faces with gaps): the
RMSE helpers average over the labelled values only, each keypoint over the faces that have it.
"""
from __future__ import annotations

import math

import numpy as np

IMAGE_SIDE = 96
"""Side of a Kaggle face image, in pixels."""

PIXELS_PER_UNIT = IMAGE_SIDE / 2
"""Pixels per unit of a scaled target (48.0)."""

__all__ = ["IMAGE_SIDE", "PIXELS_PER_UNIT", "rmse_px", "keypoint_rmse_px", "to_pixels",
           "squared_errors_px"]


def rmse_px(loss: float) -> float:
    """RMSE in pixels from an MSE loss on scaled targets.

    Parameters
    ----------
    loss : float
        Mean squared error on targets scaled by ``(y - 48) / 48``.

    Returns
    -------
    float
        ``sqrt(loss) * 48``.

    Examples
    --------
    >>> from facekeypoints.metrics import rmse_px
    >>> round(rmse_px(0.001184), 2)
    1.65
    """
    return math.sqrt(loss) * PIXELS_PER_UNIT


def to_pixels(keypoints, scaled: bool = True) -> np.ndarray:
    """Keypoint coordinates in pixels.

    Parameters
    ----------
    keypoints : array-like
        Coordinates, scaled to ``[-1, 1]`` or already in pixels.
    scaled : bool, default True
        Whether ``keypoints`` are scaled targets (then ``y * 48 + 48`` is returned).

    Returns
    -------
    numpy.ndarray
        The coordinates in pixels (float).

    Examples
    --------
    >>> to_pixels([-1.0, 0.0, 0.5])
    array([ 0., 48., 72.])
    """
    kp = np.asarray(keypoints, dtype=float)
    return kp * PIXELS_PER_UNIT + PIXELS_PER_UNIT if scaled else kp


def squared_errors_px(y_true, y_pred, scaled: bool = True) -> np.ndarray:
    """Squared coordinate errors in pixels, element by element.

    Parameters
    ----------
    y_true, y_pred : array-like of the same shape
        True and predicted coordinates.
    scaled : bool, default True
        Whether both are scaled targets (errors are multiplied by 48) or pixels.

    Returns
    -------
    numpy.ndarray
        ``((y_pred - y_true) * factor) ** 2`` as float64; NaN where ``y_true`` is NaN
        (unlabelled), for the caller to leave out (``numpy.nanmean``).

    Examples
    --------
    >>> squared_errors_px([0.0, 0.0], [0.1, -0.05])
    array([23.04,  5.76])
    >>> squared_errors_px([0.0, float("nan")], [0.1, -0.05])
    array([23.04,   nan])
    """
    factor = PIXELS_PER_UNIT if scaled else 1.0
    diff = (np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)) * factor
    return diff ** 2


def keypoint_rmse_px(y_true, y_pred, pixels_per_unit: float = PIXELS_PER_UNIT) -> float:
    """Root mean squared keypoint error in pixels, over every labelled coordinate.

    NaN targets are unlabelled and left out, so this is ``rmse_px`` of the loss
    :class:`facekeypoints.losses.MaskedMSELoss` reports over the same rows.

    Parameters
    ----------
    y_true, y_pred : array-like of the same shape
        True and predicted targets, scaled by ``(y - 48) / 48``; NaN in ``y_true`` marks an
        unlabelled value.
    pixels_per_unit : float, default 48
        Pixels per unit of the targets (1 for targets already in pixels).

    Returns
    -------
    float
        ``sqrt(MSE) * pixels_per_unit`` over the labelled values, the number the recipe
        quotes.

    Raises
    ------
    ValueError
        When every target is NaN (nothing to measure).

    Examples
    --------
    >>> import numpy as np
    >>> keypoint_rmse_px(np.zeros((2, 30)), np.full((2, 30), 0.05))
    2.4000000000000004
    >>> keypoint_rmse_px([[0.0, np.nan]], [[0.05, 0.9]])     # the NaN target is left out
    2.4000000000000004
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    squared = (y_pred - y_true) ** 2
    labelled = ~np.isnan(y_true)
    if labelled.all():
        return float(np.sqrt(np.mean(squared)) * pixels_per_unit)
    if not labelled.any():
        raise ValueError("every target is NaN (unlabelled): there is no error to measure")
    squared, labelled = np.broadcast_arrays(squared, labelled)
    return float(np.sqrt(np.mean(squared[labelled])) * pixels_per_unit)
