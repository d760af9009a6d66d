"""Geometric augmentation on the device: rotate, scale and shift images with their keypoints.

:class:`AffineBatchIterator` turns, zooms and moves every training image by its own random
amounts (after the mirroring of :class:`~facekeypoints.iterators.FlipBatchIterator` when
``flip=True``) and moves the keypoints with exactly the same matrix. The whole batch is
resampled by one ``affine_grid``/``grid_sample`` call on the device where it lives: no host
round trip, no per-sample Python loop. :func:`affine_transform` is the same step with the
amounts given instead of drawn.

Coordinates: targets are ``(x - 48) / 48`` with pixel ``i``'s centre at ``x = i + 0.5``
(see :mod:`facekeypoints.synthetic`), which is exactly ``grid_sample``'s
``align_corners=False`` convention: -1 and 1 are the outer edges of the first and last pixel.
The transform is about the image centre, in pixels: a point at offset ``p`` from the centre
goes to ``scale * R(angle) @ p + shift``, positive angles turning the image counter-clockwise
as displayed (y pointing down). A keypoint that lands outside the frame (x or y outside
[-1, 1]) becomes NaN, x and y both: unlabelled, never a wrong value. Images are resampled
bilinearly; where the source lies outside the frame the nearest edge pixel is repeated
(``padding_mode='border'``, no black corners), or zeros or a reflection if you ask.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F

from .data import FLIP_INDICES
from .iterators import FlipBatchIterator
from .layout import KAGGLE, KeypointLayout
from .registry import register_iterator

__all__ = ["AffineBatchIterator", "affine_transform", "PADDING_MODES", "LABEL_LOSS_WARN",
           "LABEL_LOSS_REFUSE", "expected_label_loss"]

#: Ways to fill where an image's source lies outside the frame (``grid_sample``'s names).
PADDING_MODES = ("border", "zeros", "reflection")

#: Settings expected to move more than this fraction of the keypoints out of the frame warn.
LABEL_LOSS_WARN = 0.2
#: Settings expected to move more than this fraction out (most labels) are refused.
LABEL_LOSS_REFUSE = 0.5

# Where face keypoints lie, in scaled units: a grid over the middle of the image (Kaggle's
# keypoints span about pixels 20 to 76 of 96), and fixed draws of the random amounts, so the
# estimate below is the same on every call.
_REFERENCE = np.stack(np.meshgrid(np.linspace(-0.55, 0.55, 7), np.linspace(-0.55, 0.55, 7)),
                      axis=-1).reshape(-1, 2)
_DRAWS = np.random.default_rng(0).uniform(-1, 1, (400, 4))


def expected_label_loss(rotate: float, scale: float, shift: float, image_side: int = 96
                        ) -> float:
    """The fraction of face keypoints that random amounts up to these limits push out.

    Estimated on fixed draws of the amounts (the same every call) applied to a grid of
    points over the middle of the image, where face keypoints lie.

    Parameters
    ----------
    rotate, scale, shift : float
        :class:`AffineBatchIterator`'s limits (degrees, fraction, pixels).
    image_side : int, default 96
        Side of the images in pixels (what ``shift`` is measured against).

    Returns
    -------
    float
        Between 0 and 1.

    Examples
    --------
    >>> from facekeypoints.augment import expected_label_loss
    >>> expected_label_loss(12, 0.08, 5) < 0.01, expected_label_loss(0, 0, 1000) > 0.9
    (True, True)
    """
    angle = np.deg2rad(_DRAWS[:, 0] * float(rotate))
    zoom = 1 + _DRAWS[:, 1] * float(scale)
    move = _DRAWS[:, 2:] * float(shift) * (2.0 / image_side)
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    x, y = _REFERENCE[:, 0][None], _REFERENCE[:, 1][None]
    nx = cos[:, None] * x + sin[:, None] * y + move[:, :1]
    ny = -sin[:, None] * x + cos[:, None] * y + move[:, 1:]
    return float(((np.abs(nx) > 1) | (np.abs(ny) > 1)).mean())


def affine_transform(Xb: torch.Tensor, yb: torch.Tensor | None, angle: torch.Tensor,
                     scale: torch.Tensor, shift: torch.Tensor, padding_mode: str = "border"
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rotate, scale and shift each image about its centre, and its keypoints with it.

    Parameters
    ----------
    Xb : torch.Tensor
        Images ``(n, channels, height, width)``, or flat square rows ``(n, side * side)``;
        float32, float64, float16 or bfloat16 (resampled in float32, returned as given).
    yb : torch.Tensor or None
        Keypoints ``(n, 2k)``, x and y alternating, scaled as ``(coordinate - 48) / 48``
        (in general: by half the width for x, half the height for y, about the centre);
        NaN for an unlabelled keypoint. None when there are no targets.
    angle : torch.Tensor
        ``(n,)`` rotations in degrees; positive turns the image counter-clockwise as shown.
    scale : torch.Tensor
        ``(n,)`` positive zoom factors; above 1 makes the face larger.
    shift : torch.Tensor
        ``(n, 2)`` moves in pixels, ``(right, down)``.
    padding_mode : {'border', 'zeros', 'reflection'}, default 'border'
        What fills the frame where the source lies outside it.

    Returns
    -------
    Xb : torch.Tensor
        New images, same shape, dtype and device.
    yb : torch.Tensor or None
        New keypoints (same dtype); those that left the frame are NaN (x and y), and NaN
        keypoints stay NaN.

    Raises
    ------
    ValueError
        For a batch that is not images, an odd number of target columns, amounts of the wrong
        shape or an unknown ``padding_mode``.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.augment import affine_transform
    >>> X = torch.zeros(1, 1, 96, 96)
    >>> y = torch.tensor([[0.5, 0.25, 0.9, 0.9]])      # two keypoints
    >>> _, y2 = affine_transform(X, y, torch.tensor([90.0]), torch.tensor([1.0]),
    ...                          torch.tensor([[0.0, 0.0]]))
    >>> [round(v, 4) for v in y2[0].tolist()]           # right of centre -> above it
    [0.25, -0.5, 0.9, -0.9]
    >>> _, y3 = affine_transform(X, y, torch.tensor([0.0]), torch.tensor([1.2]),
    ...                          torch.tensor([[0.0, 0.0]]))
    >>> y3[0].tolist()[2:]                              # pushed out of the frame: NaN
    [nan, nan]
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    images = _as_images(Xb)
    n, _, height, width = images.shape
    if yb is not None and (yb.dim() != 2 or yb.shape[0] != n or yb.shape[1] % 2):
        raise ValueError(f"targets must be (n, 2k) with x and y alternating for {n} images, "
                         f"got shape {tuple(yb.shape)}")
    work = torch.float64 if Xb.dtype == torch.float64 else torch.float32
    forward = _forward_matrices(angle, scale, shift, n, height, width, work, Xb.device)
    theta = _inverse(forward)                       # output coordinates -> source coordinates
    grid = _sampling_grid(theta, height, width)
    out = F.grid_sample(images.to(work), grid, mode="bilinear", padding_mode=padding_mode,
                        align_corners=False)
    Xout = out.to(Xb.dtype).reshape(Xb.shape)
    if yb is None:
        return Xout, None
    return Xout, _move_keypoints(yb, forward)


def _as_images(Xb):
    """View a batch as (n, c, h, w); flat rows must be square images."""
    if not isinstance(Xb, torch.Tensor):
        raise ValueError(f"affine augmentation works on torch tensors, got {type(Xb).__name__};"
                         " pass tensors (NeuralNet does)")
    if Xb.dim() == 4:
        return Xb
    if Xb.dim() == 2:
        side = math.isqrt(Xb.shape[1])
        if side * side == Xb.shape[1]:
            return Xb.reshape(Xb.shape[0], 1, side, side)
        raise ValueError(f"cannot transform flat rows of {Xb.shape[1]} values: not a square "
                         "image; reshape the batch to (n, channels, height, width)")
    raise ValueError(f"cannot transform a batch of shape {tuple(Xb.shape)}: expected images "
                     "(n, channels, height, width) or flat square rows (n, side * side)")


def _forward_matrices(angle, scale, shift, n, height, width, dtype, device):
    """(n, 2, 3) maps from source to output positions, in grid_sample's normalized units."""
    angle, scale, shift = (torch.as_tensor(v, dtype=dtype).to(device)
                           for v in (angle, scale, shift))
    if angle.shape != (n,) or scale.shape != (n,) or shift.shape != (n, 2):
        raise ValueError(f"for {n} images, angle and scale must have shape ({n},) and shift "
                         f"({n}, 2); got {tuple(angle.shape)}, {tuple(scale.shape)} and "
                         f"{tuple(shift.shape)}")
    rad = torch.deg2rad(angle)
    cos, sin = torch.cos(rad) * scale, torch.sin(rad) * scale
    # In pixels about the centre (y down), counter-clockwise as shown: x' = c x + s y,
    # y' = -s x + c y. Normalized units divide x by width/2 and y by height/2.
    aspect = height / width
    forward = torch.stack([
        torch.stack([cos, sin * aspect, shift[:, 0] * (2.0 / width)], dim=1),
        torch.stack([-sin / aspect, cos, shift[:, 1] * (2.0 / height)], dim=1),
    ], dim=1)
    return forward


