"""Kaggle "Facial Keypoints Detection" CSV <-> numpy arrays: the public data API.

Column names, flip pairs, loading with scaling/dropna/shuffle, and submissions. The byte
parser lives in the private ``_csv`` module and the content-keyed parsed-array cache in
``_csv_cache``; this module imports them, never the reverse.

``load(path=None)`` reads a default data set that another module registers with
``register_default_dataset``: ``facekeypoints.synthetic`` registers its embedded synthetic
faces when it is imported, and ``import facekeypoints`` imports it. This module never imports
``synthetic`` (which builds on it).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# cache_dir, KEYPOINT_COLUMNS, N_PIXELS, DataFormatError and ParsedCSV are defined below this
# module and re-exported here (see __all__); the keypoint geometry comes from the layout.
from ._archive import source_name, unpack
from ._cache import cache_dir
from ._csv import KEYPOINT_COLUMNS, N_PIXELS, DataFormatError, ParsedCSV, map_file, parse_bytes
from ._csv_cache import read_cached
from ._safe_io import atomic_write
from ._suggest import did_you_mean
from .layout import KAGGLE

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = [
    "KEYPOINT_COLUMNS", "FLIP_INDICES", "IMAGE_SIDE", "N_PIXELS", "PIXELS_PER_UNIT",
    "DataFormatError", "ParsedCSV", "read_csv", "select_rows", "load", "load2d",
    "write_submission", "cache_dir", "register_default_dataset",
]

#: Column-index pairs (left, right) swapped when a face is mirrored, x and y of each keypoint:
#: the Kaggle layout's flip pairs (``facekeypoints.layout.KAGGLE.column_flip_pairs``).
FLIP_INDICES = KAGGLE.column_flip_pairs
#: Side of a Kaggle face image, in pixels (the Kaggle layout's ``image_side``).
IMAGE_SIDE = KAGGLE.image_side
#: Pixels per unit of a scaled target, 48.0 (the Kaggle layout's ``pixel_scale``).
PIXELS_PER_UNIT = KAGGLE.pixel_scale

_SEED = 42                       # the old recipe's shuffle seed

_PathLike = str | os.PathLike
# provider(test) -> the path of the default training (test=False) or test (test=True) file.
_Provider = Callable[[bool], _PathLike]

_default_dataset: _Provider | None = None   # set by register_default_dataset


# --------------------------------------------------------------------------------------------
# Public API


def register_default_dataset(provider: _Provider) -> _Provider | None:
    """Register the data set that ``load(path=None)`` and ``load2d(path=None)`` read.

    ``facekeypoints.synthetic`` registers the embedded synthetic faces when it is imported
    (``import facekeypoints`` imports it), so call this only to make another data set the
    default. A later registration replaces an earlier one.

    Parameters
    ----------
    provider : callable
        ``provider(test)`` returns the path of the default training file (``test=False``) or
        test file (``test=True``). It is called on every ``load(None)``, so it may create the
        files on first use.

    Returns
    -------
    callable or None
        The provider this one replaces (None if there was none), e.g. to restore it later.

    Examples
    --------
    >>> from facekeypoints import data
    >>> previous = data.register_default_dataset(
    ...     lambda test: "kaggle/test.csv" if test else "kaggle/training.csv")
    >>> _ = data.register_default_dataset(previous)   # put the synthetic faces back
    """
    global _default_dataset
    if not callable(provider):
        raise TypeError("register_default_dataset needs a callable provider(test) -> path, "
                        f"got {type(provider).__name__}.")
    previous, _default_dataset = _default_dataset, provider
    return previous


def _default_path(test: bool) -> _PathLike:
    """The registered default data set's training or test file."""
    if _default_dataset is None:
        raise RuntimeError(
            "load(path=None) reads the default data set, but none is registered. Pass the "
            "path of a Kaggle CSV, or import facekeypoints.synthetic (it registers the "
            "embedded synthetic faces; `import facekeypoints` does so), or register one with "
            "facekeypoints.data.register_default_dataset(provider).")
    return _default_dataset(test)


