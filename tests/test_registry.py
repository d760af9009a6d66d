"""Extension by registration: a user's own iterator, preset, layer and criterion save, load and
resume like the built-in ones; augmentation settings are tunable through set_params, clone,
scikit-learn's search and --set; keypoint geometry has one home (the Kaggle layout)."""
import inspect
import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import facekeypoints as fk
from facekeypoints import presets
from facekeypoints.checkpoint import Checkpoint
from facekeypoints.layers import LayerSpec
from facekeypoints.layout import KAGGLE
from facekeypoints.persist import ModelFileError, load_model, read_model_file, save_model
from facekeypoints.registry import (ITERATORS, PRESETS, register_criterion, register_iterator,
                                    register_layer)
from tests.conftest import tiny_data, tiny_net


@register_iterator
class JitterBatchIterator(fk.BatchIterator):
    """Adds seeded noise of at most ``amount`` to every training image."""

    tensor_transform = True

    def __init__(self, batch_size=128, amount=0.05, shuffle=False, random_state=None):
        super().__init__(batch_size, shuffle=shuffle, random_state=random_state)
        if not 0 <= amount < 1:
            raise ValueError(f"amount must be in [0, 1), got {amount!r}")
        self.amount = amount

    def transform(self, Xb, yb):
        gen = self.rng()
        noise = torch.rand(Xb.shape, generator=gen, device=gen.device).to(Xb.device)
        return Xb + (noise * 2 - 1) * self.amount, yb


@presets.preset(name="test_tiny_jitter")
def tiny_jitter(**overrides):
    """The test suite's tiny conv net with jittered, shuffled training batches."""
    params = dict(batch_iterator_train=JitterBatchIterator(16, amount=0.1, shuffle=True))
    params.update(overrides)
    return tiny_net(**params)


def _stop_after(epochs):
    def stop(nn, history):
        if len(history) == epochs:
            raise StopIteration
    return stop


def test_a_user_iterator_and_preset_train_save_load_and_resume(tmp_path):
    X, y = tiny_data()
    assert "test_tiny_jitter" in presets.available()
    assert "test_tiny_jitter" not in presets.NETS           # NETS: the built-in ones
    straight = presets.get("test_tiny_jitter", max_epochs=4).fit(X, y)

    path = save_model(straight, tmp_path / "model.pt")
    saved = read_model_file(path)["config"]["batch_iterators"]["train"]
    assert saved == {"kind": "JitterBatchIterator", "batch_size": 16, "amount": 0.1,
                     "shuffle": True}
    loaded = load_model(path)
    assert type(loaded.batch_iterator_train) is JitterBatchIterator
    assert loaded.batch_iterator_train.get_params() == straight.batch_iterator_train.get_params()
    np.testing.assert_array_equal(loaded.predict(X), straight.predict(X))

    checkpoint = tmp_path / "checkpoint.pt"
    first = presets.get("test_tiny_jitter", max_epochs=4, on_epoch_finished=[_stop_after(2)],
                        callbacks=[("checkpoint", Checkpoint(checkpoint))]).fit(X, y)
    assert len(first.history) == 2
    resumed = presets.get("test_tiny_jitter", max_epochs=4).fit(X, y, resume=checkpoint)
    a, b = straight.module_.state_dict(), resumed.module_.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [h["train_loss"] for h in resumed.history] == \
        [h["train_loss"] for h in straight.history]


