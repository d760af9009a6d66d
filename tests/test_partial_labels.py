"""Partial labels: NaN means "not labelled" from loading through training, scoring,
reports, flips, checkpoints, sweeps and the command line."""
import json
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from sklearn.utils import shuffle

import facekeypoints as fk
from facekeypoints import cli
from facekeypoints.data import (FLIP_INDICES, KEYPOINT_COLUMNS, DataFormatError, load, load2d,
                                read_csv, select_rows)
from facekeypoints.iterators import FlipBatchIterator, flip_permutation
from facekeypoints.metrics import keypoint_rmse_px, rmse_px, squared_errors_px
from facekeypoints.reports import keypoint_errors, mean_baseline_loss
from tests.conftest import tiny_data, tiny_net
from tests.test_data import keypoints, write_training

K = len(KEYPOINT_COLUMNS)


def partial_data(n=40, seed=0):
    """tiny_data with Kaggle's kind of gaps: most faces carry only some keypoints, one none."""
    X, y = tiny_data(n=n, seed=seed)
    y = y.copy()
    y[1::2, 4:20] = np.nan          # every other face: eye centres, nose and mouths only
    y[2::5, 24:28] = np.nan
    y[13] = np.nan                  # a face without any label is allowed
    return X, y


def masked_mse(y_true, y_pred):
    labelled = ~np.isnan(y_true)
    return float(((np.asarray(y_pred, np.float64) - y_true)[labelled] ** 2).mean())


# -- loading ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("partial"), n_train=60, n_test=4)



def test_dropna_false_keeps_every_face_with_a_keypoint_with_the_same_scaling_and_shuffle(
        tmp_path):
    kp = keypoints(8)
    kp[1, 4:] = np.nan              # only the eye centres
    kp[3, :] = np.nan               # no keypoint at all: dropped
    kp[5, [0, 1, 28, 29]] = np.nan
    path = write_training(tmp_path / "t.csv", kp)
    X, y = load(path, dropna=False)
    kept = [0, 1, 2, 4, 5, 6, 7]
    expected_X = read_csv(path).images[kept].astype(np.float32) / np.float32(255)
    expected_y = ((kp[kept] - 48) / 48).astype(np.float32)
    want_X, want_y = shuffle(expected_X, expected_y, random_state=42)
    np.testing.assert_array_equal(X, want_X)
    np.testing.assert_array_equal(y, want_y)            # NaN in the same places
    assert load(path)[0].shape == (5, 9216)              # dropna=True: complete rows only
    X2, y2 = load2d(path, dropna=False)
    assert X2.shape == (7, 1, 96, 96) and np.array_equal(y2, y, equal_nan=True)
    # cols: the rows that have any of the kept columns
    Xc, yc = load(path, cols=["left_eye_center_x", "left_eye_center_y"], dropna=False)
    assert len(Xc) == 6 and not np.isnan(yc).any()
    # select_rows is what load does
    Xs, ys = select_rows(read_csv(path), dropna=False, name="t.csv")
    assert np.array_equal(Xs, X) and np.array_equal(ys, y, equal_nan=True)


def test_dropna_false_with_no_row_left_names_the_columns(tmp_path):
    kp = keypoints(3)
    kp[:, :2] = np.nan
    path = write_training(tmp_path / "t.csv", kp)
    with pytest.raises(DataFormatError, match=r"none of its 3 rows has any of the 2 requested "
                                              r"keypoint columns \(left_eye_center_x"):
        load(path, cols=["left_eye_center_x", "left_eye_center_y"], dropna=False)