def _sampling_grid(theta, height, width):
    """``affine_grid(theta, ..., align_corners=False)``, built by broadcasting.

    Computed as x and y planes, returned as an ``(n, h, w, 2)`` view: on a CPU this is
    several times cheaper than ``affine_grid``'s batched matrix product and than writing
    the interleaved layout directly; ``grid_sample`` reads the strided view as it is.
    """
    def centres(size):          # pixel centres in normalized units: (2i + 1) / size - 1
        return (torch.arange(size, dtype=theta.dtype, device=theta.device) * 2 + 1) / size - 1

    xs, ys = centres(width).view(1, 1, 1, width), centres(height).view(1, 1, height, 1)
    t = theta[:, :, :, None, None]                                      # (n, 2, 3, 1, 1)
    planes = t[:, :, 0] * xs + t[:, :, 2] + t[:, :, 1] * ys             # (n, 2, h, w)
    return planes.permute(0, 2, 3, 1)


def _inverse(forward):
    """Invert (n, 2, 3) affine maps in closed form."""
    a, b, tx = forward[:, 0, 0], forward[:, 0, 1], forward[:, 0, 2]
    c, d, ty = forward[:, 1, 0], forward[:, 1, 1], forward[:, 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return torch.stack([
        torch.stack([ia, ib, -(ia * tx + ib * ty)], dim=1),
        torch.stack([ic, id_, -(ic * tx + id_ * ty)], dim=1),
    ], dim=1)


def _move_keypoints(yb, forward):
    """Apply the forward maps to (n, 2k) keypoints; out-of-frame ones become NaN."""
    if not yb.is_floating_point():
        raise ValueError(f"keypoint targets must be floating point, got {yb.dtype}")
    pts = yb.to(forward.dtype).reshape(yb.shape[0], -1, 2)              # (n, k, 2)
    moved = pts @ forward[:, :, :2].transpose(1, 2) + forward[:, None, :, 2]
    inside = (moved.abs() <= 1).all(dim=2, keepdim=True)                # False for NaN
    moved = torch.where(inside, moved, torch.full_like(moved, float("nan")))
    return moved.reshape(yb.shape).to(yb.dtype)


def _limit(name, value, below=None, at_most=None, why=""):
    """Check one augmentation limit: a finite number >= 0, under its upper bound."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} is a limit on both sides and must be >= 0, got {value!r}; "
                         f"{name}={-value!r} draws from [{value!r}, {-value!r}]")
    if below is not None and value >= below:
        raise ValueError(f"{name} must be below {below}{why}, got {value!r}")
    if at_most is not None and value > at_most:
        raise ValueError(f"{name} must be at most {at_most}{why}, got {value!r}")


@register_iterator
class AffineBatchIterator(FlipBatchIterator):
    """Rotate, scale and shift every training image at random, keypoints moved exactly.

    Each image gets its own rotation in ``[-rotate, rotate]`` degrees, isotropic zoom in
    ``[1 - scale, 1 + scale]`` and shift in ``[-shift, shift]`` pixels along each axis, about
    the image centre, after :class:`~facekeypoints.iterators.FlipBatchIterator` has mirrored a
    random half of the batch (when ``flip``). Keypoints are moved by the same matrix; one that
    leaves the frame becomes NaN (x and y): train with a loss that ignores NaN targets (the
    masked regression loss), as a plain ``MSELoss`` turns them into a NaN loss. Amounts are drawn
    from the iterator's generator (:meth:`rng`; ``NeuralNet`` passes its own, so seeded runs
    repeat and resumed runs continue exactly), and the batch is resampled bilinearly on its
    own device in one call. ``rotate=scale=shift=0`` skips the resampling; with
    ``flip=False`` too, batches pass through unchanged.

    Limits that would push many keypoints out of the frame are caught when the iterator is
    made (or changed with ``set_params``), from :func:`expected_label_loss` on the layout's
    image side: above :data:`LABEL_LOSS_WARN` (a fifth) a warning names the setting, above
    :data:`LABEL_LOSS_REFUSE` (half: most labels gone) it is refused.

    Pass it as ``batch_iterator_train``: ``NeuralNet`` validates and predicts through
    ``batch_iterator_test`` (a plain ``BatchIterator`` by default), so those stay unaugmented.

    Parameters
    ----------
    batch_size : int, default 128
        Rows per batch.
    rotate : float, default 12.0
        Largest rotation, in degrees (0 to 180).
    scale : float, default 0.08
        Largest relative change of size (0 <= scale < 1).
    shift : float, default 5.0
        Largest move along each axis, in pixels.
    flip : bool, default True
        Also mirror a random half of each batch, as ``FlipBatchIterator`` does.
    flip_indices : sequence of (int, int), default FLIP_INDICES
        Target columns that trade places when a face is mirrored.
    padding_mode : {'border', 'zeros', 'reflection'}, default 'border'
        What fills the frame where the source lies outside it: the nearest edge pixel,
        zeros, or the image reflected at its edge.
    shuffle : bool, default False
        Visit the rows in a new random order on every pass.
    random_state : int, optional
        Seed for shuffling, mirroring and the transforms (when not given a generator).
    layout : KeypointLayout, optional
        The targets' layout: its flip pairs replace ``flip_indices`` and its image side is
        what the label-loss check measures ``shift`` against (default: Kaggle's, 96 px).

    Raises
    ------
    ValueError
        For a negative or non-finite limit, ``rotate`` above 180, ``scale`` of 1 or more, a
        non-boolean ``flip``, an unknown ``padding_mode``, limits expected to push most
        keypoints out of the frame, or the settings :class:`FlipBatchIterator` checks.

    Warns
    -----
    UserWarning
        For limits expected to push more than a fifth of the keypoints out of the frame.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.augment import AffineBatchIterator
    >>> X, y = torch.rand(8, 1, 96, 96), torch.zeros(8, 30)
    >>> it = AffineBatchIterator(batch_size=4, rotate=10, scale=0.1, shift=4, random_state=0)
    >>> it
    AffineBatchIterator(batch_size=4, rotate=10, scale=0.1, shift=4, flip=True, random_state=0)
    >>> [(tuple(Xb.shape), tuple(yb.shape)) for Xb, yb in it(X, y)]
    [((4, 1, 96, 96), (4, 30)), ((4, 1, 96, 96), (4, 30))]
    """

    def __init__(self, batch_size: int = 128, rotate: float = 12.0, scale: float = 0.08,
                 shift: float = 5.0, flip: bool = True,
                 flip_indices: Sequence[tuple[int, int]] = FLIP_INDICES,
                 padding_mode: str = "border", shuffle: bool = False,
                 random_state: int | None = None, layout: KeypointLayout | None = None
                 ) -> None:
        super().__init__(batch_size, flip_indices=flip_indices, shuffle=shuffle,
                         random_state=random_state, layout=layout)
        self.rotate = rotate
        self.scale = scale
        self.shift = shift
        self.flip = flip
        self.padding_mode = padding_mode
        self._check_settings()
        self._check_label_loss()

    def _check_label_loss(self):
        """Warn about, or refuse, limits that push many keypoints out of the frame."""
        side = getattr(self.layout, "image_side", None) or KAGGLE.image_side
        lost = expected_label_loss(self.rotate, self.scale, self.shift, side)
        if lost <= LABEL_LOSS_WARN:
            return
        alone = {name: expected_label_loss(**{**dict(rotate=0, scale=0, shift=0),
                                              name: getattr(self, name)}, image_side=side)
                 for name in ("rotate", "scale", "shift")}
        worst = max(alone, key=alone.get)
        hint = {"rotate": "rotate=15 degrees or less", "scale": "scale=0.1 or less",
                "shift": f"shift={max(1, round(side / 16))} pixels or less"}[worst]
        what = (f"{worst}={getattr(self, worst)!r} moves about {math.floor(lost * 100)}% of "
                f"the keypoints out of the {side}-pixel frame, where they become unlabelled "
                "(NaN)")
        if lost > LABEL_LOSS_REFUSE:
            raise ValueError(f"{what}: most labels would be lost; try {hint}")
        warnings.warn(f"AffineBatchIterator {what}; batches keep fewer labels (try {hint})",
                      UserWarning, stacklevel=3)

    def _check_settings(self):
        _limit("rotate", self.rotate, at_most=180,
               why=" (degrees; 180 already allows any angle)")
        _limit("scale", self.scale, below=1,
               why=" (a fraction: sizes are drawn from [1 - scale, 1 + scale], which must "
                   "stay positive)")
        _limit("shift", self.shift)
        if not isinstance(self.flip, bool):
            raise ValueError(f"flip must be True or False, got {self.flip!r}")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, "
                             f"got {self.padding_mode!r}")

    def __call__(self, X: torch.Tensor, y: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> AffineBatchIterator:
        """Check the settings (they may have been changed), then bind the data.

        Parameters
        ----------
        X : torch.Tensor
            Inputs to batch.
        y : torch.Tensor or None
            Targets to batch.
        generator : torch.Generator, optional
            The generator to draw from (``NeuralNet`` passes its own).

        Returns
        -------
        AffineBatchIterator
            A copy of this iterator bound to the data.
        """
        self._check_settings()
        return super().__call__(X, y, generator=generator)

    def transform(self, Xb: torch.Tensor, yb: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mirror a random half (when ``flip``), then move every image by random amounts.

        Parameters
        ----------
        Xb : torch.Tensor
            Images, ``(n, channels, height, width)`` or flat square rows ``(n, side * side)``.
        yb : torch.Tensor or None
            Keypoint targets ``(n, 2k)``, x and y alternating; None when predicting.

        Returns
        -------
        Xb : torch.Tensor
            The transformed images (the input itself when every setting is off).
        yb : torch.Tensor or None
            The keypoints moved to match; NaN where they left the frame.
        """
        if self.flip:
            Xb, yb = super().transform(Xb, yb)
        if self.rotate == 0 and self.scale == 0 and self.shift == 0:
            return Xb, yb
        gen = self.rng()
        u = torch.rand(Xb.shape[0], 4, generator=gen, device=gen.device) * 2 - 1
        u = u.to(Xb.device)
        angle = u[:, 0] * float(self.rotate)
        scale = 1 + u[:, 1] * float(self.scale)
        shift = u[:, 2:] * float(self.shift)
        return affine_transform(Xb, yb, angle, scale, shift, padding_mode=self.padding_mode)

    def __repr__(self):
        parts = [f"batch_size={self.batch_size}", f"rotate={self.rotate!r}",
                 f"scale={self.scale!r}", f"shift={self.shift!r}", f"flip={self.flip!r}"]
        if list(map(tuple, self.flip_indices)) != list(map(tuple, FLIP_INDICES)):
            parts.append(f"flip_indices={self.flip_indices!r}")
        for name, default in (("padding_mode", "border"), ("shuffle", False),
                              ("random_state", None), ("layout", None)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
