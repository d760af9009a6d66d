"""What the net's jobs give a user: pixels measured each epoch whatever the loss, clone and the
search tools with every shipped callback, one face at a time, inputs in the wrong units named,
and the keypoint layout of the outputs."""
import math
import os
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

import facekeypoints as fk
from facekeypoints.callbacks import (AdjustVariable, CosineAdjustVariable, EarlyStopping,
                                     EpochSummary, EpochTable, ExponentialAdjustVariable,
                                     NolearnHandlers)
from facekeypoints.checkpoint import Checkpoint
from facekeypoints.layout import KAGGLE
from facekeypoints.notebook import LivePlot
from facekeypoints.progress import EpochProgress
from facekeypoints.reports import best_valid_px, recipe_table
from tests.conftest import tiny_data, tiny_net


def rmse_px_by_hand(y_true, y_pred):
    labelled = ~np.isnan(y_true)
    diff = (np.asarray(y_pred, np.float64) - y_true)[labelled]
    return math.sqrt((diff ** 2).mean()) * 48


# -- pixels measured, not derived -------------------------------------------------------------

@pytest.mark.parametrize("criterion", ["l1", "wing", None])
def test_valid_pixels_are_measured_from_the_predictions_whatever_the_loss(criterion):
    X, y = tiny_data()
    y = y.copy()
    y[::3, 4:10] = np.nan                       # partial labels: left out of the pixels
    net = tiny_net(criterion=criterion, max_epochs=2).fit(X, y)
    (_, _), (X_valid, y_valid) = net.train_valid_split(X, y)
    expected = rmse_px_by_hand(y_valid, net.predict(X_valid))
    last = net.history[-1]
    assert last["valid_rmse_px"] == pytest.approx(expected, rel=1e-5)
    assert best_valid_px(net.history, net.criterion)[0] == pytest.approx(
        min(row["valid_rmse_px"] for row in net.history))
    assert all(row["train_rmse_px"] > 0 for row in net.history)
    if criterion is not None:           # the loss is not an MSE: sqrt(loss) * 48 is no pixel
        assert last["valid_rmse_px"] != pytest.approx(math.sqrt(last["valid_loss"]) * 48,
                                                      rel=1e-3)


def test_no_validation_set_records_no_valid_pixels():
    X, y = tiny_data()
    net = tiny_net(eval_size=0, max_epochs=1).fit(X, y)
    assert "valid_rmse_px" not in net.history[-1] and net.history[-1]["train_rmse_px"] > 0
    assert best_valid_px(net.history) is None


def test_old_histories_fall_back_to_mse_only():
    old = [{"epoch": 1, "train_loss": 0.02, "valid_loss": 0.0004},
           {"epoch": 2, "train_loss": 0.01, "valid_loss": 0.0001}]
    assert best_valid_px(old) == (pytest.approx(0.48), 2)
    assert best_valid_px(old, criterion="mse") == (pytest.approx(0.48), 2)
    assert best_valid_px(old, criterion="l1") is None
    assert best_valid_px(old, criterion="wing") is None
    assert "no pixels" in recipe_table({"l1 run": old}, criterion="l1")


def test_the_recipe_table_reports_measured_pixels():
    rows = [{"epoch": 1, "train_loss": 0.2, "valid_loss": 0.3, "valid_rmse_px": 5.0},
            {"epoch": 2, "train_loss": 0.1, "valid_loss": 0.2, "valid_rmse_px": 4.25}]
    text = recipe_table({"wing": rows})
    assert "best valid RMSE 4.25 px (loss 0.200000, epoch 2); last 4.25 px" in text
    assert f"{math.sqrt(0.2) * 48:.2f}" not in text


def test_the_epoch_table_and_the_html_view_show_measured_pixels(capsys):
    X, y = tiny_data()
    net = tiny_net(criterion="l1", verbose=1, max_epochs=2).fit(X, y)
    out = capsys.readouterr().out
    assert f"{net.history[-1]['valid_rmse_px']:.3f}" in out
    best = min(row["valid_rmse_px"] for row in net.history)
    assert f"(RMSE {best:.2f} px" in net._repr_html_()


# -- get_params names constructor parameters only: clone and the search tools work ---------------

def shipped_callbacks(tmp_path):
    return [("ckpt", Checkpoint(os.path.join(tmp_path, "c.pt"), handle_sigint=True)),
            ("live", LivePlot()), ("progress", EpochProgress(disable=True)),
            ("lr", AdjustVariable("update_learning_rate", 0.01, 0.001)),
            ("cos", CosineAdjustVariable("update_momentum", 0.9, 0.95)),
            ("exp", ExponentialAdjustVariable("update_learning_rate", 0.01, 0.001)),
            ("stop", EarlyStopping(patience=5, verbose=False)),
            ("table", EpochTable(sink=lambda line: None)), ("summary", EpochSummary()),
            ("handlers", NolearnHandlers())]


def test_every_shipped_callback_exposes_only_its_constructor_parameters(tmp_path):
    import inspect

    X, y = tiny_data()
    for name, cb in shipped_callbacks(tmp_path):
        tiny_net(max_epochs=1, callbacks=[(name, cb)]).fit(X, y)
        accepted = set(inspect.signature(type(cb).__init__).parameters) - {"self"}
        assert set(cb.get_params()) <= accepted, name
        clone(cb)


