"""Input checks: what ``fit``, ``predict`` and ``score`` refuse or warn about, and why.

Data the net cannot train on end in a ValueError (or TypeError) that names the problem and
the fix before any epoch starts, instead of a torch error, a silently broadcast loss or a
DivergenceError. Data that look like the wrong units (pixels 0..255, keypoints in pixels)
give an :class:`InputScaleWarning` naming the scaling ``fk.load`` applies. One face given on
its own (``(9216,)``, ``(96, 96)``) is taken as a batch of one.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import torch

from .layers import LayerStack
from .losses import MaskedMSELoss, ignores_nan

__all__ = ["InputScaleWarning"]

#: Above this, a scaled target (in [-1, 1] for a face) is taken for a pixel coordinate.
TARGET_LIMIT = 1.5


class InputScaleWarning(UserWarning):
    """Inputs or targets that look like they are in pixel units rather than scaled.

    The nets expect images scaled to [0, 1] (``X / 255``) and keypoint targets scaled to
    about [-1, 1] (``(y - 48) / 48``), as :func:`facekeypoints.load` returns them.
    """


def numeric(data, what):
    """``data`` as a numpy array or tensor; TypeError for a Dataset or non-numeric data."""
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.Tensor):
        raise TypeError(f"pass {what} as a numpy array or a tensor, not a torch Dataset")
    array = data if isinstance(data, torch.Tensor) else np.asarray(data)
    if not isinstance(data, torch.Tensor) and not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{what} is a single value; pass one row per sample")
    return array


def refuse_nonfinite(data, what, fix, chunk=2048):
    """Raise ValueError naming how many rows of ``data`` hold NaN or infinite values."""
    n = len(data)
    if isinstance(data, torch.Tensor) and data.device.type == "cpu" and data.dtype in (
            torch.float16, torch.float32, torch.float64):
        data = data.detach().numpy()        # no copy; numpy's chunked scan is faster here
    if isinstance(data, torch.Tensor):
        if not (data.is_floating_point() or data.is_complex()):
            return
        bad = (~torch.isfinite(data.reshape(n, -1)).all(dim=1)).cpu().numpy()
    else:
        if not np.issubdtype(data.dtype, np.inexact):
            return
        # In chunks: a boolean copy of a whole (7049, 9216) array would be 65 MB.
        bad = np.concatenate([~np.isfinite(data[i:i + chunk].reshape(
            len(data[i:i + chunk]), -1)).all(axis=1) for i in range(0, n, chunk)])
    rows = np.flatnonzero(bad)
    if len(rows):
        raise ValueError(f"{what} contains NaN or infinite values in {len(rows)} "
                         f"row{'s' if len(rows) != 1 else ''} (first: row {rows[0]}); {fix}")


def _largest(data, absolute=False):
    """The largest (absolute) finite value of ``data`` as a float; None when there is none."""
    if isinstance(data, torch.Tensor):
        if not data.numel():
            return None
        values = data.detach()
        if not (values.is_floating_point() or values.is_complex()):
            values = values.float()
        values = values.abs() if absolute else values
        top = values.amax()                          # no copy of X when it is finite
        if values.is_floating_point() and not torch.isfinite(top):
            values = values[torch.isfinite(values)]
            top = values.amax() if values.numel() else None
        return None if top is None else float(top)
    data = np.asarray(data)
    if not data.size:
        return None
    if np.issubdtype(data.dtype, np.integer):
        return float(np.abs(data).max() if absolute else data.max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN: no value
        value = np.nanmax(np.abs(data) if absolute else data)
    return float(value) if np.isfinite(value) else None


def _caller_level():
    """The ``stacklevel`` of the first frame outside this package, skorch and scikit-learn,
    so that a warning points at the user's line."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
            "facekeypoints", "skorch", "sklearn"):
        frame, level = frame.f_back, level + 1
    return level


def warn_pixel_units(X, y=None, regression=True):
    """Warn (:class:`InputScaleWarning`) when ``X`` looks like 0..255 pixels, or regression
    targets ``y`` like keypoints in pixels, naming the scaling that fixes it."""
    stacklevel = _caller_level()
    dtype = X.dtype
    integer_pixels = dtype in (np.uint8, torch.uint8)
    top = _largest(X)
    if integer_pixels or (top is not None and top > 1.0):
        shown = f"dtype {dtype}" if integer_pixels else f"values up to {top:g}"
        warnings.warn(f"X holds {shown}, but the nets expect images scaled to [0, 1]: pass "
                      "X / 255 (fk.load and fk.load2d scale them)", InputScaleWarning,
                      stacklevel=stacklevel)
    if y is None or not regression:
        return
    top = _largest(y, absolute=True)
    if top is not None and top > TARGET_LIMIT:
        warnings.warn(f"y holds values up to {top:g} in magnitude, like keypoints in pixels, "
                      "but the nets expect targets scaled to about [-1, 1]: pass (y - 48) / 48 "
                      "(fk.load scales them; predictions then come back in that scale, "
                      "pixels = pred * 48 + 48)", InputScaleWarning, stacklevel=stacklevel)


