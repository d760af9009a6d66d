"""Regression losses that ignore unlabelled targets: a NaN target means "not labelled".

Kaggle's training.csv has all 15 keypoints on about 2,140 of its 7,049 faces; the others carry
a few (``fk.load(dropna=False)`` keeps them, NaN where a keypoint is missing). These criteria
average only over the labelled entries of a batch, so a net learns from every keypoint that
is there and none that is not:

- :class:`MaskedMSELoss`, the default criterion of a regression :class:`~facekeypoints.NeuralNet`:
  the mean squared error over labelled entries. Where every target is labelled it equals
  ``torch.nn.MSELoss`` bit for bit (value and gradient), so the recipe's runs are unchanged.
- :class:`MaskedL1Loss`: the mean absolute error over labelled entries.
- :class:`WingLoss` (Feng et al., "Wing loss for robust facial landmark localisation with
  convolutional neural networks", CVPR 2018): logarithmic for small errors, so that small and
  medium errors weigh more than under MSE, and linear for large ones.

Unlabelled entries contribute exactly 0 to the loss and to the gradient (the error there is
computed against the prediction itself, never ``torch.where`` on a NaN error, whose gradient
would be NaN). A batch in which some keypoint column has no label works; a batch with no label
at all gives a loss of 0 that still backpropagates (zero gradients). The loss is computed in
float32 even when the prediction comes from a bfloat16 autocast region.

Each criterion registers itself (:func:`facekeypoints.registry.register_criterion`), which is
what lets model files name it; register a loss of your own the same way to save it.

Every criterion here is in the net's scaled units, (pixel - 48) / 48: an MSE loss ``L`` is an
RMSE of ``sqrt(L) * 48`` pixels (:func:`facekeypoints.metrics.rmse_px`).

Examples
--------
>>> import torch
>>> from facekeypoints.losses import MaskedMSELoss
>>> pred = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
>>> target = torch.tensor([[0.0, float("nan")], [0.3, 0.2]])
>>> round(MaskedMSELoss()(pred, target).item(), 6)    # (0.01 + 0 + 0.04) / 3
0.016667
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn

from .metrics import PIXELS_PER_UNIT
from .registry import CRITERIA_REGISTRY, register_criterion

__all__ = ["CRITERIA", "MaskedL1Loss", "MaskedLoss", "MaskedMSELoss", "WING_CURVATURE",
           "WING_WIDTH", "WingLoss", "get_criterion", "ignores_nan", "is_mse"]

#: WingLoss's default width ``w``: 10 pixels, in scaled units (10 / 48).
WING_WIDTH = 10.0 / PIXELS_PER_UNIT
#: WingLoss's default curvature ``epsilon``: 2 pixels, in scaled units (2 / 48).
WING_CURVATURE = 2.0 / PIXELS_PER_UNIT

_LOW_PRECISION = (torch.bfloat16, torch.float16)


class MaskedLoss(nn.Module):
    """Base class: an element-wise error averaged over the labelled (non-NaN) targets only.

    Subclasses define :meth:`elementwise`, the loss of each error ``prediction - target``.
    The class attribute ``ignores_nan = True`` tells :class:`~facekeypoints.NeuralNet` that
    the criterion accepts NaN targets (see :func:`ignores_nan`).
    """

    ignores_nan = True

    def __init__(self) -> None:
        super().__init__()

    def elementwise(self, error: torch.Tensor) -> torch.Tensor:
        """Return the loss of each error; override in a subclass.

        Parameters
        ----------
        error : torch.Tensor
            ``prediction - target``, float32; exactly 0 where the target is unlabelled.

        Returns
        -------
        torch.Tensor
            The loss of each entry, the same shape; it must be 0 with a 0 gradient at 0.
        """
        raise NotImplementedError

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean of :meth:`elementwise` over the labelled entries.

        Parameters
        ----------
        input : torch.Tensor
            Predictions, ``(n, k)``; cast to float32 when lower precision.
        target : torch.Tensor
            Targets of the same shape; NaN marks an unlabelled entry.

        Returns
        -------
        torch.Tensor
            A float32 scalar: the mean over labelled entries (0 when there are none).

        Raises
        ------
        ValueError
            If ``input`` and ``target`` differ in shape.
        """
        if input.dtype in _LOW_PRECISION:
            input = input.float()
        if target.dtype != input.dtype:
            target = target.to(input.dtype)
        if input.shape != target.shape:
            raise ValueError(f"{type(self).__name__}: predictions {tuple(input.shape)} and "
                             f"targets {tuple(target.shape)} differ in shape")
        labelled = ~torch.isnan(target)
        # Where a target is unlabelled, compare the prediction with itself: the error is then
        # exactly 0, and so is its gradient (a NaN error masked afterwards would still send a
        # NaN gradient back through the masked branch).
        target = torch.where(labelled, target, input.detach())
        per_entry = self.elementwise(input - target)
        # mean() * (entries / labelled): exactly torch's mean when every entry is labelled
        # (the factor is then 1.0), the mean over labelled entries otherwise.
        scale = input.numel() / labelled.sum().clamp(min=1)
        return per_entry.mean() * scale

    def get_params(self) -> dict[str, float]:
        """Return the criterion's parameters (what model files record).

        Returns
        -------
        dict
            ``{}`` here; :class:`WingLoss` returns its width and curvature.
        """
        return {}


