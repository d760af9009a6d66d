"""Writing and reading torch archives safely: atomic writes, loads that cannot run code."""
from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path

import torch

# What torch.load(weights_only=True) raises for files that are not plain tensors/containers.
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError,
               TypeError, KeyError)


def atomic_torch_save(payload, path):
    """Write ``payload`` to ``path`` via a temporary file and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_weights_only(path):
    """``torch.load(weights_only=True)`` on the CPU; raises one of LOAD_ERRORS for anything else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes while it refuses a foreign pickle
        return torch.load(path, map_location="cpu", weights_only=True)


def load_archive(path, fmt, error, what):
    """A weights-only archive whose ``format`` field is ``fmt``; anything else raises ``error``."""
    try:
        payload = load_weights_only(path)
    except LOAD_ERRORS:
        raise error(f"{path} is not a valid facekeypoints {what} (it holds something other "
                    "than tensors and plain data, and is not unpickled)") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise error(f"{path} is not a valid facekeypoints {what}")
    return payload
