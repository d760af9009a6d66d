"""facekeypoints: facial keypoint CNNs with the classic nolearn recipe, on PyTorch + skorch.

Old recipe code ports by changing imports: ``NeuralNet``, ``shared``, ``float32``,
``AdjustVariable``, ``BatchIterator``/``FlipBatchIterator``, the layers and update rules keep
their names.
"""
from . import layers, presets, synthetic, updates
from .callbacks import (AdjustVariable, CosineAdjustVariable, EarlyStopping,
                        ExponentialAdjustVariable)
from .data import (FLIP_INDICES, KEYPOINT_COLUMNS, DataFormatError, load, load2d, read_csv,
                   write_submission)
from .iterators import BatchIterator, FlipBatchIterator
from .net import DivergenceError, NeuralNet
from .persist import ModelFileError, load_model, save_model
from .shared import float32, shared

__version__ = "0.1.0"

__all__ = [
    "AdjustVariable", "BatchIterator", "CosineAdjustVariable", "DataFormatError",
    "DivergenceError", "EarlyStopping", "ExponentialAdjustVariable", "FLIP_INDICES",
    "FlipBatchIterator", "KEYPOINT_COLUMNS", "ModelFileError", "NeuralNet", "float32", "layers",
    "load", "load2d", "load_model", "presets", "read_csv", "save_model", "shared", "synthetic",
    "updates", "write_submission",
]