def test_synthetic_faces_keep_every_face_with_dropna_false(csv):
    """The synthetic faces copy Kaggle's gaps (every face has its nose tip, about 30% have
    all 15 keypoints): dropna=False keeps all of them. (The embedded 7,049 faces give 7,049
    faces, 2,125 of them complete; generating them takes too long for a unit test.)"""
    X, y = load2d(csv["training"], dropna=False)
    assert X.shape == (60, 1, 96, 96) and y.shape == (60, K)
    labelled = ~np.isnan(y)
    assert labelled.any(axis=1).all() and labelled[:, 20:22].all()
    complete = labelled.all(axis=1).sum()
    assert 5 < complete < 40
    assert len(load2d(csv["training"])[0]) == complete       # the recipe's default


# -- metrics and reports ----------------------------------------------------------------------

def test_rmse_helpers_leave_unlabelled_targets_out():
    y_true = np.array([[0.0, np.nan, 0.1], [np.nan, np.nan, -0.1]])
    y_pred = np.array([[0.05, 5.0, 0.1], [1.0, 2.0, 0.0]])
    assert keypoint_rmse_px(y_true, y_pred) == pytest.approx(
        math.sqrt((0.05 ** 2 + 0 + 0.1 ** 2) / 3) * 48)
    assert np.isnan(squared_errors_px(y_true, y_pred)).sum() == 3
    with pytest.raises(ValueError, match="every target is NaN"):
        keypoint_rmse_px(np.full((2, 2), np.nan), np.zeros((2, 2)))
    # without NaN, exactly the plain formula
    complete = np.random.default_rng(0).normal(size=(5, 30))
    assert keypoint_rmse_px(complete, complete * 0.9) == float(
        np.sqrt(np.mean((complete * 0.9 - complete) ** 2)) * 48)


