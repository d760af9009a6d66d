"""Kaggle's own files: ``training.zip`` / ``test.zip`` (one CSV inside) and ``.gz`` files are
read directly by ``fk.load``/``read_csv`` and the CLI's ``--data``, with the same checks and
messages naming the member, and zip or gzip bombs refused (issue 25, item 5)."""
import gzip
import zipfile

import numpy as np
import pytest

from facekeypoints import _archive, _csv_cache, cli, data
from facekeypoints.data import DataFormatError, load, read_csv
from facekeypoints.synthetic import write_dataset

COLS = ["nose_tip_x", "nose_tip_y"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("faces"), n_train=24, n_test=3)


def zipped(path, members, method=zipfile.ZIP_DEFLATED):
    """A zip at ``path`` holding ``members`` ({name: bytes})."""
    with zipfile.ZipFile(path, "w", method) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return path


def npz_entries():
    folder = data.cache_dir() / "parsed"
    return sorted(folder.glob("*.npz")) if folder.exists() else []


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "nocache"])
@pytest.mark.parametrize("packing", ["zip", "gz", "zip-stored", "zip-named-csv"])
def test_zip_and_gzip_load_as_the_csv_inside(faces, tmp_path, packing, cache):
    raw = faces["training"].read_bytes()
    if packing == "gz":
        path = tmp_path / "training.csv.gz"
        path.write_bytes(gzip.compress(raw, mtime=0))
    else:
        name = "training.csv" if packing == "zip-named-csv" else "training.zip"
        method = zipfile.ZIP_STORED if packing == "zip-stored" else zipfile.ZIP_DEFLATED
        path = zipped(tmp_path / name, {"training.csv": raw, "__MACOSX/._training.csv": b"x"},
                      method)
    for cols in (COLS, None):
        want = load(faces["training"], cols=cols, dropna=cols is None, cache=False)
        got = load(path, cols=cols, dropna=cols is None, cache=cache)
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)
    assert len(read_csv(path, cache=cache)) == 24


def test_test_zip(faces, tmp_path):
    path = zipped(tmp_path / "test.zip", {"test.csv": faces["test"].read_bytes()})
    parsed = read_csv(path, test=True)
    assert parsed.keypoints is None and parsed.image_ids.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(load(path, test=True)[0], load(faces["test"], test=True)[0])


def test_errors_name_the_member_and_where(faces, tmp_path):
    lines = faces["training"].read_bytes().split(b"\n")
    lines[12] = lines[12].replace(b" ", b" x", 1)           # data row 12
    bad = b"\n".join(lines)
    path = zipped(tmp_path / "training.zip", {"training.csv": bad})
    for cache in (True, False):
        with pytest.raises(DataFormatError, match=r"^training\.zip:training\.csv, data row 12 "
                                                  r"\(file line 13\), column 'Image': pixel 2"):
            load(path, cache=cache)
    gz = tmp_path / "training.csv.gz"
    gz.write_bytes(gzip.compress(bad))
    with pytest.raises(DataFormatError, match=r"^training\.csv\.gz, data row 12 "):
        load(gz)
    assert npz_entries() == []
    # The checks after parsing name the member too.
    test_zip = zipped(tmp_path / "test.zip", {"test.csv": faces["test"].read_bytes()})
    with pytest.raises(DataFormatError, match=r"^test\.zip:test\.csv: no keypoint columns"):
        load(test_zip)
    with pytest.raises(DataFormatError, match=r"^training\.zip:training\.csv: a test file"):
        load(zipped(tmp_path / "training.zip", {"training.csv": faces["training"].read_bytes()}),
             test=True)


def test_a_zip_with_several_csvs_or_none_lists_what_it_holds(faces, tmp_path):
    raw = faces["training"].read_bytes()
    several = zipped(tmp_path / "several.zip", {"training.csv": raw, "data/test.csv": raw,
                                                "README.txt": b"hi"})
    with pytest.raises(DataFormatError, match=r"^several\.zip: a zip archive with 2 \.csv "
                                              r"files; expected exactly one \(it holds "
                                              r"'training\.csv', 'data/test\.csv', "
                                              r"'README\.txt'\)"):
        load(several)
    none = zipped(tmp_path / "none.zip", {"notes.txt": b"hi", "img/": b""})
    with pytest.raises(DataFormatError, match=r"^none\.zip: a zip archive with no \.csv file "
                                              r"in it \(it holds 'notes\.txt'\)"):
        load(none)
    empty = zipped(tmp_path / "empty.zip", {})
    with pytest.raises(DataFormatError, match=r"^empty\.zip: .*\(it holds no files\)"):
        load(empty)


