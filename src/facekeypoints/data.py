"""Kaggle "Facial Keypoints Detection" CSV <-> numpy arrays.

Column names, flip pairs, loading with scaling/dropna/shuffle, and submissions.

The Kaggle training file is ~230 MB of text, almost all of it the ``Image`` column (9,216
space-separated integers per row). Parsing that per row with ``np.fromstring`` takes ~10 s, so
this module splits lines itself, parses the pixels of many rows at once with byte arithmetic,
and keeps the parsed arrays in a content-keyed cache. Any irregular row falls back to a careful
per-row parser, which is also what names the row, column and value in error messages.
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import json
import mmap
import os
import re
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._safe_io import atomic_write

KEYPOINT_COLUMNS = (
    "left_eye_center_x", "left_eye_center_y",
    "right_eye_center_x", "right_eye_center_y",
    "left_eye_inner_corner_x", "left_eye_inner_corner_y",
    "left_eye_outer_corner_x", "left_eye_outer_corner_y",
    "right_eye_inner_corner_x", "right_eye_inner_corner_y",
    "right_eye_outer_corner_x", "right_eye_outer_corner_y",
    "left_eyebrow_inner_end_x", "left_eyebrow_inner_end_y",
    "left_eyebrow_outer_end_x", "left_eyebrow_outer_end_y",
    "right_eyebrow_inner_end_x", "right_eyebrow_inner_end_y",
    "right_eyebrow_outer_end_x", "right_eyebrow_outer_end_y",
    "nose_tip_x", "nose_tip_y",
    "mouth_left_corner_x", "mouth_left_corner_y",
    "mouth_right_corner_x", "mouth_right_corner_y",
    "mouth_center_top_lip_x", "mouth_center_top_lip_y",
    "mouth_center_bottom_lip_x", "mouth_center_bottom_lip_y",
)

# Column-index pairs (left, right) swapped when a face is mirrored; x and y of each keypoint.
FLIP_INDICES = (
    (0, 2), (1, 3),
    (4, 8), (5, 9), (6, 10), (7, 11),
    (12, 16), (13, 17), (14, 18), (15, 19),
    (22, 24), (23, 25),
)

IMAGE_SIDE = 96
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
# Targets are scaled as (pixel - 48) / 48, so [-1, 1] spans the image: one unit is 48 pixels
# (and an RMSE in pixels is sqrt(MSE loss) * 48).
PIXELS_PER_UNIT = IMAGE_SIDE / 2

__all__ = [
    "KEYPOINT_COLUMNS", "FLIP_INDICES", "IMAGE_SIDE", "N_PIXELS", "PIXELS_PER_UNIT",
    "DataFormatError", "ParsedCSV", "read_csv", "select_rows", "load", "load2d",
    "write_submission", "cache_dir",
]

_SEED = 42                       # the old recipe's shuffle seed
_FORMAT = 1                      # bump when the cached layout changes: old entries are then ignored
_ROWS_PER_CHUNK = 16             # ~0.5 MB of text per chunk: the byte arithmetic stays in cache
_MISSING = {"", "nan", "na", "n/a", "null", "none"}   # what pandas would also read as NaN
_STAT_TRUST_NS = 2_000_000_000   # trust size+mtime only for files older than this when hashed


class DataFormatError(ValueError):
    """A file that is not in the Kaggle CSV format; the message says where, and how to fix it."""


@dataclass(frozen=True)
class ParsedCSV:
    """A Kaggle CSV as arrays, before scaling or dropping rows.

    images: uint8 (n, 9216), row-major 96x96. keypoints: float64 (n, 30) in KEYPOINT_COLUMNS
    order, NaN where the file has a gap or lacks the column (None for a test file).
    image_ids: int64 (n,) from an ``ImageId`` column, else None. columns: the keypoint columns
    the file has.
    """
    images: np.ndarray
    keypoints: np.ndarray | None
    image_ids: np.ndarray | None
    columns: tuple[str, ...]

    def __len__(self):
        return len(self.images)


# --------------------------------------------------------------------------------------------
# Public API


def read_csv(path, test=False, *, cache=True) -> ParsedCSV:
    """Parse a Kaggle ``training.csv`` (test=False) or ``test.csv`` (test=True) file.

    Keeps every row and the file's row order; ``load`` does the scaling and row dropping.
    With ``cache=True`` the arrays are kept in the per-user cache (see ``cache_dir``), keyed by
    the file's content, so an unchanged file is parsed once. Raises DataFormatError (a
    ValueError) naming the row and column of the first problem.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file. Get Kaggle's data as data/README.md "
                                "says, or call load() with no path for the synthetic default.")
    if cache:
        parsed = _read_cached(path)
    else:
        parsed = _parse_bytes(_map(path), path.name)
    _check_kind(parsed, test, path.name)
    if test:
        parsed = ParsedCSV(parsed.images, None, parsed.image_ids, ())
    return parsed


