"""Keypoint geometry in one place: names, columns, flip pairs, image side and pixel scale.

A :class:`KeypointLayout` describes what a net's targets mean: which keypoints, in which column
order, which pairs trade places when a face is mirrored, and the side of the square image the
coordinates live in. Targets are scaled as ``(pixel - side / 2) / (side / 2)``, so ``[-1, 1]``
spans the image. Flipping targets, mirroring images and converting to and from pixels exist
only here; data, iterators, augmentation, flip TTA, specialists and the synthetic generator all
call these methods. A subset of the keypoints (a specialist's) carries its own layout, whose
flip pairs are the pairs with both members kept; it is saved with the model (``to_dict``).

This follows mmpose's one flip rule (``flip_coordinates(coords, flip_indices)``, with the pairs
taken from the data set's description), written for this package's scaled column layout.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["KeypointLayout", "KAGGLE", "KAGGLE_KEYPOINTS", "KAGGLE_FLIP_PAIRS", "flip_columns",
           "permutation_from_pairs"]

#: The 15 keypoints of Kaggle's "Facial Keypoints Detection", in its column order.
KAGGLE_KEYPOINTS = (
    "left_eye_center", "right_eye_center",
    "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner",
    "left_eyebrow_inner_end", "left_eyebrow_outer_end",
    "right_eyebrow_inner_end", "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner", "mouth_right_corner",
    "mouth_center_top_lip", "mouth_center_bottom_lip",
)

#: Keypoint pairs (by name) that trade places when a face is mirrored left to right.
KAGGLE_FLIP_PAIRS = (
    ("left_eye_center", "right_eye_center"),
    ("left_eye_inner_corner", "right_eye_inner_corner"),
    ("left_eye_outer_corner", "right_eye_outer_corner"),
    ("left_eyebrow_inner_end", "right_eyebrow_inner_end"),
    ("left_eyebrow_outer_end", "right_eyebrow_outer_end"),
    ("mouth_left_corner", "mouth_right_corner"),
)


def _is_torch(a):
    return type(a).__module__.startswith("torch")


class KeypointLayout:
    """What a net's targets mean: keypoints, column order, flip pairs, image side.

    Parameters
    ----------
    names : sequence of str
        Keypoint names; each has two target columns, ``<name>_x`` then ``<name>_y``.
    flip_pairs : sequence of (str, str), default ()
        Pairs of keypoint names that trade places when the image is mirrored. Pairs with a
        name not in ``names`` are dropped (that is what a subset keeps).
    image_side : int, default 96
        Side in pixels of the square images the coordinates live in.

    Raises
    ------
    ValueError
        For repeated names, a keypoint in two flip pairs, or a side that is not a positive
        integer.

    Examples
    --------
    >>> from facekeypoints.layout import KAGGLE
    >>> KAGGLE.columns[:3], len(KAGGLE.columns)
    (('left_eye_center_x', 'left_eye_center_y', 'right_eye_center_x'), 30)
    >>> KAGGLE.column_flip_pairs[:2]
    ((0, 2), (1, 3))
    >>> eyes = KAGGLE.subset(["left_eye_center_x", "left_eye_center_y",
    ...                       "right_eye_center_x", "right_eye_center_y"])
    >>> eyes.flip_targets(np.array([[-0.5, 0.1, 0.5, 0.2]])).tolist()
    [[-0.5, 0.2, 0.5, 0.1]]
    >>> KAGGLE.to_pixels(np.array([0.0, -1.0, 1.0])).tolist()
    [48.0, 0.0, 96.0]
    """

    def __init__(self, names: Sequence[str], flip_pairs: Sequence[tuple[str, str]] = (),
                 image_side: int = 96):
        names = tuple(str(n) for n in names)
        if len(set(names)) != len(names):
            raise ValueError(f"keypoint names repeat: {names}")
        if not names:
            raise ValueError("a keypoint layout needs at least one keypoint")
        if isinstance(image_side, bool) or not isinstance(image_side, (int, np.integer)) \
                or image_side < 1:
            raise ValueError(f"image_side must be a positive integer, got {image_side!r}")
        kept = tuple((str(a), str(b)) for a, b in flip_pairs if a in names and b in names)
        seen = [n for pair in kept for n in pair]
        if len(set(seen)) != len(seen):
            raise ValueError(f"a keypoint is in two flip pairs: {kept}")
        self.names = names
        self.flip_pairs = kept
        self.image_side = int(image_side)

    # ----------------------------------------------------------------- derived geometry
    @property
    def columns(self) -> tuple[str, ...]:
        """Target column names, ``<name>_x`` and ``<name>_y`` per keypoint, in order."""
        return tuple(f"{n}_{axis}" for n in self.names for axis in ("x", "y"))

    @property
    def n_keypoints(self) -> int:
        """Number of keypoints (half the number of target columns)."""
        return len(self.names)

    @property
    def pixel_scale(self) -> float:
        """Pixels per unit of a scaled target: half the image side (48.0 for 96)."""
        return self.image_side / 2

    @property
    def column_flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """Flip pairs as pairs of target column indices (the old recipe's ``flip_indices``)."""
        index = {n: i for i, n in enumerate(self.names)}
        return tuple(pair for a, b in self.flip_pairs
                     for pair in ((2 * index[a], 2 * index[b]),
                                  (2 * index[a] + 1, 2 * index[b] + 1)))

    def flip_permutation(self) -> np.ndarray:
        """Column order of the mirrored targets: ``y[:, perm]`` swaps every flip pair.

        Returns
        -------
        numpy.ndarray
            int64 permutation of ``range(2 * n_keypoints)``.
        """
        return permutation_from_pairs(2 * self.n_keypoints, self.column_flip_pairs)

    def subset(self, columns: Sequence[str]) -> KeypointLayout:
        """The layout of some of the keypoints, in the order ``columns`` names them.

        Parameters
        ----------
        columns : sequence of str
            Target columns to keep, both ``_x`` and ``_y`` of each kept keypoint, x first.

        Returns
        -------
        KeypointLayout
            The kept keypoints; flip pairs with both members kept; the same image side.

        Raises
        ------
        ValueError
            For an unknown column or a keypoint without both of its columns in x, y order.
        """
        columns = list(columns)
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise ValueError(f"unknown keypoint column(s) {unknown}; this layout has "
                             f"{', '.join(self.columns)}")
        if len(columns) % 2 or any(columns[i][:-2] != columns[i + 1][:-2]
                                   or not columns[i].endswith("_x")
                                   or not columns[i + 1].endswith("_y")
                                   for i in range(0, len(columns), 2)):
            raise ValueError("a layout's columns come in pairs, <name>_x then <name>_y; got "
                             f"{columns}")
        return KeypointLayout([columns[i][:-2] for i in range(0, len(columns), 2)],
                              self.flip_pairs, self.image_side)

    # ----------------------------------------------------------------- operations
    def flip_targets(self, y):
        """Targets of the mirrored images: x negated, every flip pair swapped.

        Parameters
        ----------
        y : numpy.ndarray or torch.Tensor
            Scaled targets, shape ``(..., 2 * n_keypoints)``; NaN stays NaN.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            A new array of the same kind, shape and dtype.

        Raises
        ------
        ValueError
            When ``y`` does not have this layout's number of columns.
        """
        k = 2 * self.n_keypoints
        if y.shape[-1] != k:
            raise ValueError(f"targets have {y.shape[-1]} columns; this layout has {k} "
                             f"({self.n_keypoints} keypoints)")
        return flip_columns(y, self.flip_permutation())

    def flip_pixels(self, p):
        """Pixel keypoints of the mirrored images: ``x -> side - x``, flip pairs swapped.

        Parameters
        ----------
        p : array-like
            Keypoints in pixels, shape ``(..., 2 * n_keypoints)``.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            :meth:`flip_targets` in pixel units (float64 for numpy input).
        """
        return self.to_pixels(self.flip_targets(self.from_pixels(p)))

    def mirror_images(self, X):
        """Images mirrored left to right.

        Parameters
        ----------
        X : numpy.ndarray or torch.Tensor
            Square images ``(..., h, h)``, or flat rows ``(n, h * h)`` of ``h x h`` images
            (``(n, side * side)`` for this layout's side).

        Returns
        -------
        numpy.ndarray or torch.Tensor
            A new array of the same kind and shape.

        Raises
        ------
        ValueError
            When ``X`` holds no images of this layout's side.
        """
        shape = tuple(X.shape)
        flip = (lambda a: a.flip(-1)) if _is_torch(X) else (lambda a: np.flip(a, -1).copy())
        if len(shape) >= 3 and shape[-1] == shape[-2]:
            return flip(X)
        if len(shape) == 2:
            side = math.isqrt(shape[1])
            if side * side == shape[1] and side > 0:
                return flip(X.reshape(-1, side, side)).reshape(shape)
        side = self.image_side
        raise ValueError(f"cannot mirror images of shape {shape}: expected flat square rows "
                         f"such as (n, {side * side}) or (..., {side}, {side}) images")

    def to_pixels(self, y):
        """Scaled targets to pixel coordinates: ``y * side / 2 + side / 2``.

        Parameters
        ----------
        y : array-like
            Scaled coordinates.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            Pixel coordinates (a numpy array unless given a tensor).
        """
        if not _is_torch(y):
            y = np.asarray(y, dtype=np.float64) if not np.issubdtype(
                np.asarray(y).dtype, np.floating) else np.asarray(y)
        return y * self.pixel_scale + self.pixel_scale

    def from_pixels(self, p):
        """Pixel coordinates to scaled targets: ``(p - side / 2) / (side / 2)``.

        Parameters
        ----------
        p : array-like
            Pixel coordinates.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            Scaled coordinates (a numpy array unless given a tensor).
        """
        if not _is_torch(p):
            p = np.asarray(p, dtype=np.float64) if not np.issubdtype(
                np.asarray(p).dtype, np.floating) else np.asarray(p)
        return (p - self.pixel_scale) / self.pixel_scale

    # ----------------------------------------------------------------- saving
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form: ``{"names": [...], "flip_pairs": [[a, b], ...], "image_side": n}``.

        Returns
        -------
        dict
            What :meth:`from_dict` reads back.
        """
        return {"names": list(self.names), "flip_pairs": [list(p) for p in self.flip_pairs],
                "image_side": self.image_side}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeypointLayout:
        """Rebuild a layout from :meth:`to_dict`'s output.

        Parameters
        ----------
        d : mapping
            With ``names``, ``flip_pairs`` and ``image_side``.

        Returns
        -------
        KeypointLayout
            The layout.

        Raises
        ------
        ValueError
            When ``d`` is not a layout's description.
        """
        try:
            return cls(list(d["names"]), [tuple(p) for p in d.get("flip_pairs", ())],
                       int(d.get("image_side", 96)))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a keypoint layout description: {d!r} ({e})") from None

    def __eq__(self, other):
        return isinstance(other, KeypointLayout) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash((self.names, self.flip_pairs, self.image_side))

    def __repr__(self):
        if self == KAGGLE:
            return "KeypointLayout.kaggle()"
        return (f"KeypointLayout({list(self.names)!r}, flip_pairs={list(self.flip_pairs)!r}, "
                f"image_side={self.image_side})")

    @classmethod
    def kaggle(cls) -> KeypointLayout:
        """The 15 keypoints of Kaggle's data on its 96 x 96 faces.

        Returns
        -------
        KeypointLayout
            Equal to :data:`KAGGLE`.
        """
        return cls(KAGGLE_KEYPOINTS, KAGGLE_FLIP_PAIRS, 96)


def flip_columns(y, permutation):
    """The flip rule on scaled targets: every x (even column) negated, columns permuted.

    :meth:`KeypointLayout.flip_targets` is this with the layout's permutation; iterators
    given the old recipe's ``flip_indices`` call it with :func:`permutation_from_pairs`.

    Parameters
    ----------
    y : numpy.ndarray or torch.Tensor
        Scaled targets ``(..., k)``, x and y alternating.
    permutation : array-like or torch.Tensor
        Column order of the mirrored targets (a tensor on ``y``'s device avoids a copy).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        A new array of the same kind, shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from facekeypoints.layout import flip_columns
    >>> flip_columns(np.array([[-0.5, 0.1, 0.5, 0.2]]), [2, 3, 0, 1]).tolist()
    [[-0.5, 0.2, 0.5, 0.1]]
    """
    if _is_torch(y):
        import torch
        if not isinstance(permutation, torch.Tensor) or permutation.device != y.device:
            permutation = torch.as_tensor(np.asarray(permutation), device=y.device)
    else:
        y = np.asarray(y)
        permutation = np.asarray(permutation)
    out = y[..., permutation]
    out[..., 0::2] = -out[..., 0::2]
    return out


def permutation_from_pairs(n_columns: int, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Column permutation that swaps each pair of column indices.

    Parameters
    ----------
    n_columns : int
        Number of target columns.
    pairs : sequence of (int, int)
        Column indices that trade places.

    Returns
    -------
    numpy.ndarray
        int64 permutation of ``range(n_columns)``.

    Raises
    ------
    ValueError
        For a pair outside the columns.
    """
    perm = np.arange(n_columns)
    for a, b in pairs:
        if not (0 <= a < n_columns and 0 <= b < n_columns):
            raise ValueError(f"flip pair {(a, b)} is outside the {n_columns} target columns")
        perm[a], perm[b] = b, a
    return perm


#: The layout of Kaggle's data: 15 keypoints, 30 columns, 6 flip pairs (12 column pairs), 96 px.
KAGGLE = KeypointLayout.kaggle()
