"""The modern preset and its parts: BatchNormLayer, the W and b layer keywords, AdamW, and the
warm-up + cosine schedule, composed with clone, pickle, model files and exact resume."""
import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

import facekeypoints as fk
from facekeypoints import presets, synthetic, updates
from facekeypoints.checkpoint import Checkpoint
from facekeypoints.layers import (BatchNormLayer, Conv2DLayer, DenseLayer, InputLayer,
                                  MaxPool2DLayer, build_stack, split_layer_params)
from facekeypoints.persist import load_model, save_model
from facekeypoints.schedules import cosine


def faces(n=64, seed=0):
    """``n`` embedded-style faces, scaled as ``fk.load2d`` scales them."""
    images, keypoints = synthetic.render_faces(n, seed=seed)
    X = (images[:, None] / 255.0).astype(np.float32)
    y = ((keypoints - 48) / 48).astype(np.float32)
    return X, y


def small_modern(**overrides):
    params = dict(max_epochs=2, verbose=0, random_state=0, device="cpu")
    params.update(overrides)
    return presets.modern(**params)


def bn_stack(**extra):
    layers = [("input", InputLayer), ("conv1", Conv2DLayer), ("bn1", BatchNormLayer),
              ("pool1", MaxPool2DLayer), ("hidden", DenseLayer), ("bnh", BatchNormLayer),
              ("output", DenseLayer)]
    params = dict(input_shape=(None, 1, 16, 16), conv1_num_filters=4, conv1_filter_size=3,
                  conv1_pad="same", conv1_nonlinearity=None, conv1_b=None,
                  bn1_nonlinearity="relu", pool1_pool_size=2, hidden_num_units=8,
                  hidden_b=None, hidden_nonlinearity=None, bnh_nonlinearity="relu",
                  output_num_units=3, output_nonlinearity=None)
    params.update(extra)
    grouped, rest = split_layer_params(layers, params)
    assert not rest
    return layers, params, grouped


# -- layers ---------------------------------------------------------------------------------

def test_batch_norm_layer_keeps_shapes_after_convs_and_dense_layers():
    stack = build_stack(*bn_stack()[::2])
    assert stack.shapes == {"input": (1, 16, 16), "conv1": (4, 16, 16), "bn1": (4, 16, 16),
                            "pool1": (4, 8, 8), "hidden": (8,), "bnh": (8,), "output": (3,)}
    assert isinstance(stack.layers["bn1"][0], torch.nn.BatchNorm2d)
    assert isinstance(stack.layers["bnh"][0], torch.nn.BatchNorm1d)
    assert stack(torch.rand(5, 1, 16, 16)).shape == (5, 3)
    norm = stack.layers["bn1"][0]
    assert norm.eps == 1e-4 and norm.momentum == 0.1      # Lasagne's epsilon and alpha
    assert stack.layers["conv1"][0].bias is None and stack.layers["hidden"][1].bias is None


def test_batch_norm_layer_keywords_and_their_errors():
    grouped = bn_stack(bn1_epsilon=1e-3, bn1_alpha=0.5)[2]
    norm = build_stack(bn_stack()[0], grouped).layers["bn1"][0]
    assert (norm.eps, norm.momentum) == (1e-3, 0.5)
    layers = bn_stack()[0]
    for key, value, message in [("bn1_alpha", 0.0, "alpha must be in"),
                                ("bn1_epsilon", -1.0, "epsilon must be a number > 0"),
                                ("conv1_b", 0.5, r"b=None \(no bias"),
                                ("output_W", -1.0, "gain of the Glorot-uniform")]:
        with pytest.raises(ValueError, match=message):
            build_stack(layers, bn_stack(**{key: value})[2])
    with pytest.raises(ValueError, match="bn1_gamma"):
        build_stack(layers, bn_stack(bn1_gamma=1.0)[2])


def test_batch_norm_state_is_parameters_and_running_averages_all_floating_point():
    stack = build_stack(*bn_stack()[::2])
    state = stack.state_dict()
    assert {k for k in state if k.startswith("layers.bn1.")} == {
        "layers.bn1.0.weight", "layers.bn1.0.bias", "layers.bn1.0.running_mean",
        "layers.bn1.0.running_var"}
    assert all(t.is_floating_point() for t in state.values())
    # a state dict of torch's own BatchNorm2d (with its batch counter) loads as well
    torch_state = {f"layers.bn1.0.{k}": v for k, v in torch.nn.BatchNorm2d(4).state_dict().items()}
    stack.load_state_dict({**state, **torch_state})


