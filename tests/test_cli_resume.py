"""`facekeypoints train` survives Ctrl-C and `--resume` continues the run exactly."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from facekeypoints.checkpoint import CheckpointError, read_checkpoint
from facekeypoints.synthetic import write_dataset

EPOCHS = 30


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), n_train=400, n_test=4)["training"]


def _cli(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "facekeypoints.cli", *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _train(data, out, *extra):
    return _cli("train", "net1", "--data", data, "--max-epochs", EPOCHS, "--out", out,
                "--seed", 3, *extra)


def _weights(run):
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


def _epoch_of_checkpoint(path):
    try:
        return read_checkpoint(path)["epoch"]
    except (CheckpointError, OSError, RuntimeError):
        return 0


def test_ctrl_c_then_resume_gives_the_uninterrupted_result(data, tmp_path):
    straight = _train(data, tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    run = tmp_path / "stopped"
    proc = _train(data, run, "--checkpoint-every", 1)
    deadline = time.time() + 120
    while _epoch_of_checkpoint(run / "checkpoint.pt") < 2 and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("training finished before the interrupt landed")
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    stopped_at = read_checkpoint(run / "checkpoint.pt")["epoch"]
    assert 2 <= stopped_at < EPOCHS
    assert len(json.loads((run / "history.json").read_text())) == stopped_at

    resumed = _cli("train", "net1", "--resume", run)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    a, b = _weights(tmp_path / "straight"), _weights(run)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_without_a_checkpoint_is_a_one_line_error(tmp_path):
    proc = _cli("train", "net1", "--resume", tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "no checkpoint.pt" in err and "Traceback" not in err
