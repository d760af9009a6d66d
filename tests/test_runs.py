"""A training run as a library object: `fk.runs.train` owns the run directory (lock, record,
checkpoints, the run put in place as one unit), an interrupted fit keeps its finished epochs
only, and a resume is bit-identical to an uninterrupted run for each precision and loss, for a
recipe net and the modern preset. Tiny nets and random faces keep each case to a second or
two."""
import errno
import json
import random
import signal
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import facekeypoints as fk
from facekeypoints import cli, runs
from facekeypoints._safe_io import atomic_write, save_figure
from facekeypoints.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(7)
    X = rng.random((24, 1, 96, 96), dtype=np.float32)      # 19 training faces, 5 valid
    y = (rng.random((24, 30), dtype=np.float32) - 0.5) * 0.8
    return X, y


def _net(kind, precision="32", criterion="mse", max_epochs=3):
    common = dict(max_epochs=max_epochs, verbose=0, device="cpu", random_state=5,
                  precision=precision, criterion=criterion)
    if kind == "net1":
        return fk.presets.net1(hidden_num_units=16, batch_iterator_train=fk.BatchIterator(16),
                               **common)
    return fk.presets.modern(conv1_num_filters=4, conv2_num_filters=4, conv3_num_filters=4,
                             conv4_num_filters=4, conv5_num_filters=4, conv6_num_filters=4,
                             hidden_num_units=8,
                             batch_iterator_train=fk.augment.AffineBatchIterator(
                                 batch_size=16, shuffle=True), **common)


