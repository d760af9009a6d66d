"""The net shipped inside the package: the ``modern`` preset trained on the embedded faces.

``fk.pretrained()`` loads it with no download; ``facekeypoints train PRESET --init-from
pretrained`` starts from it and ``predict-photos`` uses it when no model is given. It was
trained by ``scripts/train_pretrained.py`` (seed, command, data hash and result in
:func:`pretrained_info`). It has seen only synthetic faces: it is a starting point for
fine-tuning and a demonstration on frontal, well-lit photos, not a landmark model for real
faces in the wild.
"""
from __future__ import annotations

import json
from typing import Any

from .finetune import PRETRAINED_MODEL

__all__ = ["pretrained", "pretrained_info", "PRETRAINED_MODEL"]


def pretrained_info() -> dict[str, Any]:
    """How the shipped net was made: preset, seed, command, data hash, epochs, RMSE in pixels.

    Returns
    -------
    dict
        The JSON written next to the model file by ``scripts/train_pretrained.py``.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its model file.
    """
    info = PRETRAINED_MODEL.with_suffix(".json")
    if not info.exists():
        raise FileNotFoundError(f"the pretrained model's record {info} is missing; reinstall "
                                "facekeypoints (the wheel ships it)")
    return json.loads(info.read_text())


def pretrained(device: str = "cpu") -> Any:
    """Load the pretrained net shipped in the package.

    Parameters
    ----------
    device : str, default 'cpu'
        Where to put it.

    Returns
    -------
    NeuralNet
        The fitted ``modern`` net (15 Kaggle keypoints, flip TTA on), with
        ``photo_calibration_`` set for :func:`facekeypoints.predict_photo`.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its model file.

    Examples
    --------
    >>> import numpy as np
    >>> import facekeypoints as fk
    >>> net = fk.pretrained()
    >>> images, _ = fk.synthetic.render_faces(2)       # or X from fk.load2d()
    >>> net.predict(images[:, None] / np.float32(255)).shape
    (2, 30)
    """
    from .persist import load_model

    if not PRETRAINED_MODEL.exists():
        raise FileNotFoundError(f"the pretrained model {PRETRAINED_MODEL} is missing; "
                                "reinstall facekeypoints (the wheel ships it)")
    net = load_model(PRETRAINED_MODEL, device=device)
    info = pretrained_info()
    if info.get("photo_calibration"):
        net.photo_calibration_ = info["photo_calibration"]
    return net
