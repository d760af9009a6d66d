"""The per-user cache directory (parsed CSVs, the embedded synthetic data set)."""
from __future__ import annotations

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