def read_csv(path: _PathLike, test: bool = False, *, cache: bool = True) -> ParsedCSV:
    """Parse a Kaggle ``training.csv`` (test=False) or ``test.csv`` (test=True) file.

    Keeps every row and the file's row order; ``load`` does the scaling and row dropping.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file, or a ``.zip`` holding one CSV (Kaggle ships ``training.zip`` and
        ``test.zip``) or a gzip-compressed CSV, read without unpacking them on disk (messages
        name a zip's member as ``training.zip:training.csv``). Archives are recognised by
        their first bytes; one that unpacks to more than 2 GB is refused unread.
    test : bool, default False
        Read a test file (``ImageId, Image``); the result then has ``keypoints=None``.
    cache : bool, default True
        Keep the parsed arrays in the per-user cache (see ``cache_dir``), keyed by the file's
        content, so that an unchanged file is parsed once.

    Returns
    -------
    ParsedCSV
        The images, keypoints (pixels, NaN for gaps), ImageIds and the file's keypoint columns.

    Raises
    ------
    DataFormatError
        A ValueError naming the row and column of the first problem in the file, or saying
        that ``path`` is a device, pipe or socket rather than a file.
    FileNotFoundError
        When nothing is at ``path``.
    IsADirectoryError
        When ``path`` is a directory (the message lists the CSV files in it).

    Examples
    --------
    >>> from facekeypoints import synthetic
    >>> parsed = read_csv(synthetic.ensure_default_dataset()["training"])  # doctest: +SKIP
    >>> parsed.images.shape, parsed.keypoints.shape  # doctest: +SKIP
    ((7049, 9216), (7049, 30))
    """
    path = Path(os.fspath(path))
    _check_regular_file(path)
    try:
        if cache:
            parsed = read_cached(path)
        else:
            parsed = parse_bytes(*unpack(map_file(path), path.name))
        _check_kind(parsed, test, source_name(path))
    except DataFormatError as exc:
        hint = _cache_hint(path)
        if hint is None:
            raise
        raise DataFormatError(f"{exc}{hint}", cli=exc.cli_message and exc.cli_message + hint
                              ) from None
    if test:
        parsed = ParsedCSV(parsed.images, None, parsed.image_ids, ())
    return parsed


