"""Exact resume after SIGKILL, Ctrl-C handling, and checkpoint files that cannot run code."""
import json
import os
import pickle
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facekeypoints.checkpoint import CheckpointError, read_checkpoint
from tests.conftest import PickleBomb, tiny_data, tiny_net

WORKER = Path(__file__).with_name("train_worker.py")


def _start(out, *flags):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(WORKER), str(out), *flags], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epoch(proc, epoch):
    for line in proc.stdout:
        if line.strip() == f"done {epoch}":
            return
    raise AssertionError(f"worker ended before epoch {epoch}: {proc.stderr.read()}")


def _finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_sigkilled_run_resumes_to_bit_identical_weights_and_history(tmp_path):
    straight = _start(tmp_path / "straight")
    assert _finish(straight)[0] == 0

    kill_at = random.Random(7).randint(2, 6)
    victim = _start(tmp_path / "killed")
    _wait_for_epoch(victim, kill_at)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert read_checkpoint(tmp_path / "killed" / "checkpoint.pt")["epoch"] >= kill_at

    resumed = _start(tmp_path / "killed", "--resume")
    code, _, err = _finish(resumed)
    assert code == 0, err

    a = torch.load(tmp_path / "straight" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (json.loads((tmp_path / "straight" / "history.json").read_text())
            == json.loads((tmp_path / "killed" / "history.json").read_text()))


def test_ctrl_c_finishes_the_epoch_writes_a_checkpoint_and_exits_nonzero(tmp_path):
    proc = _start(tmp_path, "--sigint")
    _wait_for_epoch(proc, 2)
    proc.send_signal(signal.SIGINT)
    code, _, err = _finish(proc)
    assert code == 130
    assert "finishing this epoch" in err and "interrupted after epoch" in err
    assert "Traceback" not in err
    payload = read_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["epoch"] >= 2
    history = json.loads(payload["history"])
    assert len(history) == payload["epoch"] and "valid_loss" in history[-1]


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "checkpoint.pt"
    with open(bad, "wb") as f:
        pickle.dump({"format": "facekeypoints-checkpoint", "x": PickleBomb(marker)}, f)
    with pytest.raises(CheckpointError, match="not a valid facekeypoints checkpoint"):
        tiny_net().fit(*tiny_data(), resume=bad)
    assert not marker.exists()


def test_resume_without_a_checkpoint_says_how_to_get_one(tmp_path):
    with pytest.raises(CheckpointError, match="Checkpoint callback"):
        tiny_net().fit(*tiny_data(), resume=tmp_path / "missing.pt")


def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path):
    from facekeypoints.checkpoint import Checkpoint

    X, y = tiny_data()
    path = tmp_path / "checkpoint.pt"
    tiny_net(max_epochs=2, callbacks=[Checkpoint(path)]).fit(X, y)
    assert read_checkpoint(path)["checksum"].startswith("sha256:")
    raw = bytearray(path.read_bytes())
    n = len(raw)
    raw[n // 3:2 * n // 3] = bytes(2 * n // 3 - n // 3)   # zeroed in the middle
    path.write_bytes(bytes(raw))
    net = tiny_net(max_epochs=4)
    with pytest.raises(CheckpointError, match=f"^{path} is") as err:
        net.fit(X, y, resume=path)
    assert "damaged" in str(err.value)


def test_a_checkpoint_from_before_checksums_still_resumes(tmp_path):
    from facekeypoints.checkpoint import Checkpoint

    X, y = tiny_data()
    path = tmp_path / "checkpoint.pt"
    tiny_net(max_epochs=2, callbacks=[Checkpoint(path)]).fit(X, y)
    payload = torch.load(path, weights_only=True)
    del payload["checksum"]
    payload["version"] = 1
    torch.save(payload, path)
    resumed = tiny_net(max_epochs=4).fit(X, y, resume=path)
    straight = tiny_net(max_epochs=4).fit(X, y)
    assert len(resumed.history) == 4
    torch.testing.assert_close(torch.as_tensor(resumed.predict(X)),
                               torch.as_tensor(straight.predict(X)), rtol=0, atol=0)