def load(path=None, test=False, cols=None, *, cache=True):
    """Load a Kaggle CSV as ``(X, y)`` the way the classic recipe did.

    X: float32 (n, 9216), pixels / 255. y: float32 (n, k), (coordinate - 48) / 48, in
    KEYPOINT_COLUMNS order or the order of ``cols``. ``cols`` narrows the keypoint columns
    before rows with gaps are dropped, so more rows survive. Rows are then shuffled with a
    fixed seed (42). ``test=True`` reads a test file, keeps its order and returns y = None.
    ``path=None`` uses the embedded synthetic dataset.
    """
    if path is None:
        from .synthetic import ensure_default_dataset
        path = ensure_default_dataset()["test" if test else "training"]
    parsed = read_csv(path, test=test, cache=cache)
    if test:
        return _scale(parsed.images), None
    return select_rows(parsed, cols, Path(os.fspath(path)).name)


def select_rows(parsed: ParsedCSV, cols=None, name="training data"):
    """``(X, y)`` from a parsed training file, exactly as ``load`` makes them.

    Keeps the keypoint columns ``cols`` (None: all 30), drops the rows with a gap in any of
    them, scales pixels to [0, 1] and keypoints to (coordinate - 48) / 48, and shuffles the
    rows with the fixed seed. Read a file once with ``read_csv`` and call this per column
    group to get what ``load(path, cols=...)`` would. ``name`` (the file's) is for messages.
    """
    names = _check_cols(cols, parsed.columns, name)
    kp = parsed.keypoints[:, [KEYPOINT_COLUMNS.index(c) for c in names]]
    complete = ~np.isnan(kp).any(axis=1)
    if not complete.any():
        raise DataFormatError(_no_rows_message(kp, names, parsed, name))
    y = ((kp[complete] - PIXELS_PER_UNIT) / PIXELS_PER_UNIT).astype(np.float32)
    from sklearn.utils import shuffle
    return shuffle(_scale(parsed.images[complete]), y, random_state=_SEED)


def _scale(images):
    X = images.astype(np.float32)
    X /= np.float32(255.0)
    return X


def load2d(path=None, test=False, cols=None, *, cache=True):
    """``load``, with X reshaped to (n, 1, 96, 96) for convolutional nets."""
    X, y = load(path, test=test, cols=cols, cache=cache)
    return X.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE), y


