"""Sweeps: the first Ctrl-C or SIGTERM stops them on every backend (issue 26), the output
folder is one unit under a lock, results equal scikit-learn's own search, ``--scoring nme``."""
import os
import signal

import numpy as np
import pandas as pd
import pytest

import facekeypoints as fk
from facekeypoints import cli, presets, sweep
from facekeypoints.sweep import SweepInterrupted, neg_rmse_px, run_sweep
from tests.conftest import tiny_data, tiny_net

GRID = {"callbacks__adjust_lr__start": [0.03, 0.01], "max_epochs": [2, 3]}


def schedule_net(**overrides):
    params = dict(update_learning_rate=fk.shared(fk.float32(0.03)),
                  callbacks=[("adjust_lr", fk.AdjustVariable("update_learning_rate", 0.03, 0.001))])
    params.update(overrides)
    return tiny_net(**params)


_FIRST_EPOCHS = []


def signal_in_second_fit(signum):
    """An on_epoch_finished handler sending ``signum`` to this process in the second fit's
    first epoch (fits run one after another in this process)."""
    _FIRST_EPOCHS.clear()

    def handler(nn, history):
        if history[-1]["epoch"] == 1:
            _FIRST_EPOCHS.append(1)
            if len(_FIRST_EPOCHS) == 2:
                os.kill(os.getpid(), signum)

    return handler


class SignalTo:
    """A picklable on_epoch_finished handler for worker processes: signal ``pid`` once, from
    the first fit that gets to its first epoch (``marker`` is created by that one only)."""

    def __init__(self, pid, signum, marker):
        self.pid, self.signum, self.marker = pid, signum, str(marker)

    def __call__(self, nn, history):
        if history[-1]["epoch"] != 1:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(self.pid, self.signum)


@pytest.fixture(scope="module")
def data():
    return tiny_data(n=40)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_sequential_sweep_and_keeps_only_finished_fits(data, signum, status):
    X, y = data
    reported = []
    net = schedule_net(on_epoch_finished=[signal_in_second_fit(signum)])
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(net, X, y, GRID, cv=2, backend="sequential", log=None,
                  progress=lambda meta, results: reported.extend(meta))
    assert info.value.exit_status == status and info.value.total == 8
    assert len(info.value.finished) == 1 and len(reported) == 1   # the cut fit is not kept
    assert info.value.finished[0][1]["fit_error"] is None


def test_a_signal_stops_a_loky_sweep(data, tmp_path):
    X, y = data
    net = schedule_net(on_epoch_finished=[SignalTo(os.getpid(), signal.SIGTERM,
                                                   tmp_path / "sent")])
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(net, X, y, GRID, cv=2, backend="loky", n_workers=2, log=None)
    assert info.value.exit_status == 143 and len(info.value.finished) < 8


@pytest.mark.skipif(not sweep.dask_available(), reason="needs facekeypoints[distributed]")
def test_a_signal_stops_a_dask_sweep(data, tmp_path):
    X, y = data
    net = schedule_net(on_epoch_finished=[SignalTo(os.getpid(), signal.SIGINT,
                                                   tmp_path / "sent")])
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(net, X, y, GRID, cv=2, backend="dask", n_workers=2, log=None)
    assert info.value.exit_status == 130


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("faces"), n_train=60, n_test=4)["training"]


def _argv(csv, out, *more):
    return ["sweep", "net1", "--data", str(csv), "--max-epochs", "2", "--cv", "2",
            "--grid", "update_learning_rate=0.01,0.001", "--backend", "sequential",
            "--out", str(out), *more]


def test_cli_ctrl_c_exits_130_and_writes_nothing(tiny_csv, tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep"
    assert cli.main(_argv(tiny_csv, out)) == 0        # an earlier sweep, kept as it was
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = presets.get

    def get(name, **overrides):
        return real(name, **overrides).set_params(
            on_epoch_finished=[signal_in_second_fit(signal.SIGINT)])

    monkeypatch.setattr(presets, "get", get)
    capsys.readouterr()
    assert cli.main(_argv(tiny_csv, out, "--grid", "max_epochs=2,3")) == 130
    captured = capsys.readouterr()
    assert "best:" not in captured.out and "[2/" not in captured.out
    assert "Ctrl-C after 1 of 8 fits" in captured.err and "no results" in captured.err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    fresh = tmp_path / "fresh" / "sweep"          # a folder made for the sweep goes again
    assert cli.main(_argv(tiny_csv, fresh, "--grid", "max_epochs=2,3")) == 130
    assert not (tmp_path / "fresh").exists()


def test_cli_refuses_an_out_folder_another_sweep_holds(tiny_csv, tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "sweep"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom facekeypoints._rundir import RunLock\n"
         "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli.main(_argv(tiny_csv, out)) == 2
    finally:
        holder.kill()
        holder.wait()
    captured = capsys.readouterr()
    assert "is in use by another training" in captured.err and captured.err.count("\n") == 1
    assert "[1/" not in captured.out


def test_cli_scoring_nme(tiny_csv, tmp_path, capsys):
    out = tmp_path / "nme"
    assert cli.main(_argv(tiny_csv, out, "--scoring", "nme")) == 0
    text = capsys.readouterr().out
    assert "valid NME" in text and "best: update_learning_rate=" in text
    frame = pd.read_csv(out / "results.csv")
    assert {"mean_nme", "std_nme", "fold1_nme"} <= set(frame.columns)
    assert np.isfinite(frame["mean_nme"]).all() and (frame["mean_nme"] > 0).all()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "results.csv",
                                                     "results.png", "sweep.json"]


def test_scorers_by_name():
    assert set(sweep.SCORINGS) == {"rmse", "nme"}
    assert sweep.get_scorer("rmse")[1] == "rmse_px" and sweep.get_scorer("nme")[1] == "nme"
    with pytest.raises(ValueError, match="unknown scoring 'mae'"):
        sweep.get_scorer("mae")


def test_results_equal_scikit_learns_grid_search(data):
    """What run_sweep computes is GridSearchCV's, number for number (its own dispatch only
    adds the per-fit lines and the stop between fits)."""
    import torch
    from sklearn.model_selection import GridSearchCV

    X, y = data
    frame = run_sweep(schedule_net(), X, y, GRID, cv=2, backend="sequential", log=None)
    before = torch.get_num_threads()
    torch.set_num_threads(1)            # as every fit of a sweep runs
    try:
        search = GridSearchCV(schedule_net(), GRID, cv=2, scoring=neg_rmse_px,
                              refit=False).fit(X, y)
    finally:
        torch.set_num_threads(before)
    r = search.cv_results_
    assert [dict(zip(GRID, row)) for row in frame[list(GRID)].itertuples(index=False)] == \
        r["params"]
    np.testing.assert_allclose(frame["mean_rmse_px"], -r["mean_test_score"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(frame["std_rmse_px"], r["std_test_score"], rtol=0, atol=1e-6)
    assert list(frame["rank"]) == list(r["rank_test_score"])