def test_keypoint_errors_are_per_keypoint_over_the_faces_that_have_it():
    _, y = partial_data()
    pred = np.nan_to_num(y) + np.random.default_rng(1).normal(0, 0.02, y.shape)
    table = keypoint_errors(y, pred)
    labelled = ~np.isnan(y)
    assert table.loc["left_eye_center", "n"] == labelled[:, 0].sum() == 39
    assert table.loc["left_eye_inner_corner", "n"] == labelled[:, 4].sum() == 20
    assert table.loc["overall", "n"] == 39
    j = KEYPOINT_COLUMNS.index("left_eye_inner_corner_x")
    rows = labelled[:, j]
    assert table.loc["left_eye_inner_corner", "x"] == pytest.approx(
        np.sqrt((((pred[rows, j] - y[rows, j]) * 48) ** 2).mean()))
    assert table.loc["overall", "rmse"] == pytest.approx(keypoint_rmse_px(y, pred))
    # a keypoint no face has: NaN errors, count 0, and no warning
    y[:, 0:2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = keypoint_errors(y, pred)
    assert table.loc["left_eye_center", "n"] == 0 and np.isnan(table.loc["left_eye_center", "rmse"])


def test_mean_baseline_ignores_unlabelled_targets():
    _, y = partial_data()
    y_train, y_valid = y[8:], y[:8]
    mean = np.nanmean(y_train, axis=0)
    assert mean_baseline_loss(y_train, y_valid) == pytest.approx(
        masked_mse(y_valid, np.broadcast_to(mean, y_valid.shape)))
    complete_train, complete_valid = tiny_data()[1][8:], tiny_data()[1][:8]
    assert mean_baseline_loss(complete_train, complete_valid) == float(
        ((complete_valid.astype(np.float64) - complete_train.astype(np.float64).mean(axis=0))
         ** 2).mean())


# -- training ---------------------------------------------------------------------------------

def test_fit_learns_from_partial_labels_and_the_losses_are_over_labelled_values():
    X, y = partial_data()
    net = tiny_net(batch_iterator_test=fk.BatchIterator(3)).fit(X, y)
    hist = net.train_history_
    for h in hist:
        for key in ("train_loss", "valid_loss", "train_val"):
            assert type(h[key]) is float and math.isfinite(h[key])
    # the validation loss is the mean over every labelled value of the 8 validation rows,
    # even with batches of 3 rows holding different numbers of labels
    n_valid = net.validation_size(len(X))
    assert hist[-1]["valid_loss"] == pytest.approx(
        masked_mse(y[:n_valid], net.predict(X[:n_valid])), rel=1e-6)
    assert rmse_px(hist[-1]["valid_loss"]) == pytest.approx(
        keypoint_rmse_px(y[:n_valid], net.predict(X[:n_valid])), rel=1e-6)
    batch = hist[-1]["batches"][0]
    assert batch["train_labelled"] <= batch["train_batch_size"]


def test_partial_labels_train_the_labelled_outputs_and_leave_the_rest_alone():
    """An output no face labels gets no gradient: its weights stay as initialized."""
    X, y = tiny_data()
    y = y.copy()
    y[:, 28:] = np.nan
    net = tiny_net(update=fk.updates.sgd)
    net.fit(X, y)
    start = tiny_net().initialize().module_.layers["output"][0]
    out = net.module_.layers["output"][0]
    assert torch.equal(out.weight[28:], start.weight[28:])
    assert not torch.equal(out.weight[:28], start.weight[:28])


def test_targets_that_cannot_be_trained_on_are_refused_with_the_fix():
    X, y = tiny_data()
    bad = y.copy()
    bad[[4, 11], 2] = np.inf
    with pytest.raises(ValueError, match=r"y contains infinite values in 2 rows \(first: row 4\); "
                                         r"a target is a finite number, or NaN where"):
        tiny_net().fit(X, bad)
    with pytest.raises(ValueError, match=r"y has no labelled value: all 40 rows are NaN"):
        tiny_net().fit(X, np.full_like(y, np.nan))
    first = y.copy()
    first[:8] = np.nan
    with pytest.raises(ValueError, match=r"the 8 validation rows \(the first 8, eval_size=0.2\) "
                                         r"have no labelled value"):
        tiny_net().fit(X, first)
    rest = y.copy()
    rest[8:] = np.nan
    with pytest.raises(ValueError, match=r"the 32 training rows have no labelled value"):
        tiny_net().fit(X, rest)
    _, partial = partial_data()
    with pytest.raises(ValueError, match=r"y contains NaN \(unlabelled\) values in 24 rows "
                                         r"\(first: row 1\), but the criterion MSELoss does not "
                                         r"ignore them"):
        tiny_net(criterion=torch.nn.MSELoss).fit(X, partial)
    tiny_net(max_epochs=1, eval_size=0).fit(X, partial)            # no validation: fine


def test_a_real_divergence_still_stops_training_with_partial_labels():
    X, y = partial_data()
    net = tiny_net(update_learning_rate=1e6, update_momentum=0.9, max_epochs=20)
    with pytest.raises(fk.DivergenceError, match=r"epoch \d+.*NaN targets are unlabelled"):
        net.fit(X, y * 1e3)
    for p in net.module_.parameters():
        assert torch.isfinite(p).all()


def test_score_is_r2_over_the_labelled_targets():
    X, y = partial_data()
    net = tiny_net(max_epochs=2).fit(X, y)
    pred = net.predict(X)
    expected = np.mean([r2_score(y[~np.isnan(y[:, j]), j], pred[~np.isnan(y[:, j]), j])
                        for j in range(K)])
    assert net.score(X, y) == pytest.approx(expected)
    _, complete = tiny_data()
    assert net.score(X, complete) == r2_score(complete, pred)     # unchanged without NaN


def test_bf16_precision_trains_on_partial_labels():
    X, y = partial_data()
    net = tiny_net(precision="bf16", max_epochs=2).fit(X, y)
    assert all(math.isfinite(h["valid_loss"]) for h in net.history)
    n_valid = net.validation_size(len(X))
    assert net.history[-1]["valid_loss"] == pytest.approx(
        masked_mse(y[:n_valid], net.predict(X[:n_valid])), rel=1e-5)


def test_checkpoints_resume_partial_label_runs_exactly(tmp_path):
    from facekeypoints.checkpoint import Checkpoint

    X, y = partial_data()
    path = tmp_path / "checkpoint.pt"
    tiny_net(max_epochs=2, batch_iterator_train=FlipBatchIterator(16),
             callbacks=[Checkpoint(path)]).fit(X, y)
    resumed = tiny_net(max_epochs=4, batch_iterator_train=FlipBatchIterator(16)).fit(
        X, y, resume=path)
    whole = tiny_net(max_epochs=4, batch_iterator_train=FlipBatchIterator(16)).fit(X, y)
    np.testing.assert_array_equal(resumed.predict(X), whole.predict(X))
    assert [h["valid_loss"] for h in resumed.history] == [h["valid_loss"] for h in whole.history]


# -- flips carry the NaN pattern --------------------------------------------------------------

def test_flips_move_the_nan_pattern_with_the_keypoints():
    X, y = partial_data(n=16)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    it = FlipBatchIterator(batch_size=16, random_state=0)(Xt, yt)
    Xb, yb = next(iter(it))
    flipped = (Xb != Xt).flatten(1).any(dim=1)
    assert int(flipped.sum()) == 8
    perm = torch.as_tensor(flip_permutation(K, FLIP_INDICES))
    sign = torch.ones(K)
    sign[0::2] = -1
    expected = yt[:, perm] * sign
    for i in range(16):
        want = expected[i] if flipped[i] else yt[i]
        assert torch.equal(torch.isnan(yb[i]), torch.isnan(want))     # NaN stays NaN, moved
        assert torch.equal(yb[i][~torch.isnan(want)], want[~torch.isnan(want)])
    # a left keypoint missing on a flipped face is missing on its right side afterwards
    i = int(torch.flatten(torch.nonzero(flipped))[0])
    assert torch.equal(torch.isnan(yb[i, [0, 1]]), torch.isnan(yt[i, [2, 3]]))


# -- sweeps -----------------------------------------------------------------------------------

def test_a_sweep_runs_on_partial_labels_and_scores_the_labelled_values():
    from facekeypoints.sweep import make_rmse_scorer, run_sweep

    X, y = partial_data()
    frame = run_sweep(tiny_net(max_epochs=2), X, y, {"update_learning_rate": [0.01, 0.001]},
                      cv=2, backend="sequential", log=None)
    assert np.isfinite(frame["mean_rmse_px"]).all()
    net = tiny_net(max_epochs=1).fit(X[20:], y[20:])
    assert -make_rmse_scorer()(net, X[:20], y[:20]) == pytest.approx(
        keypoint_rmse_px(y[:20], net.predict(X[:20])))


def test_partial_label_data_are_scattered_to_dask_workers_once(monkeypatch):
    distributed = pytest.importorskip("distributed")
    from facekeypoints.sweep import run_sweep

    X, y = partial_data()
    grid = {"update_learning_rate": [0.01, 0.001]}
    expected = run_sweep(tiny_net(max_epochs=1), X, y, grid, cv=2, backend="sequential",
                         log=None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        scattered = []
        real = client.scatter

        def scatter(payload, *args, **kwargs):
            scattered.append(payload)
            return real(payload, *args, **kwargs)

        monkeypatch.setattr(client, "scatter", scatter)
        frame = run_sweep(tiny_net(max_epochs=1), X, y, grid, cv=2, backend="dask",
                          client=client, log=None)
    assert len(scattered) == 1 and scattered[0][1] is y
    np.testing.assert_allclose(frame["mean_rmse_px"], expected["mean_rmse_px"], atol=1e-6)


# -- specialists ------------------------------------------------------------------------------

def test_specialists_take_their_rows_from_partial_label_data():
    from facekeypoints.layers import DenseLayer, InputLayer
    from facekeypoints.specialists import fit_specialists

    X, y = tiny_data(side=96)
    X = X.reshape(len(X), -1)
    y = y.copy()
    y[::3, 2:4] = np.nan                              # right eye centre missing on some faces
    base = fk.NeuralNet(layers=[("input", InputLayer), ("hidden", DenseLayer),
                                ("output", DenseLayer)],
                        input_shape=(None, 96 * 96), hidden_num_units=4, output_num_units=30,
                        output_nonlinearity=None, max_epochs=1, verbose=0, random_state=0,
                        device="cpu")
    ensemble = fit_specialists(base, (X, y), groups=["eye_centers", "nose_tip"])
    rows = {r["group"]: r["rows"] for r in ensemble.report_}
    assert rows == {"eye_centers": 26, "nose_tip": 40}
    table = ensemble.keypoint_errors((X, y))
    assert table.loc["right_eye_center", "n"] == 26 and table.loc["nose_tip", "n"] == 40


# -- the command line -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def partial_run(csv, tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("runs") / "net1"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = cli.main(["train", "net1", "--data", str(csv["training"]), "--max-epochs", "2",
                       "--partial-labels", "--set", "eval_size=0.25", "--out", str(out)])
    assert rc == 0
    return out, stdout.getvalue()


