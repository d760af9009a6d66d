"""facekeypoints: facial keypoint CNNs with the classic nolearn recipe, on PyTorch + skorch.

Old recipe code ports by changing imports: ``NeuralNet``, ``shared``, ``float32``,
``AdjustVariable``, ``BatchIterator``/``FlipBatchIterator``, the layers and update rules keep
their names.
"""
from . import layers, presets, updates
from .callbacks import (AdjustVariable, CosineAdjustVariable, EarlyStopping,
                        ExponentialAdjustVariable)
from .data import FLIP_INDICES, KEYPOINT_COLUMNS
from .iterators import BatchIterator, FlipBatchIterator
from .net import DivergenceError, NeuralNet
from .shared import float32, shared

__version__ = "0.1.0"

__all__ = [
    "AdjustVariable", "BatchIterator", "CosineAdjustVariable", "DivergenceError",
    "EarlyStopping", "ExponentialAdjustVariable", "FLIP_INDICES", "FlipBatchIterator",
    "KEYPOINT_COLUMNS", "NeuralNet", "float32", "layers", "presets", "shared", "updates",
]
