"""The learning-rate range test and the one-cycle schedule."""
import numpy as np
import pytest
import torch

import facekeypoints as fk
from facekeypoints.lr_find import lr_find
from facekeypoints.schedules import one_cycle, one_cycle_momentum

from .conftest import tiny_data, tiny_net


def _state(net):
    module = {k: v.clone() for k, v in net.module_.state_dict().items()}
    opt = net.optimizer_.state_dict()
    return module, opt


def test_lr_find_leaves_the_net_and_its_optimizer_as_they_were():
    X, y = tiny_data()
    net = tiny_net().initialize()
    before_module, before_opt = _state(net)
    torch_rng = torch.get_rng_state()
    result = lr_find(net, X, y, steps=40)
    after_module, after_opt = _state(net)
    assert before_module.keys() == after_module.keys()
    assert all(torch.equal(before_module[k], after_module[k]) for k in before_module)
    assert after_opt["param_groups"] == before_opt["param_groups"]
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert len(result.losses) == len(result.learning_rates) <= 40


def test_fit_after_lr_find_equals_fit_without_it():
    X, y = tiny_data()
    plain = tiny_net(max_epochs=2).fit(X, y)
    probed = tiny_net(max_epochs=2).initialize()
    lr_find(probed, X, y, steps=30)
    probed.fit(X, y)
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in probed.history]
    assert np.array_equal(plain.predict(X), probed.predict(X))


def test_learning_rates_grow_exponentially_and_the_suggestion_is_on_the_curve():
    X, y = tiny_data(n=64)
    result = lr_find(tiny_net().initialize(), X, y, start=1e-5, stop=1.0, steps=50,
                     diverge=1e9)
    lrs = result.learning_rates
    ratios = lrs[1:] / lrs[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 1
    assert lrs[0] == pytest.approx(1e-5)
    assert result.suggestion is not None
    i_min = int(np.nanargmin(result.smoothed))
    assert result.minimum == pytest.approx(lrs[i_min] / 10)
    # the suggestion lies on the steepest fall: below the minimum, where the loss is falling
    i = int(np.argmin(np.abs(np.log(lrs) - np.log(result.suggestion))))
    assert lrs[0] < result.suggestion < lrs[i_min]
    assert result.smoothed[i] < result.smoothed[0]
    assert "suggested learning rate" in result.summary()
    table = result.table()
    assert list(table.columns) == ["step", "learning_rate", "loss", "smoothed_loss"]


def test_a_diverging_range_test_stops_cleanly_and_says_why():
    X, y = tiny_data()
    result = lr_find(tiny_net().initialize(), X, y, start=1e-3, stop=1e6, steps=100)
    assert result.stopped in ("diverged", "not finite")
    assert len(result.losses) < 100
    assert all(v is None or np.isfinite(v) for v in result.to_dict()["loss"])


def test_lr_find_works_for_adamw():
    X, y = tiny_data()
    net = tiny_net(update=fk.updates.adamw, update_momentum=None,
                   update_learning_rate=1e-3).initialize()
    result = lr_find(net, X, y, steps=30)
    assert len(result.losses) > 3


@pytest.mark.parametrize("kwargs", [dict(start=0), dict(stop=1e-9), dict(steps=2),
                                    dict(smooth=1.0), dict(diverge=1.0)])
def test_lr_find_refuses_settings_out_of_range(kwargs):
    X, y = tiny_data()
    with pytest.raises(ValueError, match="out of range"):
        lr_find(tiny_net().initialize(), X, y, **kwargs)


def test_one_cycle_through_adjust_variable_moves_lr_and_momentum_opposite_ways():
    X, y = tiny_data()
    net = tiny_net(max_epochs=5, update_learning_rate=fk.shared(0.01),
                   update_momentum=fk.shared(0.9),
                   on_epoch_finished=[
                       fk.AdjustVariable("update_learning_rate", schedule=one_cycle(0.05)),
                       fk.AdjustVariable("update_momentum", schedule=one_cycle_momentum())])
    net.fit(X, y)
    lrs = [h["learning_rate"] for h in net.history]
    moms = [h["momentum"] for h in net.history]
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1
    assert int(np.argmin(moms)) == peak
    assert lrs[-1] < lrs[0] and moms[-1] == pytest.approx(0.95, abs=1e-6)


def test_one_cycle_refuses_bad_settings_and_pickles():
    import pickle

    with pytest.raises(ValueError):
        one_cycle(0.0)
    with pytest.raises(ValueError):
        one_cycle_momentum(pct_start=1.0)
    s = one_cycle(0.03)
    assert pickle.loads(pickle.dumps(s)) == s and repr(s).startswith("one_cycle(0.03")


def test_the_suggestion_is_the_middle_of_the_largest_fall():
    from facekeypoints.lr_find import _suggest

    lrs = np.logspace(-6, 0, 13)
    smoothed = np.array([1.0, 1.0, 1.01, 1.0, 0.9, 0.6, 0.3, 0.2, 0.25, 0.3, 2.0, 5.0, 9.0])
    suggestion, steepest, minimum = _suggest(lrs, smoothed)
    assert suggestion == pytest.approx(np.sqrt(lrs[2] * lrs[7]))  # from the last rise
    assert minimum == pytest.approx(lrs[7] / 10)
    assert steepest in (lrs[4], lrs[5])
    assert _suggest(lrs[:2], smoothed[:2]) == (None, None, None)


def test_the_net_method_runs_the_same_test():
    X, y = tiny_data()
    a = tiny_net().initialize().lr_find(X, y, steps=25)
    b = lr_find(tiny_net().initialize(), X, y, steps=25)
    assert np.array_equal(a.losses, b.losses) and a.suggestion == b.suggestion
