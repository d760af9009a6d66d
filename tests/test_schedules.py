"""Schedules as functions of progress, and AdjustVariable(schedule=...) driving a net."""
import math
import pickle

import numpy as np
import pytest
from sklearn.base import clone

import facekeypoints as fk
from facekeypoints import schedules
from facekeypoints.schedules import constant, cosine, exponential, join, linear, warmup
from tests.conftest import tiny_data, tiny_net


class StepDown(fk.AdjustVariable):
    """A subclass overriding the one method (module level, so that it pickles)."""

    def schedule(self, progress):
        return self.start if progress < 0.5 else self.stop


def double_start(progress):
    """A plain module-level function is a schedule too."""
    return 0.02 if progress == 0 else 0.01


@pytest.mark.parametrize("schedule,at_0,at_half,at_1", [
    (linear(0.03, 0.01), 0.03, 0.02, 0.01),
    (cosine(1.0, 0.0), 1.0, 0.5, 0.0),
    (cosine(0.03, 0.0001), 0.03, 0.01505, 0.0001),
    (exponential(1.0, 0.01), 1.0, 0.1, 0.01),
    (exponential(0.9, 0.999), 0.9, math.sqrt(0.9 * 0.999), 0.999),
    (constant(0.9), 0.9, 0.9, 0.9),
])
def test_values_at_start_middle_and_end(schedule, at_0, at_half, at_1):
    assert schedule(0) == at_0 and schedule(1) == at_1       # exact at both ends
    assert schedule(0.5) == pytest.approx(at_half, rel=1e-12, abs=1e-15)
    assert type(schedule(0.5)) is float


def test_cosine_is_slow_at_the_ends_and_fast_in_the_middle():
    s = cosine(1.0, 0.0)
    assert 1 - s(0.1) < 0.1 and s(0.9) < 0.1 and s(0.4) - s(0.6) > 0.2


def test_exponential_takes_the_same_factor_every_step():
    values = [exponential(1.0, 1e-4)(p) for p in np.linspace(0, 1, 5)]
    np.testing.assert_allclose(np.array(values[1:]) / values[:-1], 0.1, rtol=1e-12)


def test_join_gives_each_piece_its_own_progress():
    s = join((0.25, linear(0.0, 1.0)), (0.75, cosine(1.0, 0.0)))
    assert [s(p) for p in (0, 0.125, 0.25, 0.625, 1)] == pytest.approx([0, 0.5, 1, 0.5, 0])
    step = join((0.5, constant(1.0)), (0.5, constant(0.1)))
    assert [step(p) for p in (0, 0.49, 0.5, 1)] == [1.0, 1.0, 0.1, 0.1]  # boundary: next piece
    three = join((0.1, constant(1)), (0.2, constant(2)), (0.7, constant(3)))
    assert [three(p) for p in (0.05, 0.2, 0.3, 0.99, 1.0)] == [1, 2, 3, 3, 3]


def test_warmup_pieces_join_continuously():
    then = cosine(0.03, 0.0001)
    s = warmup(0.1, then, start=0.0001)
    assert s(0) == 0.0001 and s(0.05) == pytest.approx((0.0001 + 0.03) / 2)
    assert s(0.1) == then(0) == 0.03 and s(1) == 0.0001
    grid = np.linspace(0, 1, 10001)
    values = np.array([s(p) for p in grid])
    assert np.abs(np.diff(values)).max() < 0.03 / 500       # no jump anywhere
    assert values.argmax() == 1000 and np.all(np.diff(values[1000:]) <= 0)
    assert s(0.55) == pytest.approx(then(0.5))               # ``then`` squeezed into the rest
    joined = join((0.1, linear(0.0001, 0.03)), (0.9, then))
    np.testing.assert_allclose(values, [joined(p) for p in grid], rtol=1e-12)
    assert [warmup(0, then)(p) for p in (0, 0.5, 1)] == [then(0), then(0.5), then(1)]


@pytest.mark.parametrize("make,message", [
    (lambda: exponential(0.0, 1.0), "start > 0 and stop > 0"),
    (lambda: join(), "at least one"),
    (lambda: join((0.5, linear(0, 1)), (0.4, linear(1, 0))), "sum to 1"),
    (lambda: join((0.0, linear(0, 1)), (1.0, linear(1, 0))), "must be > 0"),
    (lambda: join((1.0, 0.5)), "not a schedule"),
    (lambda: warmup(1.0, linear(1, 0)), r"fraction must be in \[0, 1\)"),
    (lambda: warmup(0.1, 0.03), "not a schedule"),
    (lambda: linear(0, 1)(1.5), r"linear\(0.0, 1.0\): progress must be in \[0, 1\]"),
])
def test_bad_schedules_fail_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


