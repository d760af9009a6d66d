"""Specialists as a scikit-learn estimator, their geometry from the keypoint layout, their pixels
from the history, and ``train-specialists`` stopping and writing as one unit (issue 26)."""
import json
import os
import signal
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints import presets
from facekeypoints import specialists as S
from facekeypoints.cli import main
from facekeypoints.layers import DenseLayer, InputLayer
from facekeypoints.layout import KAGGLE
from tests.conftest import tiny_data

_FIRST_EPOCHS = []


def signal_in_second_fit(signum):
    """An on_epoch_finished handler sending ``signum`` to this process in the second
    specialist's first epoch."""
    _FIRST_EPOCHS.clear()

    def handler(nn, history):
        if history[-1]["epoch"] == 1:
            _FIRST_EPOCHS.append(1)
            if len(_FIRST_EPOCHS) == 2:
                os.kill(os.getpid(), signum)

    return handler


def flat_net(**overrides):
    params = dict(layers=[("input", InputLayer), ("hidden", DenseLayer), ("output", DenseLayer)],
                  input_shape=(None, 96 * 96), hidden_num_units=4, output_num_units=30,
                  output_nonlinearity=None, max_epochs=2, verbose=0, random_state=0,
                  device="cpu", batch_iterator_train=fk.FlipBatchIterator(batch_size=16))
    params.update(overrides)
    return fk.NeuralNet(**params)


@pytest.fixture(scope="module")
def faces():
    X, y = tiny_data(side=96, n=40)
    y = y.copy()
    y[::3, 2:4] = np.nan                      # right eye centre missing on some faces
    return X.reshape(len(X), -1), y


# -- the estimator -----------------------------------------------------------------------------

def test_the_ensemble_is_a_scikit_learn_estimator(faces):
    from sklearn.base import clone, is_regressor
    from sklearn.model_selection import cross_val_score

    X, y = faces
    ens = S.SpecialistEnsemble(flat_net(), groups=["eye_centers", "nose_tip"], epochs=1)
    assert set(ens.get_params(deep=False)) == {"base_net", "groups", "pretrained",
                                               "base_epochs", "reference_rows", "epochs"}
    assert is_regressor(ens)
    twin = clone(ens).set_params(base_net__hidden_num_units=3, epochs=2)
    assert twin.base_net.hidden_num_units == 3 and ens.base_net.hidden_num_units == 4
    assert not hasattr(twin, "members_")
    assert ens.fit(X, y) is ens
    assert [g.name for g, _ in ens.members_] == ["eye_centers", "nose_tip"]
    assert ens.members is ens.members_ and ens.columns_ == list(fk.KEYPOINT_COLUMNS)
    pred = ens.predict(X)
    assert pred.shape == (len(X), 30) and np.isfinite(pred[:, :4]).all()
    assert np.isfinite(ens.score(X, y))
    every = clone(ens).set_params(groups=None)     # all 30 columns predicted: RMSE defined
    scores = cross_val_score(every, X, y, cv=2, scoring=fk.sweep.neg_rmse_px)
    assert scores.shape == (2,) and np.isfinite(scores).all() and (scores < 0).all()
    with pytest.raises(ValueError, match="no base_net"):
        S.SpecialistEnsemble().fit(X, y)


def test_the_ensemble_can_be_swept(faces):
    from facekeypoints.sweep import run_sweep

    X, y = faces
    ens = S.SpecialistEnsemble(flat_net(), epochs=1)
    frame = run_sweep(ens, X, y, {"base_net__hidden_num_units": [2, 4]}, cv=2,
                      backend="sequential", log=None)
    assert list(frame["base_net__hidden_num_units"]) == [2, 4]
    assert np.isfinite(frame["mean_rmse_px"]).all()
    assert frame.attrs["best_params"]["base_net__hidden_num_units"] in (2, 4)


def test_members_get_their_groups_layout_and_flip_pairs(faces):
    X, y = faces
    group = S.GROUPS_BY_NAME["eye_corners"]
    assert group.layout == KAGGLE.subset(group.columns)
    assert group.layout.column_flip_pairs == group.flip_indices
    net, _, _ = S.make_specialist(flat_net(), group)
    assert net.batch_iterator_train.flip_indices == group.flip_indices
    if "layout" in net.get_params(deep=False):       # the net takes a layout
        assert net.layout == group.layout


def test_best_valid_px_is_the_histories_measured_pixels(faces):
    X, y = faces
    ens = S.fit_specialists(flat_net(criterion="l1", max_epochs=2), (X, y),
                            groups=["eye_centers"], epochs=2)
    net = ens.members_[0][1]
    measured = [h.get("valid_rmse_px") for h in net.history]
    px = ens.report_[0]["best_valid_rmse_px"]
    if all(v is None for v in measured):       # no measured pixels: l1 gives none
        assert px is None
    else:
        assert px == pytest.approx(min(v for v in measured if v is not None))


