"""Export a keypoint net to ONNX, with its keypoints, scaling, TTA and crop calibration.

``export_onnx(net, path)`` writes a graph with a dynamic batch axis, input ``faces`` of shape
``(n, 1, 96, 96)`` (float32 grayscale in [0, 1], as :func:`facekeypoints.load2d` gives), and
two outputs: ``keypoints`` (one pass) and ``keypoints_tta`` (the mean of the face's
prediction and the un-mirrored prediction of its mirror image, in the graph: the same
arithmetic as ``NeuralNet.predict(tta=True)``). Both are scaled to [-1, 1]: pixels are
``48 * y + 48``. The metadata is described in :mod:`facekeypoints.onnxmodel`, which runs the
file without torch. Needs the ``onnx`` extra (``pip install 'facekeypoints[onnx]'``).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .layout import KAGGLE, KeypointLayout
from .onnxmodel import METADATA_PREFIX, load_onnx

__all__ = ["export_onnx", "load_onnx"]


def _layout(net, n_outputs):
    layout = getattr(net, "layout", None)
    if isinstance(layout, KeypointLayout) and 2 * layout.n_keypoints == n_outputs:
        return layout
    columns = getattr(net, "columns_", None)
    if columns:
        return KAGGLE.subset(list(columns))
    if n_outputs == len(KAGGLE.columns):
        return KAGGLE
    raise ValueError(f"export_onnx exports keypoint nets; this one has {n_outputs} outputs "
                     "and names no keypoints (give it columns_ or a layout)")


def export_onnx(net: Any, path: str | os.PathLike[str], opset: int = 17,
                source: str | None = None) -> Path:
    """Write a fitted keypoint net as an ONNX file with keypoint metadata.

    Parameters
    ----------
    net : NeuralNet
        A fitted or loaded regression net taking ``(n, 1, side, side)`` faces.
    path : str or path-like
        The ``.onnx`` file to write (missing folders are created).
    opset : int, default 17
        The ONNX operator set.
    source : str, optional
        Where the net came from (recorded as ``facekeypoints.source``), e.g. a model file.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For a net that is not a keypoint regression net.
    ImportError
        Without onnx installed (``pip install 'facekeypoints[onnx]'``).

    Examples
    --------
    >>> import facekeypoints as fk, tempfile, os
    >>> net = fk.presets.modern(device='cpu', random_state=0).initialize()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = export_onnx(net, os.path.join(d, 'm.onnx'))
    ...     fk.onnxmodel.OnnxKeypointNet(p).predict(np.zeros((2, 1, 96, 96), 'f4')).shape
    (2, 30)
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs onnx: pip install 'facekeypoints[onnx]'") from None
    import torch

    from .photos import model_calibration

    if not getattr(net, "regression", True):
        raise ValueError("export_onnx exports keypoint regression nets, not classifiers")
    if not getattr(net, "initialized_", False):
        raise ValueError("the net is not initialized: fit or load it first")
    module = net.module_
    side = 96
    shape = getattr(net, "input_shape", None)
    if shape and len(shape) == 4:
        side = int(shape[-1])
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    with torch.no_grad():
        n_outputs = int(module(torch.zeros(1, 1, side, side, device=device)).shape[1])
    layout = _layout(net, n_outputs)
    perm = torch.as_tensor(np.asarray(layout.flip_permutation(), dtype=np.int64))
    sign = torch.as_tensor(np.array([-1.0 if c.endswith("_x") else 1.0
                                     for c in layout.columns], np.float32))

    class _WithTTA(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.register_buffer("perm", perm)
            self.register_buffer("sign", sign)

        def forward(self, faces):
            plain = self.inner(faces)
            mirrored = self.inner(torch.flip(faces, dims=[3]))
            back = torch.index_select(mirrored, 1, self.perm) * self.sign
            return plain, (plain + back) * 0.5

    wrapper = _WithTTA(module).to("cpu").eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(2, 1, side, side)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (dummy,), str(path), input_names=["faces"],
                              output_names=["keypoints", "keypoints_tta"],
                              dynamic_axes={"faces": {0: "batch"}, "keypoints": {0: "batch"},
                                            "keypoints_tta": {0: "batch"}},
                              opset_version=int(opset), dynamo=False)
    finally:
        module.to(device)
        module.train(was_training)
    model = onnx.load(str(path))
    meta = {
        "layout": layout.to_dict(),
        "columns": list(layout.columns),
        "input": {"name": "faces", "shape": ["batch", 1, side, side],
                  "scaling": "grayscale pixel / 255, float32 in [0, 1]"},
        "output": {"names": ["keypoints", "keypoints_tta"],
                   "scaling": f"pixels = y * {side / 2:g} + {side / 2:g} (in the crop)"},
        "tta": bool(getattr(net, "tta", False)),
        "photo_calibration": model_calibration(net),
        "source": source or "",
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, json.dumps(value)
    model.producer_name = "facekeypoints"
    onnx.save(model, str(path))
    return path
