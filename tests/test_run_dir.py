"""A run directory is one unit: one writer at a time (a lock naming its holder), files put in
place so that a kill at any instant leaves the previous run or the new one, the location
checked before the first epoch, and a full disk reported in one line with the previous files
kept. Also what `--resume` does with `--max-epochs` and with data that changed."""
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections import namedtuple
from pathlib import Path

import pytest

from facekeypoints import cli
from facekeypoints._rundir import RunInUseError, RunLock
from facekeypoints.runs import MANIFEST, read_manifest, settle, staged
from facekeypoints.synthetic import write_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), n_train=200, n_test=4)["training"]


def _train(data, out, *extra):
    return cli.main(["train", "net1", "--data", str(data), "--max-epochs", "2", "--out",
                     str(out), *map(str, extra)])


def _one_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("facekeypoints train: error: ") and "Traceback" not in lines[0]
    return lines[0], captured.out


def _snapshot(folder):
    """Every file under ``folder`` (hidden ones too) with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the lock ---------------------------------------------------------------------------------

def test_a_second_writer_is_refused_with_the_holders_name(data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom facekeypoints._rundir import RunLock\n"
         "RunLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(120)",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=f"pid {holder.pid} on host"):
            RunLock(out).acquire()
        assert _train(data, out) == 2
        line, stdout = _one_line(capsys)
        assert f"{out} is in use by another training (pid {holder.pid}" in line
        assert "epoch" not in stdout                      # refused before training
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLock(out):                 # the kernel released it with the process
        pass
    assert list(out.iterdir()) == []


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    with RunLock(tmp_path) as outer:
        with RunLock(tmp_path):
            pass
        assert outer.path.exists()
    assert not outer.path.exists()


# -- putting a run in place -------------------------------------------------------------------

OLD = {"model.pt": "old model", "history.json": "old history", "keypoints.png": "old picture"}
NEW = {"model.pt": "new model", "history.json": "new history", "run.json": "new info"}


def _commit(out, files):
    with staged(out) as stage:
        for name, text in files.items():
            (stage / name).write_text(text)


def _contents(out):
    return {p.name: p.read_text() for p in out.iterdir() if p.is_file() and p.name != MANIFEST}


def test_a_kill_at_any_instant_of_a_commit_leaves_the_old_run_or_the_new_one(tmp_path):
    """Fork a writer that dies (os._exit: nothing cleans up) at its k-th file-system call,
    for every k, then settle the folder as the next writer would."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    calls = ("open", "replace", "rename", "unlink", "rmdir", "mkdir", "link", "fsync")
    seen = set()
    for k in range(1, 200):
        out = tmp_path / f"k{k}"
        _commit(out, OLD)
        (out / ".partial").mkdir()
        (out / ".partial" / "run.json").write_text("a training in progress")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads around
            pid = os.fork()
        if pid == 0:      # the writer
            try:
                count = [0]
                for name in calls:
                    real = getattr(os, name)

                    def counted(*a, _real=real, **kw):
                        count[0] += 1
                        if count[0] == k:
                            os._exit(9)
                        return _real(*a, **kw)
                    setattr(os, name, counted)
                _commit(out, NEW)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        assert code in (0, 9), f"writer failed at step {k}"
        assert settle(out)
        state = _contents(out)
        assert state in (OLD, NEW), (k, state)
        assert (out / ".partial").exists() == (state == OLD), k
        assert {p.name for p in out.iterdir() if p.name.startswith(".")} <= {".partial"}, k
        assert set(read_manifest(out)["files"]) == set(state), k
        seen.add("new" if state == NEW else "old")
        if code == 0:
            break
    else:
        raise AssertionError("the writer never finished")
    assert seen == {"old", "new"} and k > 5


def test_a_failed_commit_keeps_the_previous_run_and_no_staging(tmp_path):
    out = tmp_path / "run"
    _commit(out, OLD)
    with pytest.raises(OSError, match="disk full"):
        with staged(out) as stage:
            (stage / "model.pt").write_text("half")
            raise OSError(errno.ENOSPC, "disk full")
    assert _contents(out) == OLD
    assert sorted(p.name for p in out.iterdir()) == sorted([*OLD, MANIFEST])


def test_settle_removes_what_killed_writers_left(tmp_path):
    out = tmp_path / "run"
    _commit(out, OLD)
    (out / ".staging-12ab").mkdir()
    (out / ".staging-12ab" / "model.pt").write_text("x")
    (out / ".model.pt.3f2a.tmp").write_text("x")
    (out / ".partial").mkdir()
    (out / ".partial" / ".checkpoint.pt.77aa.tmp").write_text("x")
    (out / ".partial" / "checkpoint.pt").write_text("resumable")
    assert settle(out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*OLD, MANIFEST, ".partial"])
    assert [p.name for p in (out / ".partial").iterdir()] == ["checkpoint.pt"]


# -- the output location, checked before the first epoch ---------------------------------------

def test_an_out_under_a_file_is_refused_before_training(data, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    assert _train(data, afile / "run") == 2
    line, stdout = _one_line(capsys)
    assert f"{afile} is a file, not a folder" in line and "epoch" not in stdout


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes anywhere")
def test_an_unwritable_out_is_refused_before_training(data, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert _train(data, locked / "run") == 2
        line, stdout = _one_line(capsys)
        assert "cannot" in line and "permission denied" in line.lower()
        assert "epoch" not in stdout
    finally:
        locked.chmod(0o700)


def test_too_little_free_space_is_refused_before_training(data, tmp_path, capsys, monkeypatch):
    import facekeypoints._rundir as rundir

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 2**20))
    out = tmp_path / "new" / "run"
    assert _train(data, out) == 2
    line, stdout = _one_line(capsys)
    assert f"not enough free space in {out}: 1 MB free, a net1 run needs about" in line
    assert "epoch" not in stdout
    assert not (tmp_path / "new").exists()           # what was created for it is gone