def test_damaged_archives_say_so(faces, tmp_path):
    raw = faces["training"].read_bytes()
    gz = gzip.compress(raw)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataFormatError, match=r"^cut\.csv\.gz: a gzip file that cannot be "
                                              r"unpacked .*cut short"):
        load(cut)
    zipped(tmp_path / "t.zip", {"training.csv": raw})
    blob = bytearray((tmp_path / "t.zip").read_bytes())
    blob[len(blob) // 2] ^= 0xFF                            # a flipped byte inside the data
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(blob))
    with pytest.raises(DataFormatError, match=r"^flipped\.zip:training\.csv: the zip archive "
                                              r"is damaged"):
        load(flipped)
    # Cut before its directory: not readable as a zip; the parser says it looks like one.
    half = tmp_path / "half.zip"
    half.write_bytes(bytes(blob[:100]))
    with pytest.raises(DataFormatError, match=r"This is a zip archive: unzip it .*no zip "
                                              r"directory"):
        load(half)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    monkeypatch.setattr(_archive, "MAX_UNPACKED_BYTES", 1_000_000)
    bomb = zipped(tmp_path / "bomb.zip", {"training.csv": b"0" * 5_000_000})
    assert bomb.stat().st_size < 20_000

    def inflate(*args, **kwargs):
        raise AssertionError("inflated the bomb")

    monkeypatch.setattr(zipfile.ZipFile, "open", inflate)
    for cache in (True, False):
        with pytest.raises(DataFormatError, match=r"^bomb\.zip:training\.csv unpacks to 5\.0 "
                                                  r"MB, over the 1\.0 MB .*not unpacked"):
            load(bomb, cache=cache)


def test_a_gzip_bomb_is_cut_off_at_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(_archive, "MAX_UNPACKED_BYTES", 1_000_000)
    for trailer in (None, 100):         # its trailer may state any size (it is mod 2**32)
        gz = bytearray(gzip.compress(b"0" * 5_000_000))
        if trailer is not None:
            gz[-4:] = trailer.to_bytes(4, "little")
        bomb = tmp_path / "bomb.csv.gz"
        bomb.write_bytes(bytes(gz))
        with pytest.raises(DataFormatError, match=r"^bomb\.csv\.gz unpacks to more than "
                                                  r"that, over the 1\.0 MB .*not unpacked"):
            load(bomb)


def test_the_parse_cache_keys_on_the_archive(faces, tmp_path, monkeypatch):
    raw = faces["training"].read_bytes()
    path = zipped(tmp_path / "training.zip", {"training.csv": raw})
    first = load(path, cols=COLS)
    (entry,) = npz_entries()
    with monkeypatch.context() as mp:
        mp.setattr(_csv_cache, "unpack", None)     # a hit never unpacks
        np.testing.assert_array_equal(load(path, cols=COLS)[1], first[1])
    lines = raw.split(b"\n")
    path.unlink()
    zipped(path, {"training.csv": b"\n".join(lines[:11]) + b"\n"})   # other content
    X, _ = load(path, cols=COLS, dropna=False)
    assert len(X) == 10 and len(npz_entries()) == 2


def test_cli_data_reads_a_zip_and_names_its_member(faces, tmp_path, capsys):
    lines = faces["training"].read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b" ", b" 300 ", 1)
    path = zipped(tmp_path / "training.zip", {"training.csv": b"\n".join(lines)})
    rc = cli.main(["train", "net1", "--data", str(path), "--max-epochs", "1",
                   "--device", "cpu", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "training.zip:training.csv, data row 3 (file line 4), column 'Image'" in err, err
    assert not (tmp_path / "run" / "model.pt").exists()
