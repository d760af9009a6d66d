"""The parsed-array cache: a Kaggle CSV parsed once, then read back as arrays, keyed by content.

Private (``facekeypoints.data.read_csv(cache=True)`` uses it). A compressed file (``.zip``,
``.gz``) is keyed by the archive's bytes and unpacked only on a miss. Layout, under
``cache_dir() / "parsed"``: ``<sha256 of the file>-v<_FORMAT>.npz`` holds the arrays, and a
small per-path JSON note maps (size, mtime, ctime, inode) -> digest so that an unchanged file
is not even re-read. An entry that cannot be read is treated as a miss and rewritten; a cache
that cannot be written only warns.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings

import numpy as np

from ._archive import unpack
from ._cache import cache_dir, write_problem
from ._csv import KEYPOINT_COLUMNS, N_PIXELS, ParsedCSV, map_file, parse_bytes
from ._json import dumps
from ._safe_io import atomic_write

_FORMAT = 1                      # bump when the cached layout changes: old entries are then ignored
_STAT_TRUST_NS = 2_000_000_000   # trust size+mtime only for files older than this when hashed


def read_cached(path) -> ParsedCSV:
    """``parse_bytes`` of the file at ``path`` (a Path), from the cache when it holds it."""
    folder = cache_dir() / "parsed"
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    note = folder / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32] + ".json")
    digest = _trusted_digest(note, stamp)
    parsed = _load_entry(folder, digest) if digest else None
    if parsed is not None:
        return parsed
    raw = map_file(path)
    digest = hashlib.sha256(raw).hexdigest()
    parsed = _load_entry(folder, digest)
    if parsed is None:
        parsed = parse_bytes(*unpack(raw, path.name))   # a bad file raises: nothing is cached
        _store(folder / f"{digest}-v{_FORMAT}.npz", lambda f: np.savez(
            f, images=parsed.images,
            keypoints=parsed.keypoints if parsed.keypoints is not None else np.zeros((0, 30)),
            image_ids=parsed.image_ids if parsed.image_ids is not None else np.zeros(0, np.int64),
            has=np.array([parsed.keypoints is not None, parsed.image_ids is not None]),
            columns=np.array(parsed.columns, dtype=str)))
    # Racy-stat rule (as git's): a file changed within the timestamp granularity of our read
    # could keep its stamp, so only remember stamps that were already old when we hashed.
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _STAT_TRUST_NS:
        text = dumps({"path": str(path.resolve()), "stamp": stamp, "digest": digest})
        _store(note, lambda f: f.write(text.encode()))
    return parsed


def _trusted_digest(note, stamp):
    try:
        entry = json.loads(note.read_text())
        return entry["digest"] if entry["stamp"] == stamp else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_entry(folder, digest):
    """The cached ParsedCSV, or None when absent or unreadable (it is then rewritten)."""
    try:
        with np.load(folder / f"{digest}-v{_FORMAT}.npz", allow_pickle=False) as z:
            images, kp, ids = z["images"], z["keypoints"], z["image_ids"]
            has_kp, has_ids = (bool(v) for v in z["has"])
            columns = tuple(str(c) for c in z["columns"])
        n = len(images)
        ok = (images.dtype == np.uint8 and images.shape == (n, N_PIXELS)
              and (not has_kp or (kp.dtype == np.float64 and kp.shape == (n, 30)))
              and (not has_ids or (ids.dtype == np.int64 and ids.shape == (n,)))
              and set(columns) <= set(KEYPOINT_COLUMNS))
    except Exception:   # corrupt, truncated or foreign file: treat as a miss
        return None
    if not ok:
        return None
    return ParsedCSV(images, kp if has_kp else None, ids if has_ids else None, columns)


def _store(target, write):
    """Best effort: a cache that cannot be written must not make loading fail."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, write)
    except OSError as e:
        warnings.warn(f"facekeypoints: could not write cache {target} ({write_problem(e)}); "
                      f"loading works without it, only slower. Make the cache folder "
                      f"{target.parent.parent} writable, or set FACEKEYPOINTS_CACHE to a "
                      "folder that is.", RuntimeWarning, stacklevel=3)
