"""Flip test-time augmentation: predict(X, tta=True) averages each face's prediction with the
un-mirrored prediction of its mirror image."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import facekeypoints as fk
from facekeypoints import cli
from facekeypoints.data import FLIP_INDICES, KEYPOINT_COLUMNS, load2d, write_submission
from facekeypoints.iterators import flip_permutation
from facekeypoints.layers import DenseLayer, InputLayer
from facekeypoints.reports import keypoint_errors
from tests.conftest import tiny_data, tiny_net

K = len(KEYPOINT_COLUMNS)
PERM = flip_permutation(K, FLIP_INDICES)
SIGN = np.where(np.arange(K) % 2 == 0, -1.0, 1.0).astype(np.float32)


def by_hand(net, X, perm=PERM, sign=SIGN):
    """The TTA average, computed from two plain predictions."""
    mirrored = np.ascontiguousarray(X[..., ::-1])
    return (net.predict(X) + net.predict(mirrored)[:, perm] * sign) / 2


class MirrorEquivariant(torch.nn.Module):
    """Keypoints from the image's centroid, with weights tied across the left/right pairs:
    predicting a mirrored face gives exactly the mirrored keypoints."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        a, b, d, e = torch.randn(4, K, generator=gen)
        perm = torch.as_tensor(PERM)
        self.register_buffer("slope", torch.where(torch.arange(K) % 2 == 0, (a + a[perm]) / 2,
                                                  (d + d[perm]) / 2))
        self.register_buffer("offset", torch.where(torch.arange(K) % 2 == 0, (b - b[perm]) / 2,
                                                   (e + e[perm]) / 2))
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, X):
        n, _, h, w = X.shape
        mass = X.sum(dim=(1, 2, 3))
        cols = torch.arange(w, dtype=X.dtype) - (w - 1) / 2
        rows = torch.arange(h, dtype=X.dtype) - (h - 1) / 2
        c = (X * cols).sum(dim=(1, 2, 3)) / mass          # changes sign under a mirror
        r = (X * rows[:, None]).sum(dim=(1, 2, 3)) / mass   # does not
        is_x = torch.arange(K) % 2 == 0
        return self.scale * torch.where(is_x, self.slope * c[:, None],
                                        self.slope * r[:, None]) + self.offset


def images(n=12, side=16, seed=0):
    return np.random.default_rng(seed).random((n, 1, side, side), dtype=np.float32)


def test_tta_equals_predict_for_a_mirror_equivariant_net():
    net = fk.NeuralNet(module=MirrorEquivariant, device="cpu", random_state=0).initialize()
    X = images()
    plain = net.predict(X)
    mirrored = net.predict(np.ascontiguousarray(X[..., ::-1]))
    np.testing.assert_allclose(mirrored[:, PERM] * SIGN, plain, atol=1e-5)   # equivariant
    assert not np.allclose(plain[:, 0], plain[:, 2])          # and not trivially symmetric
    np.testing.assert_allclose(net.predict(X, tta=True), plain, atol=1e-5)


def test_tta_is_the_average_with_the_unmirrored_prediction_of_the_mirror_image():
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X, y)
    tta = net.predict(X, tta=True)
    assert tta.shape == (40, K) and tta.dtype == np.float32
    np.testing.assert_allclose(tta, by_hand(net, X), rtol=1e-6, atol=1e-7)
    assert not np.allclose(tta, net.predict(X), atol=1e-4)
    # tensors work as arrays do
    np.testing.assert_allclose(net.predict(torch.as_tensor(X), tta=True), tta, rtol=1e-6,
                               atol=1e-7)


def test_tta_mirrors_flat_rows_as_square_images():
    X, y = tiny_data()
    flat = X.reshape(len(X), -1)
    net = fk.NeuralNet(layers=[("input", InputLayer), ("hidden", DenseLayer),
                               ("output", DenseLayer)],
                       input_shape=(None, 256), hidden_num_units=8, output_num_units=K,
                       output_nonlinearity=None, max_epochs=1, verbose=0, random_state=0,
                       device="cpu").fit(flat, y)
    mirrored = np.ascontiguousarray(X[..., ::-1]).reshape(len(X), -1)
    expected = (net.predict(flat) + net.predict(mirrored)[:, PERM] * SIGN) / 2
    np.testing.assert_allclose(net.predict(flat, tta=True), expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="rows of 255 values are not square images"):
        fk.NeuralNet(module=torch.nn.Linear(255, K), device="cpu").initialize().predict(
            flat[:, :255], tta=True)


def test_a_net_with_named_columns_swaps_its_own_columns():
    columns = ["right_eye_center_x", "right_eye_center_y", "nose_tip_x", "nose_tip_y",
               "left_eye_center_x", "left_eye_center_y"]
    X, y = tiny_data()
    net = tiny_net(output_num_units=6, max_epochs=1).fit(X, y[:, :6])
    net.columns_ = columns
    sign = np.float32([-1, 1, -1, 1, -1, 1])
    np.testing.assert_allclose(net.predict(X, tta=True),
                               by_hand(net, X, perm=[4, 5, 2, 3, 0, 1], sign=sign),
                               rtol=1e-6, atol=1e-7)