ALL = [linear(0.03, 0.0001), cosine(0.03, 0.0001), exponential(0.9, 0.999), constant(0.9),
       join((0.5, constant(1.0)), (0.5, linear(1.0, 0.1))),
       warmup(0.1, cosine(0.03, 0.0001), start=0.0001)]


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_schedules_pickle_compare_and_print_as_the_call_that_made_them(schedule):
    loaded = pickle.loads(pickle.dumps(schedule, -1))
    assert loaded == schedule and hash(loaded) == hash(schedule) and loaded is not schedule
    assert [loaded(p) for p in (0, 0.3, 1)] == [schedule(p) for p in (0, 0.3, 1)]
    assert eval(repr(schedule), vars(schedules)) == schedule
    assert isinstance(schedule, schedules.Schedule) and callable(schedule)
    assert set(schedules.__all__) >= {"linear", "cosine", "exponential", "constant", "join",
                                      "warmup", "Schedule"}


def test_repr_reads_as_code():
    assert repr(warmup(0.1, cosine(0.03, 0.0001), start=0.0001)) == \
        "warmup(0.1, cosine(0.03, 0.0001), start=0.0001)"
    assert repr(join((0.5, constant(1)), (0.5, linear(1, 0)))) == \
        "join((0.5, constant(1.0)), (0.5, linear(1.0, 0.0)))"
    assert linear(0, 1) != cosine(0, 1) and linear(0, 1) == linear(0.0, 1.0)


# -- AdjustVariable(schedule=...) ----------------------------------------------------------------

def test_adjust_variable_with_a_schedule_drives_the_net_epoch_by_epoch():
    X, y = tiny_data()
    lr = fk.AdjustVariable("update_learning_rate",
                           schedule=warmup(1 / 3, linear(0.03, 0.01), start=0.01))
    momentum = fk.AdjustVariable("update_momentum", schedule=exponential(0.5, 0.9))
    net = tiny_net(max_epochs=4, update_learning_rate=fk.shared(fk.float32(0.5)),
                   callbacks=[("adjust_lr", lr)], on_epoch_finished=[momentum]).fit(X, y)
    used_lr = [h["learning_rate"] for h in net.train_history_]
    used_mom = [h["momentum"] for h in net.train_history_]
    assert used_lr == pytest.approx([0.01, 0.03, 0.02, 0.01], rel=1e-6)
    np.testing.assert_allclose(used_lr, lr.simulate(4), rtol=1e-6)
    np.testing.assert_allclose(used_mom, momentum.simulate(4), rtol=1e-6)
    assert used_mom[0] == pytest.approx(0.5) and used_mom[-1] == pytest.approx(0.9)

    loaded = pickle.loads(pickle.dumps(net, -1))              # the schedule travels along
    assert dict(loaded.callbacks_)["adjust_lr"].schedule == lr.schedule
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_a_plain_function_is_a_schedule():
    adjust = fk.AdjustVariable("update_learning_rate", schedule=double_start)
    assert list(adjust.simulate(3)) == [0.02, 0.01, 0.01]
    assert pickle.loads(pickle.dumps(adjust)).schedule is double_start


def test_get_params_set_params_and_clone_cover_the_schedule():
    s = cosine(0.03, 0.0001)
    adjust = fk.AdjustVariable("update_learning_rate", schedule=s)
    assert adjust.get_params() == {"name": "update_learning_rate", "start": 0.03,
                                   "stop": 0.001, "schedule": s}
    copy = clone(adjust)
    assert copy.schedule == s and copy.schedule is not s
    assert repr(copy) == "AdjustVariable('update_learning_rate', schedule=cosine(0.03, 0.0001))"

    plain = fk.AdjustVariable("update_momentum", 0.9, 0.99)
    assert plain.get_params()["schedule"] is None and clone(plain).get_params()["schedule"] is None
    assert repr(plain) == "AdjustVariable('update_momentum', start=0.9, stop=0.99)"
    plain.set_params(schedule=constant(0.5))
    assert list(plain.simulate(2)) == [0.5, 0.5] and plain.schedule(0.3) == 0.5
    plain.set_params(schedule=None)                            # back to the linear method
    assert list(plain.simulate(2)) == [0.9, 0.99] and plain.schedule(1) == 0.99
    assert pickle.loads(pickle.dumps(plain)).get_params() == plain.get_params()


