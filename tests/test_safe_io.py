"""Atomic writes replace only regular files: links are followed, FIFOs and devices are written
in place, '-' is standard output. (Never a real device node under /dev: a FIFO stands in.)"""
import os
import stat
import threading

import pytest

from facekeypoints._safe_io import atomic_write, write_json, write_text


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_regular_file_is_replaced_atomically(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    inode = target.stat().st_ino

    def fail(f):
        f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail, text=True)
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []
    assert write_text(target, "new\n") == target
    assert target.read_text() == "new\n" and target.stat().st_ino != inode  # renamed into place
    assert _leftovers(tmp_path) == []


def test_a_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "data" / "real.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert write_text(link, "new\n") == link
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n"
    assert _leftovers(tmp_path) == [] and _leftovers(real.parent) == []


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "made.json")
    write_json(link, {"a": 1})
    assert link.is_symlink() and (tmp_path / "made.json").read_text() == '{\n "a": 1\n}\n'


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        assert atomic_write(fifo, lambda f: f.write(b"RowId,Location\n1,2.5\n"),
                            fsync=True) == fifo
    finally:
        reader.join(timeout=30)
    assert received == [b"RowId,Location\n1,2.5\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)           # still a FIFO, not a file
    assert _leftovers(tmp_path) == []


def test_a_symlink_to_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link.csv"
    link.symlink_to(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    try:
        write_text(link, "x\n")
    finally:
        reader.join(timeout=30)
    assert received == ["x\n"] and link.is_symlink() and stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("dash", ["-", "PATH"])
def test_dash_is_standard_output(capfd, tmp_path, monkeypatch, dash):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    path = "-" if dash == "-" else Path("-")
    atomic_write(path, lambda f: f.write("RowId,Location\n"), text=True)
    atomic_write(path, lambda f: f.write(b"1,2.5\n"), fsync=True)
    assert capfd.readouterr().out == "RowId,Location\n1,2.5\n"
    assert list(tmp_path.iterdir()) == []                # no file called '-'


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_text(tmp_path, "x")
    assert _leftovers(tmp_path) == []


def test_write_submission_into_a_fifo(tmp_path):
    """The reported case (predict -o /dev/full turned the device into a file), with a FIFO."""
    import numpy as np

    from facekeypoints.data import KEYPOINT_COLUMNS, write_submission

    lookup = tmp_path / "IdLookupTable.csv"
    lookup.write_text("RowId,ImageId,FeatureName\n1,1,left_eye_center_x\n")
    fifo = tmp_path / "submission.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    try:
        write_submission(np.zeros((1, len(KEYPOINT_COLUMNS))), lookup, fifo)
    finally:
        reader.join(timeout=30)
    assert received == ["RowId,Location\n1,48.0\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
