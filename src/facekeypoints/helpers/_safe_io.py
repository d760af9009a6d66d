"""Writing files safely (atomic writes) and reading torch archives that cannot run code.

Importing this module does not import torch: only the functions that need it do.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import stat
import struct
import sys
import tempfile
import warnings
from pathlib import Path

# What torch.load(weights_only=True) raises for files that are not plain tensors/containers.
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError,
               TypeError, KeyError)
#: The prefix of the ``checksum`` field of sealed archives (see ``payload_digest``).
CHECKSUM_SCHEME = "sha256:"


def atomic_write(path, write, *, text=False, fsync=False):
    """Write ``path`` by calling ``write(f)`` on a temporary file, then renaming it into place.

    The temporary file gets a unique name in the same folder (``.<name>.<random>.tmp``), so
    the rename is atomic and readers see the old file or the whole new one, never half a
    file; on any failure (an exception, Ctrl-C) it is removed and the error re-raised. It is
    created with the permissions ``open()`` would give (0o666 less the umask), not
    ``mkstemp``'s 0o600. ``text=True`` opens it in text mode (``newline=''``, as the csv
    module and pandas want), else binary. ``fsync=True`` flushes it to disk before the
    rename. The folder must exist. Returns ``path`` as a Path.

    Only regular files (or absent ones) are replaced that way. A symbolic link is followed:
    the file it points to is replaced and the link kept. A target that exists but is not a
    regular file (a FIFO, a character device such as ``/dev/null``, a socket) is opened and
    written in place, as ``open(path, 'w')`` would; a directory raises
    ``IsADirectoryError``. ``'-'`` writes to standard output (the string ``'-'`` or
    ``Path('-')``; say ``'./-'`` as a string for a file of that name).
    """
    if os.fspath(path) == "-":
        return _write_stdout(write, text)
    path = Path(path)
    target = Path(os.path.realpath(path))    # a symlink: replace the file it points to
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a directory, not a file")
        return _write_in_place(path, write, text)
    try:
        fd, tmp = _create_temporary(target)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"newline": ""} if text else {})) as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise _naming(exc, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _naming(exc, path):
    """``exc`` (from creating or renaming the hidden temporary file) naming ``path`` instead:
    the file the user asked for, e.g. ``[Errno 13] Permission denied: 'plots/faces.png'``."""
    if type(exc) is FileExistsError or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def _write_stdout(write, text):
    """``write(f)`` on standard output (its binary buffer unless ``text``); not closed."""
    stream = sys.stdout if text else getattr(sys.stdout, "buffer", sys.stdout)
    write(stream)
    stream.flush()
    return Path("-")


def _write_in_place(path, write, text):
    """``write(f)`` on ``path`` opened for writing: for FIFOs and devices, which a rename
    would replace with a regular file."""
    with open(path, "w" if text else "wb", **({"newline": ""} if text else {})) as f:
        write(f)
    return path


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (see ``atomic_write``); returns the Path."""
    return atomic_write(path, lambda f: f.write(text), text=True)


def write_json(path, obj, indent=1, default=None):
    """Write ``obj`` as standard JSON (plus a final newline) to ``path`` atomically; returns
    the Path. NaN and infinities are written as ``null`` (see ``_json.dumps``)."""
    from ._json import dumps

    return write_text(path, dumps(obj, indent=indent, default=default) + "\n")


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


def seal(payload):
    """``payload`` (a dict) with a ``checksum`` field: :func:`payload_digest` of the rest."""
    return {**payload, "checksum": payload_digest(payload)}


