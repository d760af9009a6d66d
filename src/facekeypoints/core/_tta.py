"""Flip test-time augmentation, and which keypoints a net's outputs are.

``predict(X, tta=True)`` averages each face's prediction with the un-mirrored prediction of
its mirror image. The mirror and the flip rule are the keypoint layout's
(:meth:`facekeypoints.layout.KeypointLayout.mirror_images` and ``flip_targets``); this module
finds the layout of a net's outputs and runs the two predictions in chunks.
"""
from __future__ import annotations

import numpy as np
import torch

from .layout import KAGGLE

__all__: list[str] = []

#: Rows per chunk of ``predict(tta=True)``: a mirrored copy of this many faces at a time.
TTA_CHUNK = 2048


def n_outputs(net):
    """The number of outputs per row when it is known without data, else None."""
    stack = getattr(net, "module_", None)
    stack = getattr(stack, "_orig_mod", stack)
    shapes = getattr(stack, "shapes", None)
    if shapes:
        last = list(shapes.values())[-1]
        return int(np.prod(last))
    if getattr(net, "layers", None) is not None:
        units = net.layer_params().get(f"{net.layers[-1][0]}_num_units")
        if isinstance(units, (int, np.integer)):
            return int(units)
    return None


def keypoint_layout(net, outputs=None):
    """The layout of the net's outputs: ``layout``, else the Kaggle columns named by
    ``columns_``, else KAGGLE for 30 (or an unknown number of) outputs; None otherwise."""
    if net.layout is not None:
        return net.layout
    columns = getattr(net, "columns_", None)
    if columns:
        try:
            return KAGGLE.subset(list(columns))
        except ValueError:
            return None
    outputs = n_outputs(net) if outputs is None else outputs
    if outputs is None or outputs == len(KAGGLE.columns):
        return KAGGLE
    return None


def flip_layout(net, outputs):
    """The layout TTA mirrors by, with an error that says what is missing when unknown."""
    if outputs is None:
        raise ValueError("predict(tta=True) needs (n, k) keypoint outputs")
    if net.layout is not None:
        if len(net.layout.columns) != outputs:
            raise ValueError(f"predict(tta=True): the net has {outputs} outputs but its "
                             f"layout names {len(net.layout.columns)} columns")
        return net.layout
    columns = getattr(net, "columns_", None)
    if not columns:
        if outputs == len(KAGGLE.columns):
            return KAGGLE
        raise ValueError(
            f"predict(tta=True) must know which keypoint each output is, to swap left and "
            f"right back; this net has {outputs} outputs and no columns_: use it on a "
            "net with 30 outputs (KEYPOINT_COLUMNS order), give the net "
            "layout=fk.layout.KAGGLE.subset(columns), or set net.columns_ to its keypoint "
            "column names (load_model and the specialists do)")
    columns = list(columns)
    if len(columns) != outputs:
        raise ValueError(f"predict(tta=True): the net has {outputs} outputs but "
                         f"columns_ names {len(columns)}")
    unknown = [c for c in columns if c not in KAGGLE.columns]
    if unknown:
        raise ValueError(f"predict(tta=True): columns_ holds {unknown[0]!r}, which is not "
                         "a Kaggle keypoint column, so its mirror image is unknown")
    full = KAGGLE.columns
    perm = KAGGLE.flip_permutation()
    for c in columns:
        partner = full[perm[full.index(c)]]
        if partner not in columns:
            raise ValueError(f"predict(tta=True): the net predicts {c!r} but not its mirror "
                             f"image {partner!r}, so a mirrored face cannot be turned back")
    try:
        return KAGGLE.subset(columns)
    except ValueError as exc:
        raise ValueError(f"predict(tta=True): {exc}") from None


def mirror_images(X, layout):
    """Faces reversed along their width: (n, c, h, w), (n, h, w) or flat square rows."""
    shape = tuple(X.shape)
    if len(shape) == 2:
        side = int(round(shape[1] ** 0.5))
        if side * side != shape[1]:
            raise ValueError(f"predict(tta=True) mirrors images, but rows of {shape[1]} values "
                             "are not square images; pass (n, 1, 96, 96) or (n, 9216) faces")
        return layout.mirror_images(X.reshape(shape[0], side, side)).reshape(shape)
    if len(shape) < 2:
        raise ValueError(f"predict(tta=True) mirrors images; X of shape {shape} holds none")
    return layout.mirror_images(X)


def predict_tta(net, X, predict):
    """The flip-TTA average of ``predict`` (the plain prediction) on ``X``, in chunks."""
    if not net.regression:
        raise ValueError("predict(tta=True) averages mirrored keypoint predictions; it is "
                         "for regression nets, not classification (regression=False)")
    if not isinstance(X, torch.Tensor):
        X = np.asarray(X)
    out, layout = [], None
    for start in range(0, len(X), TTA_CHUNK):
        chunk = X[start:start + TTA_CHUNK]
        plain = predict(chunk)
        if layout is None:
            layout = flip_layout(net, plain.shape[1] if plain.ndim == 2 else None)
        mirrored = predict(mirror_images(chunk, layout))
        out.append((plain + layout.flip_targets(mirrored)) * np.float32(0.5))
    if not out:
        return predict(X)
    return np.concatenate(out)