def test_a_signal_stops_the_specialists_and_makes_no_ensemble(faces):
    X, y = faces
    base = flat_net(max_epochs=3, on_epoch_finished=[signal_in_second_fit(signal.SIGINT)])
    done = []
    with pytest.raises(S.SpecialistsInterrupted) as info:
        S.fit_specialists(base, (X, y), groups=["eye_centers", "nose_tip", "mouth"],
                          epochs=3, on_specialist=done.append)
    assert info.value.group == "nose_tip" and info.value.finished == ["eye_centers"]
    assert info.value.exit_status == 130
    assert [d["group"] for d in done] == ["eye_centers"]


# -- the command line --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("spec"), n_train=60, n_test=4)["training"]


def _argv(csv, out, *groups):
    return ["train-specialists", "net1", "--max-epochs", "2", "--data", str(csv),
            "--out", str(out), "--groups", *groups]


def _listing(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def older(csv, tmp_path):
    """An ensemble directory written by an earlier run."""
    out = tmp_path / "ens"
    assert main(_argv(csv, out, "nose_tip", "bottom_lip")) == 0
    return out


def _with_handler(monkeypatch, handler):
    real = presets.get

    def get(name, **overrides):
        return real(name, **overrides).set_params(on_epoch_finished=[handler])

    monkeypatch.setattr(presets, "get", get)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_signal_keeps_the_older_ensemble_whole(csv, older, monkeypatch, capsys, signum,
                                                   status):
    before = _listing(older)
    _with_handler(monkeypatch, signal_in_second_fit(signum))
    capsys.readouterr()
    assert main(_argv(csv, older, "eye_centers", "mouth")) == status
    captured = capsys.readouterr()
    assert "[1/2] eye_centers" in captured.out and "[2/2]" not in captured.out
    assert "while training specialist 'mouth'" in captured.err
    assert f"{older} keeps what it held before" in captured.err
    assert _listing(older) == before            # no new member, no temp file, no lock left
    assert [m["name"] for m in S.load_ensemble(older).report_] == ["nose_tip", "bottom_lip"]


def test_cli_new_ensemble_replaces_the_older_one_as_a_unit(csv, older):
    assert main(_argv(csv, older, "eye_centers")) == 0
    names = sorted(p.name for p in older.iterdir())
    assert names == ["ensemble.json", "eye_centers.pt", "manifest.json"]
    meta = json.loads((older / "ensemble.json").read_text())
    assert [m["name"] for m in meta["members"]] == ["eye_centers"]
    assert meta["members"][0]["layout"] == S.GROUPS_BY_NAME["eye_centers"].layout.to_dict()


def test_cli_refuses_an_out_folder_another_run_holds(csv, tmp_path, capsys):
    out = tmp_path / "ens"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom facekeypoints._rundir import RunLock\n"
         "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_argv(csv, out, "nose_tip")) == 2
    finally:
        holder.kill()
        holder.wait()
    captured = capsys.readouterr()
    assert "is in use by another training" in captured.err and captured.err.count("\n") == 1
    assert "[1/" not in captured.out                # refused before any training


def test_cli_checks_free_space_before_training(csv, tmp_path, monkeypatch, capsys):
    import shutil

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    assert main(_argv(csv, tmp_path / "ens", "nose_tip")) == 2
    captured = capsys.readouterr()
    assert "not enough free space" in captured.err and captured.err.count("\n") == 1
    assert "[1/" not in captured.out and not (tmp_path / "ens").exists()


def test_cli_refuses_a_training_runs_folder(csv, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"a run's model")
    assert main(_argv(csv, run, "nose_tip")) == 2
    assert "holds a training run" in capsys.readouterr().err
    assert (run / "model.pt").read_bytes() == b"a run's model"


def test_cli_full_disk_while_saving_is_one_line_and_keeps_the_older_ensemble(csv, older,
                                                                            monkeypatch, capsys):
    from facekeypoints import persist

    before = _listing(older)

    def full(net, path, history=True):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(persist, "save_model", full)
    assert main(_argv(csv, older, "eye_centers")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on the device for" in err
    assert "eye_centers.pt" in err and "RuntimeError" not in err and "enforce" not in err
    assert _listing(older) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_read_only_out_is_refused_before_training(csv, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert main(_argv(csv, out, "nose_tip")) == 2
    finally:
        out.chmod(0o700)
    captured = capsys.readouterr()
    assert "cannot write to" in captured.err and "[1/" not in captured.out
