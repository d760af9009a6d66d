"""The per-user cache directory (parsed CSVs, the embedded synthetic data set)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$FACEKEYPOINTS_CACHE, else $XDG_CACHE_HOME/facekeypoints, else ~/.cache/facekeypoints
    (a leading ``~`` in either variable is expanded). The parsed-CSV cache and the default
    synthetic data set (``synthetic.default_data_dir``) both live here."""
    env = os.environ.get("FACEKEYPOINTS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "facekeypoints"