def write_submission(predictions, lookup_csv, out_csv, image_ids=None):
    """Write a Kaggle submission (``RowId,Location``) for the rows of ``IdLookupTable.csv``.

    ``predictions`` are what a net's ``predict`` returns: SCALED coordinates, (pixel - 48) / 48,
    shape (n_test, 30) in KEYPOINT_COLUMNS order, row i for ImageId ``image_ids[i]`` (default
    1..n, the order of Kaggle's test.csv). They are scaled here, not by the caller, so the same
    array that training and validation use can be submitted directly. A pandas DataFrame with
    keypoint column names and ImageId as index works too. Locations are written in pixels,
    y * 48 + 48, clipped to [0, 96], in the lookup table's row order. Returns the output path.
    """
    import pandas as pd

    table, ids = _prediction_table(predictions, image_ids)
    lookup = lookup_csv if isinstance(lookup_csv, pd.DataFrame) else pd.read_csv(lookup_csv)
    missing = [c for c in ("RowId", "ImageId", "FeatureName") if c not in lookup.columns]
    if missing:
        raise DataFormatError(
            f"lookup table {_name(lookup_csv)}: missing column(s) {missing}; found "
            f"{list(lookup.columns)}. Expected Kaggle's IdLookupTable.csv "
            "(RowId, ImageId, FeatureName[, Location]).")
    features = lookup["FeatureName"].astype(str).str.strip()
    unknown = ~features.isin(KEYPOINT_COLUMNS)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataFormatError(
            f"lookup table {_name(lookup_csv)}, data row {i + 1} (RowId "
            f"{lookup['RowId'].iloc[i]}): FeatureName {features.iloc[i]!r} is not a Kaggle "
            f"keypoint column{_suggest(features.iloc[i], KEYPOINT_COLUMNS)}.")
    col = pd.Index(table.columns).get_indexer(features)
    if (col < 0).any():
        i = int(np.flatnonzero(col < 0)[0])
        raise ValueError(
            f"lookup table asks for {features.iloc[i]!r} (data row {i + 1}), but the "
            f"predictions have no such column; they have {list(table.columns)}.")
    try:
        lookup_ids = lookup["ImageId"].to_numpy(dtype=np.int64)
    except (TypeError, ValueError):
        raise DataFormatError(f"lookup table {_name(lookup_csv)}: ImageId must be integers."
                              ) from None
    row = pd.Index(ids).get_indexer(lookup_ids)
    if (row < 0).any():
        i = int(np.flatnonzero(row < 0)[0])
        raise ValueError(
            f"lookup table data row {i + 1} (RowId {lookup['RowId'].iloc[i]}) asks for ImageId "
            f"{lookup_ids[i]}, which has no prediction; predictions cover {len(ids)} ImageIds "
            f"({ids.min()}..{ids.max()}). Predict on the whole test.csv, or pass image_ids=.")
    scaled = table.to_numpy(dtype=np.float64)[row, col]
    if not np.isfinite(scaled).all():
        i = int(np.flatnonzero(~np.isfinite(scaled))[0])
        raise ValueError(f"prediction for ImageId {lookup_ids[i]}, {features.iloc[i]} is "
                         f"{scaled[i]}; predictions must be finite numbers.")
    location = np.clip(scaled * PIXELS_PER_UNIT + PIXELS_PER_UNIT, 0.0, float(IMAGE_SIDE))
    out = pd.DataFrame({"RowId": lookup["RowId"].to_numpy(), "Location": location})
    out_csv = Path(os.fspath(out_csv))
    atomic_write(out_csv, lambda f: out.to_csv(f, index=False), text=True)
    return out_csv


# --------------------------------------------------------------------------------------------
# Checks that depend on how the file is used (done after the cache, so it holds one entry)


def _check_kind(parsed, test, name):
    if test and parsed.image_ids is None:
        hint = (" It looks like a training file: call load(path) without test=True."
                if parsed.columns else "")
        raise DataFormatError(f"{name}: a test file needs an 'ImageId' column (Kaggle's test.csv "
                              f"has ImageId,Image); this file has none.{hint}")
    if not test and not parsed.columns:
        hint = (" It looks like a test file: pass test=True."
                if parsed.image_ids is not None else "")
        raise DataFormatError(f"{name}: no keypoint columns (e.g. {KEYPOINT_COLUMNS[0]!r}); a "
                              f"training file has 30 keypoint columns and Image.{hint}")


def _check_cols(cols, present, name):
    if cols is None:
        lacking = [c for c in KEYPOINT_COLUMNS if c not in present]
        if lacking:
            listed = lacking if len(lacking) <= 4 else lacking[:4] + ["..."]
            raise DataFormatError(
                f"{name}: {len(lacking)} of the 30 keypoint columns are missing ({listed}). "
                f"Pass cols= with columns the file has, e.g. cols={list(present)[:4]}.")
        return list(KEYPOINT_COLUMNS)
    names = [cols] if isinstance(cols, str) else list(cols)
    if not names:
        raise ValueError("cols is empty; pass None for all 30 keypoint columns or a list of "
                         "keypoint column names.")
    for c in names:
        if c not in KEYPOINT_COLUMNS:
            hint = _suggest(c, KEYPOINT_COLUMNS) or (
                f"; valid names are fk.KEYPOINT_COLUMNS: {', '.join(KEYPOINT_COLUMNS)}")
            raise DataFormatError(f"cols: {c!r} is not a Kaggle keypoint column{hint}.")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise ValueError(f"cols names {dup} more than once.")
    for c in names:
        if c not in present:
            raise DataFormatError(f"{name}: keypoint column {c!r} named in cols is not in the "
                                  f"file; its keypoint columns are {list(present)}.")
    return names