class Interrupt(Callback):
    """Raise KeyboardInterrupt at a given training batch of a given epoch (as Ctrl-C would)."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            self.seen = getattr(self, "seen", 0) + 1
            if self.seen == self.batch:
                raise KeyboardInterrupt


def _weights(run):
    return torch.load(Path(run) / "model.pt", weights_only=True)["state_dict"]


def _history(run):
    return [{k: v for k, v in h.items() if k != "dur"}
            for h in json.loads((Path(run) / "history.json").read_text())]


def _assert_same(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert _history(a) == _history(b)


CASES = [("net1", "32", "mse"), ("net1", "bf16", "mse"), ("net1", "32", "l1"),
         ("net1", "bf16", "wing"), ("modern", "32", "wing"), ("modern", "bf16", "l1")]


@pytest.mark.parametrize("kind,precision,criterion", CASES)
def test_an_interrupted_run_resumes_bit_identical(faces, tmp_path, kind, precision, criterion):
    X, y = faces
    pick = random.Random(f"{kind}-{precision}-{criterion}")   # seeded: the same every run
    epoch, batch = pick.randint(2, 3), pick.randint(1, 2)     # 2 training batches an epoch
    straight = runs.train(_net(kind, precision, criterion), X, y, tmp_path / "straight",
                          pictures=False)
    assert straight.status == "finished" and len(straight.net.history) == 3

    net = _net(kind, precision, criterion)
    net.callbacks = [*(net.callbacks or []), ("interrupt", Interrupt(epoch, batch))]
    stopped = runs.train(net, X, y, tmp_path / "run", checkpoint_every=1, pictures=False)
    assert stopped.status == "interrupted" and stopped.interrupted
    assert [h["epoch"] for h in stopped.net.history] == list(range(1, epoch))  # finished only
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "interrupted" and info["precision"] == precision
    assert read_checkpoint(tmp_path / "run")["epoch"] == epoch - 1

    resumed = runs.train(_net(kind, precision, criterion), X, y, tmp_path / "run", resume=True,
                         pictures=False)
    assert resumed.status == "finished" and resumed.info["resumed"] == 1
    assert resumed.info["run_id"] == info["run_id"]
    _assert_same(tmp_path / "straight", tmp_path / "run")


def test_a_plain_fit_interrupted_keeps_finished_epochs_only(faces):
    """The history repair is the net's own: a fit stopped by Ctrl-C in a notebook (no run
    directory, no checkpoint) ends with whole epochs."""
    X, y = faces
    net = _net("net1")
    net.callbacks = [("interrupt", Interrupt(2, 1))]
    net.fit(X, y)
    assert net.interrupted_ and [h["epoch"] for h in net.history] == [1]
    assert "train_loss" in net.history[-1]
    assert not _net("net1").fit(X, y).interrupted_


def test_resume_refuses_another_precision_or_seed(faces, tmp_path):
    X, y = faces
    net = _net("net1", "bf16", max_epochs=2)
    runs.train(net, X, y, tmp_path, checkpoint_every=1, pictures=False)
    with pytest.raises(runs.RunError, match="started with precision bf16.*keeps its precision"):
        runs.train(_net("net1", "32", max_epochs=3), X, y, tmp_path, resume=True)
    other = _net("net1", "bf16", max_epochs=3).set_params(random_state=6)
    with pytest.raises(runs.RunError, match="seed 5"):
        runs.train(other, X, y, tmp_path, resume=True)
    with pytest.raises(runs.RunError, match="data of the run .* changed"):
        runs.train(_net("net1", "bf16", max_epochs=3), X[::-1].copy(), y, tmp_path,
                   resume=True)


class Probe(Callback):
    """At the start of epoch 3, where is the checkpoint, and of which epoch?"""

    def __init__(self, out):
        self.out = out

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 3:
            path = runs.checkpoint_path(self.out)
            self.found = (path, read_checkpoint(path)["epoch"])


def test_the_checkpoint_is_where_the_docs_say_while_a_run_trains(faces, tmp_path):
    X, y = faces
    out = tmp_path / "run"
    net = _net("net1", max_epochs=4)
    probe = Probe(out)
    net.callbacks = [("probe", probe)]
    result = runs.train(net, X, y, out, checkpoint_every=1, pictures=False)
    assert probe.found == (out / ".partial" / "checkpoint.pt", 2)
    assert runs.checkpoint_path(out) == out / "checkpoint.pt" == result.checkpoint
    assert read_checkpoint(out / "checkpoint.pt")["epoch"] == 4
    assert not (out / ".partial").exists()


# -- the command line ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fk.synthetic.write_dataset(tmp_path_factory.mktemp("data"), n_train=150,
                                      n_test=4)["training"]


@pytest.fixture(autouse=True)
def harmless_signals():
    """A signal that lands after the command has ended must not stop pytest."""
    before = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


def _sigterm_after_epoch(monkeypatch, epoch):
    """SIGTERM sent to this process as epoch ``epoch`` ends (as SLURM would), at a fixed
    point so that the test is deterministic."""
    from facekeypoints.checkpoint import Checkpoint

    real = Checkpoint.on_epoch_end

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == epoch:
            signal.raise_signal(signal.SIGTERM)
        return real(self, net, **kwargs)

    monkeypatch.setattr(Checkpoint, "on_epoch_end", on_epoch_end)


def _train_args(data, out, *extra):
    return ["train", "net1", "--data", str(data), "--max-epochs", "3", "--out", str(out),
            "--set", "hidden_num_units=16", *map(str, extra)]


def test_resume_keeps_the_precision_the_run_started_with(data, tmp_path, capsys, monkeypatch):
    assert cli.main(_train_args(data, tmp_path / "straight", "--precision", "bf16")) == 0
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _sigterm_after_epoch(patch, 2)
        assert cli.main(_train_args(data, run, "--precision", "bf16")) == 143
    capsys.readouterr()

    assert cli.main(["train", "net1", "--resume", str(run), "--precision", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--precision 32: the run in" in err and "started with --precision bf16" in err
    assert len(err.splitlines()) == 1
    assert cli.main(["train", "net1", "--resume", str(run), "--set",
                     "hidden_num_units=17"]) == 2
    assert "a resumed run keeps its settings" in capsys.readouterr().err

    assert cli.main(["train", "net1", "--resume", str(run)]) == 0
    assert "(resuming), precision bf16 ===" in capsys.readouterr().out
    assert json.loads((run / "run.json").read_text())["precision"] == "bf16"
    _assert_same(tmp_path / "straight", run)


def test_a_run_killed_before_its_first_checkpoint_says_what_to_do(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    runs.start_run(run, {"preset": "net1", "started": "2026-01-01 10:00:00",
                         "status": "training"})          # all that a SIGKILL leaves
    for _ in range(2):                                    # and it says so every time
        assert cli.main(["train", "net1", "--resume", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "was killed before it wrote its first checkpoint" in err
        assert "start it again without --resume" in err and "--checkpoint-every N" in err


def test_free_space_is_estimated_within_1_5x_of_what_a_run_writes(faces, tmp_path):
    """The presets at their real size (net1: SGD with momentum; modern: AdamW, BatchNorm)."""
    X, y = faces
    for kind in ("net1", "modern"):
        net = fk.presets.get(kind, max_epochs=2, verbose=0, device="cpu")
        need = runs.space_needed(net, rows=len(X))
        runs.train(net, X, y, tmp_path / kind, checkpoint_every=1)
        written = sum(p.stat().st_size for p in (tmp_path / kind).iterdir())
        # Its busiest moment: the old and the new checkpoint side by side.
        checkpoint = (tmp_path / kind / "checkpoint.pt").stat().st_size
        assert max(written, 2 * checkpoint) <= need <= 1.5 * written, (kind, need, written)


def test_a_resume_after_a_full_disk_needs_only_what_it_adds(data, tmp_path, capsys,
                                                           monkeypatch):
    import facekeypoints._rundir as rundir
    import facekeypoints.checkpoint as ckpt

    real, calls = ckpt.atomic_torch_save, []

    def fills_up(payload, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(payload, path)

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(ckpt, "atomic_torch_save", fills_up)
        assert cli.main(_train_args(data, run, "--checkpoint-every", 1)) == 2
    err = capsys.readouterr().err
    assert "free some space, then resume" in err and f"--resume {run}" in err

    net = fk.presets.net1(hidden_num_units=16, max_epochs=3)
    partial = run / ".partial" / "checkpoint.pt"
    resume_need, fresh_need = runs.space_needed(net, partial), runs.space_needed(net)
    assert resume_need < fresh_need
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(rundir.shutil, "disk_usage",
                        lambda path: usage(10**9, 10**9, resume_need + 2**16))
    assert cli.main(["train", "net1", "--resume", str(run)]) == 0
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_writes_into_a_folder_it_cannot_write_name_the_target(tmp_path, monkeypatch):
    """predict -o / plot -o into a read-only folder: the message names the file asked for,
    not the hidden temporary file beside it (simulated: the tests may run as root)."""
    import facekeypoints._safe_io as safe_io
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = safe_io.os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(safe_io.os, "open", refuse)
    target = tmp_path / "predictions.csv"
    with pytest.raises(PermissionError) as info:
        atomic_write(target, lambda f: f.write("x"), text=True)
    assert str(info.value) == f"[Errno 13] Permission denied: '{target}'"
    fig = plt.figure()
    try:
        with pytest.raises(PermissionError, match=r"faces\.png'$"):
            save_figure(fig, tmp_path / "faces.png")
    finally:
        plt.close(fig)
    assert list(tmp_path.iterdir()) == []


def test_recipe_checks_room_for_every_net_before_the_first_trains(data, tmp_path, capsys,
                                                                  monkeypatch):
    import facekeypoints._rundir as rundir

    one = runs.space_needed(fk.presets.net1(max_epochs=1), rows=200)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda path: usage(10**9, 10**9, one * 1.5))
    assert cli.main(["recipe", "--nets", "net1", "net2", "--epochs", "1", "--data", str(data),
                     "--out", str(tmp_path / "recipe")]) == 2
    captured = capsys.readouterr()
    assert "not enough free space" in captured.err and "a net1 + net2 recipe" in captured.err
    assert "epoch" not in captured.out
