"""facekeypoints: facial keypoint CNNs with the classic nolearn recipe, on PyTorch + skorch.

Old recipe code ports by changing imports: ``NeuralNet``, ``shared``, ``float32``,
``AdjustVariable``, ``BatchIterator``/``FlipBatchIterator``, the layers and update rules keep
their names.

Most names are imported on first use (PEP 562), so that ``import facekeypoints`` and
``facekeypoints --help`` do not wait 3-4 s for torch, skorch and scikit-learn.
"""
from __future__ import annotations

import importlib

# Eager, and light (numpy only): the function ``shared`` must win over the submodule's name.
from .shared import float32 as float32, shared as shared
from ._version import __version__ as __version__
# The embedded synthetic faces register themselves as data.load's default (path=None); data
# never imports synthetic, so the package does it once, here.
from . import synthetic as synthetic

_LAZY = {
    "AdjustVariable": "callbacks", "CosineAdjustVariable": "callbacks",
    "EarlyStopping": "callbacks", "ExponentialAdjustVariable": "callbacks",
    "FLIP_INDICES": "data", "KEYPOINT_COLUMNS": "data", "DataFormatError": "data",
    "load": "data", "load2d": "data", "read_csv": "data", "write_submission": "data",
    "BatchIterator": "iterators", "FlipBatchIterator": "iterators",
    "AffineBatchIterator": "augment",
    "DivergenceError": "net", "NeuralNet": "net",
    "MaskedL1Loss": "losses", "MaskedMSELoss": "losses", "WingLoss": "losses",
    "ModelFileError": "persist", "load_model": "persist", "save_model": "persist",
    "LivePlot": "notebook",
}
# Every public submodule is reachable as ``fk.<name>``, loaded on first use.
_SUBMODULES = ("augment", "callbacks", "checkpoint", "cli", "data", "iterators", "layers",
               "losses", "metrics", "net", "notebook", "persist", "plots", "precision", "presets",
               "progress", "reports", "runs", "schedules", "specialists", "sweep",
               "sweep_report", "synthetic", "updates")

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