def _no_rows_message(kp, names, parsed, name):
    gaps = np.isnan(kp).sum(axis=0)
    listed = ", ".join(f"{c} ({g} missing)" for c, g in zip(names, gaps) if g)
    all_kp = parsed.keypoints
    best = [KEYPOINT_COLUMNS[j] for j in np.argsort(np.isnan(all_kp).sum(axis=0), kind="stable")
            if KEYPOINT_COLUMNS[j] in parsed.columns][:4]
    return (f"{name}: no rows left after dropping rows with missing keypoints: all {len(kp)} "
            f"rows have a gap in at least one of the {len(names)} requested columns. Columns "
            f"with gaps: {listed}. Pass cols= with fewer columns, e.g. cols={best}.")


def _suggest(word, choices):
    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _name(obj):
    return Path(os.fspath(obj)).name if isinstance(obj, (str, os.PathLike)) else "(DataFrame)"


def _prediction_table(predictions, image_ids):
    """Predictions as a DataFrame (columns = keypoint names) and the ImageId of each row."""
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        bad = [c for c in predictions.columns if c not in KEYPOINT_COLUMNS]
        if bad:
            raise ValueError(f"prediction column {bad[0]!r} is not a Kaggle keypoint column"
                             f"{_suggest(bad[0], KEYPOINT_COLUMNS)}.")
        table = predictions
        ids = predictions.index.to_numpy() if image_ids is None else np.asarray(image_ids)
    else:
        arr = np.asarray(predictions, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(KEYPOINT_COLUMNS):
            raise ValueError(
                f"predictions have shape {arr.shape}; expected (n_test, 30), columns in "
                "KEYPOINT_COLUMNS order (for a specialist's narrower output, pass a DataFrame "
                "with keypoint column names).")
        table = pd.DataFrame(arr, columns=list(KEYPOINT_COLUMNS))
        ids = np.arange(1, len(arr) + 1) if image_ids is None else np.asarray(image_ids)
    if len(ids) != len(table):
        raise ValueError(f"{len(ids)} image_ids for {len(table)} prediction rows.")
    ids = ids.astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("image_ids contain duplicates; each ImageId needs exactly one row.")
    return table, ids


# --------------------------------------------------------------------------------------------
# Cache: <cache>/parsed/<sha256 of the file>-v<_FORMAT>.npz, plus a small per-path JSON note of
# (size, mtime, ctime, inode) -> digest so an unchanged file is not even re-read.


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


def _read_cached(path):
    folder = cache_dir() / "parsed"
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    note = folder / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32] + ".json")
    digest = _trusted_digest(note, stamp)
    parsed = _load_entry(folder, digest) if digest else None
    if parsed is not None:
        return parsed
    raw = _map(path)
    digest = hashlib.sha256(raw).hexdigest()
    parsed = _load_entry(folder, digest)
    if parsed is None:
        parsed = _parse_bytes(raw, path.name)   # a bad file raises here: nothing is cached
        _store(folder / f"{digest}-v{_FORMAT}.npz", lambda f: np.savez(
            f, images=parsed.images,
            keypoints=parsed.keypoints if parsed.keypoints is not None else np.zeros((0, 30)),
            image_ids=parsed.image_ids if parsed.image_ids is not None else np.zeros(0, np.int64),
            has=np.array([parsed.keypoints is not None, parsed.image_ids is not None]),
            columns=np.array(parsed.columns, dtype=str)))
    # Racy-stat rule (as git's): a file changed within the timestamp granularity of our read
    # could keep its stamp, so only remember stamps that were already old when we hashed.
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _STAT_TRUST_NS:
        text = json.dumps({"path": str(path.resolve()), "stamp": stamp, "digest": digest})
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
        warnings.warn(f"facekeypoints: could not write cache {target}: {e}", RuntimeWarning,
                      stacklevel=3)


# --------------------------------------------------------------------------------------------
# Parsing


