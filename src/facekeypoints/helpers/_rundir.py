"""The file-system side of a run directory: its lock, the location check, disk-full errors.

A run directory is written by one process at a time. :class:`RunLock` is an exclusive
``flock`` on ``RUN_DIR/.lock``, a file holding the holder's pid, host, start time and
command; the kernel releases the lock when the holder dies, however it dies, so a killed
run never leaves a stale lock behind. The file is removed when the lock is released (after
a kill it stays, unlocked, and the next holder takes it over). Where ``fcntl`` is missing
(Windows) there is no lock.

Standard library only; importing it is cheap.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LOCK_NAME", "DiskFullError", "RunInUseError", "RunLock", "check_free_space",
           "describe_holder", "disk_errors", "make_location", "remove_created"]

#: The lock file inside a run directory.
LOCK_NAME = ".lock"

_HELD: dict[str, RunLock] = {}


class RunInUseError(OSError):
    """Another process holds the run directory's lock; the message names it."""


class DiskFullError(OSError):
    """A write failed for lack of space (``errno`` ENOSPC); the message names the file."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class RunLock:
    """An exclusive lock on a run directory, re-entrant within one process.

    Taking it again in the process that holds it (through any ``RunLock`` of the same
    folder) nests; the outermost release frees it.

    Parameters
    ----------
    folder : str or path-like
        The run directory; it must exist.

    Attributes
    ----------
    path : pathlib.Path
        The lock file, ``folder/.lock``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with RunLock(folder) as lock:
    ...         lock.path.name
    '.lock'
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._taken = 0

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunInUseError` naming the process that holds it.

        Returns
        -------
        RunLock
            ``self``.

        Raises
        ------
        RunInUseError
            If another process holds the lock.
        OSError
            If the lock file cannot be created (an unwritable folder), in one line.
        """
        key = os.path.realpath(self.path)
        held = _HELD.get(key)
        if held is None:
            fd = self._lock_file() if fcntl is not None else None
            if fd is not None:
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(_holder()).encode())
            held = _HELD[key] = _Held(fd)
        held.depth += 1
        self._taken += 1
        return self

    def _lock_file(self):
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise type(exc)(f"cannot write to {self.path.parent}: "
                                f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunInUseError(f"{self.path.parent} is in use by another training "
                                    f"({describe_holder(self.path)}); wait for it to end or "
                                    "write somewhere else") from None
            except BaseException:
                os.close(fd)
                raise
            # The holder may have released (and removed) the file between our open and
            # flock: that lock guards nothing, so take the new file instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def release(self) -> None:
        """Release the lock; the process's outermost release frees it and removes the file."""
        if not self._taken:
            return
        self._taken -= 1
        key = os.path.realpath(self.path)
        held = _HELD.get(key)
        if held is None:
            return
        held.depth -= 1
        if held.depth:
            return
        del _HELD[key]
        if held.fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)     # still locked: no other process can take it now
            os.close(held.fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Held:
    """This process's hold on one lock file: its descriptor and how often it was taken."""

    def __init__(self, fd):
        self.fd = fd
        self.depth = 0


def _holder():
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(["facekeypoints", *sys.argv[1:]])
            if Path(sys.argv[0]).name in ("facekeypoints", "__main__.py") else
            " ".join(sys.argv)}


def describe_holder(lock_path: str | os.PathLike[str]) -> str:
    """Who holds a run directory's lock, in words (from the lock file).

    Parameters
    ----------
    lock_path : str or path-like
        The lock file.

    Returns
    -------
    str
        ``'pid 4242 on host h since 2025-01-01 12:00:00: facekeypoints train net1 ...'``, or
        ``'a process that has not said who it is yet'`` when the file is empty.
    """
    try:
        info = json.loads(Path(lock_path).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process that has not said who it is yet"
    text = f"pid {info['pid']} on host {info.get('host', '?')} since {info.get('started', '?')}"
    return text + (f": {info['command']}" if info.get("command") else "")


def make_location(folder: str | os.PathLike[str]) -> list[Path]:
    """Create ``folder`` (and missing parents), or say in one line why it cannot be.

    Parameters
    ----------
    folder : str or path-like
        The run directory to create.

    Returns
    -------
    list of pathlib.Path
        The folders this call created, deepest first (for :func:`remove_created`).

    Raises
    ------
    OSError
        With a one-line message: a part of the path is a file, or a folder cannot be
        created or written to.
    """
    folder = Path(folder)
    for part in [folder, *folder.parents]:
        if part.exists() and not part.is_dir():
            what = "it" if part == folder else f"{part}"
            raise NotADirectoryError(f"cannot write a run directory at {folder}: {what} is a "
                                     "file, not a folder")
        if part.exists():
            break
    created = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        remove_created(created)
        raise type(exc)(f"cannot create the run directory {folder}: "
                        f"{exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        remove_created(created)
        raise PermissionError(f"cannot write to {folder}: permission denied")
    return created


def remove_created(created: list[Path]) -> None:
    """Remove the folders :func:`make_location` created, where they are empty again.

    Parameters
    ----------
    created : list of pathlib.Path
        What :func:`make_location` returned.
    """
    for path in created:
        with contextlib.suppress(OSError):
            path.rmdir()


def check_free_space(folder: str | os.PathLike[str], need: int, what: str) -> None:
    """Refuse to start when ``folder``'s file system has less than ``need`` bytes free.

    Parameters
    ----------
    folder : str or path-like
        An existing folder.
    need : int
        Bytes the run will write (an estimate).
    what : str
        What needs them, for the message (``'a net4 run'``).

    Raises
    ------
    DiskFullError
        If less is free.
    """
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DiskFullError(errno.ENOSPC, f"not enough free space in {folder}: {_mb(free)} "
                                          f"free, {what} needs about {_mb(need)}")


def _mb(n):
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"


#: What torch's archive writer says when a write fails (a full disk, most of the time).
_TORCH_WRITE_FAILURES = ("unexpected pos", "PytorchStreamWriter failed", "file write failed")


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a full disk during a write into one :class:`DiskFullError` naming ``path``.

    ENOSPC and EDQUOT (``OSError``) and torch's archive-writer failures (a ``RuntimeError``
    such as ``[enforce fail at inline_container.cc:672] unexpected pos``) become
    ``DiskFullError('no space left on the device for PATH (N MB free)')``. When torch's
    failure stems from a Ctrl-C or SIGTERM (``KeyboardInterrupt``) or another ``OSError``
    raised while it wrote, that exception is raised instead; other errors pass unchanged.

    Parameters
    ----------
    path : str or path-like
        The file (or folder) being written, named in the message.

    Yields
    ------
    None
    """
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        raise _disk_full(path) from None
    except RuntimeError as exc:
        if not any(text in str(exc) for text in _TORCH_WRITE_FAILURES):
            raise
        cause = _python_cause(exc)
        if isinstance(cause, KeyboardInterrupt):
            raise cause from None     # torch turned Ctrl-C (or SIGTERM) mid-write into this
        if isinstance(cause, OSError) and cause.errno not in _FULL:
            raise cause from None
        raise _disk_full(path) from None


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _python_cause(exc):
    """The Python exception a torch writer error stems from (its file object's write)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (KeyboardInterrupt, OSError)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _disk_full(path):
    path = Path(path)
    folder = next((p for p in [path, *path.parents] if p.is_dir()), Path("."))
    try:
        free = f" ({_mb(shutil.disk_usage(folder).free)} free)"
    except OSError:
        free = ""
    return DiskFullError(errno.ENOSPC, f"no space left on the device for {path}{free}")