def test_running_averages_make_predictions_independent_of_the_batch():
    stack = build_stack(*bn_stack()[::2])
    x = torch.rand(32, 1, 16, 16)
    stack.train()
    for _ in range(3):
        stack(x)
    assert not torch.equal(stack.layers["bn1"][0].running_mean, torch.zeros(4))
    stack.eval()
    with torch.no_grad():
        torch.testing.assert_close(stack(x[:4]), stack(x)[:4])


def test_w_is_the_glorot_gain_and_zero_starts_at_zero():
    def output_weight(**extra):
        torch.manual_seed(0)
        return build_stack(*bn_stack(**extra)[::2]).layers["output"][0].weight
    torch.testing.assert_close(output_weight(output_W=0.1), 0.1 * output_weight())
    assert not output_weight(output_W=0).any()


def test_summary_and_parameter_count_include_the_batch_norms():
    net = fk.NeuralNet(layers=bn_stack()[0], **bn_stack()[1], verbose=0, device="cpu")
    unbuilt = net.n_parameters()                    # counted on the meta device
    summary = net.initialize().layer_summary()
    # conv 4*9, bn1 2*4, hidden 256*8 (no bias), bnh 2*8, output 8*3+3
    assert unbuilt == net.n_parameters() == 36 + 8 + 2048 + 16 + 27
    assert "bn1" in summary and "4x16x16" in summary and "bnh" in summary


# -- adamw ----------------------------------------------------------------------------------

def test_adamw_takes_torchs_steps_and_its_hyperparameters_can_be_scheduled():
    p1 = [torch.nn.Parameter(torch.ones(20, 5))]
    p2 = [torch.nn.Parameter(torch.ones(20, 5))]
    ours = updates.adamw(p1, learning_rate=0.01, weight_decay=0.1)
    theirs = torch.optim.AdamW(p2, lr=0.01, weight_decay=0.1, foreach=False)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        grad = torch.randn(20, 5, generator=g)
        p1[0].grad, p2[0].grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
    torch.testing.assert_close(p1[0], p2[0])
    updates.set_hyperparameter(ours, updates.adamw, "weight_decay", 0.5)
    updates.set_hyperparameter(ours, updates.adamw, "momentum", 0.8)
    assert ours.param_groups[0]["weight_decay"] == 0.5
    assert ours.param_groups[0]["betas"] == (0.8, 0.999)
    with pytest.raises(ValueError, match="update_weight_decay must be >= 0"):
        updates.check_hyperparameter("update_weight_decay", -0.1)


def test_adjust_variable_schedules_adamw_weight_decay_between_epochs():
    X, y = faces(32)
    net = small_modern(max_epochs=3, update_weight_decay=0.0, callbacks=[
        ("adjust_wd", fk.AdjustVariable("update_weight_decay", 0.0, 0.2))])
    seen = []
    net.set_params(on_epoch_finished=[
        lambda nn, history: seen.append(nn.optimizer_.param_groups[0]["weight_decay"])])
    net.fit(X, y)
    assert seen == pytest.approx([0.0, 0.1, 0.2])


# -- the preset -----------------------------------------------------------------------------

def test_modern_is_a_preset_built_from_batch_norm_blocks_and_adamw():
    assert "modern" in presets.NETS
    net = presets.get("modern", verbose=0)
    names = [name for name, _ in net.layers]
    assert names[:4] == ["input", "conv1", "bn1", "pool1"]
    assert names[-3:] == ["hidden", "dropout", "output"]
    assert sum(1 for _, cls in net.layers if cls is BatchNormLayer) == 6
    assert net.update is updates.adamw and net.max_epochs == 40
    assert net.update_learning_rate == 2e-3 and net.update_weight_decay == 1e-2
    assert isinstance(net.batch_iterator_train, fk.FlipBatchIterator)
    assert net.batch_iterator_train.batch_size == 64
    shapes = net.initialize().module_.shapes
    assert shapes["bn6"] == (128, 6, 6) and shapes["pool6"] == (128, 3, 3)
    assert shapes["output"] == (30,)