def _map(path):
    """The file's bytes without copying them (reading 230 MB into a bytes object is slow)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _parse_bytes(raw, name: str) -> ParsedCSV:
    """Parse a whole file (bytes or mmap); raise DataFormatError at the first problem found.

    Structure first (header, field counts), then keypoint fields, then pixels.
    """
    header, rows, lines = _split_lines(raw, name)
    image_at = header.index("Image")
    open_end = len(raw) > 0 and raw[len(raw) - 1] != 10     # no line end after the last line

    def where(i, col=None):
        return (f"{name}, data row {i + 1} (file line {lines[i]})"
                + (f", column {col!r}" if col else ""))

    def cut_short(i):
        return (" The file's last line has no line end: was the file cut short (an "
                "interrupted download or copy)?" if open_end and i == len(rows) - 1 else "")

    fields, images = _split_fields(raw, rows, header, image_at, where, cut_short)
    columns = tuple(c for c in KEYPOINT_COLUMNS if c in header)
    keypoints = ids = None
    if columns:
        values = _numbers(fields, [_other(header, image_at, c) for c in columns], columns,
                          where)
        keypoints = np.full((len(rows), len(KEYPOINT_COLUMNS)), np.nan)
        keypoints[:, [KEYPOINT_COLUMNS.index(c) for c in columns]] = values
    if "ImageId" in header:
        ids = _image_ids(fields, _other(header, image_at, "ImageId"), where)
    pixels = _parse_images(images, lambda i: where(i, "Image"), cut_short)
    return ParsedCSV(pixels, keypoints, ids, columns)


def _show(text, limit=20):
    """A field for an error message: quoted, and shortened when long."""
    text = str(text)
    if len(text) <= limit + 3:
        return repr(text)
    return f"{text[:limit] + '...'!r} ({len(text)} characters)"


def _decode(data, where):
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        start = bytes(data[:4])
        if start == b"PK\x03\x04":
            hint = "This is a zip archive: unzip it and pass the .csv inside"
        elif start[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = ("It looks like UTF-16 (Excel's 'Unicode Text' or a PowerShell redirect): "
                    "re-save it as UTF-8 CSV")
        else:
            hint = ("Was the file saved in another encoding (Latin-1, Windows-1252), or is it "
                    "not a CSV (a zip archive)? Re-save it as UTF-8")
        raise DataFormatError(
            f"{where}: not UTF-8 text (byte 0x{bytes(data)[e.start]:02x}). {hint} "
            "(Kaggle's CSVs are plain ASCII).") from None


def _csv_error(where, e):
    if "new-line" in str(e):
        return DataFormatError(
            f"{where}: malformed CSV (a carriage return inside the line, not at its end). Was "
            "the file saved with old Mac line ends (\\r only)? Convert its line ends to \\n.")
    if "unexpected end of data" in str(e):
        return DataFormatError(f"{where}: malformed CSV (a quote '\"' that is not closed on "
                               "this line). Remove the stray quote or close it.")
    if "field limit" in str(e):
        return DataFormatError(
            f"{where}: malformed CSV (a field over {csv.field_size_limit()} characters long: a "
            "quote that is never closed, or lines that lost their line ends?).")
    return DataFormatError(f"{where}: malformed CSV ({e}).")


def _split_lines(raw, name):
    """Header names, the (start, end) byte span of each data line, and file line numbers."""
    rows, lines = [], []
    pos, number, size, header = 0, 0, len(raw), None
    if raw[:3] == b"\xef\xbb\xbf":      # a UTF-8 byte order mark
        pos = 3
    while pos < size:
        end = raw.find(b"\n", pos)
        end = size if end < 0 else end
        nxt, number = end + 1, number + 1
        if end > pos and raw[end - 1] == 13:    # CRLF
            end -= 1
        if end - pos > 64 or raw[pos:end].strip():
            if header is None:
                at = f"{name}, file line {number} (the header)"
                header, header_line = _decode(raw[pos:end], at), number
            else:
                rows.append((pos, end))
                lines.append(number)
        pos = nxt
    if header is None:
        raise DataFormatError(f"{name} is empty; expected a Kaggle CSV: a header line "
                              "(30 keypoint columns and Image, or ImageId,Image) and data rows.")
    if '"' in header or "\r" in header:
        try:
            names = [c.strip() for c in next(csv.reader([header]), [""])]
        except csv.Error as e:
            raise _csv_error(at, e) from None
    else:                                      # no quoting: the csv module is not needed
        names = [c.strip() for c in header.split(",")]
    seen = set()
    for i, c in enumerate(names):
        if c in seen:
            raise DataFormatError(f"{name}: column {_show(c)} appears twice in the header "
                                  f"(columns {names.index(c) + 1} and {i + 1}); rename or drop "
                                  "one.")
        seen.add(c)
    if "Image" not in names:
        if any(_looks_like_data(c) for c in names):
            raise DataFormatError(
                f"{name}: file line {header_line} looks like data, not a header (it starts "
                f"with {_show(names[0])}): the file has no header line. Add Kaggle's header as "
                "the first line: the 30 keypoint columns then Image for training.csv "
                f"({KEYPOINT_COLUMNS[0]},{KEYPOINT_COLUMNS[1]},...,Image), or ImageId,Image "
                "for test.csv.")
        shown = ", ".join(_show(c) for c in names[:8])
        raise DataFormatError(
            f"{name}: no 'Image' column in the header; found [{shown}"
            f"{', ...' if len(names) > 8 else ''}]{_suggest('Image', names)}. Expected "
            "Kaggle's training.csv (30 keypoint columns, Image) or test.csv (ImageId, Image).")
    if not rows:
        raise DataFormatError(f"{name} has a header but no data rows.")
    return names, rows, lines


def _looks_like_data(text):
    """A header name that is a number, or a run of pixel values."""
    if len(text) > 64:
        return text[:64].replace(" ", "").isdigit()
    try:
        float(text)
        return True
    except ValueError:
        return False


def _split_fields(raw, rows, header, image_at, where, cut_short=lambda i: ""):
    """Per row: the non-Image fields (str) and the Image field (bytes-like, not copied).

    Kaggle puts Image last and it holds no commas, so a line is cut at its last comma and
    only the short part before it is split into fields.
    """
    view, last = memoryview(raw), image_at == len(header) - 1
    fields, images = [], []
    for i, (start, end) in enumerate(rows):
        if not last:
            row = _csv_row(raw[start:end], where(i))
            found = len(row)
        elif len(header) == 1:
            cut, row, found = start - 1, [], 1
        else:
            cut = raw.rfind(b",", start, end)
            part = raw[start:cut] if cut >= 0 else b""
            commas = part.count(b",")
            if cut < 0:
                row, found = [], 1
            elif commas + 2 != len(header) and b'"' not in part:
                row, found = None, commas + 2     # a wrong count: no need to split (10 MB lines)
            else:
                row = _csv_row(part, where(i))
                found = len(row) + 1
        if found != len(header):
            raise DataFormatError(f"{where(i)}: expected {len(header)} comma-separated fields "
                                  f"as in the header, found {found}.{cut_short(i)}")
        if last:
            lo, hi = cut + 1, end
            if hi - lo >= 2 and raw[lo] == 34 and raw[hi - 1] == 34:   # a "quoted" field
                lo, hi = lo + 1, hi - 1
            images.append(view[lo:hi])
        else:
            images.append(row.pop(image_at).encode("utf-8"))
        fields.append(row)
    return fields, images


def _csv_row(line: bytes, where):
    text = _decode(line, where)
    if '"' not in text:                        # no quoting: the csv module is not needed
        return text.split(",")
    try:
        return next(csv.reader([text], strict=True), None) or [""]
    except csv.Error as e:
        raise _csv_error(where, e) from None


def _other(header, image_at, column):
    """Index of ``column`` among a row's non-Image fields."""
    j = header.index(column)
    return j - (j > image_at)