def load(path: _PathLike | None = None, test: bool = False,
         cols: str | Sequence[str] | None = None, *, cache: bool = True, dropna: bool = True
         ) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a Kaggle CSV as ``(X, y)`` the way the classic recipe did.

    ``cols`` narrows the keypoint columns before rows with gaps are dropped, so more rows
    survive. Rows are then shuffled with a fixed seed (42). A test file keeps its order.

    With ``dropna=False`` no face is dropped for a gap: every row with at least one of the
    kept keypoints stays, with NaN where a keypoint is missing ("not labelled"; the default
    criterion, :class:`facekeypoints.losses.MaskedMSELoss`, ignores those entries). On
    Kaggle's training.csv (and the embedded synthetic faces, which copy its gaps) that is
    about 7,000 faces instead of about 2,140.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A Kaggle ``training.csv`` or ``test.csv``, also as Kaggle's ``training.zip`` /
        ``test.zip`` or gzipped (see ``read_csv``). None (the default) reads the default data
        set registered with ``register_default_dataset``: the embedded synthetic faces.
    test : bool, default False
        Read a test file; y is then None.
    cols : str or sequence of str, optional
        Keypoint columns to keep (None: all 30 of KEYPOINT_COLUMNS).
    cache : bool, default True
        Use the parsed-array cache (see ``read_csv``).
    dropna : bool, default True
        Drop the rows with a gap in any kept column (the recipe). False keeps every row
        that has at least one of them, NaN marking the missing keypoints.

    Returns
    -------
    X : numpy.ndarray
        float32 (n, 9216), pixels / 255.
    y : numpy.ndarray or None
        float32 (n, k), (coordinate - 48) / 48, in KEYPOINT_COLUMNS order or the order of
        ``cols`` (NaN where unlabelled with ``dropna=False``); None for a test file.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> X, y = fk.load()  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((2140, 9216), (2140, 30))
    >>> X, y = fk.load(dropna=False)  # doctest: +SKIP
    >>> X.shape, int(np.isnan(y).any(axis=1).sum())  # doctest: +SKIP
    ((7049, 9216), 4924)
    """
    if path is None:
        path = _default_path(test)
    parsed = read_csv(path, test=test, cache=cache)
    if test:
        return _scale(parsed.images), None
    return select_rows(parsed, cols, source_name(Path(os.fspath(path))), dropna=dropna)


def select_rows(parsed: ParsedCSV, cols: str | Sequence[str] | None = None,
                name: str = "training data", *, dropna: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` from a parsed training file, exactly as ``load`` makes them.

    Keeps the keypoint columns ``cols``, drops the rows with a gap in any of them (with
    ``dropna=False``: the rows with none of them), scales pixels to [0, 1] and keypoints to
    (coordinate - 48) / 48, and shuffles the rows with the fixed seed. Read a file once with
    ``read_csv`` and call this per column group to get what ``load(path, cols=...)`` would.

    Parameters
    ----------
    parsed : ParsedCSV
        What ``read_csv`` returned for a training file.
    cols : str or sequence of str, optional
        Keypoint columns to keep (None: all 30).
    name : str, default "training data"
        The file's name, for error messages.
    dropna : bool, default True
        Drop rows with a gap in any kept column; False keeps every row with at least one
        kept keypoint, NaN where one is missing.

    Returns
    -------
    X : numpy.ndarray
        float32 (n, 9216), pixels / 255.
    y : numpy.ndarray
        float32 (n, k), scaled keypoints (NaN for gaps with ``dropna=False``).

    Raises
    ------
    DataFormatError
        When no row is left; the message names the columns with gaps and suggests some.

    Examples
    --------
    >>> parsed = read_csv("training.csv")  # doctest: +SKIP
    >>> X, y = select_rows(parsed, ["nose_tip_x", "nose_tip_y"])  # doctest: +SKIP
    """
    names = _check_cols(cols, parsed.columns, name, absent_ok=cols is None and not dropna)
    kp = parsed.keypoints[:, [KEYPOINT_COLUMNS.index(c) for c in names]]
    missing = np.isnan(kp)
    keep = ~missing.any(axis=1) if dropna else ~missing.all(axis=1)
    if not keep.any():
        if dropna:
            text, cli = _no_rows_message(kp, names, parsed, name)
            raise DataFormatError(text, cli=cli)
        raise DataFormatError(f"{name}: none of its {len(kp)} rows has any of the "
                              f"{len(names)} requested keypoint columns ({', '.join(names)}).")
    y = ((kp[keep] - PIXELS_PER_UNIT) / PIXELS_PER_UNIT).astype(np.float32)
    from sklearn.utils import shuffle
    return shuffle(_scale(parsed.images[keep]), y, random_state=_SEED)


def _scale(images):
    X = images.astype(np.float32)
    X /= np.float32(255.0)
    return X