def layer_stack(net):
    """The net's ``LayerStack`` (under ``torch.compile`` too), or None for a module net."""
    module = getattr(net, "module_", None)
    module = getattr(module, "_orig_mod", module)      # under torch.compile
    return module if isinstance(module, LayerStack) else None


def output_shape(net, X):
    """The per-row output shape: a layer list's last layer, else one row run through the
    module in eval mode (None when that is not possible)."""
    stack = layer_stack(net)
    if stack is not None:
        return tuple(list(stack.shapes.values())[-1])
    module = getattr(net, "module_", None)
    if module is None or net.compile:
        return None
    was_training = module.training
    try:
        row = torch.as_tensor(np.asarray(X[:1]) if not isinstance(X, torch.Tensor)
                              else X[:1]).to(device=net.device_, dtype=torch.float32)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            module.eval()
            out = module(row)
    except Exception:  # noqa: BLE001 - training will raise the module's own error
        return None
    finally:
        module.train(was_training)
    return tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None


def _face_shapes(net):
    """``(values per face, accepted shapes of one face)`` for the net's inputs."""
    stack = layer_stack(net)
    if stack is not None:
        shape = tuple(int(s) for s in stack.input_shape)
    else:
        layout = net.keypoint_layout()
        side = layout.image_side if layout is not None else 96
        shape = (1, side, side)
    n = int(np.prod(shape))
    shapes = [(n,)]
    if len(shape) >= 2:
        spatial = shape[-2:]
    else:
        side = int(round(n ** 0.5))
        spatial = (side, side) if side * side == n else None
    if spatial is not None:
        shapes += [spatial, (1, *spatial)]
        if len(shape) >= 3 and shape[0] == 1:
            shapes.append((1, 1, *spatial))
    return n, shape, list(dict.fromkeys(shapes))


def _shapes_text(shapes):
    return ", ".join(str(s) for s in shapes)


def as_batch(net, X, what="predict"):
    """``X`` as a batch: one face given on its own (``(9216,)``, ``(96, 96)``, ``(1, 96, 96)``
    for a 96-pixel net) becomes a batch of one; empty or ill-shaped inputs are refused with
    the shapes the net accepts."""
    X = numeric(X, "X")
    n, shape, one = _face_shapes(net)
    got = tuple(X.shape)
    if len(X) == 0 or (0 in got):
        raise ValueError(f"X has no rows (shape {got}): {what} needs at least one face, as "
                         f"{_shapes_text(one[:2])} for one or (n, {n}) / (n, "
                         f"{', '.join(map(str, shape))}) for several")
    # A module net's 2-D input may be a batch of feature rows: there only (n,) is one face.
    faces = one[:2] if layer_stack(net) is not None else one[:1]
    if got in faces:
        return X.reshape(1, *shape)
    if X.ndim == 1:
        raise ValueError(f"X of shape {got} is neither one face nor a batch: {what} takes one "
                         f"face as {_shapes_text(one)}, or a batch of n faces as (n, {n}) or "
                         f"(n, {', '.join(map(str, shape))})")
    if layer_stack(net) is not None and int(np.prod(got[1:])) != n:
        raise ValueError(f"X of shape {got} has {int(np.prod(got[1:]))} values per row, but the "
                         f"input layer takes {n}: {what} takes one face as {_shapes_text(one)}, "
                         f"or a batch of n faces as (n, {n}) or "
                         f"(n, {', '.join(map(str, shape))})")
    return X


def criterion_ignores_nan(net):
    """Whether the net's criterion leaves NaN (unlabelled) targets out of the loss."""
    criterion = getattr(net, "criterion_", None)
    if criterion is None:
        criterion = net.criterion if net.criterion is not None else MaskedMSELoss
    return ignores_nan(criterion)


