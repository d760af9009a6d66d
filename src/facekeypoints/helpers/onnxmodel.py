"""A keypoint net exported to ONNX, run by onnxruntime: numpy in, numpy out, no torch.

:func:`facekeypoints.export_onnx` writes the file; :class:`OnnxKeypointNet` reads it and
predicts like a :class:`~facekeypoints.NeuralNet` (``predict(X, tta=None)`` on ``(n, 1, 96,
96)`` or ``(n, 9216)`` float32 faces in [0, 1], targets scaled to [-1, 1]), so ``evaluate``,
``predict`` and ``predict-photos`` accept an ``.onnx`` file in an environment that has
numpy and onnxruntime but not torch. This module imports neither torch nor anything that does.

The file's metadata (``metadata_props``, all JSON strings) carries what a user needs besides
the weights: ``facekeypoints.layout`` (keypoint names, flip pairs, image side),
``facekeypoints.columns``, ``facekeypoints.input`` (shape and scaling of the input),
``facekeypoints.output`` (how outputs map to pixels), ``facekeypoints.tta`` (the net's TTA
default), ``facekeypoints.photo_calibration`` (detector box -> training crop, for
:func:`facekeypoints.predict_photo`) and ``facekeypoints.source`` (the model it came from).
The graph has two outputs: ``keypoints`` (one pass) and ``keypoints_tta`` (the mean of the
face's prediction and the un-mirrored prediction of its mirror image, computed in the graph).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .layout import KeypointLayout

__all__ = ["OnnxKeypointNet", "OnnxModelError", "METADATA_PREFIX", "load_onnx"]

#: Prefix of every metadata key this package writes.
METADATA_PREFIX = "facekeypoints."


class OnnxModelError(ValueError):
    """An ``.onnx`` file that is missing, damaged, or not a facekeypoints export."""


class OnnxKeypointNet:
    """An exported keypoint net, predicting with onnxruntime on the CPU.

    Parameters
    ----------
    path : str or path-like
        An ``.onnx`` file written by :func:`facekeypoints.export_onnx`.
    threads : int, optional
        Intra-op threads for onnxruntime (default: its own choice).

    Attributes
    ----------
    path : pathlib.Path
        The file.
    layout : facekeypoints.layout.KeypointLayout
        The keypoints the outputs are, in column order.
    columns_ : list of str
        The output column names (as :func:`facekeypoints.load_model` sets on a net).
    tta : bool
        The exported net's TTA default, used when ``predict`` is given ``tta=None``.
    photo_calibration : dict or None
        The crop calibration stored at export (see :mod:`facekeypoints.photos`).
    metadata : dict
        Every ``facekeypoints.*`` metadata entry, decoded from JSON.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    OnnxModelError
        If onnxruntime cannot read it, or it lacks this package's metadata.
    ImportError
        If onnxruntime is not installed (the message says how to install it).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX model file at {self.path}")
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("reading .onnx models needs onnxruntime: pip install "
                              "'facekeypoints[onnx]'") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own classes for every failure
            raise OnnxModelError(f"{self.path} is not a readable ONNX model "
                                 f"({' '.join(str(exc).split())[:200]})") from None
        props = self._session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = {}
        for key, value in props.items():
            if key.startswith(METADATA_PREFIX):
                try:
                    self.metadata[key[len(METADATA_PREFIX):]] = json.loads(value)
                except ValueError:
                    raise OnnxModelError(f"{self.path}: metadata {key!r} is not JSON") from None
        if "layout" not in self.metadata:
            raise OnnxModelError(f"{self.path} was not written by facekeypoints.export_onnx "
                                 "(no facekeypoints.layout metadata); export the model with "
                                 "'facekeypoints export MODEL -o model.onnx'")
        try:
            self.layout = KeypointLayout.from_dict(self.metadata["layout"])
        except (ValueError, AttributeError) as exc:
            raise OnnxModelError(f"{self.path}: metadata 'facekeypoints.layout' is damaged "
                                 f"({' '.join(str(exc).split())[:200]}); export the model "
                                 "again") from None
        self.columns_ = list(self.metadata.get("columns") or self.layout.columns)
        self.tta = bool(self.metadata.get("tta", False))
        self.photo_calibration = self.metadata.get("photo_calibration")
        self._check_graph()
        self._input = self._session.get_inputs()[0].name
        self._outputs = {o.name for o in self._session.get_outputs()}

    def _check_graph(self):
        """Refuse metadata that contradicts the graph (a forged or edited file), in one line."""
        where = f"{self.path}: "
        if self.columns_ != list(self.layout.columns):
            raise OnnxModelError(where + f"metadata names {len(self.columns_)} columns but its "
                                 f"layout has {len(self.layout.columns)}; the metadata was "
                                 "edited or the file forged: export the model again")
        cal = self.photo_calibration
        if cal is not None and not (isinstance(cal, dict) and all(
                isinstance(cal.get(k, 0.0), (int, float)) and np.isfinite(cal.get(k, 0.0))
                for k in ("dx", "dy", "scale")) and cal.get("scale", 1.0) > 0):
            raise OnnxModelError(where + "metadata 'facekeypoints.photo_calibration' is not "
                                 "{dx, dy, scale} finite numbers (scale > 0); export the model "
                                 "again")
        side, k = self.image_side, len(self.columns_)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or not _dims_fit(inputs[0].shape, (None, 1, side, side)) \
                or inputs[0].type != "tensor(float)":
            got = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise OnnxModelError(where + f"the graph takes {got}, not one float tensor of "
                                 f"faces (n, 1, {side}, {side}) as its metadata says; it is not "
                                 "a facekeypoints export: export the model again")
        outputs = {o.name: o for o in self._session.get_outputs()}
        for name in ("keypoints", "keypoints_tta"):
            o = outputs.get(name)
            if o is None and name == "keypoints_tta":
                continue
            if o is None or not _dims_fit(o.shape, (None, k)):
                got = ", ".join(f"{n} {v.shape}" for n, v in outputs.items())
                raise OnnxModelError(where + f"the graph's outputs are {got}; a facekeypoints "
                                     f"export has 'keypoints' of shape (n, {k}) for its {k} "
                                     "columns: export the model again")

    @property
    def image_side(self) -> int:
        """The side of the square faces the net takes (96 for Kaggle's layout)."""
        return int(self.layout.image_side)

    def predict(self, X: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Predict scaled keypoints for faces.

        Parameters
        ----------
        X : numpy.ndarray
            ``(n, 1, side, side)`` or ``(n, side * side)`` faces, float32 in [0, 1].
        tta : bool, optional
            Average with the mirrored face (the graph's ``keypoints_tta`` output); None: the
            exported net's default.

        Returns
        -------
        numpy.ndarray
            ``(n, k)`` float32 targets in [-1, 1] (``layout.to_pixels`` gives pixels).

        Raises
        ------
        ValueError
            For inputs of another shape.
        """
        side = self.image_side
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 2 and X.shape[1] == side * side:
            X = X.reshape(-1, 1, side, side)
        if X.ndim != 4 or X.shape[1:] != (1, side, side):
            raise ValueError(f"the ONNX net takes (n, 1, {side}, {side}) or (n, {side * side}) "
                             f"faces; got shape {X.shape}")
        use_tta = self.tta if tta is None else bool(tta)
        name = "keypoints_tta" if use_tta and "keypoints_tta" in self._outputs else "keypoints"
        if len(X) == 0:
            return np.zeros((0, len(self.columns_)), np.float32)
        try:
            (out,) = self._session.run([name], {self._input: np.ascontiguousarray(X)})
        except Exception as exc:  # onnxruntime raises its own classes for every failure
            raise OnnxModelError(f"{self.path}: onnxruntime failed on faces of shape {X.shape} "
                                 f"({' '.join(str(exc).split())[:200]})") from None
        out = np.asarray(out, dtype=np.float32)
        if out.shape != (len(X), len(self.columns_)):
            raise OnnxModelError(f"{self.path}: the graph returned shape {out.shape} for "
                                 f"{len(X)} faces, not ({len(X)}, {len(self.columns_)}); "
                                 "export the model again")
        return out

    def __repr__(self) -> str:
        return f"OnnxKeypointNet({str(self.path)!r}, keypoints={self.layout.n_keypoints})"


def _dims_fit(shape, expected):
    """Whether an onnxruntime shape (ints, names or None) can be ``expected`` (None: any)."""
    if shape is None or len(shape) != len(expected):
        return False
    return all(e is None or not isinstance(d, int) or d == e for d, e in zip(shape, expected))


def load_onnx(path: str | os.PathLike[str]) -> OnnxKeypointNet:
    """Open an exported ``.onnx`` keypoint net.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    OnnxKeypointNet
        Ready to ``predict``.

    Examples
    --------
    >>> load_onnx("missing.onnx")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no ONNX model file at missing.onnx
    """
    return OnnxKeypointNet(path)