def load2d(path: _PathLike | None = None, test: bool = False,
           cols: str | Sequence[str] | None = None, *, cache: bool = True,
           dropna: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``load``, with X reshaped to (n, 1, 96, 96) for convolutional nets.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A Kaggle CSV; None reads the registered default data set (see ``load``).
    test : bool, default False
        Read a test file; y is then None.
    cols : str or sequence of str, optional
        Keypoint columns to keep (None: all 30).
    cache : bool, default True
        Use the parsed-array cache (see ``read_csv``).
    dropna : bool, default True
        Drop rows with a gap in any kept column; False keeps every row with at least one
        kept keypoint, NaN where one is missing (see ``load``).

    Returns
    -------
    X : numpy.ndarray
        float32 (n, 1, 96, 96), pixels / 255.
    y : numpy.ndarray or None
        As ``load`` returns it.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> X, y = fk.load2d()  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (2140, 1, 96, 96)
    >>> fk.load2d(dropna=False)[0].shape  # doctest: +SKIP
    (7049, 1, 96, 96)
    """
    X, y = load(path, test=test, cols=cols, cache=cache, dropna=dropna)
    return X.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE), y


def write_submission(predictions: ArrayLike | pd.DataFrame, lookup_csv: _PathLike | pd.DataFrame,
                     out_csv: _PathLike, image_ids: ArrayLike | None = None) -> Path:
    """Write a Kaggle submission (``RowId,Location``) for the rows of ``IdLookupTable.csv``.

    Predictions are scaled back to pixels here, not by the caller, so the same array that
    training and validation use can be submitted directly. Locations are written as
    y * 48 + 48, clipped to [0, 96], in the lookup table's row order.

    Parameters
    ----------
    predictions : array-like or pandas.DataFrame
        What a net's ``predict`` returns: SCALED coordinates, (pixel - 48) / 48, shape
        (n_test, 30) in KEYPOINT_COLUMNS order, row i for ImageId ``image_ids[i]``. A
        DataFrame with keypoint column names (e.g. a specialist's narrower output) and ImageId
        as index works too.
    lookup_csv : str, os.PathLike or pandas.DataFrame
        Kaggle's ``IdLookupTable.csv`` (RowId, ImageId, FeatureName[, Location]).
    out_csv : str or os.PathLike
        Where to write the submission (atomically).
    image_ids : array-like, optional
        The ImageId of each prediction row; default 1..n, the order of Kaggle's test.csv (or
        a DataFrame's index).

    Returns
    -------
    pathlib.Path
        The output path.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> X, _ = fk.load("test.csv", test=True)  # doctest: +SKIP
    >>> fk.write_submission(net.predict(X), "IdLookupTable.csv", "submission.csv")  # doctest: +SKIP
    PosixPath('submission.csv')
    """
    import pandas as pd

    table, ids = _prediction_table(predictions, image_ids)
    lookup = (lookup_csv if isinstance(lookup_csv, pd.DataFrame)
              else _read_lookup(Path(os.fspath(lookup_csv))))
    missing = [c for c in ("RowId", "ImageId", "FeatureName") if c not in lookup.columns]
    if missing:
        found = [str(c) if len(str(c)) <= 30 else str(c)[:27] + "..."
                 for c in list(lookup.columns)[:6]]
        more = ", ..." if len(lookup.columns) > 6 else ""
        raise DataFormatError(
            f"lookup table {_name(lookup_csv)}: missing column(s) {missing}; found "
            f"{', '.join(map(repr, found))}{more}. Expected Kaggle's IdLookupTable.csv "
            "(RowId, ImageId, FeatureName[, Location]).")
    features = lookup["FeatureName"].astype(str).str.strip()
    unknown = ~features.isin(KEYPOINT_COLUMNS)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataFormatError(
            f"lookup table {_name(lookup_csv)}, data row {i + 1} (RowId "
            f"{lookup['RowId'].iloc[i]}): FeatureName {features.iloc[i]!r} is not a Kaggle "
            f"keypoint column{did_you_mean(features.iloc[i], KEYPOINT_COLUMNS, style='paren')}.")
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


def _check_regular_file(path, kind="CSV"):
    """Refuse what is not a readable regular file, saying what it is instead."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file. Get Kaggle's data as data/README.md "
                                "says, or call load() with no path for the synthetic default."
                                ) from None
    except OSError as exc:   # e.g. a path through a file, or no permission
        raise type(exc)(exc.errno, f"{path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        inside = sorted(p.name for pattern in ("*.csv", "*.zip", "*.gz")
                        for p in path.glob(pattern))[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise IsADirectoryError(f"{path} is a directory, not a {kind} file{hint}; pass the "
                                "file itself")
    if not stat.S_ISREG(mode):
        what = ("a character device" if stat.S_ISCHR(mode) else "a block device"
                if stat.S_ISBLK(mode) else "a pipe" if stat.S_ISFIFO(mode) else "a socket"
                if stat.S_ISSOCK(mode) else "not a regular file")
        raise DataFormatError(f"{path} is {what}, not a {kind} file; pass a {kind} file")


def _cache_hint(path):
    """For a file inside the cache folder: where it is and that deleting it fixes it."""
    try:
        folder, resolved = cache_dir().resolve(), path.resolve()
    except (OSError, RuntimeError):
        return None
    if folder not in resolved.parents:
        return None
    return (f" ({resolved} is in the facekeypoints cache {folder}, set by FACEKEYPOINTS_CACHE: "
            f"delete {resolved.parent} and it is made again when next needed.)")


def _check_kind(parsed, test, name):
    if test and parsed.image_ids is None:
        text = (f"{name}: a test file needs an 'ImageId' column (Kaggle's test.csv has "
                "ImageId,Image); this file has none.")
        training = " It looks like a training file" if parsed.columns else ""
        raise DataFormatError(
            text + (f"{training}: call load(path) without test=True." if training else ""),
            cli=text + (f"{training}: pass it as --data (train, evaluate), not as a test "
                        "file." if training else ""))
    if not test and not parsed.columns:
        text = (f"{name}: no keypoint columns (e.g. {KEYPOINT_COLUMNS[0]!r}); a training file "
                "has 30 keypoint columns and Image.")
        looks = " It looks like a test file" if parsed.image_ids is not None else ""
        raise DataFormatError(
            text + (f"{looks}: pass test=True." if looks else ""),
            cli=text + (f"{looks}: predict reads it (--test); --data takes a training.csv."
                        if looks else ""))


def _check_cols(cols, present, name, absent_ok=False):
    if cols is None:
        lacking = [c for c in KEYPOINT_COLUMNS if c not in present]
        if lacking and not absent_ok:    # absent_ok: absent columns are unlabelled (all NaN)
            listed = lacking if len(lacking) <= 4 else lacking[:4] + ["..."]
            text = f"{name}: {len(lacking)} of the 30 keypoint columns are missing ({listed})."
            raise DataFormatError(
                f"{text} Pass cols= with columns the file has, e.g. cols={list(present)[:4]}, "
                "or dropna=False to keep all 30, the missing ones unlabelled (NaN).",
                cli=f"{text} Add --partial-labels to use it anyway: the missing keypoints then "
                    "count as unlabelled.")
        return list(KEYPOINT_COLUMNS)
    names = [cols] if isinstance(cols, str) else list(cols)
    if not names:
        raise ValueError("cols is empty; pass None for all 30 keypoint columns or a list of "
                         "keypoint column names.")
    for c in names:
        if c not in KEYPOINT_COLUMNS:
            hint = did_you_mean(c, KEYPOINT_COLUMNS, style="paren") or (
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
    text = (f"{name}: no rows left after dropping rows with missing keypoints: all {len(kp)} "
            f"rows have a gap in at least one of the {len(names)} requested columns. Columns "
            f"with gaps: {listed}.")
    some = int((~np.isnan(kp)).any(axis=1).sum())
    return (f"{text} Pass cols= with fewer columns, e.g. cols={best}, or dropna=False to keep "
            "the rows with gaps (NaN = unlabelled).",
            f"{text} Add --partial-labels to use the {some} faces that have some of them "
            "(train, evaluate), or use train-specialists, whose nets each need fewer "
            f"keypoints (in Python: load(path, cols={best}) narrows the columns).")


def _read_lookup(path):
    """``IdLookupTable.csv`` as a DataFrame; a file that is not CSV text names the file."""
    import pandas as pd

    _check_regular_file(path)
    try:
        return pd.read_csv(path)
    except UnicodeDecodeError as exc:
        reason = (f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}; "
                  "is it a binary or compressed file?")
    except pd.errors.EmptyDataError:
        reason = "the file is empty"
    except pd.errors.ParserError as exc:
        reason = str(exc).strip().splitlines()[0]
    raise DataFormatError(f"lookup table {path}: not a readable CSV file ({reason}). Expected "
                          "Kaggle's IdLookupTable.csv (RowId, ImageId, FeatureName).")


def _name(obj):
    return Path(os.fspath(obj)).name if isinstance(obj, (str, os.PathLike)) else "(DataFrame)"


def _prediction_table(predictions, image_ids):
    """Predictions as a DataFrame (columns = keypoint names) and the ImageId of each row."""
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        bad = [c for c in predictions.columns if c not in KEYPOINT_COLUMNS]
        if bad:
            raise ValueError(f"prediction column {bad[0]!r} is not a Kaggle keypoint column"
                             f"{did_you_mean(bad[0], KEYPOINT_COLUMNS, style='paren')}.")
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