# Keypoints are pixel coordinates in a 96x96 image. Kaggle's lie in 0..96; a value beyond one
# image width outside it is a unit or column mix-up (and would overflow float32 targets).
_KEYPOINT_RANGE = (-IMAGE_SIDE, 2 * IMAGE_SIDE)
_ID_LIMIT = 2 ** 53                 # ImageIds are read as float64: whole numbers are exact below


def _plain(strings):
    """True if numpy/Python float() would read these only as plain ASCII numbers would be read
    (both also accept '1_000' and non-ASCII digits, which a CSV number never holds)."""
    joined = "".join(strings)
    return joined.isascii() and "_" not in joined


def _numbers(fields, idx, names, where):
    """Keypoint fields idx of every row as float64 (n, len(idx)); NaN where empty."""
    flat = [v or "nan" for row in fields for v in (row[j] for j in idx)]
    out = None
    if _plain(flat):
        try:
            out = np.array(flat, dtype=np.float64).reshape(len(fields), len(idx))
        except ValueError:
            pass
    if out is None or np.isinf(out).any():
        out = np.empty((len(fields), len(idx)))    # careful pass: other spellings of "missing"
        for i, row in enumerate(fields):
            for k, j in enumerate(idx):
                text = row[j].strip()
                if text.lower() in _MISSING:
                    out[i, k] = np.nan
                    continue
                try:
                    out[i, k] = float(text) if _plain([text]) else np.inf
                except ValueError:
                    out[i, k] = np.inf
                if np.isinf(out[i, k]):
                    raise DataFormatError(f"{where(i, names[k])}: {_show(row[j])} is not a "
                                          "number; expected a finite number, or an empty field "
                                          "if missing.")
    lo, hi = _KEYPOINT_RANGE
    outside = (out < lo) | (out > hi)          # NaN compares False: gaps pass
    if outside.any():
        i, k = (int(v[0]) for v in np.nonzero(outside))
        raise DataFormatError(
            f"{where(i, names[k])}: {_show(fields[i][idx[k]].strip())} is far outside the "
            f"{IMAGE_SIDE}x{IMAGE_SIDE} image; expected pixel coordinates (0..{IMAGE_SIDE}; "
            f"at most {lo}..{hi} is accepted). Is the column in other units, or shifted?")
    return out


