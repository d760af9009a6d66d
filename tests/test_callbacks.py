"""AdjustVariable schedules and EarlyStopping, as a user relies on them."""
import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

import facekeypoints as fk
from facekeypoints.updates import adam
from tests.conftest import tiny_data, tiny_net


def test_linear_schedule_uses_exactly_start_first_and_stop_last():
    values = fk.AdjustVariable("update_learning_rate", 0.03, 0.0001).simulate(5)
    assert values[0] == 0.03 and values[-1] == 0.0001
    np.testing.assert_allclose(values, np.linspace(0.03, 0.0001, 5))


def test_schedule_stays_at_stop_past_max_epochs():
    adjust = fk.AdjustVariable("update_momentum", 0.9, 0.999)
    values = adjust.simulate(8, max_epochs=4)
    np.testing.assert_allclose(values[3:], 0.999)
    assert adjust.value_at(1, 1) == 0.9


@pytest.mark.parametrize("as_skorch_callback", [True, False])
def test_training_uses_the_simulated_values(as_skorch_callback):
    X, y = tiny_data()
    adjust_lr = fk.AdjustVariable("update_learning_rate", 0.03, 0.001)
    adjust_mom = fk.AdjustVariable("update_momentum", 0.9, 0.99)
    where = (dict(callbacks=[("adjust_lr", adjust_lr), ("adjust_momentum", adjust_mom)])
             if as_skorch_callback else dict(on_epoch_finished=[adjust_lr, adjust_mom]))
    net = tiny_net(max_epochs=4, update_learning_rate=fk.shared(fk.float32(0.5)),
                   update_momentum=fk.shared(fk.float32(0.5)), **where).fit(X, y)
    used_lr = [h["learning_rate"] for h in net.train_history_]
    used_mom = [h["momentum"] for h in net.train_history_]
    np.testing.assert_allclose(used_lr, adjust_lr.simulate(4), rtol=1e-6)
    np.testing.assert_allclose(used_mom, adjust_mom.simulate(4), rtol=1e-6)


def test_float_hyperparameters_are_scheduled_too():
    X, y = tiny_data()
    net = tiny_net(max_epochs=3, update_learning_rate=0.5,
                   callbacks=[("adjust_lr", fk.AdjustVariable("update_learning_rate", 0.02, 0.01))])
    net.fit(X, y)
    assert [h["learning_rate"] for h in net.train_history_] == pytest.approx([0.02, 0.015, 0.01])


def test_more_epochs_than_max_epochs_do_not_raise():
    X, y = tiny_data()
    adjust = fk.AdjustVariable("update_learning_rate", 0.02, 0.01)
    net = tiny_net(max_epochs=2, callbacks=[("adjust_lr", adjust)]).fit(X, y)
    net.partial_fit(X, y)  # epochs 3 and 4
    net.fit_loop(X, y, epochs=1)
    lrs = [h["learning_rate"] for h in net.train_history_]
    assert len(lrs) == 5 and lrs[2:] == pytest.approx([0.01] * 3)


def test_momentum_schedule_drives_adam_beta1():
    X, y = tiny_data()
    net = tiny_net(update=adam, update_learning_rate=0.001, update_momentum=0.9, max_epochs=3,
                   callbacks=[("m", fk.AdjustVariable("update_momentum", 0.8, 0.9))]).fit(X, y)
    assert [h["momentum"] for h in net.train_history_] == pytest.approx([0.8, 0.85, 0.9])
    assert net.optimizer_.param_groups[0]["betas"][0] == pytest.approx(0.9)


def test_custom_schedule_overrides_one_method():
    class Step(fk.AdjustVariable):
        def schedule(self, progress):
            return self.start if progress < 0.5 else self.stop

    assert list(Step("x", 1.0, 0.1).simulate(5)) == [1.0, 1.0, 0.1, 0.1, 0.1]


def test_cosine_and_exponential_schedules():
    cos = fk.CosineAdjustVariable("lr", 1.0, 0.0).simulate(3)
    np.testing.assert_allclose(cos, [1.0, 0.5, 0.0], atol=1e-12)
    exp = fk.ExponentialAdjustVariable("lr", 1.0, 0.01).simulate(3)
    np.testing.assert_allclose(exp, [1.0, 0.1, 0.01])


def test_unknown_hyperparameter_name_fails_before_training_with_a_suggestion():
    X, y = tiny_data()
    seen = []
    net = tiny_net(callbacks=[("adjust", fk.AdjustVariable("update_learnin_rate", 0.1, 0.01))],
                   on_epoch_finished=[lambda nn, h: seen.append(1)])
    with pytest.raises(ValueError, match="no hyperparameter 'update_learnin_rate'.*"
                                         "Did you mean 'update_learning_rate'"):
        net.fit(X, y)
    assert seen == []


def test_schedule_state_never_leaks_into_params():
    X, y = tiny_data()
    adjust = fk.AdjustVariable("update_learning_rate", 0.03, 0.001)
    before = adjust.get_params()
    net = tiny_net(callbacks=[("adjust_lr", adjust)]).fit(X, y)
    assert adjust.get_params() == before
    params = net.get_params()
    assert params["callbacks__adjust_lr__start"] == 0.03
    clone(net).fit(X, y)


