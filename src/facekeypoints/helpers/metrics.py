"""Keypoint errors: RMSE in pixels, and the face-alignment measures NME, failure rate,
CED/AUC and PCK.

Targets are scaled as ``(pixel - 48) / 48`` so that ``[-1, 1]`` spans the 96-pixel image.
An MSE loss on those targets is therefore an RMSE of ``sqrt(loss) * 48`` pixels, the number
the recipe quotes ("a valid RMSE of 1.65 px").

A NaN target means "not labelled" (``fk.load(dropna=False)`` keeps faces with gaps): the
RMSE helpers average over the labelled values only, each keypoint over the faces that have it.

The measures of the face-alignment literature divide each point-to-point error by a size of
the face, so that results compare across image sizes and data sets:

- NME, the normalised mean error: the mean over a face's labelled keypoints of
  ``||predicted - true||`` divided by the inter-ocular distance (outer eye corners, 300W), the
  inter-pupil distance (eye centres) or a box size; averaged over faces.
- failure rate: the share of faces whose NME exceeds a threshold (0.08 or 0.1).
- CED: the cumulative error distribution, the share of faces with NME at most ``e``; AUC@t is
  its area from 0 to ``t`` divided by ``t``.
- PCK: the share of keypoints within ``threshold`` normalisers of the truth.

:func:`normalized_errors` computes the per-face, per-keypoint normalised errors once; the
functions :func:`nme`, :func:`failure_rate`, :func:`ced`, :func:`auc` and :func:`pck` are
shortcuts. Inputs are scaled targets (``scaled=True``, what ``fk.load`` gives and nets predict)
or pixels (``scaled=False``); the columns are Kaggle's 30 unless ``layout=`` (a
:class:`facekeypoints.layout.KeypointLayout`, e.g. ``KAGGLE.subset(cols)``, or the column names)
says otherwise. A face without the normaliser's keypoints has no NME: it is counted
(``faces_without_normalizer``) and left out, never silently.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .layout import KAGGLE

IMAGE_SIDE = KAGGLE.image_side
"""Side of a Kaggle face image, in pixels (the Kaggle layout's, ``layout.KAGGLE``)."""

PIXELS_PER_UNIT = KAGGLE.pixel_scale
"""Pixels per unit of a scaled target (48.0, the Kaggle layout's ``pixel_scale``)."""

__all__ = ["IMAGE_SIDE", "PIXELS_PER_UNIT", "rmse_px", "keypoint_rmse_px", "to_pixels",
           "squared_errors_px", "NORMALIZERS", "NORMALIZER_KEYPOINTS", "resolve_normalizer",
           "NormalizedErrors", "point_errors_px", "normalizer_px", "normalized_errors", "nme",
           "failure_rate", "ced", "auc", "pck", "NMEScorer", "make_nme_scorer",
           "neg_nme_scorer"]


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


# ---------------------------------------------------------------------------------------------
# The field's own measures: NME, failure rate, CED/AUC, PCK.
# ---------------------------------------------------------------------------------------------

#: What ``by=`` accepts: the normalisers of :func:`normalized_errors`.
NORMALIZERS = ("auto", "inter-ocular", "inter-pupil", "box")

#: Keypoints whose distance is each keypoint normaliser: outer eye corners (300W's
#: inter-ocular distance) and eye centres (the inter-pupil distance).
NORMALIZER_KEYPOINTS = {"inter-ocular": ("left_eye_outer_corner", "right_eye_outer_corner"),
                        "inter-pupil": ("left_eye_center", "right_eye_center")}


def _layout_of(layout, n_columns):
    """A KeypointLayout for ``n_columns`` outputs from a layout, column names or None."""
    from .layout import KAGGLE, KeypointLayout

    if layout is None:
        if n_columns != len(KAGGLE.columns):
            raise ValueError(f"the data has {n_columns} columns, not Kaggle's 30: pass "
                             "layout=KAGGLE.subset(columns) (or the column names) to say which "
                             "keypoints they are")
        return KAGGLE
    if not isinstance(layout, KeypointLayout):
        layout = KAGGLE.subset(list(layout))
    if len(layout.columns) != n_columns:
        raise ValueError(f"the layout has {len(layout.columns)} columns but the data has "
                         f"{n_columns}; pass the layout of the net's outputs")
    return layout


def resolve_normalizer(by: str, layout=None) -> str:
    """The normaliser ``by='auto'`` means for a layout.

    Parameters
    ----------
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}
        The normaliser asked for.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default :data:`facekeypoints.layout.KAGGLE`).

    Returns
    -------
    str
        ``by`` itself, or for ``'auto'``: ``'inter-ocular'`` when the layout has both outer
        eye corners, else ``'inter-pupil'`` when it has both eye centres, else ``'box'``.

    Raises
    ------
    ValueError
        For an unknown normaliser, or one whose keypoints the layout lacks.

    Examples
    --------
    >>> from facekeypoints.layout import KAGGLE
    >>> resolve_normalizer("auto")
    'inter-ocular'
    >>> resolve_normalizer("auto", KAGGLE.subset(["left_eye_center_x", "left_eye_center_y",
    ...                                           "right_eye_center_x", "right_eye_center_y"]))
    'inter-pupil'
    """
    from .layout import KAGGLE, KeypointLayout

    if by not in NORMALIZERS:
        raise ValueError(f"unknown normaliser {by!r}; use one of {', '.join(NORMALIZERS)}")
    if layout is None:
        layout = KAGGLE
    elif not isinstance(layout, KeypointLayout):
        layout = KAGGLE.subset(list(layout))
    if by == "auto":
        for name in ("inter-ocular", "inter-pupil"):
            if all(k in layout.names for k in NORMALIZER_KEYPOINTS[name]):
                return name
        return "box"
    if by != "box":
        missing = [k for k in NORMALIZER_KEYPOINTS[by] if k not in layout.names]
        if missing:
            raise ValueError(f"the {by} normaliser needs {' and '.join(missing)}, which these "
                             "outputs lack; normalise by 'auto' or 'box' instead")
    return by


class NormalizedErrors:
    """Point-to-point errors of a set of faces, divided by each face's normaliser.

    Build it with :func:`normalized_errors`; every measure of this module is a method.
    A face whose normaliser cannot be measured (one of its keypoints unlabelled, or the two
    at the same place) has no normalised error: it is counted in
    :attr:`faces_without_normalizer` and left out of every measure; an unlabelled keypoint is
    left out of its face's mean.

    Parameters
    ----------
    errors : numpy.ndarray of shape (n, k)
        Point-to-point errors in pixels; NaN where the keypoint is unlabelled.
    normalizer_px : numpy.ndarray of shape (n,)
        Each face's normaliser in pixels; NaN where it cannot be measured.
    names : sequence of str
        The k keypoint names.
    by : str
        The normaliser's name (``'inter-ocular'``, ``'inter-pupil'`` or ``'box'``).

    Attributes
    ----------
    errors_px : numpy.ndarray of shape (n, k)
        The errors in pixels.
    normalizer_px : numpy.ndarray of shape (n,)
        The normalisers in pixels.
    normalized : numpy.ndarray of shape (n, k)
        ``errors_px / normalizer_px``; NaN where unlabelled or without a normaliser.
    names : tuple of str
        The keypoint names.
    by : str
        The normaliser.
    """

    def __init__(self, errors, normalizer_px, names, by):
        self.errors_px = np.asarray(errors, dtype=np.float64)
        self.normalizer_px = np.asarray(normalizer_px, dtype=np.float64)
        self.names = tuple(names)
        self.by = by
        with np.errstate(invalid="ignore", divide="ignore"):
            self.normalized = self.errors_px / self.normalizer_px[:, None]

    @property
    def faces(self) -> int:
        """Faces given (with or without a normaliser)."""
        return len(self.errors_px)

    @property
    def faces_without_normalizer(self) -> int:
        """Faces left out because their normaliser's keypoints are not both labelled."""
        return int((~np.isfinite(self.normalizer_px)).sum())

    @property
    def faces_measured(self) -> int:
        """Faces with a normaliser and at least one labelled keypoint."""
        return int(np.isfinite(self.per_face()).sum())

    def per_face(self) -> np.ndarray:
        """Each face's NME: the mean normalised error over its labelled keypoints.

        Returns
        -------
        numpy.ndarray of shape (n,)
            NaN for a face without a normaliser or without labelled keypoints.
        """
        labelled = np.isfinite(self.normalized)
        counts = labelled.sum(axis=1)
        sums = np.where(labelled, self.normalized, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def per_keypoint(self) -> dict[str, float]:
        """Each keypoint's NME: its mean normalised error over the faces that have it.

        Returns
        -------
        dict
            ``{name: nme}``; NaN for a keypoint no measured face has.
        """
        out = {}
        for j, name in enumerate(self.names):
            column = self.normalized[:, j]
            column = column[np.isfinite(column)]
            out[name] = float(column.mean()) if len(column) else float("nan")
        return out

    def nme(self, average: str = "face") -> float:
        """The normalised mean error.

        Parameters
        ----------
        average : {'face', 'point'}, default 'face'
            ``'face'``: the mean over faces of each face's mean over its labelled keypoints
            (300W, WFLW); ``'point'``: the mean over every labelled keypoint of every face
            (mmpose's ``keypoint_nme``). They are equal when every keypoint is labelled.

        Returns
        -------
        float
            NaN when no face can be measured.
        """
        if average == "face":
            values = self.per_face()
        elif average == "point":
            values = self.normalized.ravel()
        else:
            raise ValueError(f"average must be 'face' or 'point', got {average!r}")
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else float("nan")

    def _face_nmes(self):
        values = self.per_face()
        return np.sort(values[np.isfinite(values)])

    def failure_rate(self, threshold: float = 0.1) -> float:
        """The share of measured faces whose NME exceeds ``threshold`` (0.08 or 0.1 usually).

        Parameters
        ----------
        threshold : float, default 0.1
            The NME above which a face counts as a failure.

        Returns
        -------
        float
            In [0, 1]; NaN when no face can be measured.
        """
        values = self._face_nmes()
        return float((values > threshold).mean()) if len(values) else float("nan")

    def ced(self, max_error: float = 0.1, steps: int = 101) -> tuple[np.ndarray, np.ndarray]:
        """The cumulative error distribution: share of faces with NME at most each error.

        Parameters
        ----------
        max_error : float, default 0.1
            The largest error on the curve.
        steps : int, default 101
            Points on the curve, evenly from 0 to ``max_error``.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            The errors and, for each, the share of measured faces with NME ``<=`` it.
        """
        grid = np.linspace(0.0, float(max_error), int(steps))
        values = self._face_nmes()
        if not len(values):
            return grid, np.full_like(grid, np.nan)
        return grid, np.searchsorted(values, grid, side="right") / len(values)

    def auc(self, threshold: float = 0.1) -> float:
        """The area under the CED curve from 0 to ``threshold``, divided by ``threshold``.

        Computed exactly: the CED is a step function, and its integral from 0 to ``t`` is
        the mean over faces of ``max(0, t - nme)``, so AUC@t is the mean of
        ``max(0, 1 - nme / t)``. (Implementations that sum the curve on a grid of step
        0.0001 agree to about 1e-3.)

        Parameters
        ----------
        threshold : float, default 0.1
            The upper end (0.08 and 0.1 are the usual ones).

        Returns
        -------
        float
            In [0, 1], 1 when every face is perfect; NaN when no face can be measured.
        """
        if not threshold > 0:
            raise ValueError(f"the AUC threshold must be positive, got {threshold!r}")
        values = self._face_nmes()
        if not len(values):
            return float("nan")
        return float(np.maximum(0.0, 1.0 - values / threshold).mean())

    def pck_per_keypoint(self, threshold: float = 0.1) -> dict[str, float]:
        """Each keypoint's PCK: the share of faces where its normalised error is below
        ``threshold``.

        Parameters
        ----------
        threshold : float, default 0.1
            The normalised distance a keypoint must be within (strictly) to count.

        Returns
        -------
        dict
            ``{name: pck}`` over the measured faces that have the keypoint; NaN for a
            keypoint none has.
        """
        out = {}
        for j, name in enumerate(self.names):
            column = self.normalized[:, j]
            column = column[np.isfinite(column)]
            out[name] = float((column < threshold).mean()) if len(column) else float("nan")
        return out

    def pck(self, threshold: float = 0.1) -> float:
        """The percentage of correct keypoints (as a share): the mean over keypoints of
        each keypoint's PCK (as mmpose's ``keypoint_pck_accuracy`` averages).

        Parameters
        ----------
        threshold : float, default 0.1
            The normalised distance a keypoint must be within (strictly) to count.

        Returns
        -------
        float
            In [0, 1]; NaN when no keypoint can be measured.
        """
        values = np.array(list(self.pck_per_keypoint(threshold).values()))
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else float("nan")

    def summary(self, threshold: float = 0.1, pck_threshold: float = 0.1) -> dict[str, Any]:
        """Every measure at once, as plain numbers (NaN where nothing could be measured).

        Parameters
        ----------
        threshold : float, default 0.1
            For the failure rate and the AUC.
        pck_threshold : float, default 0.1
            For PCK.

        Returns
        -------
        dict
            ``normalizer``, ``nme``, ``failure_rate``, ``auc``, ``pck``, ``threshold``,
            ``pck_threshold``, ``faces``, ``faces_measured``, ``faces_without_normalizer``.
        """
        return {"normalizer": self.by, "nme": self.nme(),
                "failure_rate": self.failure_rate(threshold), "auc": self.auc(threshold),
                "pck": self.pck(pck_threshold), "threshold": float(threshold),
                "pck_threshold": float(pck_threshold), "faces": self.faces,
                "faces_measured": self.faces_measured,
                "faces_without_normalizer": self.faces_without_normalizer}

    def __repr__(self):
        return (f"NormalizedErrors(by={self.by!r}, faces={self.faces}, "
                f"without_normalizer={self.faces_without_normalizer})")


def point_errors_px(y_true, y_pred, scaled: bool = True, layout=None) -> np.ndarray:
    """Point-to-point (Euclidean) errors in pixels, one per face and keypoint.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, 2k)
        True and predicted ``x, y`` pairs; NaN in ``y_true`` marks an unlabelled value.
    scaled : bool, default True
        Whether both are scaled targets (``(pixel - 48) / 48``) or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default: Kaggle's 15 for 30 columns); gives the pixel scale.

    Returns
    -------
    numpy.ndarray of shape (n, k)
        ``||pred - true||`` in pixels; NaN where either coordinate is unlabelled.

    Examples
    --------
    >>> point_errors_px([[0.0, 0.0]], [[3.0, 4.0]], scaled=False, layout=["nose_tip_x",
    ...                                                                   "nose_tip_y"])
    array([[5.]])
    """
    y_true = np.atleast_2d(np.asarray(y_true, dtype=np.float64))
    y_pred = np.atleast_2d(np.asarray(y_pred, dtype=np.float64))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"targets {y_true.shape} and predictions {y_pred.shape} differ in shape")
    bad = ~np.isfinite(y_pred) & ~np.isnan(y_true)
    if bad.any() or np.isinf(y_true).any():
        which = "predictions" if bad.any() else "targets"
        count = int(bad.sum()) if bad.any() else int(np.isinf(y_true).sum())
        raise ValueError(f"{which} hold {count} NaN or infinite values where keypoints are "
                         "labelled (a diverged net?); measure finite predictions")
    lay = _layout_of(layout, y_true.shape[1])
    factor = lay.pixel_scale if scaled else 1.0
    diff = (y_pred - y_true) * factor
    return np.hypot(diff[:, 0::2], diff[:, 1::2])


def normalizer_px(y_true, by: str = "auto", scaled: bool = True, layout=None,
                  box_size=None) -> np.ndarray:
    """Each face's normaliser in pixels, measured on the true keypoints.

    Parameters
    ----------
    y_true : array-like of shape (n, 2k)
        True keypoints; NaN marks an unlabelled value.
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        ``'inter-ocular'``: the distance between the outer eye corners (300W, Sagonas et al.
        2016; mmpose's ``keypoint_distance`` mode); ``'inter-pupil'``: between the eye
        centres; ``'box'``: ``box_size``; ``'auto'``: see :func:`resolve_normalizer`.
    scaled : bool, default True
        Whether ``y_true`` holds scaled targets or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default: Kaggle's 15 for 30 columns).
    box_size : float or array-like of shape (n,), optional
        For ``by='box'``: the face box size in pixels (mmpose uses ``max(width, height)``
        of the box); default the layout's image side, 96, since a Kaggle image is the crop
        of one face.

    Returns
    -------
    numpy.ndarray of shape (n,)
        NaN where the normaliser's keypoints are not both labelled, or coincide.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.full((2, 30), np.nan)
    >>> y[0, 6:8], y[0, 10:12] = (20.0, 40.0), (80.0, 40.0)   # outer eye corners
    >>> normalizer_px(y, scaled=False)
    array([60., nan])
    """
    y_true = np.atleast_2d(np.asarray(y_true, dtype=np.float64))
    lay = _layout_of(layout, y_true.shape[1])
    by = resolve_normalizer(by, lay)
    n = len(y_true)
    if by == "box":
        size = lay.image_side if box_size is None else box_size
        size = np.broadcast_to(np.asarray(size, dtype=np.float64), (n,)).copy()
        size[~(size > 0)] = np.nan
        return size
    a, b = (lay.names.index(k) for k in NORMALIZER_KEYPOINTS[by])
    factor = lay.pixel_scale if scaled else 1.0
    d = np.hypot(y_true[:, 2 * a] - y_true[:, 2 * b], y_true[:, 2 * a + 1] - y_true[:, 2 * b + 1])
    d = d * factor
    d[~(d > 0)] = np.nan
    return d


def normalized_errors(y_true, y_pred, by: str = "auto", scaled: bool = True, layout=None,
                      box_size=None) -> NormalizedErrors:
    """Normalised point-to-point errors of a set of faces, from which every measure follows.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, 2k)
        True and predicted keypoints, scaled targets (``(pixel - 48) / 48``, as ``fk.load``
        gives and nets predict) or pixels with ``scaled=False``; NaN in ``y_true`` marks an
        unlabelled value.
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser (see :func:`normalizer_px`).
    scaled : bool, default True
        Whether the values are scaled targets or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints of the columns: :data:`facekeypoints.layout.KAGGLE` (the default for
        30 columns), ``KAGGLE.subset(cols)`` or the column names for fewer.
    box_size : float or array-like of shape (n,), optional
        For ``by='box'`` (default: the image side).

    Returns
    -------
    NormalizedErrors
        With ``nme()``, ``per_face()``, ``per_keypoint()``, ``failure_rate(t)``, ``ced()``,
        ``auc(t)``, ``pck(t)`` and the count of faces without a normaliser.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((1, 30))
    >>> y[0, 6], y[0, 10] = 20.0, 80.0          # outer eye corners 60 px apart
    >>> e = normalized_errors(y, y + 3.0, scaled=False)   # every point off by (3, 3)
    >>> round(e.nme(), 4), e.faces_without_normalizer
    (0.0707, 0)
    """
    errors = point_errors_px(y_true, y_pred, scaled=scaled, layout=layout)
    lay = _layout_of(layout, np.shape(np.atleast_2d(y_true))[1])
    by = resolve_normalizer(by, lay)
    norm = normalizer_px(y_true, by=by, scaled=scaled, layout=lay, box_size=box_size)
    return NormalizedErrors(errors, norm, lay.names, by)


def _measured(y_true, y_pred, by, scaled, layout, box_size, what):
    errors = normalized_errors(y_true, y_pred, by=by, scaled=scaled, layout=layout,
                               box_size=box_size)
    if errors.faces_without_normalizer:
        warnings.warn(f"{what}: {errors.faces_without_normalizer} of {errors.faces} faces lack "
                      f"the {errors.by} normaliser's keypoints and are left out "
                      "(normalized_errors(...).faces_without_normalizer counts them)",
                      stacklevel=3)
    if not errors.faces:
        raise ValueError(f"{what}: no faces to measure (0 rows); pass at least one face")
    if not errors.faces_measured:
        raise ValueError(f"{what}: no face has the {errors.by} normaliser's keypoints (both "
                         "labelled, and apart) and a labelled keypoint; use by='box' or faces "
                         "with those keypoints")
    return errors


def nme(y_true, y_pred, by: str = "auto", scaled: bool = True, layout=None, box_size=None,
        average: str = "face") -> float:
    """Normalised mean error: mean point-to-point error divided by the face's normaliser.

    ``NME = mean over faces of (mean over the face's labelled keypoints of ||p - g||) / d``,
    with ``d`` the inter-ocular distance (outer eye corners, as on 300W: Sagonas et al.,
    "300 Faces In-the-Wild Challenge", 2016), the inter-pupil distance (eye centres) or a
    box size. Faces whose normaliser's keypoints are not labelled are left out with a
    warning that counts them.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, 2k)
        True and predicted keypoints (scaled targets, or pixels with ``scaled=False``).
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser (see :func:`normalizer_px`).
    scaled : bool, default True
        Whether the values are scaled targets or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default: Kaggle's 15 for 30 columns).
    box_size : float or array-like, optional
        For ``by='box'`` (default: the image side).
    average : {'face', 'point'}, default 'face'
        Mean of per-face means (300W) or over every labelled point (mmpose).

    Returns
    -------
    float
        The NME (0.05 means errors of 5 % of the inter-ocular distance).

    Raises
    ------
    ValueError
        When no face can be measured.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((1, 30))
    >>> y[0, 6], y[0, 10] = 20.0, 80.0          # outer eye corners 60 px apart
    >>> round(nme(y, y + 3.0, scaled=False), 4)  # errors of 3 * sqrt(2) px
    0.0707
    """
    return _measured(y_true, y_pred, by, scaled, layout, box_size, "nme").nme(average)


def failure_rate(y_true, y_pred, threshold: float = 0.1, by: str = "auto", scaled: bool = True,
                 layout=None, box_size=None) -> float:
    """The share of faces whose NME exceeds ``threshold``.

    The failure rate of face alignment papers (FR@0.1 on WFLW, Wu et al. 2018; FR@0.08 on
    300W); mmpose has none. Faces without the normaliser's keypoints are left out with a
    warning.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, 2k)
        True and predicted keypoints (scaled targets, or pixels with ``scaled=False``).
    threshold : float, default 0.1
        The NME above which a face has failed.
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser (see :func:`normalizer_px`).
    scaled : bool, default True
        Whether the values are scaled targets or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default: Kaggle's 15 for 30 columns).
    box_size : float or array-like, optional
        For ``by='box'``.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((2, 30))
    >>> y[:, 6], y[:, 10] = 20.0, 80.0            # eye corners 60 px apart
    >>> p = y.copy(); p[1] += 9.0                 # face 2: errors 12.7 px, NME 0.21
    >>> failure_rate(y, p, 0.1, scaled=False)
    0.5
    """
    return _measured(y_true, y_pred, by, scaled, layout, box_size,
                     "failure_rate").failure_rate(threshold)


def ced(y_true, y_pred, max_error: float = 0.1, steps: int = 101, by: str = "auto",
        scaled: bool = True, layout=None, box_size=None) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative error distribution (CED) curve of the faces' NMEs.

    ``CED(e)`` is the share of faces whose NME is at most ``e`` (the curve of 300W's
    results, Sagonas et al. 2016).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, 2k)
        True and predicted keypoints (scaled targets, or pixels with ``scaled=False``).
    max_error : float, default 0.1
        The largest NME on the curve.
    steps : int, default 101
        Points on the curve.
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser (see :func:`normalizer_px`).
    scaled : bool, default True
        Whether the values are scaled targets or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default: Kaggle's 15 for 30 columns).
    box_size : float or array-like, optional
        For ``by='box'``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The NME values and the share of faces at or below each.
    """
    return _measured(y_true, y_pred, by, scaled, layout, box_size, "ced").ced(max_error, steps)


def auc(y_true, y_pred, threshold: float = 0.1, by: str = "auto", scaled: bool = True,
        layout=None, box_size=None) -> float:
    """Area under the CED curve up to ``threshold``, divided by ``threshold`` (AUC@0.08,
    AUC@0.1).

    ``AUC@t = (1 / t) * integral from 0 to t of CED(e) de``, computed exactly as the mean
    over faces of ``max(0, 1 - NME / t)`` (300W and WFLW report it). mmpose's
    ``keypoint_auc`` is another measure: the mean PCK over 20 thresholds of a pixel
    distance.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, 2k)
        True and predicted keypoints (scaled targets, or pixels with ``scaled=False``).
    threshold : float, default 0.1
        The upper end of the integral.
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser (see :func:`normalizer_px`).
    scaled : bool, default True
        Whether the values are scaled targets or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default: Kaggle's 15 for 30 columns).
    box_size : float or array-like, optional
        For ``by='box'``.

    Returns
    -------
    float
        In [0, 1]; 1 for perfect predictions.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((2, 30))
    >>> y[:, 6], y[:, 10] = 20.0, 80.0            # eye corners 60 px apart
    >>> auc(y, y, 0.1, scaled=False)              # perfect: the CED is 1 from 0 on
    1.0
    """
    return _measured(y_true, y_pred, by, scaled, layout, box_size, "auc").auc(threshold)


def pck(y_true, y_pred, threshold: float = 0.1, by: str = "auto", scaled: bool = True,
        layout=None, box_size=None) -> float:
    """Percentage of correct keypoints: share of keypoints within ``threshold`` normalisers.

    A keypoint is correct when ``||p - g|| / d < threshold``; each keypoint's share is over
    the faces that have it, and PCK is the mean of those shares over the keypoints, as in
    mmpose's ``keypoint_pck_accuracy`` (which normalises by the box, ``by='box'`` here).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, 2k)
        True and predicted keypoints (scaled targets, or pixels with ``scaled=False``).
    threshold : float, default 0.1
        The normalised distance a correct keypoint is within.
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser (see :func:`normalizer_px`).
    scaled : bool, default True
        Whether the values are scaled targets or pixels.
    layout : KeypointLayout or sequence of str, optional
        The keypoints (default: Kaggle's 15 for 30 columns).
    box_size : float or array-like, optional
        For ``by='box'`` (default: the image side).

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((1, 30))
    >>> p = y.copy(); p[0, :4] = 10.0               # two of 15 keypoints 14 px off
    >>> round(pck(y, p, 0.1, by="box", scaled=False), 4)   # 9.6 px is 0.1 of 96
    0.8667
    """
    return _measured(y_true, y_pred, by, scaled, layout, box_size, "pck").pck(threshold)


class NMEScorer:
    """A scikit-learn scorer: minus the NME of an estimator's predictions (greater is better).

    Use it as ``scoring=`` of ``cross_val_score``, ``GridSearchCV`` and the like; sklearn
    calls ``scorer(estimator, X, y)``.

    Parameters
    ----------
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser.
    layout : KeypointLayout or sequence of str, optional
        The keypoints of ``y``'s columns; by default the estimator's ``layout`` (or its
        ``columns_``) when it has one, else Kaggle's 15 for 30 columns.
    average : {'face', 'point'}, default 'face'
        As in :func:`nme`.

    Examples
    --------
    >>> import numpy as np
    >>> class Const:
    ...     def predict(self, X):
    ...         return np.zeros((len(X), 30))
    >>> y = np.zeros((2, 30)); y[:, 6], y[:, 10] = -0.5, 0.5   # scaled eye corners
    >>> round(make_nme_scorer()(Const(), np.zeros((2, 9216)), y), 4)   # 2 of 15 keypoints off
    -0.0667
    """

    def __init__(self, by: str = "auto", layout=None, average: str = "face"):
        if by not in NORMALIZERS:
            raise ValueError(f"unknown normaliser {by!r}; use one of {', '.join(NORMALIZERS)}")
        self.by = by
        self.layout = layout
        self.average = average

    def __call__(self, estimator, X, y) -> float:
        """Minus the NME of ``estimator.predict(X)`` against ``y`` (scaled targets).

        Parameters
        ----------
        estimator : object
            Anything with ``predict``.
        X : array-like
            Inputs.
        y : array-like of shape (n, 2k)
            Scaled targets; NaN marks an unlabelled value.

        Returns
        -------
        float
            ``-nme``: greater is better, as scikit-learn scorers are.
        """
        from .layout import KeypointLayout

        layout = self.layout
        if layout is None:      # the estimator's own layout, or the column names it keeps
            own = getattr(estimator, "layout", None)
            if not isinstance(own, KeypointLayout):
                own = getattr(estimator, "columns_", None)
            if own is not None and len(getattr(own, "columns", own)) == np.shape(y)[1]:
                layout = own
        y_pred = np.asarray(estimator.predict(X), dtype=np.float64)
        errors = normalized_errors(y, y_pred, by=self.by, layout=layout)
        value = errors.nme(self.average)
        if not np.isfinite(value):
            raise ValueError(f"NME scorer: no face has the {errors.by} normaliser's keypoints; "
                             "score with by='box' or with faces that have them")
        return -value

    def __repr__(self):
        return f"make_nme_scorer(by={self.by!r})"


def make_nme_scorer(by: str = "auto", layout=None, average: str = "face") -> NMEScorer:
    """A scikit-learn scorer of minus the NME (``scoring=make_nme_scorer()``).

    Parameters
    ----------
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser.
    layout : KeypointLayout or sequence of str, optional
        The keypoints of the targets' columns (default: the estimator's, or Kaggle's).
    average : {'face', 'point'}, default 'face'
        As in :func:`nme`.

    Returns
    -------
    NMEScorer
        Callable as ``scorer(estimator, X, y)``.
    """
    return NMEScorer(by=by, layout=layout, average=average)


def neg_nme_scorer(estimator, X, y) -> float:
    """The default NME scorer (normaliser ``'auto'``): ``scoring=neg_nme_scorer``.

    Parameters
    ----------
    estimator : object
        Anything with ``predict`` (its ``layout``, when it has one, names the columns).
    X : array-like
        Inputs.
    y : array-like of shape (n, 2k)
        Scaled targets; NaN marks an unlabelled value.

    Returns
    -------
    float
        Minus the NME of ``estimator.predict(X)`` (greater is better).
    """
    return NMEScorer()(estimator, X, y)