def test_clone_cross_val_score_and_grid_search_work_on_a_fitted_net_with_callbacks(tmp_path):
    X, y = tiny_data()
    net = tiny_net(max_epochs=1, callbacks=shipped_callbacks(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y)
        assert not any(k.split("__")[-1].startswith("_") for k in net.get_params())
        copy = clone(net)
        assert copy.get_params(deep=False).keys() == net.get_params(deep=False).keys()
        scores = cross_val_score(net, X, y, cv=2)
        search = GridSearchCV(net, {"max_epochs": [1, 2]}, cv=2).fit(X, y)
    assert len(scores) == 2 and np.isfinite(scores).all()
    assert search.best_params_["max_epochs"] in (1, 2)


# -- one face at a time -----------------------------------------------------------------------

def test_one_face_on_its_own_is_a_batch_of_one():
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X, y)
    expected = net.predict(X[:1])
    for face in (X[0].reshape(-1), X[0, 0], X[0]):          # (256,), (16, 16), (1, 16, 16)
        np.testing.assert_allclose(net.predict(face), expected, rtol=1e-6)
        assert net.predict(face).shape == (1, 30)
        assert net.predict(torch.as_tensor(face)).shape == (1, 30)
    assert net.predict(X[0, 0], tta=True).shape == (1, 30)
    assert np.isfinite(net.score(np.stack([X[0, 0], X[1, 0]]).reshape(2, -1), y[:2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # R^2 of one sample is undefined (NaN)
        net.score(X[0, 0], y[0])


def test_other_shapes_and_empty_inputs_are_refused_naming_the_accepted_shapes():
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"X of shape \(128,\).*one face as \(256,\), \(16, 16\)"):
        net.predict(np.zeros(128, np.float32))
    with pytest.raises(ValueError, match=r"X of shape \(3, 100\) has 100 values per row, but the "
                                         r"input layer takes 256"):
        net.predict(np.zeros((3, 100), np.float32))
    with pytest.raises(ValueError, match="X has no rows .*predict needs at least one face"):
        net.predict(X[:0])
    with pytest.raises(ValueError, match="X has no rows"):
        net.score(X[:0], y[:0])


def test_preset_nets_take_one_96_pixel_face():
    face = np.random.default_rng(0).random((96, 96), dtype=np.float32)
    for preset in (fk.presets.net1, fk.presets.net2):
        net = preset(device="cpu", random_state=0, verbose=0).initialize()
        assert net.predict(face).shape == net.predict(face.reshape(-1)).shape == (1, 30)


# -- inputs in the wrong units ----------------------------------------------------------------

def test_pixels_0_to_255_and_targets_in_pixels_warn_with_the_fix():
    X, y = tiny_data()
    with pytest.warns(fk.net.InputScaleWarning, match=r"X / 255"):
        tiny_net(max_epochs=1).fit((X * 255).astype(np.uint8), y)
    with pytest.warns(fk.net.InputScaleWarning, match=r"values up to 2\d\d.*X / 255"):
        tiny_net(max_epochs=1).fit(X * 255, y)
    with pytest.warns(fk.net.InputScaleWarning, match=r"\(y - 48\) / 48"):
        net = tiny_net(max_epochs=1).fit(X, y * 48 + 48)
    with pytest.warns(fk.net.InputScaleWarning, match=r"X / 255"):
        net.predict(X * 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # scaled data: no warning
        net.fit(X, y)
        net.predict(X)


def test_readme_notebook_example_appends_callbacks_to_every_preset():
    for preset in (fk.presets.net1, fk.presets.net2, fk.presets.net3, fk.presets.net4):
        net = preset(max_epochs=5)
        net.callbacks.append(("live", LivePlot(every=5)))
        assert net.callbacks[-1][0] == "live"
    assert fk.presets.net1().callbacks == []


# -- the layout of the outputs ----------------------------------------------------------------

def test_a_specialist_layout_drives_tta_and_survives_clone():
    X, y = tiny_data()
    cols = ["right_eye_center_x", "right_eye_center_y", "left_eye_center_x",
            "left_eye_center_y"]
    idx = [KAGGLE.columns.index(c) for c in cols]
    layout = KAGGLE.subset(cols)
    net = tiny_net(output_num_units=4, max_epochs=1, layout=layout).fit(X, y[:, idx])
    assert net.keypoint_layout() == layout and clone(net).keypoint_layout() == layout
    mirrored = np.ascontiguousarray(X[..., ::-1])
    expected = (net.predict(X) + net.predict(mirrored)[:, [2, 3, 0, 1]]
                * np.float32([-1, 1, -1, 1])) / 2
    np.testing.assert_allclose(net.predict(X, tta=True), expected, rtol=1e-6, atol=1e-7)
    assert tiny_net(output_num_units=4).keypoint_layout() is None       # unknown, no error
    assert tiny_net().keypoint_layout() == KAGGLE
    with pytest.raises(ValueError, match="layout must be a facekeypoints.layout.KeypointLayout"):
        tiny_net(layout="kaggle").initialize()


def test_learning_curves_draw_measured_pixels_and_no_derived_ones_for_other_losses():
    from facekeypoints.plots import plot_learning_curves

    measured = [{"epoch": e, "train_loss": 0.3 / e, "valid_loss": 0.4 / e,
                 "train_rmse_px": 9.0 / e, "valid_rmse_px": 10.0 / e} for e in (1, 2)]
    ax = plot_learning_curves(measured, show_schedule=False)
    drawn = {line.get_label(): list(line.get_ydata()) for line in ax.lines}
    assert drawn == {"train": [9.0, 4.5], "valid": [10.0, 5.0]}
    old = [{"epoch": e, "train_loss": 0.3 / e, "valid_loss": 0.4 / e} for e in (1, 2)]
    assert not plot_learning_curves(old, show_schedule=False, criterion="l1").lines
    mse = plot_learning_curves(old, show_schedule=False)
    assert mse.lines[1].get_ydata()[0] == pytest.approx(math.sqrt(0.4) * 48)
