"""Writing files safely (atomic writes) and reading torch archives that cannot run code.

Importing this module does not import torch: only the functions that need it do.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import warnings
from pathlib import Path

# What torch.load(weights_only=True) raises for files that are not plain tensors/containers.
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError,
               TypeError, KeyError)


def atomic_write(path, write, *, text=False, fsync=False):
    """Write ``path`` by calling ``write(f)`` on a temporary file, then renaming it into place.

    The temporary file gets a unique name in the same folder (``.<name>.<random>.tmp``), so
    the rename is atomic and readers see the old file or the whole new one, never half a
    file; on any failure (an exception, Ctrl-C) it is removed and the error re-raised. It is
    created with the permissions ``open()`` would give (0o666 less the umask), not
    ``mkstemp``'s 0o600. ``text=True`` opens it in text mode (``newline=''``, as the csv
    module and pandas want), else binary. ``fsync=True`` flushes it to disk before the
    rename. The folder must exist. Returns ``path`` as a Path.
    """
    path = Path(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"newline": ""} if text else {})) as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (see ``atomic_write``); returns the Path."""
    return atomic_write(path, lambda f: f.write(text), text=True)


def write_json(path, obj, indent=1, default=None):
    """Write ``obj`` as JSON (plus a final newline) to ``path`` atomically; returns the Path."""
    import json

    return write_text(path, json.dumps(obj, indent=indent, default=default) + "\n")


def save_figure(fig, path, **savefig_kwargs):
    """``fig.savefig`` into ``path`` atomically; the format comes from the suffix."""
    path = Path(path)
    fmt = savefig_kwargs.pop("format", None) or (path.suffix.lstrip(".") or "png")
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs))


def _create_temporary(path):
    """An exclusively created, empty ``.<name>.<random>.tmp`` next to ``path``: (fd, path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(tempfile.TMP_MAX):
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name for {path}")  # pragma: no cover


def atomic_torch_save(payload, path):
    """``torch.save`` ``payload`` to ``path`` atomically and durably (see ``atomic_write``);
    the folder is created if needed."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: torch.save(payload, f), fsync=True)


def load_weights_only(path):
    """``torch.load(weights_only=True)`` on the CPU; raises one of LOAD_ERRORS for anything else."""
    import torch

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
