"""The Kaggle CSV byte parser: bytes -> ``ParsedCSV`` arrays, or a DataFormatError naming where.

Private; ``facekeypoints.data`` is the public API and re-exports ``KEYPOINT_COLUMNS``,
``N_PIXELS``, ``DataFormatError`` and ``ParsedCSV`` from here (they live here, at the bottom
of the data layer, so that the parser never imports ``data``). Entry points: ``map_file`` and
``parse_bytes``; the parsed-array cache (``_csv_cache``) builds on them.

The Kaggle training file is ~230 MB of text, almost all of it the ``Image`` column (9,216
space-separated integers per row). Parsing that per row with ``np.fromstring`` takes ~10 s, so
this module splits lines itself and parses the pixels of many rows at once with byte
arithmetic. Any irregular row falls back to a careful per-row parser, which is also what names
the row, column and value in error messages.
"""
from __future__ import annotations

import csv
import mmap
import os
import re
import threading
from dataclasses import dataclass

import numpy as np

from ._suggest import did_you_mean
from .layout import KAGGLE

#: The 30 keypoint columns in Kaggle's order: the Kaggle layout's (``layout.KAGGLE.columns``).
KEYPOINT_COLUMNS = KAGGLE.columns

IMAGE_SIDE = KAGGLE.image_side
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE

_ROWS_PER_CHUNK = 16             # ~0.5 MB of text per chunk: the byte arithmetic stays in cache
_MISSING = {"", "nan", "na", "n/a", "null", "none"}   # what pandas would also read as NaN


class DataFormatError(ValueError):
    """A file that is not in the Kaggle CSV format; the message says where, and how to fix it.

    Parameters
    ----------
    message : str
        What is wrong, where, and the fix in Python words (``cols=``, ``test=True``).
    cli : str, optional
        The same message with the fix in command-line words (``--partial-labels``), kept as
        ``cli_message``; the ``facekeypoints`` command prints it instead of ``message``.
    """

    def __init__(self, message="", *, cli=None):
        super().__init__(message)
        self.cli_message = cli


@dataclass(frozen=True)
class ParsedCSV:
    """A Kaggle CSV as arrays, before scaling or dropping rows (what ``read_csv`` returns).

    ``len(parsed)`` is the number of rows.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (n, 9216), each row a row-major 96x96 image.
    keypoints : numpy.ndarray or None
        float64 (n, 30) pixel coordinates in KEYPOINT_COLUMNS order, NaN where the file has a
        gap or lacks the column; None for a test file.
    image_ids : numpy.ndarray or None
        int64 (n,) from an ``ImageId`` column, else None.
    columns : tuple of str
        The keypoint columns the file has, in KEYPOINT_COLUMNS order.
    """

    images: np.ndarray
    keypoints: np.ndarray | None
    image_ids: np.ndarray | None
    columns: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)


# Their public home (tracebacks, pickles and docs name them there).
DataFormatError.__module__ = ParsedCSV.__module__ = "facekeypoints.data"


def map_file(path):
    """The file's bytes without copying them (reading 230 MB into a bytes object is slow)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def parse_bytes(raw, name: str) -> ParsedCSV:
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
            hint = ("This is a zip archive: unzip it and pass the .csv inside, or download it "
                    "again: facekeypoints reads zip files, but this one has no zip directory, "
                    "so it was cut short or is damaged")
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
        shown = ", ".join(_show(c) for c in names[:8]) + (", ..." if len(names) > 8 else "")
        raise DataFormatError(
            f"{name}: no 'Image' column in the header; found [{shown}]"
            f"{did_you_mean('Image', names, style='paren')}. Expected "
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
        from concurrent.futures import ThreadPoolExecutor   # here: keeps the package import light

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