def test_train_partial_labels_uses_every_face_and_records_it(csv, partial_run):
    out, printed = partial_run
    X, y = load2d(csv["training"], dropna=False)
    labelled = int((~np.isnan(y)).sum())
    assert (f"partial labels: {len(X)} faces, {labelled} labelled keypoint values of {y.size}"
            in printed)
    assert "the validation split is over all of them" in printed
    info = json.loads((out / "run.json").read_text())
    assert info["partial_labels"] is True and info["rows"] == len(X) == 60
    net = fk.load_model(out)
    (_, _), (X_valid, y_valid) = net.train_valid_split(X, y)
    history = json.loads((out / "history.json").read_text())
    assert len(X_valid) == 15 and np.isnan(y_valid).any()
    assert history[-1]["valid_loss"] == pytest.approx(masked_mse(y_valid, net.predict(X_valid)),
                                                      rel=1e-5)


def test_evaluate_partial_labels_counts_the_faces_of_each_keypoint(csv, partial_run, capsys):
    out, _ = partial_run
    rc = cli.main(["evaluate", str(out), "--data", str(csv["training"]), "--partial-labels",
                   "--split", "valid", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    history = json.loads((out / "history.json").read_text())
    assert result["faces"] == 15 and result["partial_labels"] is True
    assert result["rmse_px"] == pytest.approx(rmse_px(history[-1]["valid_loss"]), rel=1e-4)
    _, y = load2d(csv["training"], dropna=False)
    y_valid = y[:15]
    assert result["labelled_values"] == int((~np.isnan(y_valid)).sum())
    assert result["keypoints"]["nose_tip"]["faces"] == int((~np.isnan(y_valid[:, 20])).sum())
    rc = cli.main(["evaluate", str(out), "--data", str(csv["training"]), "--partial-labels"])
    table = capsys.readouterr().out
    assert rc == 0 and "faces" in table.splitlines()[3] and "each keypoint over the faces" in table


def test_resume_keeps_partial_labels_and_refuses_adding_them(csv, partial_run, tmp_path,
                                                             capsys):
    out, _ = partial_run
    rc = cli.main(["train", "net1", "--resume", str(out), "--max-epochs", "3"])
    assert rc == 0
    info = json.loads((out / "run.json").read_text())
    assert info["partial_labels"] is True and info["epochs_run"] == 3
    assert "partial labels: 60 faces" in capsys.readouterr().out
    complete = tmp_path / "complete"
    assert cli.main(["train", "net1", "--data", str(csv["training"]), "--max-epochs", "1",
                     "--out", str(complete)]) == 0
    capsys.readouterr()
    rc = cli.main(["train", "net1", "--resume", str(complete), "--max-epochs", "2",
                   "--partial-labels"])
    assert rc == 2
    assert "--partial-labels: the run in" in capsys.readouterr().err