def test_modern_trains_two_epochs_on_64_faces():
    X, y = faces()
    net = small_modern().fit(X, y)
    assert [h["epoch"] for h in net.history] == [1, 2]
    assert all(math.isfinite(h["valid_loss"]) for h in net.history)
    assert net.predict(X).shape == (64, 30)
    assert {"learning_rate", "momentum"} <= set(net.history[-1])


def test_the_training_iterator_is_one_keyword():
    X, y = faces(32)
    iterator = fk.BatchIterator(16, shuffle=True)
    net = small_modern(max_epochs=1, batch_iterator_train=iterator).fit(X, y)
    assert net.batch_iterator_train is iterator and net.history[-1]["train_batch_count"] == 2


def test_learning_rate_warms_up_for_two_epochs_then_follows_half_a_cosine():
    net = presets.modern()
    adjust = dict(net.callbacks)["adjust_lr"]
    lr = adjust.simulate(40)
    assert lr[0] == pytest.approx(2e-4) and lr[1] == pytest.approx(1.1e-3)
    expected = [cosine(2e-3, 2e-6)((e - 3) / 37) for e in range(3, 41)]
    np.testing.assert_allclose(lr[2:], expected, rtol=1e-9)
    assert lr[2] == pytest.approx(2e-3) and lr[-1] == pytest.approx(2e-6)
    assert np.all(np.diff(lr[2:]) < 0)


def test_schedule_follows_max_epochs_and_the_peak_given_to_the_preset():
    lr = dict(presets.modern(max_epochs=8, update_learning_rate=1e-3).callbacks)[
        "adjust_lr"].simulate(8)
    np.testing.assert_allclose(lr[:3], [1e-4, 5.5e-4, 1e-3])
    assert lr[-1] == pytest.approx(1e-6)
    X, y = faces(32)
    net = small_modern(max_epochs=3).fit(X, y)
    planned = dict(net.callbacks)["adjust_lr"].simulate(3)
    np.testing.assert_allclose([h["learning_rate"] for h in net.history], planned, rtol=1e-6)
    with pytest.raises(ValueError, match="peak learning rate must be > 0"):
        presets.modern_schedule(0.0)


def test_clone_get_params_and_pickle():
    X, y = faces(32)
    net = small_modern(max_epochs=1)
    twin = clone(net)
    assert twin.get_params()["conv1_b"] is None and twin.get_params()["output_W"] == 0.1
    schedule = dict(net.callbacks)["adjust_lr"].schedule
    assert dict(twin.callbacks)["adjust_lr"].schedule == schedule
    twin.set_params(callbacks__adjust_lr__schedule=presets.modern_schedule(1e-3, 1))
    assert dict(twin.callbacks)["adjust_lr"].schedule != schedule
    assert dict(net.callbacks)["adjust_lr"].schedule == schedule
    net.fit(X, y)
    loaded = pickle.loads(pickle.dumps(net, -1))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_model_file_round_trip(tmp_path):
    X, y = faces(32)
    net = small_modern(max_epochs=1).fit(X, y)
    loaded = load_model(save_model(net, tmp_path / "model.pt"))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.update is updates.adamw
    assert loaded.update_weight_decay == pytest.approx(1e-2)


def test_resume_with_batch_norm_is_bit_identical(tmp_path):
    X, y = faces()
    path = tmp_path / "checkpoint.pt"

    def stop_after_two(nn, history):
        if len(history) == 2:
            raise StopIteration

    straight = small_modern(max_epochs=4).fit(X, y)
    first = small_modern(max_epochs=4)
    first.set_params(callbacks=[*first.callbacks, ("checkpoint", Checkpoint(path))],
                     on_epoch_finished=[stop_after_two]).fit(X, y)
    assert len(first.history) == 2
    resumed = small_modern(max_epochs=4).fit(X, y, resume=path)
    assert len(resumed.history) == 4
    a, b = straight.module_.state_dict(), resumed.module_.state_dict()
    assert a.keys() == b.keys() and any("running_var" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [h["valid_loss"] for h in straight.history] == \
        [h["valid_loss"] for h in resumed.history]


def test_modern_predicts_with_flip_tta_by_default():
    net = presets.modern(verbose=0)
    assert net.tta is True
    it = net.batch_iterator_train
    assert type(it) is fk.AffineBatchIterator and it.flip and it.shuffle
    assert (it.batch_size, it.rotate, it.scale, it.shift) == (64, 12.0, 0.08, 5.0)