def test_presets_expose_named_schedule_callbacks():
    net = fk.presets.net4(max_epochs=10)
    net.set_params(callbacks__adjust_lr__stop=1e-3)
    net.initialize()
    assert dict(net.callbacks_)["adjust_lr"].stop == 1e-3
    assert clone(net).get_params()["callbacks__adjust_lr__stop"] == 1e-3


class RecordLoss(Callback):
    """Feeds EarlyStopping a chosen loss sequence and records the weights of each epoch."""

    def __init__(self, losses):
        self.losses = losses

    def initialize(self):
        self.weights_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        net.history.record("fake_loss", self.losses[len(net.history) - 1])
        self.weights_.append(net.module_.layers["output"][0].weight.detach().clone())


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    X, y = tiny_data()
    recorder = RecordLoss([5, 4, 3, 3.5, 3.6, 3.7, 1, 1, 1, 1])
    stopper = fk.EarlyStopping(patience=3, monitor="fake_loss", verbose=False)
    net = tiny_net(max_epochs=10, callbacks=[("rec", recorder), ("stop", stopper)]).fit(X, y)
    assert len(net.train_history_) == 6
    torch.testing.assert_close(net.module_.layers["output"][0].weight, recorder.weights_[2])


def test_early_stopping_restores_the_best_weights_at_max_epochs():
    X, y = tiny_data()
    recorder = RecordLoss([5, 1, 3, 4])
    stopper = fk.EarlyStopping(patience=10, monitor="fake_loss", verbose=False)
    net = tiny_net(max_epochs=4, callbacks=[("rec", recorder)], on_epoch_finished=[stopper])
    net.fit(X, y)
    assert len(net.train_history_) == 4
    torch.testing.assert_close(net.module_.layers["output"][0].weight, recorder.weights_[1])


def test_old_recipe_net4_code_ports_by_changing_imports(tmp_path):
    """The tutorial's net4 with its own AdjustVariable (tests/old_recipe.py) trains and pickles."""
    from tests.old_recipe import make_net4

    net4 = make_net4(max_epochs=3)
    rng = np.random.default_rng(0)
    X = rng.random((20, 1, 96, 96), dtype=np.float32)
    y = rng.uniform(-0.5, 0.5, (20, 30)).astype(np.float32)
    net4.fit(X, y)
    lrs = [h["learning_rate"] for h in net4.train_history_]
    # the old callback sets after each epoch: epochs 1 and 2 both train at start
    assert lrs == pytest.approx([0.03, 0.03, 0.01505], rel=1e-5)
    with open(tmp_path / "net4.pickle", "wb") as f:
        pickle.dump(net4, f, -1)
    with open(tmp_path / "net4.pickle", "rb") as f:
        loaded = pickle.load(f)
    np.testing.assert_array_equal(loaded.predict(X), net4.predict(X))
    assert math.isclose(loaded.update_learning_rate.get_value(), 0.0001, rel_tol=1e-5)


def test_schedules_that_leave_the_valid_range_fail_before_training():
    X, y = tiny_data()
    seen = []
    bad_momentum = fk.AdjustVariable("update_momentum", 0.9, 1.0)
    net = tiny_net(callbacks=[("m", bad_momentum)],
                   on_epoch_finished=[lambda nn, h: seen.append(1)])
    with pytest.raises(ValueError, match=r"update_momentum.*epoch 3.*must be in \[0, 1\)"):
        net.fit(X, y)
    bad_lr = fk.AdjustVariable("update_learning_rate", 0.01, -0.01)
    with pytest.raises(ValueError, match="update_learning_rate must be > 0"):
        tiny_net(callbacks=[("lr", bad_lr)]).fit(X, y)
    assert seen == []


def test_divergence_leaves_the_last_checkpoint_untouched(tmp_path):
    from facekeypoints.checkpoint import Checkpoint

    X, y = tiny_data()
    path = tmp_path / "ck.pt"
    boom = fk.shared(fk.float32(0.01))

    def explode_after_two(nn, history):
        if len(history) == 2:
            boom.set_value(1e9)

    net = tiny_net(max_epochs=6, update_learning_rate=boom, callbacks=[("ck", Checkpoint(path))],
                   on_epoch_finished=[explode_after_two])
    with pytest.raises(fk.DivergenceError, match=r"epoch \d"):
        net.fit(X, y * 1e3)
    import facekeypoints.checkpoint as ckpt
    assert ckpt.read_checkpoint(path)["epoch"] >= 2
    assert all(torch.isfinite(p).all() for p in net.module_.parameters())


def test_a_warm_up_schedule_controls_its_own_first_epoch():
    class WarmUp(fk.AdjustVariable):
        def schedule(self, progress):
            return self.stop if progress == 0 else self.start

    assert list(WarmUp("update_learning_rate", 0.03, 0.001).simulate(3)) == [0.001, 0.03, 0.03]
