"""`facekeypoints train` survives Ctrl-C, SIGTERM and kills, and `--resume` continues the run
exactly: the same weights, bit for bit, and the same history (best marks included) as an
uninterrupted run, on the data and settings the run started with.

The SIGTERM run is a real subprocess signalled from outside; the other runs train in this
process (a thread sends the signal), which keeps the tests a few seconds each.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from facekeypoints import cli
from facekeypoints._signals import active
from facekeypoints.checkpoint import CheckpointError, read_checkpoint
from facekeypoints.synthetic import write_dataset

EPOCHS = 12
# A learning rate at which the validation loss stops improving after epoch 3, so a resumed
# run that forgot the best score so far would mark its first epoch best.
SETTINGS = ["--set", "update_learning_rate=0.2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), n_train=200, n_test=4)["training"]


@pytest.fixture(autouse=True)
def harmless_signals():
    """A signal that lands after the command has ended must not stop pytest."""
    before = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


def _args(data, out, *extra):
    return ["train", "net1", "--data", str(data), "--max-epochs", str(EPOCHS), "--out",
            str(out), "--seed", "3", *SETTINGS, *map(str, extra)]


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    assert cli.main(_args(data, out)) == 0
    return out


def _weights(run):
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


def _history(run):
    return [{k: v for k, v in h.items() if k != "dur"}
            for h in json.loads((run / "history.json").read_text())]


def _epoch_of_checkpoint(path):
    try:
        return read_checkpoint(path)["epoch"]
    except (CheckpointError, OSError, RuntimeError):
        return 0


def _assert_same_as(straight, run):
    a, b = _weights(straight), _weights(run)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = _history(run)
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    assert history == _history(straight)           # losses and best marks
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


def _signal_when(checkpoint, epoch, *signums):
    """From a thread: once ``checkpoint`` has ``epoch`` epochs, send this process signals."""
    def watch():
        deadline = time.time() + 120
        while _epoch_of_checkpoint(checkpoint) < epoch and time.time() < deadline:
            time.sleep(0.005)
        for n, signum in enumerate(signums, 1):
            os.kill(os.getpid(), signum)
            # Signals sent while the main thread is in a long C call coalesce into one:
            # send the next only once this one has been handled.
            while active() is not None and len(active().received) < n:
                time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_sigterm_at_a_random_epoch_writes_the_run_and_resumes_exactly(data, straight, tmp_path):
    """A real process, without --checkpoint-every: SIGTERM (SLURM, Kubernetes, systemd)
    finishes the epoch, writes the checkpoint and the run, prints the resume command and
    exits 143."""
    run = tmp_path / "terminated"
    kill_at = random.Random().randint(2, 6)
    proc = subprocess.Popen([sys.executable, "-m", "facekeypoints.cli", *_args(data, run)],
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stdout:
        fields = line.split()      # epoch, train loss, valid loss, ratio, duration, ...
        if len(fields) >= 5 and fields[0] == str(kill_at) and fields[4].endswith("s"):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("training finished before the signal landed")
    assert proc.returncode == 143, err
    assert "Terminated (SIGTERM): finishing this epoch" in err
    assert f"facekeypoints train net1 --resume {run}" in err and "Traceback" not in err
    assert err.strip().endswith("facekeypoints train: terminated")
    info = json.loads((run / "run.json").read_text())
    stopped_at = read_checkpoint(run / "checkpoint.pt")["epoch"]
    assert kill_at <= stopped_at < EPOCHS
    assert info["status"] == "interrupted" and info["epochs_run"] == stopped_at
    assert set(json.loads((run / "manifest.json").read_text())["files"]) >= {
        "model.pt", "checkpoint.pt", "run.json", "history.json"}

    assert cli.main(["train", "net1", "--resume", str(run)]) == 0
    _assert_same_as(straight, run)
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_ctrl_c_then_resume_gives_the_uninterrupted_result(data, straight, tmp_path, capsys):
    run = tmp_path / "stopped"
    _signal_when(run / ".partial" / "checkpoint.pt", 2, signal.SIGINT)
    code = cli.main(_args(data, run, "--checkpoint-every", 1))
    err = capsys.readouterr().err
    if code == 0:
        pytest.skip("training finished before the interrupt landed")
    assert code == 130, err
    assert "--resume" in err and "Traceback" not in err
    stopped_at = read_checkpoint(run / "checkpoint.pt")["epoch"]
    assert 2 <= stopped_at < EPOCHS
    assert len(json.loads((run / "history.json").read_text())) == stopped_at

    assert cli.main(["train", "net1", "--resume", str(run)]) == 0
    _assert_same_as(straight, run)


def test_a_run_stopped_at_once_resumes_on_its_data_and_settings_from_anywhere(
        data, straight, tmp_path, monkeypatch, capsys):
    """A second signal stops at once and writes nothing more: as after a kill, the run
    directory holds only what was written when training started (run.json, with the
    data's absolute path) and the checkpoints. A resume from another folder finds both."""
    run = tmp_path / "killed"
    monkeypatch.chdir(data.parent.parent)
    relative = os.path.relpath(data)
    _signal_when(run / ".partial" / "checkpoint.pt", 2, signal.SIGTERM, signal.SIGTERM)
    code = cli.main(_args(relative, run, "--checkpoint-every", 1))
    err = capsys.readouterr().err
    if code == 0:
        pytest.skip("training finished before the signals landed")
    assert code == 143, err
    assert "stopped at once" in err and f"--resume {run}" in err
    assert not (run / "model.pt").exists()
    started = json.loads((run / ".partial" / "run.json").read_text())
    assert started["data"] == str(data.resolve()) and started["status"] == "training"
    assert started["set"] == {"update_learning_rate": 0.2} and started["seed"] == 3

    monkeypatch.chdir(tmp_path)                      # another folder; the data is found
    assert cli.main(["train", "net1", "--resume", str(run)]) == 0
    _assert_same_as(straight, run)
    info = json.loads((run / "run.json").read_text())
    assert info["data"] == str(data.resolve()) and info["resumed"] == 1


def test_resume_without_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["train", "net1", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint.pt" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []         # no lock or .partial left behind