def test_net_set_params_swaps_the_schedule_and_clone_keeps_it():
    net = fk.presets.net4(max_epochs=10)
    s = warmup(0.2, cosine(0.03, 0.0001), start=0.001)
    net.set_params(callbacks__adjust_lr__schedule=s)
    assert net.get_params()["callbacks__adjust_lr__schedule"] == s
    twin = clone(net)
    assert twin.get_params()["callbacks__adjust_lr__schedule"] == s
    twin.initialize()
    np.testing.assert_allclose(dict(twin.callbacks_)["adjust_lr"].simulate(10),
                               [s(p) for p in np.linspace(0, 1, 10)])


def test_clone_after_set_params_start_trains_with_the_new_start():
    X, y = tiny_data()
    net = tiny_net(max_epochs=2, callbacks=[("adjust_lr", fk.AdjustVariable(
        "update_learning_rate", 0.03, 0.01)), ("step", StepDown("update_momentum", 0.9, 0.5))])
    net.set_params(callbacks__adjust_lr__start=0.05, callbacks__step__stop=0.6)
    twin = clone(net).fit(X, y)
    assert [h["learning_rate"] for h in twin.train_history_] == pytest.approx([0.05, 0.01])
    assert [h["momentum"] for h in twin.train_history_] == pytest.approx([0.9, 0.6])
    assert type(dict(twin.callbacks_)["step"]) is StepDown


def test_subclass_overriding_the_method_still_works():
    step = StepDown("update_learning_rate", 1.0, 0.1)
    assert list(step.simulate(4)) == [1.0, 1.0, 0.1, 0.1] and step.schedule(0.75) == 0.1
    assert step.get_params()["schedule"] is None
    for copy in (clone(step), pickle.loads(pickle.dumps(step, -1))):
        assert type(copy) is StepDown and list(copy.simulate(4)) == [1.0, 1.0, 0.1, 0.1]
    step.set_params(schedule=constant(0.3))                    # a given schedule wins ...
    assert list(step.simulate(2)) == [0.3, 0.3]
    step.set_params(schedule=None)                             # ... until taken away
    assert list(step.simulate(2)) == [1.0, 0.1]


def test_subclass_with_its_own_init_clones_without_a_schedule_parameter():
    class Peak(fk.AdjustVariable):
        def __init__(self, name, start=0.1, stop=0.2, peak=1.0):
            super().__init__(name, start, stop)
            self.peak = peak

        def schedule(self, progress):
            return self.peak if progress == 0 else self.stop

    peak = Peak("x", peak=2.0)
    assert peak.get_params() == {"name": "x", "start": 0.1, "stop": 0.2, "peak": 2.0}
    assert list(clone(peak).simulate(2)) == [2.0, 0.2]


def test_shipped_subclasses_match_the_schedule_functions():
    for cls, fn in ((fk.CosineAdjustVariable, cosine),
                    (fk.ExponentialAdjustVariable, exponential)):
        composed = fk.AdjustVariable("update_learning_rate", schedule=fn(0.03, 0.0001))
        np.testing.assert_allclose(cls("update_learning_rate", 0.03, 0.0001).simulate(7),
                                   composed.simulate(7), rtol=1e-12)


def test_a_schedule_leaving_the_valid_range_fails_before_training():
    X, y = tiny_data()
    seen = []
    bad = fk.AdjustVariable("update_momentum", schedule=warmup(0.5, constant(1.0), start=0.9))
    net = tiny_net(max_epochs=5, callbacks=[("m", bad)],
                   on_epoch_finished=[lambda nn, h: seen.append(1)])
    with pytest.raises(ValueError, match=r"AdjustVariable\('update_momentum', schedule=warmup"
                                         r".*in epoch 3: update_momentum must be in \[0, 1\)"):
        net.fit(X, y)
    with pytest.raises(TypeError, match="schedule must be a function of progress"):
        tiny_net(callbacks=[("lr", fk.AdjustVariable("update_learning_rate",
                                                     schedule=0.01))]).fit(X, y)
    assert seen == []
