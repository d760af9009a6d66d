"""Compressed Kaggle files: the CSV inside a ``.zip`` (as Kaggle ships training.zip and
test.zip) or a ``.gz``, unpacked in memory with a size limit, or a DataFormatError naming them.

Private; ``facekeypoints.data.read_csv`` and the parsed-array cache (``_csv_cache``) use it.
Archives are recognised by their first bytes, not their names, so a zip saved as ``.csv``
is read too. A file that starts like a zip but has no zip directory (cut short) is passed on
as it is, and the CSV parser then says what it looks like. A member is refused before it is
inflated when its recorded size is over :data:`MAX_UNPACKED_BYTES`, and reading stops at that
many bytes whatever the archive claims, so a zip or gzip bomb never fills the memory.
"""
from __future__ import annotations

import io
import zipfile
import zlib

from ._csv import DataFormatError

#: The most bytes a compressed file may unpack to (Kaggle's training.csv is 238 MB).
MAX_UNPACKED_BYTES = 2_000_000_000

_ZIP, _GZIP = b"PK\x03\x04", b"\x1f\x8b"
_EMPTY_ZIP = b"PK\x05\x06"


def kind(raw) -> str | None:
    """``'zip'``, ``'gzip'`` or None (plain text), from the first bytes of ``raw``."""
    start = bytes(raw[:4])
    if start in (_ZIP, _EMPTY_ZIP):
        return "zip"
    if start[:2] == _GZIP:
        return "gzip"
    return None


def unpack(raw, name: str):
    """``(text, name)``: the CSV bytes of ``raw`` and how messages name them.

    Plain files come back unchanged; a zip gives its one CSV member, named
    ``'<archive>:<member>'``; a gzip file its contents, named as the file.

    Parameters
    ----------
    raw : bytes-like
        The file's bytes (an mmap works).
    name : str
        The file's name.

    Returns
    -------
    text : bytes-like
        What the CSV parser reads.
    name : str
        The name to use in messages.

    Raises
    ------
    DataFormatError
        An archive that holds no CSV or several, is encrypted, damaged or cut short, uses a
        compression method Python cannot read, or unpacks to more than MAX_UNPACKED_BYTES.
    """
    found = kind(raw)
    if found == "gzip":
        return _gunzip(raw, name), name
    if found == "zip":
        try:
            archive = zipfile.ZipFile(io.BytesIO(raw))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return raw, name          # cut short: the parser says it looks like a zip
        with archive:
            member = _member(archive, name)
            return _read_member(archive, member, name), f"{name}:{member.filename}"
    return raw, name


def source_name(path) -> str:
    """How messages name the data in the file at ``path``: ``training.zip:training.csv`` for
    a zip archive's member, else the file's name. Reads only the archive's directory."""
    try:
        with open(path, "rb") as f:
            if kind(f.read(4)) != "zip":
                return path.name
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                return f"{path.name}:{_member(archive, path.name).filename}"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):   # DataFormatError included
        return path.name


def _size(n):
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _too_big(what, size=None):
    amount = f" to {_size(size)}" if size is not None else " to more than that"
    return DataFormatError(
        f"{what} unpacks{amount}, over the {_size(MAX_UNPACKED_BYTES)} facekeypoints unpacks "
        "in memory (a Kaggle training.csv is 238 MB), so it was not unpacked (a zip bomb, or "
        "a damaged file?). If it is genuine, unpack it yourself and pass the .csv.")


def _member(archive, name):
    """The one CSV in ``archive`` (folders, ``__MACOSX/`` and ``._`` files left aside)."""
    infos = archive.infolist()
    files = [i for i in infos if not i.is_dir() and not i.filename.startswith("__MACOSX/")
             and not i.filename.rsplit("/", 1)[-1].startswith("._")]
    csvs = [i for i in files if i.filename.lower().endswith(".csv")]
    if len(csvs) == 1:
        return csvs[0]
    listed = ", ".join(repr(i.filename[:60]) for i in files[:6]) + (
        f", ... ({len(files)} files)" if len(files) > 6 else "")
    if not csvs:
        held = f"it holds {listed}" if files else "it holds no files"
        raise DataFormatError(f"{name}: a zip archive with no .csv file in it ({held}); "
                              "expected one Kaggle CSV, as in Kaggle's training.zip and "
                              "test.zip.")
    raise DataFormatError(f"{name}: a zip archive with {len(csvs)} .csv files; expected "
                          f"exactly one (it holds {listed}). Unzip it and pass the one you "
                          "mean.")


def _read_member(archive, member, name):
    where = f"{name}:{member.filename}"
    if member.flag_bits & 0x1:
        raise DataFormatError(f"{where}: the zip archive is encrypted; unzip it with its "
                              "password and pass the .csv.")
    if member.file_size > MAX_UNPACKED_BYTES:
        raise _too_big(where, member.file_size)
    try:
        with archive.open(member) as f:
            data = f.read(MAX_UNPACKED_BYTES + 1)
    except NotImplementedError:
        raise DataFormatError(
            f"{where}: compressed with a method Python's zipfile cannot read (zip method "
            f"{member.compress_type}, e.g. Deflate64 from Windows Explorer); unzip it with "
            "another tool and pass the .csv.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as exc:
        raise DataFormatError(f"{where}: the zip archive is damaged or cut short ({exc}); "
                              "download or copy it again.") from None
    if len(data) > MAX_UNPACKED_BYTES:
        raise _too_big(where)
    return data


def _gunzip(raw, name):
    import gzip

    # The gzip trailer's size (mod 2**32) is garbage in a file cut short, so it is not
    # trusted: reading stops at the limit instead.
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(MAX_UNPACKED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:     # gzip.BadGzipFile is an OSError
        raise DataFormatError(f"{name}: a gzip file that cannot be unpacked ({exc}); was it "
                              "cut short? Download or copy it again.") from None
    if len(data) > MAX_UNPACKED_BYTES:
        raise _too_big(name)
    return data
