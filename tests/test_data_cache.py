"""The embedded data cache is verified against its marker (row counts, SHA-256) and rebuilt
with a one-line notice when it does not match; cache errors name the folder and
FACEKEYPOINTS_CACHE (issue 26, item 6 and its rough edges)."""
import errno
import json
import os

import pytest

from facekeypoints import _csv_cache, data, synthetic
from facekeypoints.data import DataFormatError, read_csv

N_TRAIN, N_TEST = 30, 5


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """A small default-style set in a private cache, and the bytes it was made with."""
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path / "cache"))
    paths = synthetic.ensure_default_dataset(n_train=N_TRAIN, n_test=N_TEST)
    return paths, {k: p.read_bytes() for k, p in paths.items()}


def ensure():
    return synthetic.ensure_default_dataset(n_train=N_TRAIN, n_test=N_TEST)


def age(path, seconds=10):
    """Make the file's stamp old enough to be trusted (the racy-stat rule)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10 ** 9))


def cut_at_line(raw, keep):
    return b"".join(raw.splitlines(keepends=True)[:keep + 1])


def changed_digit(raw):
    at = raw.index(b" 1", len(raw) // 2) + 1
    return raw[:at] + b"2" + raw[at + 1:]            # same size, one pixel changed


@pytest.mark.parametrize("damage", ["cut at a line end", "changed digit", "cut mid-line",
                                    "test cut at a line end"])
def test_a_damaged_cache_is_rebuilt_with_a_notice(cached, capsys, damage):
    paths, original = cached
    key = "test" if damage.startswith("test") else "training"
    raw = original[key]
    damaged = {"cut at a line end": lambda: cut_at_line(raw, 12),
               "test cut at a line end": lambda: cut_at_line(raw, 2),
               "changed digit": lambda: changed_digit(raw),
               "cut mid-line": lambda: raw[: len(raw) // 2]}[damage]()
    paths[key].write_bytes(damaged)
    capsys.readouterr()
    again = ensure()
    err = capsys.readouterr().err
    assert again == paths and paths[key].read_bytes() == original[key]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    folder = synthetic.default_data_dir(n_train=N_TRAIN, n_test=N_TEST)
    assert lines[0].startswith(f"facekeypoints: the cached synthetic faces in {folder} do not "
                               "match their marker (")
    assert lines[0].endswith("); rebuilding them")
    rows = N_TEST if key == "test" else N_TRAIN
    if damage == "changed digit":
        assert "the content of training.csv (30 data rows) differs" in err
    else:
        assert f"its marker records {rows} rows in {len(raw)} bytes" in err
    assert len(read_csv(paths["training"])) == N_TRAIN
    capsys.readouterr()
    ensure()
    assert capsys.readouterr().err == ""               # rebuilt once, then trusted


def test_the_marker_records_rows_and_hashes(cached):
    paths, original = cached
    meta = json.loads((paths["training"].parent / "COMPLETE.json").read_text())
    import hashlib

    for key, rows in (("training", N_TRAIN), ("test", N_TEST)):
        record = meta["contents"][paths[key].name]
        assert record["rows"] == rows and record["size"] == len(original[key])
        assert record["sha256"] == hashlib.sha256(original[key]).hexdigest()


def test_an_unchanged_old_file_is_not_hashed_again(cached, monkeypatch):
    paths, _ = cached
    for p in paths.values():
        age(p)
    ensure()                                          # hashes once, records the stamps

    def no_hash(path):
        raise AssertionError(f"hashed {path} again")

    monkeypatch.setattr(synthetic, "_digest", no_hash)
    assert ensure() == paths


def test_a_marker_without_records_is_checked_by_rows(cached, capsys):
    paths, original = cached
    marker = paths["training"].parent / "COMPLETE.json"
    meta = json.loads(marker.read_text())
    del meta["contents"]                               # written by an older facekeypoints
    marker.write_text(json.dumps(meta))
    assert ensure() == paths and capsys.readouterr().err == ""
    assert "contents" in json.loads(marker.read_text())   # records added on first use
    marker.write_text(json.dumps(meta))
    paths["training"].write_bytes(cut_at_line(original["training"], 9))
    ensure()
    assert "training.csv has 9 data rows; its marker records 30" in capsys.readouterr().err
    assert paths["training"].read_bytes() == original["training"]


def test_a_read_only_cache_still_loads_a_good_set(cached, monkeypatch):
    paths, _ = cached
    for p in paths.values():
        age(p)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(synthetic, "write_json", refuse)   # the stamps cannot be recorded
    assert ensure() == paths


def test_a_full_cache_folder_names_it_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path / "cache"))

    def full(path, chunks):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(synthetic, "_write_chunks", full)
    with pytest.raises(OSError) as err:
        ensure()
    msg = str(err.value)
    assert err.value.errno == errno.ENOSPC and "\n" not in msg
    assert msg.startswith(f"cannot write the synthetic faces into the facekeypoints cache "
                          f"folder {tmp_path / 'cache'} (FACEKEYPOINTS_CACHE): the disk is "
                          "full."), msg
    assert "set FACEKEYPOINTS_CACHE to a folder that is" in msg
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix == ".tmp"]


def test_a_read_only_parse_cache_warns_with_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path / "cache"))
    paths = synthetic.write_dataset(tmp_path / "faces", n_train=3, n_test=2)

    def refuse(target, write, **kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_csv_cache, "atomic_write", refuse)
    with pytest.warns(RuntimeWarning) as caught:
        assert len(read_csv(paths["training"])) == 3
    msg = str(caught[0].message)
    assert "could not write cache" in msg and "no permission to write there" in msg
    assert f"cache folder {tmp_path / 'cache'} writable" in msg
    assert "FACEKEYPOINTS_CACHE" in msg


def test_a_bad_file_in_the_cache_names_its_path_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "synthetic-v1-seed42"
    folder.mkdir(parents=True)
    path = synthetic.write_dataset(folder, n_train=3, n_test=2)["training"]
    path.write_bytes(path.read_bytes()[:-500])            # cut mid-line
    for cache in (True, False):
        with pytest.raises(DataFormatError) as err:
            read_csv(path, cache=cache)
        msg = str(err.value)
        assert msg.startswith("training.csv, data row 3")
        assert (f"({path} is in the facekeypoints cache {data.cache_dir()}, set by "
                f"FACEKEYPOINTS_CACHE: delete {folder} and it is made again") in msg
