"""facekeypoints: facial keypoint CNNs with the classic nolearn recipe, on PyTorch + skorch.

Old recipe code ports by changing imports: ``NeuralNet``, ``shared``, ``float32``,
``AdjustVariable``, ``BatchIterator``/``FlipBatchIterator``, the layers and update rules keep
their names.

Most names are imported on first use (PEP 562), so that ``import facekeypoints`` and
``facekeypoints --help`` do not wait 3-4 s for torch, skorch and scikit-learn.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys

# The tree shows the architecture: one folder per layer, lowest first (the command line, the
# top layer, is the ``cli`` package). A module is imported by its public name,
# ``facekeypoints.<module>``, from whichever layer folder holds it, because the layer folders
# are part of this package's search path; ``facekeypoints.<layer>.<module>`` names the same
# module object (see _LayerAlias), so that nothing is ever imported twice.
LAYER_FOLDERS = ("helpers", "datasets", "core", "application")
_HERE = os.path.dirname(os.path.abspath(__file__))
__path__.extend(os.path.join(_HERE, folder) for folder in LAYER_FOLDERS)  # noqa: F821


class _LayerAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import ``facekeypoints.<layer>.<module>`` as the module ``facekeypoints.<module>``."""

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) != 3 or parts[0] != __name__ or parts[1] not in LAYER_FOLDERS:
            return None
        if not os.path.exists(os.path.join(_HERE, parts[1], parts[2] + ".py")):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{spec.name.rsplit('.', 1)[1]}")

    def exec_module(self, module):
        pass  # already executed under its public name


if not any(isinstance(finder, _LayerAlias) for finder in sys.meta_path):
    sys.meta_path.insert(0, _LayerAlias())


def _public_modules():
    names = {"cli"}
    for folder in LAYER_FOLDERS:
        names.update(entry[:-3] for entry in os.listdir(os.path.join(_HERE, folder))
                     if entry.endswith(".py") and not entry.startswith("_"))
    return tuple(sorted(names))


# Before torch loads: its OpenMP threads then wait without spinning (helpers/_openmp.py).
from ._openmp import prefer_passive_waits as _prefer_passive_waits  # noqa: E402

_prefer_passive_waits()

# Eager, and light (numpy only): the function ``shared`` must win over the submodule's name.
from .shared import float32 as float32, shared as shared  # noqa: E402 (after the path)
from ._version import __version__ as __version__  # noqa: E402
# The embedded synthetic faces register themselves as data.load's default (path=None); data
# never imports synthetic, so the package does it once, here.
from . import synthetic as synthetic  # noqa: E402

_LAZY = {
    "AdjustVariable": "callbacks", "CosineAdjustVariable": "callbacks",
    "EarlyStopping": "callbacks", "ExponentialAdjustVariable": "callbacks",
    "FLIP_INDICES": "data", "KEYPOINT_COLUMNS": "data", "DataFormatError": "data",
    "load": "data", "load2d": "data", "read_csv": "data", "write_submission": "data",
    "BatchIterator": "iterators", "FlipBatchIterator": "iterators",
    "AffineBatchIterator": "augment",
    "DivergenceError": "net", "NeuralNet": "net", "InputScaleWarning": "net",
    "KeypointLayout": "layout",
    "MaskedL1Loss": "losses", "MaskedMSELoss": "losses", "WingLoss": "losses",
    "ModelFileError": "persist", "load_model": "persist", "save_model": "persist",
    "LivePlot": "notebook",
    "detect_faces": "photos", "predict_photo": "photos", "export_onnx": "export",
    "pretrained": "pretrained_net",
}
# Every public submodule is reachable as ``fk.<name>``, loaded on first use; the list is read
# from the layer folders, so a new module needs no entry here.
_SUBMODULES = _public_modules() + LAYER_FOLDERS

# What ``from facekeypoints import *`` gives: the old recipe's names (not every submodule, so
# that names such as ``data`` or ``runs`` never clobber a notebook's variables).
__all__ = sorted([*_LAZY, "layers", "presets", "schedules", "synthetic", "updates", "float32",
                  "shared"])


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups no longer come here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