def _image_ids(fields, j, where):
    """The ImageId column as int64; each must be a whole number below 2**53."""
    texts = [row[j] for row in fields]
    if _plain(texts):
        try:
            values = np.array([t or "nan" for t in texts], dtype=np.float64)
            if (np.isfinite(values).all() and (values == np.round(values)).all()
                    and (np.abs(values) < _ID_LIMIT).all()):
                return values.astype(np.int64)
        except ValueError:
            pass
    for i, text in enumerate(texts):               # careful pass: name the first bad one
        t = text.strip()
        try:
            v = float(t) if _plain([t]) and t else np.nan
        except ValueError:
            v = np.nan
        too_large = (abs(v) >= _ID_LIMIT if np.isfinite(v)
                     else np.isinf(v) and t.lstrip("+-")[:1].isdigit())   # 10**400 is too
        if too_large or not np.isfinite(v) or v != np.round(v):
            raise DataFormatError(
                f"{where(i, 'ImageId')}: expected a whole number, found {_show(text)}"
                + (", which is too large (ImageIds must be below 2**53; Kaggle's are "
                   "1..1783)." if too_large else "."))
    raise AssertionError("unreachable: a bad ImageId was not found")   # pragma: no cover


# Pixel parsing: a chunk of rows is joined with newlines behind two pad spaces and handled as
# one byte array. A token ends where a digit is followed by a non-digit; its value is
# digit[j] + 10 digit[j-1] + 100 digit[j-2] at its last byte j (a non-digit counts 0 and
# cuts the hundreds).


def _parse_images(images, where, cut_short=lambda i: ""):
    """The Image fields as uint8 (n, 9216), parsed in chunks by a few threads."""
    n = len(images)
    out = np.empty((n, N_PIXELS), dtype=np.uint8)
    widths = np.fromiter((len(f) + 1 for f in images), dtype=np.int64, count=n)
    local = threading.local()   # per-thread scratch arrays, reused from chunk to chunk

    def work(s):
        rows = slice(s, min(s + _ROWS_PER_CHUNK, n))
        if not hasattr(local, "scratch"):
            local.scratch = _Scratch()
        if not _parse_chunk(images[rows], widths[rows], out[rows], local.scratch):
            for i in range(rows.start, rows.stop):   # irregular: row by row, naming the problem
                out[i] = _parse_row(images[i], where(i), cut_short(i))

    starts = range(0, n, _ROWS_PER_CHUNK)
    workers = min(4, os.cpu_count() or 1, len(starts))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            try:
                for _ in pool.map(work, starts):
                    pass
            except BaseException:
                pool.shutdown(cancel_futures=True)   # a bad row: don't parse the rest
                raise
    else:
        for s in starts:
            work(s)
    return out


class _Scratch:
    """Work arrays kept between chunks: fresh allocations would each cost page faults."""

    def __init__(self):
        self.size = self.count = 0

    def get(self, m, k):
        if m > self.size:
            self.size = int(m * 1.25)
            self.digits, self.is_digit, self.flag, self.low = (
                np.empty(self.size, t) for t in (np.uint8, bool, bool, np.uint8))
        if k > self.count:
            self.count = k
            self.low_at, self.high_at, self.pixels = (
                np.empty(k, t) for t in (np.uint8, np.uint8, np.uint16))
        return (self.digits[:m], self.is_digit[:m], self.flag[:m], self.low[:m - 2],
                self.low_at[:k], self.high_at[:k], self.pixels[:k])