def test_a_model_file_naming_an_unregistered_or_refused_iterator_is_refused(tmp_path):
    X, y = tiny_data()
    net = presets.get("test_tiny_jitter", max_epochs=1).fit(X, y)
    path = save_model(net, tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    config = json.loads(payload["config"])
    config["batch_iterators"]["train"]["amount"] = 5.0          # its constructor refuses it
    from facekeypoints._safe_io import seal
    payload["config"] = json.dumps(config)
    torch.save(seal(payload), path)
    with pytest.raises(ModelFileError, match=r"train batch iterator is not what facekeypoints "
                                             r"writes: amount must be in \[0, 1\)"):
        load_model(path)
    config["batch_iterators"]["train"] = {"kind": "NotRegistered", "batch_size": 16}
    payload["config"] = json.dumps(config)
    torch.save(seal(payload), path)
    with pytest.raises(ModelFileError, match="unknown batch iterator 'NotRegistered'; known: "
                                             "BatchIterator, FlipBatchIterator"):
        load_model(path)


def test_iterator_configs_written_by_earlier_releases_still_build():
    from facekeypoints.persist import build_net, net_config

    config = net_config(tiny_net())
    config["batch_iterators"] = {
        "train": {"kind": "AffineBatchIterator", "batch_size": 8, "shuffle": True,
                  "flip_indices": [list(p) for p in fk.FLIP_INDICES], "rotate": 7.5,
                  "scale": 0.05, "shift": 2.0, "flip": False, "padding_mode": "zeros"},
        "test": {"kind": "BatchIterator", "batch_size": 16}}
    net = build_net(config)
    it = net.batch_iterator_train
    assert (type(it), it.batch_size, it.rotate, it.flip, it.shuffle, it.flip_pairs()) == \
        (fk.AffineBatchIterator, 8, 7.5, False, True, fk.FLIP_INDICES)


@register_layer
class ScaleLayer(LayerSpec):
    """Multiply by a fixed factor (a user's own layer kind)."""

    params = {"factor": 1.0}

    @staticmethod
    def build(kw, in_shape):
        class Scale(torch.nn.Module):
            def forward(self, x):
                return x * kw["factor"]
        return Scale(), in_shape


@register_criterion
class HalfMSE(fk.losses.MaskedMSELoss):
    """Half the masked MSE (a user's own criterion)."""

    def elementwise(self, error):
        return 0.5 * error * error


def test_a_user_layer_and_criterion_save_and_load(tmp_path):
    X, y = tiny_data()
    layers = tiny_net().layers
    net = tiny_net(layers=[*layers[:-1], ("scale", ScaleLayer), layers[-1]], scale_factor=0.5,
                   criterion=HalfMSE, max_epochs=1).fit(X, y)
    loaded = load_model(save_model(net, tmp_path / "model.pt"))
    assert [kind for _, kind in read_model_file(tmp_path / "model.pt")["config"]["layers"]][-2:] \
        == ["ScaleLayer", "DenseLayer"]
    assert type(loaded.criterion_) is HalfMSE and loaded.scale_factor == 0.5
    assert fk.losses.get_criterion("HalfMSE") is HalfMSE       # criterion='HalfMSE' works too
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


# -- augmentation settings through set_params, clone, search and --set (issue 26) ------------


def test_augmentation_settings_are_tunable_with_set_params_and_checked_by_the_constructor():
    net = presets.modern(verbose=0)
    net.set_params(batch_iterator_train__rotate=45, batch_iterator_train__shuffle=False)
    it = net.batch_iterator_train
    assert (it.rotate, it.shuffle, it.scale) == (45, False, 0.08)
    assert net.get_params()["batch_iterator_train__rotate"] == 45
    twin = clone(net)
    assert twin.batch_iterator_train is not it and twin.batch_iterator_train.rotate == 45
    with pytest.raises(ValueError, match=r"batch_iterator_train: rotate must be at most 180"):
        net.set_params(batch_iterator_train__rotate=500)
    assert it.rotate == 45                                     # a refused value changes nothing
    with pytest.raises(ValueError, match=r"has no parameter\(s\) spin; it takes batch_size, "
                                         r"rotate"):
        net.set_params(batch_iterator_train__spin=1)
    plain = tiny_net(batch_iterator_test=None)
    plain.set_params(batch_iterator_test__batch_size=8)        # the default iterator, changed
    assert type(plain.batch_iterator_test) is fk.BatchIterator
    assert plain.batch_iterator_test.batch_size == 8


def test_grid_search_tunes_the_training_iterator():
    X, y = tiny_data(n=32)
    net = tiny_net(max_epochs=1, eval_size=None,
                   batch_iterator_train=fk.AffineBatchIterator(16, shift=1, flip=False))
    search = GridSearchCV(net, {"batch_iterator_train__rotate": [0, 30]}, cv=2,
                          scoring="neg_mean_squared_error", error_score="raise").fit(X, y)
    assert [p["batch_iterator_train__rotate"] for p in search.cv_results_["params"]] == [0, 30]
    assert search.best_estimator_.batch_iterator_train.rotate in (0, 30)
    assert net.batch_iterator_train.rotate == 12.0             # the base net is untouched


def test_settings_that_push_most_keypoints_out_of_the_frame_are_refused_or_warned():
    with pytest.raises(ValueError, match=r"shift=1000 moves about 99% of the keypoints out of "
                                         r"the 96-pixel frame.*try shift=6 pixels or less"):
        fk.AffineBatchIterator(shift=1000)
    with pytest.warns(UserWarning, match=r"shift=50 moves about \d+% of the keypoints"):
        fk.AffineBatchIterator(shift=50)
    it = fk.AffineBatchIterator()
    with pytest.raises(ValueError, match="shift=1000"):
        it.set_params(shift=1000)
    assert it.shift == 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fk.AffineBatchIterator(rotate=30, scale=0.2, shift=10)   # strong but sane: quiet


def test_the_command_line_sets_augmentation_and_refuses_bad_values_in_one_line(tmp_path,
                                                                             capsys):
    from facekeypoints import cli
    from facekeypoints.synthetic import write_dataset

    paths = write_dataset(tmp_path / "data", n_train=40, n_test=2)
    common = ["train", "modern", "--data", str(paths["training"]), "--max-epochs", "1"]
    assert cli.main([*common, "--set", "batch_iterator_train__rotate=500",
                     "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rotate must be at most 180" in err
    assert cli.main([*common, "--set", "batch_iterator_train__shift=1000",
                     "--out", str(tmp_path / "bad")]) == 2
    assert "shift=1000 moves about" in capsys.readouterr().err
    assert cli.main([*common, "--set", "batch_iterator_train__rotate=45",
                     "--out", str(tmp_path / "ok")]) == 0
    saved = read_model_file(tmp_path / "ok")["config"]["batch_iterators"]["train"]
    assert saved["kind"] == "AffineBatchIterator" and saved["rotate"] == 45


# -- keypoint geometry: one home --------------------------------------------------------------


def test_data_constants_are_the_kaggle_layouts():
    from facekeypoints import data, metrics

    assert fk.KEYPOINT_COLUMNS == KAGGLE.columns and len(fk.KEYPOINT_COLUMNS) == 30
    assert fk.FLIP_INDICES == KAGGLE.column_flip_pairs and len(fk.FLIP_INDICES) == 12
    assert data.IMAGE_SIDE == metrics.IMAGE_SIDE == KAGGLE.image_side == 96
    assert data.PIXELS_PER_UNIT == metrics.PIXELS_PER_UNIT == KAGGLE.pixel_scale == 48.0


def test_a_subset_layout_gives_the_flip_iterator_its_own_pairs():
    eyes = KAGGLE.subset(["left_eye_center_x", "left_eye_center_y", "nose_tip_x", "nose_tip_y",
                          "right_eye_center_x", "right_eye_center_y"])
    it = fk.FlipBatchIterator(4, layout=eyes, random_state=0)
    assert it.flip_pairs() == ((0, 4), (1, 5))
    X = torch.rand(4, 1, 8, 8)
    y = torch.tensor([[-0.5, 0.1, 0.0, 0.3, 0.5, 0.2]]).repeat(4, 1)
    Xb, yb = next(iter(it(X, y)))
    flipped = (yb != y).any(dim=1)
    assert int(flipped.sum()) == 2
    assert torch.equal(yb[flipped], eyes.flip_targets(y[flipped]))
    assert torch.equal(Xb[flipped], eyes.mirror_images(X[flipped]))
    with pytest.raises(ValueError, match="layout= .* or flip_indices=, not both"):
        fk.FlipBatchIterator(layout=eyes, flip_indices=[(0, 2)])
    with pytest.raises(ValueError, match="a target column is in two flip_indices pairs"):
        fk.FlipBatchIterator(flip_indices=[(0, 2), (2, 4)])


@pytest.mark.skipif("layout" not in inspect.signature(fk.NeuralNet.__init__).parameters,
                    reason="NeuralNet takes no layout= yet")
def test_a_model_file_carries_the_nets_layout(tmp_path):
    X, y = tiny_data(k=4)
    eyes = KAGGLE.subset(["left_eye_center_x", "left_eye_center_y",
                          "right_eye_center_x", "right_eye_center_y"])
    net = tiny_net(output_num_units=4, layout=eyes, max_epochs=1).fit(X, y)
    path = save_model(net, tmp_path / "model.pt")
    assert read_model_file(path)["config"]["layout"] == eyes.to_dict()
    assert load_model(path).layout == eyes


def test_registered_kinds_are_listed_where_they_are_defined():
    assert list(ITERATORS)[:3] == ["BatchIterator", "FlipBatchIterator", "AffineBatchIterator"]
    assert list(PRESETS)[:8] == list(presets.NETS)
    assert presets.net4.__doc__.count("**overrides") == 1
    assert "**overrides" in presets.modern.__doc__
    assert presets.modern.__doc__.index("Returns") < presets.modern.__doc__.index("Examples")