def test_tta_refuses_outputs_it_cannot_mirror_back():
    X, y = tiny_data()
    net = tiny_net(output_num_units=4, max_epochs=1).fit(X, y[:, :4])
    with pytest.raises(ValueError, match="must know which keypoint each output is.*4 outputs "
                                         "and no columns_"):
        net.predict(X, tta=True)
    net.columns_ = ["left_eye_center_x", "left_eye_center_y", "nose_tip_x", "nose_tip_y"]
    with pytest.raises(ValueError, match="predicts 'left_eye_center_x' but not its mirror "
                                         "image 'right_eye_center_x'"):
        net.predict(X, tta=True)
    net.columns_ = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="'a', which is not a Kaggle keypoint column"):
        net.predict(X, tta=True)
    classifier = tiny_net(regression=False, output_num_units=3, max_epochs=1).fit(
        X, np.arange(40) % 3)
    with pytest.raises(ValueError, match="for regression nets, not classification"):
        classifier.predict(X, tta=True)


def test_saved_nets_and_specialist_ensembles_predict_with_tta(tmp_path):
    from facekeypoints.specialists import SpecialistEnsemble, get_groups, load_ensemble

    X, y = tiny_data(side=96, n=12)
    flat = X.reshape(len(X), -1)
    members = []
    for group in get_groups(["eye_centers", "nose_tip"]):
        idx = [KEYPOINT_COLUMNS.index(c) for c in group.columns]
        net = fk.NeuralNet(layers=[("input", InputLayer), ("output", DenseLayer)],
                           input_shape=(None, 96 * 96), output_num_units=len(idx),
                           output_nonlinearity=None, max_epochs=1, verbose=0, random_state=0,
                           device="cpu").fit(flat, y[:, idx])
        net.columns_ = list(group.columns)
        members.append((group, net))
    ensemble = SpecialistEnsemble(members)
    pred = ensemble.predict(flat, tta=True)
    eyes, nose = members[0][1], members[1][1]
    np.testing.assert_array_equal(pred[:, :4], eyes.predict(flat, tta=True))
    np.testing.assert_array_equal(pred[:, 20:22], nose.predict(flat, tta=True))
    assert np.isnan(pred[:, 4:20]).all()
    loaded = load_ensemble(ensemble.save(tmp_path / "ens"))
    np.testing.assert_array_equal(loaded.predict(flat, tta=True), pred)
    table = ensemble.keypoint_errors((flat, y), tta=True)
    assert table.loc["nose_tip", "rmse"] == pytest.approx(
        keypoint_errors(y[:, 20:22], nose.predict(flat, tta=True),
                        ["nose_tip_x", "nose_tip_y"]).loc["nose_tip", "rmse"])


# -- the command line -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    root = tmp_path_factory.mktemp("tta")
    paths = write_dataset(root / "data", n_train=60, n_test=6)
    out = root / "net1"
    assert cli.main(["train", "net1", "--data", str(paths["training"]), "--max-epochs", "1",
                     "--out", str(out)]) == 0
    return paths, out


def test_evaluate_tta(run, capsys):
    paths, out = run
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--data", str(paths["training"]), "--tta",
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    net = fk.load_model(out)
    X, y = load2d(paths["training"])
    assert result["tta"] is True
    assert result["rmse_px"] == pytest.approx(
        keypoint_errors(y, net.predict(X, tta=True)).loc["overall", "rmse"], rel=1e-6)
    assert cli.main(["evaluate", str(out), "--data", str(paths["training"]), "--tta"]) == 0
    assert "flip TTA" in capsys.readouterr().out


def test_predict_tta_writes_the_averaged_submission(run, tmp_path, capsys):
    paths, out = run
    target = tmp_path / "sub.csv"
    assert cli.main(["predict", str(out), "--test", str(paths["test"]), "--tta", "-o",
                     str(target)]) == 0
    assert "(flip TTA)" in capsys.readouterr().out
    X, _ = load2d(paths["test"], test=True)
    expected = write_submission(fk.load_model(out).predict(X, tta=True), paths["lookup"],
                                tmp_path / "expected.csv")
    pd.testing.assert_frame_equal(pd.read_csv(target), pd.read_csv(expected))


def test_the_nets_tta_setting_is_predicts_default_and_survives_files(tmp_path):
    from sklearn.base import clone

    X, y = tiny_data(n=24)
    net = tiny_net(max_epochs=1, tta=True).fit(X, y)
    plain = tiny_net(max_epochs=1).initialize()
    plain.module_.load_state_dict(net.module_.state_dict())
    np.testing.assert_array_equal(net.predict(X), plain.predict(X, tta=True))
    np.testing.assert_array_equal(net.predict(X, tta=False), plain.predict(X))
    assert clone(net).tta is True and net.get_params()["tta"] is True
    loaded = fk.load_model(fk.save_model(net, tmp_path / "m.pt"))
    assert loaded.tta is True
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_evaluate_follows_the_models_tta_unless_told(run, tmp_path, capsys):
    paths, out = run
    net = fk.load_model(out)
    net.set_params(tta=True)
    model = fk.save_model(net, tmp_path / "tta.pt")
    for flags, expected in (([], True), (["--no-tta"], False), (["--tta"], True)):
        capsys.readouterr()
        assert cli.main(["evaluate", str(model), "--data", str(paths["training"]), "--json",
                         *flags]) == 0
        assert json.loads(capsys.readouterr().out)["tta"] is expected
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--data", str(paths["training"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is False      # a plain net's default
