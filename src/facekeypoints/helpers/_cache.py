"""The per-user cache directory (parsed CSVs, the embedded synthetic data set), and the
message for a cache that cannot be written."""
from __future__ import annotations

import errno
import os
from pathlib import Path


def cache_dir() -> Path:
    """The per-user cache directory of facekeypoints.

    The parsed-CSV cache and the default synthetic data set (``synthetic.default_data_dir``)
    both live here. A leading ``~`` in either variable is expanded.

    Returns
    -------
    pathlib.Path
        ``$FACEKEYPOINTS_CACHE``, else ``$XDG_CACHE_HOME/facekeypoints``, else
        ``~/.cache/facekeypoints`` (not created).
    """
    env = os.environ.get("FACEKEYPOINTS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "facekeypoints"


_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
            errno.EROFS: "a read-only file system", errno.EACCES: "no permission to write there",
            errno.EPERM: "no permission to write there"}


def write_problem(exc: OSError) -> str:
    """Why a write failed, in words (``the disk is full``), from an ``OSError``."""
    return _REASONS.get(exc.errno) or exc.strerror or str(exc) or type(exc).__name__


def cache_write_error(exc: OSError, folder, what: str) -> OSError:
    """An ``OSError`` (same ``errno``) saying that ``what`` cannot be written into the cache
    ``folder``, why, and how to fix it: free space or permissions there, or point
    ``FACEKEYPOINTS_CACHE`` at another folder."""
    where = ("FACEKEYPOINTS_CACHE" if os.environ.get("FACEKEYPOINTS_CACHE")
             else "the default, as FACEKEYPOINTS_CACHE is not set")
    error = OSError(
        f"cannot write {what} into the facekeypoints cache folder {folder} ({where}): "
        f"{write_problem(exc)}. Free some space there (the embedded faces take about 400 MB; "
        "what is in that folder may be deleted, it is made again when needed) or make it "
        "writable, or set FACEKEYPOINTS_CACHE to a folder that is.")
    error.errno = exc.errno
    return error