def check_labels(net, y, split):
    """Refuse regression targets the net cannot learn from: infinities, NaN (unlabelled)
    with a criterion that does not ignore it, or no label at all (with ``split``: none
    among the validation rows or among the training rows)."""
    n = len(y)
    if n == 0:
        return
    if isinstance(y, torch.Tensor):
        if not y.is_floating_point():
            return
        flat = y.detach().reshape(n, -1)
        inf_rows = torch.isinf(flat).any(dim=1).cpu().numpy()
        labelled = (~torch.isnan(flat)).sum(dim=1).cpu().numpy()
        per_row = flat.shape[1]
    else:
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.inexact):
            return
        flat = y.reshape(n, -1)
        inf_rows = np.isinf(flat).any(axis=1)
        labelled = (~np.isnan(flat)).sum(axis=1)
        per_row = flat.shape[1]
    rows = np.flatnonzero(inf_rows)
    if len(rows):
        raise ValueError(
            f"y contains infinite values in {len(rows)} row{'s' if len(rows) != 1 else ''} "
            f"(first: row {rows[0]}); a target is a finite number, or NaN where the "
            "keypoint is not labelled: fix or drop those rows")
    gaps = np.flatnonzero(labelled < per_row)
    if not len(gaps):
        return
    if not criterion_ignores_nan(net):
        criterion = getattr(net, "criterion_", None) or net.criterion
        name = getattr(criterion, "__name__", type(criterion).__name__)
        raise ValueError(
            f"y contains NaN (unlabelled) values in {len(gaps)} "
            f"row{'s' if len(gaps) != 1 else ''} (first: row {gaps[0]}), but the criterion "
            f"{name} does not ignore them: use one that does (the default, "
            "facekeypoints.losses.MaskedMSELoss, or MaskedL1Loss or WingLoss), or drop "
            "incomplete rows first (fk.load does unless dropna=False)")
    if not labelled.any():
        raise ValueError(f"y has no labelled value: all {n} rows are NaN (NaN means "
                         "'not labelled'), so there is nothing to learn; load faces that "
                         "have keypoints")
    n_valid = net.validation_size(n) if split else 0
    if 0 < n_valid < n:
        for part, what in ((slice(None, n_valid), f"the {n_valid} validation rows (the "
                            f"first {n_valid}, eval_size={net.eval_size})"),
                           (slice(n_valid, None), f"the {n - n_valid} training rows")):
            if not labelled[part].any():
                raise ValueError(f"{what} have no labelled value (all NaN): shuffle the "
                                 "rows (fk.load does) or change eval_size")


def check_fit_data(net, X, y):
    """Refuse data the net cannot train on, with messages that say how to fix them; warn
    about data in pixel units."""
    if y is None:
        raise ValueError("fit needs targets: net.fit(X, y)")
    X = numeric(X, "X")
    n = len(X)
    if n == 0:
        raise ValueError(f"X has no rows (shape {tuple(X.shape)}): fit needs at least one; "
                         "check how the data were loaded (a cols= or filter that dropped "
                         "every row?)")
    y = numeric(y, "y")
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}; they must match")
    stack = layer_stack(net)
    if stack is not None:
        need, got = int(np.prod(stack.input_shape)), int(np.prod(X.shape[1:]))
        if need != got:
            shape = "x".join(map(str, stack.input_shape))
            raise ValueError(
                f"X rows have {got} values (shape {tuple(X.shape[1:])}) but the input "
                f"layer takes {shape if shape == str(need) else f'{shape} = {need}'}: "
                "pass rows of that size, or set input_shape=(None, ...) to the data's")
    refuse_nonfinite(X, "X", "clean or drop them before fit (the net cannot learn from "
                             "them; they would make every loss NaN)")
    warn_pixel_units(X, y, net.regression)
    if not net.regression:
        return
    check_labels(net, y, split=True)
    out = output_shape(net, X)
    if out is None or tuple(y.shape[1:]) == out:
        return
    what = ("the net's output layer has" if stack is not None
            else "the module's output has")
    if len(out) == 1 and y.ndim == 2:
        fix = (f"set output_num_units={y.shape[1]}" if stack is not None
               else "change the module's output size")
        columns = f"{y.shape[1]} column{'s' if y.shape[1] != 1 else ''}"
        raise ValueError(f"y has {columns} but {what} {out[0]} units: pass "
                         f"targets with {out[0]} columns, or {fix}")
    if len(out) == 1 and y.ndim == 1:
        fix = ("y.reshape(-1, 1)" if out[0] == 1
               else f"y of shape ({n}, {out[0]}), one column per output")
        raise ValueError(f"y has shape {tuple(y.shape)}, one value per row, but {what} "
                         f"{out[0]} unit{'s' if out[0] != 1 else ''}: pass {fix}")
    raise ValueError(f"y rows have shape {tuple(y.shape[1:])} but {what} shape {out} per "
                     "row; they must match")