def payload_digest(payload):
    """``'sha256:<hex>'`` over a canonical serialisation of ``payload`` less its ``checksum``.

    Covers every key and value: strings (the JSON texts) as UTF-8, numbers exactly, and each
    tensor's dtype, shape and bytes in logical (row-major) order, so the memory layout it
    was saved in does not matter. Dict keys are taken in sorted order. Raises ``TypeError``
    for a value that is not a tensor, a numpy array or plain data.
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != "checksum"})
    return CHECKSUM_SCHEME + h.hexdigest()


def _feed(h, obj):
    """Add ``obj`` to the hash ``h`` with a type tag and length, so no two values collide."""
    import numpy as np
    import torch

    if obj is None or isinstance(obj, bool):
        h.update({None: b"N", True: b"T", False: b"F"}[obj])
    elif isinstance(obj, int):
        _tagged(h, b"i", hex(obj).encode())    # hex: no limit on the number of digits
    elif isinstance(obj, float):
        h.update(b"f" + struct.pack("<d", obj))
    elif isinstance(obj, str):
        _tagged(h, b"s", obj.encode("utf-8", "surrogatepass"))
    elif isinstance(obj, (bytes, bytearray)):
        _tagged(h, b"b", bytes(obj))
    elif isinstance(obj, dict):
        _tagged(h, b"d", str(len(obj)).encode())
        for key in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        _tagged(h, b"l", str(len(obj)).encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().resolve_conj().resolve_neg().contiguous().reshape(-1)
        _tagged(h, b"t", f"{t.dtype}{tuple(obj.shape)}".encode())
        _tagged(h, b"", t.view(torch.uint8).numpy().data)
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        _tagged(h, b"a", f"{a.dtype.str}{a.shape}".encode())
        _tagged(h, b"", a.reshape(-1).view(np.uint8).data)
    elif isinstance(obj, (torch.dtype, torch.device)):
        _tagged(h, b"o", str(obj).encode())
    else:
        raise TypeError(f"cannot checksum a {type(obj).__name__}")


def _tagged(h, tag, data):
    h.update(tag + str(len(data)).encode() + b":")
    h.update(data)


def load_archive(path, fmt, error, what, newest=None, sealed_since=None):
    """A weights-only archive whose ``format`` field is ``fmt``; anything else raises ``error``.

    Every failure names ``path`` and what is wrong: a damaged file (it does not read, or
    its ``checksum`` does not match its contents), one holding objects other than tensors
    and plain data (refused, never unpickled), one written by a newer PyTorch or (if
    ``newest`` is given) with a format ``version`` above ``newest``. Files of version
    ``sealed_since`` or later must carry a ``checksum``; older ones, written before there
    was one, are accepted without it. The checksum is verified before the payload is
    returned, so nothing is built from a damaged file.
    """
    prefix = f"{path} is not a valid facekeypoints {what}"
    if os.path.exists(path) and not os.path.isfile(path):   # a FIFO would block, a device
        raise error(f"{prefix}: it is not a regular file (a pipe, socket or device)")
    with open(path, "rb") as f:      # errors opening it are the system's (OSError) ...
        try:
            payload = load_weights_only(f)
        except Exception as exc:     # ... errors reading it, the file's: torch raises many
            raise error(f"{prefix}: {_load_failure(exc)}") from None
    found = payload.get("format") if isinstance(payload, dict) else None
    if not isinstance(found, str) or found != fmt:
        if isinstance(found, str) and found.startswith("facekeypoints-"):
            raise error(f"{prefix}: its format is {found[:40]!r}, not {fmt!r}")
        raise error(f"{prefix} (it is a torch archive, but not one facekeypoints wrote)")
    version = payload.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise error(f"{prefix}: it is damaged (its format version is {repr(version)[:40]})")
    checksum = payload.get("checksum")
    known = isinstance(checksum, str) and checksum.startswith(CHECKSUM_SCHEME)
    if known and _digest_or_none(payload) != checksum:
        raise error(f"{path} is damaged: its contents do not match the checksum written with "
                    "it (a disk or copy error, or the file was changed), so it was not loaded; "
                    "use a backup or write it again")
    if newest is not None and version > newest:
        raise error(f"{path} was written by a newer facekeypoints (format version {version}; "
                    f"this one reads up to {newest}): upgrade facekeypoints to load it")
    if not known and (checksum is not None
                      or (sealed_since is not None and version >= sealed_since)):
        raise error(f"{path} is damaged: its checksum is "
                    f"{'missing' if checksum is None else 'unreadable'}, so it was not loaded; "
                    "use a backup or write it again")
    return payload


def _digest_or_none(payload):
    try:
        return payload_digest(payload)
    except (TypeError, ValueError, RuntimeError):  # a forged payload: it cannot match
        return None


def _load_failure(exc):
    """Why torch could not read an archive, in words that blame the right thing."""
    import torch

    text = str(exc)
    newer = re.search(r"PyTorch file with version (\d+), but the maximum supported version "
                      r"for reading is (\d+)", text)
    if newer:
        return (f"it was written by a newer PyTorch (archive version {newer[1]}; this PyTorch "
                f"{torch.__version__} reads up to {newer[2]}): upgrade PyTorch to load it")
    unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsupported:
        return (f"it holds objects other than tensors and plain data ({unsupported[1]}), "
                "which are refused, never unpickled")
    return ("it is damaged or not a torch archive (cut short, overwritten, or another kind "
            "of file, such as a pickle, which is never unpickled); it was not loaded")