def _parse_chunk(fields, widths, out, scratch) -> bool:
    """Fast path for rows of 9216 space-separated 0..255 integers; False if anything else."""
    buf = b"  " + b"\n".join(fields) + b"\n"
    a = np.frombuffer(buf, dtype=np.uint8)
    m, k = len(a), len(fields) * N_PIXELS
    digits, is_digit, flag, low, low_at, high_at, pixels = scratch.get(m, k)
    np.subtract(a, 48, out=digits)
    np.less(digits, 10, out=is_digit)
    np.equal(a, 32, out=flag)
    if np.count_nonzero(is_digit) + np.count_nonzero(flag) + len(fields) != m:
        return False                                  # other characters: '-', '.', tab, ...
    np.logical_and(is_digit[1:], is_digit[:-1], out=flag[1:])
    np.logical_and(flag[3:], flag[1:-2], out=flag[3:])
    if np.count_nonzero(flag[3:]):
        return False                                  # a token of 4 or more digits
    ends = flag[:m - 3]
    np.greater(is_digit[2:-1], is_digit[3:], out=ends)   # a token ends at byte j + 2
    ends = np.flatnonzero(ends)
    if len(ends) != k or (np.diff(np.searchsorted(ends, np.cumsum(widths) - 1), prepend=0)
                          != N_PIXELS).any():
        return False                                  # some row has the wrong pixel count
    np.multiply(digits, is_digit, out=digits)         # non-digits count 0
    np.multiply(digits[1:-1], 10, out=low)            # tens and units, at each byte
    low += digits[2:]
    high = flag.view(np.uint8)[:m - 2]                # hundreds, unless cut by a non-digit
    np.multiply(digits[:-2], is_digit[1:-1], out=high)
    low.take(ends, out=low_at, mode="clip")
    high.take(ends, out=high_at, mode="clip")
    np.multiply(high_at, np.uint16(100), out=pixels)
    pixels += low_at
    if pixels.max() > 255:
        return False
    np.copyto(out, pixels.reshape(len(fields), N_PIXELS), casting="unsafe")
    return True


def _parse_row(field, where, tail="") -> np.ndarray:
    """Slow, careful parse of one Image field; the error says which pixel and why.

    Only the first 9,216 pixels are converted: a field with millions of tokens (a 10 MB line)
    is then only counted, cheaply, for the message.
    """
    tokens = _decode(field, where).split(maxsplit=N_PIXELS)
    rest = tokens.pop() if len(tokens) > N_PIXELS else ""
    values = np.empty(len(tokens), dtype=np.int64)
    for k, tok in enumerate(tokens):
        plain = tok.isascii() and "_" not in tok   # int() and float() take '1_0' and '\u0663'
        try:
            v = int(tok) if plain else None
        except ValueError:
            v = None
        if v is None:
            try:
                f = float(tok) if plain else None
            except ValueError:
                f = None
            if f is None or not np.isfinite(f) or not f.is_integer():
                raise DataFormatError(
                    f"{where}: pixel {k + 1} is {_show(tok)}, not a whole number; expected "
                    f"{N_PIXELS} space-separated integers 0..255.")
            v = int(f)
        if not 0 <= v <= 255:
            shown = v if len(tok) <= 20 else _show(tok)
            raise DataFormatError(f"{where}: pixel {k + 1} is {shown}, outside 0..255.")
        values[k] = v
    found = len(values) + (_count_tokens(rest) if rest else 0)
    if found != N_PIXELS:
        raise DataFormatError(
            f"{where}: expected {N_PIXELS} pixels ({IMAGE_SIDE}x{IMAGE_SIDE}), found "
            f"{found}{' (the field is empty)' if not tokens else ''}.{tail}")
    return values.astype(np.uint8)


_SPACE = np.zeros(256, dtype=bool)                 # what str.split() splits on, in ASCII
_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def _count_tokens(text):
    """len(text.split()) without building the list (text may hold millions of tokens)."""
    if not text:
        return 0
    if not text.isascii():
        return sum(1 for _ in re.finditer(r"\S+", text))
    space = _SPACE[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    return int(np.count_nonzero(space[:-1] & ~space[1:]) + (not space[0]))