# -- a full disk --------------------------------------------------------------------------------

def test_a_full_disk_while_writing_the_run_keeps_the_previous_one(data, tmp_path, capsys,
                                                                  monkeypatch):
    out = tmp_path / "run"
    assert _train(data, out) == 0
    before = _snapshot(out)
    capsys.readouterr()

    def full(*args, **kwargs):     # what torch says when the disk fills up mid-archive
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr("facekeypoints.runs.save_model", full)
    assert _train(data, out, "--seed", 1) == 2
    line, _ = _one_line(capsys)
    assert f"no space left on the device for {out / 'model.pt'}" in line
    assert "keeps what it held before" in line
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if not k.startswith(".partial")} == before
    assert not [k for k in after if k.endswith(".tmp") or ".staging" in k]


def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(data, tmp_path, capsys,
                                                                   monkeypatch):
    import facekeypoints.checkpoint as ckpt

    real, calls = ckpt.atomic_torch_save, []

    def fills_up(payload, path):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(payload, path)

    monkeypatch.setattr(ckpt, "atomic_torch_save", fills_up)
    out = tmp_path / "run"
    assert _train(data, out, "--checkpoint-every", 1) == 2
    line, _ = _one_line(capsys)
    partial = out / ".partial" / "checkpoint.pt"
    assert f"no space left on the device for {partial}" in line and "--resume" in line
    assert ckpt.read_checkpoint(partial)["epoch"] == 1
    assert not [p for p in out.rglob("*.tmp")]


# -- --resume with --max-epochs, and with data that changed -------------------------------------

def test_resume_max_epochs_is_the_new_total_and_changed_data_is_refused(data, tmp_path, capsys):
    copy = tmp_path / "training.csv"
    shutil.copy(data, copy)
    out = tmp_path / "run"
    assert _train(copy, out) == 0
    resume = ["train", "net1", "--resume", str(out)]
    capsys.readouterr()

    assert cli.main(resume) == 2                       # finished: says how to go on
    assert "has finished: 2 of 2 epochs; pass --max-epochs N with N > 2" in _one_line(capsys)[0]
    assert cli.main([*resume, "--max-epochs", "2"]) == 2
    assert "already trained 2 epochs" in _one_line(capsys)[0]

    write_dataset(tmp_path / "other", n_train=200, n_test=4, seed=5)
    shutil.copy(tmp_path / "other" / "training.csv", copy)        # the data changed
    assert cli.main([*resume, "--max-epochs", "3"]) == 2
    line, _ = _one_line(capsys)
    assert "changed since it started" in line and f"--data {copy}" in line

    assert cli.main([*resume, "--max-epochs", "3", "--data", str(copy)]) == 0   # on purpose
    err = capsys.readouterr().err
    assert "differs from the data the run started on" in err
    assert "its schedules now follow a 3-epoch plan from epoch 3 on" in err
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    info = json.loads((out / "run.json").read_text())
    assert info["max_epochs"] == 3 and info["resumed"] == 1 and info["status"] == "finished"
    assert Path(info["data"]).is_absolute()


@pytest.mark.parametrize("raised,expected", [(OSError(errno.ENOSPC, "No space left"), "full"),
                                             (KeyboardInterrupt(), KeyboardInterrupt),
                                             (OSError(errno.EIO, "I/O error"), OSError)])
def test_torch_write_failures_are_told_apart(tmp_path, raised, expected):
    """torch turns whatever its file's write raised into one RuntimeError; the disk-full
    message is only for a full disk, and a Ctrl-C mid-write stays a Ctrl-C."""
    import io

    import torch

    from facekeypoints._rundir import DiskFullError, disk_errors

    class Failing(io.BytesIO):
        def write(self, data):
            raise raised

    target = tmp_path / "model.pt"
    with pytest.raises(BaseException) as info:
        with disk_errors(target):
            torch.save({"w": torch.zeros(1000)}, Failing())
    if expected == "full":
        assert isinstance(info.value, DiskFullError) and info.value.errno == errno.ENOSPC
        assert str(info.value).startswith(f"no space left on the device for {target} (")
    else:
        assert type(info.value) is expected and info.value is raised


def test_readers_finish_a_commit_a_kill_cut_short(data, tmp_path, capsys):
    """compare/plot/evaluate settle a run dir first: never a mix of two runs."""
    out = tmp_path / "run"
    assert _train(data, out) == 0
    # A second writer killed after its commit point: the new files sit in .commit, unmoved.
    commit = out / ".commit"
    commit.mkdir()
    history = json.loads((out / "history.json").read_text())[:1]
    (commit / "history.json").write_text(json.dumps(history))
    shutil.copy(out / "model.pt", commit / "model.pt")
    manifest = read_manifest(out)
    manifest["files"] = {name: manifest["files"][name] for name in ("model.pt",)} | {
        "history.json": {"bytes": (commit / "history.json").stat().st_size, "sha256": ""}}
    (commit / MANIFEST).write_text(json.dumps(manifest))
    capsys.readouterr()
    assert cli.main(["compare", str(out)]) == 0
    assert not commit.exists()
    assert json.loads((out / "history.json").read_text()) == history     # the new run, whole
    assert set(read_manifest(out)["files"]) == {"model.pt", "history.json"}
    assert not (out / "run.json").exists()        # not listed by the new run: removed