@register_criterion
class MaskedMSELoss(MaskedLoss):
    """Mean squared error over the labelled targets; NaN targets are ignored.

    The default criterion of a regression :class:`~facekeypoints.NeuralNet`. With no NaN
    target it equals ``torch.nn.MSELoss()`` bit for bit, value and gradient.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.losses import MaskedMSELoss
    >>> pred, target = torch.randn(4, 30), torch.randn(4, 30)
    >>> torch.equal(MaskedMSELoss()(pred, target), torch.nn.MSELoss()(pred, target))
    True
    """

    def elementwise(self, error: torch.Tensor) -> torch.Tensor:
        """Return ``error ** 2`` (computed as ``error * error``, as torch's MSE does).

        Parameters
        ----------
        error : torch.Tensor
            ``prediction - target``.

        Returns
        -------
        torch.Tensor
            The squared errors.
        """
        return error * error


@register_criterion
class MaskedL1Loss(MaskedLoss):
    """Mean absolute error over the labelled targets; NaN targets are ignored.

    With no NaN target it equals ``torch.nn.L1Loss()``.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.losses import MaskedL1Loss
    >>> round(MaskedL1Loss()(torch.tensor([[0.5, 1.0]]),
    ...                      torch.tensor([[0.0, float("nan")]])).item(), 6)
    0.5
    """

    def elementwise(self, error: torch.Tensor) -> torch.Tensor:
        """Return ``|error|``.

        Parameters
        ----------
        error : torch.Tensor
            ``prediction - target``.

        Returns
        -------
        torch.Tensor
            The absolute errors.
        """
        return error.abs()


@register_criterion
class WingLoss(MaskedLoss):
    """Wing loss (Feng et al., CVPR 2018) over the labelled targets; NaN targets are ignored.

    ``wing(x) = width * ln(1 + |x| / curvature)`` for ``|x| < width``, else ``|x| - C`` with
    ``C = width - width * ln(1 + width / curvature)``, which joins the two pieces
    continuously. Small errors weigh more than under MSE (the slope near 0 is
    ``width / curvature``), large ones (outliers, wrong labels) grow only linearly.

    Both parameters are in the net's scaled units, (pixel - 48) / 48. The defaults are the
    paper's ``w = 10`` and ``epsilon = 2`` pixels: ``10 / 48`` and ``2 / 48``
    (:data:`WING_WIDTH`, :data:`WING_CURVATURE`); for ``k`` pixels pass ``k / 48``.

    Parameters
    ----------
    width : float, default 10 / 48
        Errors below it are in the logarithmic part (the paper's ``w``), in scaled units.
    curvature : float, default 2 / 48
        How sharply the logarithmic part bends (the paper's ``epsilon``), in scaled units;
        smaller is sharper.

    Raises
    ------
    ValueError
        If ``width`` or ``curvature`` is not a finite positive number.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.losses import WingLoss
    >>> loss = WingLoss()                     # 10 px and 2 px
    >>> round(loss(torch.tensor([[1 / 48]]), torch.tensor([[0.0]])).item(), 4)   # 1 px off
    0.0845
    >>> WingLoss(width=5 / 48)
    WingLoss(width=0.104167, curvature=0.0416667)
    """

    def __init__(self, width: float = WING_WIDTH, curvature: float = WING_CURVATURE) -> None:
        super().__init__()
        for name, value in (("width", width), ("curvature", curvature)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    math.isfinite(value) and value > 0):
                raise ValueError(f"WingLoss {name} must be a finite number > 0 in scaled units "
                                 f"(pixels / 48), got {value!r}")
        self.width = float(width)
        self.curvature = float(curvature)
        self.offset = self.width - self.width * math.log1p(self.width / self.curvature)

    def elementwise(self, error: torch.Tensor) -> torch.Tensor:
        """Return the wing of each error.

        Parameters
        ----------
        error : torch.Tensor
            ``prediction - target``.

        Returns
        -------
        torch.Tensor
            ``width * log1p(|x| / curvature)`` below ``width``, ``|x| - C`` above.
        """
        size = error.abs()
        return torch.where(size < self.width,
                           self.width * torch.log1p(size / self.curvature),
                           size - self.offset)

    def get_params(self) -> dict[str, float]:
        """Return ``width`` and ``curvature`` (what model files record).

        Returns
        -------
        dict
            ``{'width': ..., 'curvature': ...}``, floats in scaled units.
        """
        return {"width": self.width, "curvature": self.curvature}

    def extra_repr(self) -> str:
        """Return the parameters for the module's ``repr``.

        Returns
        -------
        str
            ``'width=..., curvature=...'``.
        """
        return f"width={self.width:g}, curvature={self.curvature:g}"


# torch's own losses that model files may name, with their default settings only (their
# parameters include tensors, such as CrossEntropyLoss's class weights).
for _torch_loss in (nn.MSELoss, nn.L1Loss, nn.CrossEntropyLoss):
    register_criterion(_torch_loss, fixed=True)
del _torch_loss

#: The criteria by short name, as ``NeuralNet(criterion='wing')`` and ``--set criterion=wing``
#: take them (the class names work too).
CRITERIA = {"mse": MaskedMSELoss, "l1": MaskedL1Loss, "wing": WingLoss}


def get_criterion(name: str) -> type[MaskedLoss]:
    """Return the criterion class for a short name or a class name.

    Parameters
    ----------
    name : str
        ``'mse'``, ``'l1'`` or ``'wing'`` (any case), or a class name such as
        ``'MaskedMSELoss'`` or ``'WingLoss'``, or the name a loss of your own is registered
        under (:func:`facekeypoints.registry.register_criterion`).

    Returns
    -------
    type
        :class:`MaskedMSELoss`, :class:`MaskedL1Loss`, :class:`WingLoss` or the registered
        class.

    Raises
    ------
    ValueError
        For any other name; the message lists the known ones.

    Examples
    --------
    >>> get_criterion("wing").__name__, get_criterion("MaskedL1Loss").__name__
    ('WingLoss', 'MaskedL1Loss')
    """
    if isinstance(name, str):
        key = name.strip()
        if key.lower() in CRITERIA:
            return CRITERIA[key.lower()]
        for cls in CRITERIA.values():
            if key == cls.__name__:
                return cls
        registered = CRITERIA_REGISTRY.get(key)
        if registered is not None and key not in CRITERIA_REGISTRY.fixed_kinds():
            return registered                    # a loss of your own, registered by name
    names = ", ".join([*CRITERIA, *(c.__name__ for c in CRITERIA.values())])
    raise ValueError(f"unknown criterion {name!r}; use one of {names}, or pass a "
                     "torch.nn.Module class or instance")


def ignores_nan(criterion: Any) -> bool:
    """Whether a criterion (class or instance) treats NaN targets as unlabelled.

    Parameters
    ----------
    criterion : object
        A criterion class or instance, or a name :func:`get_criterion` takes.

    Returns
    -------
    bool
        True for the criteria of this module (and any class setting ``ignores_nan = True``);
        False for torch's own losses, where a NaN target makes the loss NaN.

    Examples
    --------
    >>> import torch
    >>> ignores_nan(MaskedMSELoss()), ignores_nan("wing"), ignores_nan(torch.nn.MSELoss)
    (True, True, False)
    """
    if isinstance(criterion, str):
        try:
            criterion = get_criterion(criterion)
        except ValueError:
            return False
    return bool(getattr(criterion, "ignores_nan", False))


def is_mse(criterion: Any) -> bool:
    """Whether a criterion is a mean squared error, so that ``rmse_px(loss)`` is pixels.

    Parameters
    ----------
    criterion : object
        A criterion class or instance, a name :func:`get_criterion` takes, or None (a
        regression net's default, :class:`MaskedMSELoss`).

    Returns
    -------
    bool
        True for None, :class:`MaskedMSELoss` and ``torch.nn.MSELoss`` (mean reduction).

    Examples
    --------
    >>> import torch
    >>> is_mse(None), is_mse(torch.nn.MSELoss()), is_mse(WingLoss())
    (True, True, False)
    """
    if criterion is None:
        return True
    if isinstance(criterion, str):
        try:
            criterion = get_criterion(criterion)
        except ValueError:
            return False
    cls = criterion if isinstance(criterion, type) else type(criterion)
    if issubclass(cls, MaskedMSELoss):
        return True
    return issubclass(cls, nn.MSELoss) and getattr(criterion, "reduction", "mean") == "mean"
