"""NeuralNet: the estimator contract, old-recipe keywords, hyperparameters, persistence."""
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

import facekeypoints as fk
from facekeypoints import layers as L
from facekeypoints.updates import adam, nesterov_momentum, sgd
from tests.conftest import tiny_data, tiny_net


def test_fit_returns_self_and_history_has_the_recipe_fields():
    X, y = tiny_data()
    net = tiny_net()
    assert net.fit(X, y) is net
    hist = net.train_history_
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for h in hist:
        for key in ("train_loss", "valid_loss", "dur", "learning_rate", "momentum", "train_val"):
            assert type(h[key]) is float, key
        assert h["train_val"] == pytest.approx(h["train_loss"] / h["valid_loss"])
    assert net.predict(X).shape == (40, 30)
    assert net.predict(X).dtype == np.float32


def test_same_random_state_gives_identical_runs():
    X, y = tiny_data()
    a = tiny_net(batch_iterator_train=fk.FlipBatchIterator(16)).fit(X, y)
    b = tiny_net(batch_iterator_train=fk.FlipBatchIterator(16)).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    losses = [[h["train_loss"] for h in net.train_history_] for net in (a, b)]
    assert losses[0] == losses[1]


def test_eval_size_uses_the_first_fold_for_validation():
    X, y = tiny_data(n=50)
    net = tiny_net(max_epochs=1).fit(X, y)
    h = net.train_history_[-1]
    assert sum(b["valid_batch_size"] for b in h["batches"] if "valid_batch_size" in b) == 10
    assert sum(b["train_batch_size"] for b in h["batches"] if "train_batch_size" in b) == 40
    # the validation loss is the loss on the first 10 rows
    mse = float(((net.predict(X[:10]) - y[:10]) ** 2).mean())
    assert h["valid_loss"] == pytest.approx(mse, rel=1e-5)


def test_eval_size_zero_trains_on_everything():
    X, y = tiny_data()
    net = tiny_net(eval_size=0, max_epochs=1).fit(X, y)
    assert "valid_loss" not in net.train_history_[-1]


def test_layer_keywords_build_the_recipe_shapes_and_parameter_counts():
    net = fk.presets.net2(verbose=0).initialize()
    assert net.n_parameters() == 8_051_502
    assert net.module_.shapes["pool3"] == (128, 11, 11)
    assert fk.presets.net7(verbose=0).initialize().n_parameters() == 16_561_502
    assert fk.presets.net1(verbose=0).initialize().n_parameters() == 924_730


def test_glorot_uniform_weights_and_zero_biases():
    net = tiny_net().initialize()
    conv = net.module_.layers["conv1"][0]
    fan_in, fan_out = 1 * 9, 4 * 9
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert conv.weight.abs().max() <= limit
    assert conv.weight.abs().max() > 0.8 * limit
    assert torch.count_nonzero(conv.bias) == 0
    assert isinstance(net.module_.layers["output"][-1], torch.nn.Identity)
    assert isinstance(net.module_.layers["hidden"][-1], torch.nn.ReLU)


def test_unknown_layer_keyword_is_named_in_the_error():
    with pytest.raises(ValueError, match="conv1_num_filtres"):
        tiny_net(conv1_num_filtres=3).initialize()
    with pytest.raises(ValueError, match="hidden_num_units"):
        tiny_net(hidden_num_units=None).initialize()


def test_skorch_names_that_this_net_replaces_are_refused_with_the_equivalent():
    with pytest.raises(TypeError, match="update_learning_rate"):
        tiny_net(lr=0.1)
    with pytest.raises(TypeError, match="eval_size"):
        tiny_net(train_split=None)


def test_module_instead_of_layers():
    X, y = tiny_data()
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 30))
    net = fk.NeuralNet(module=module, max_epochs=2, verbose=0, random_state=0).fit(X, y)
    assert net.predict(X).shape == (40, 30)


def test_get_params_set_params_and_clone():
    net = tiny_net(max_epochs=7)
    params = net.get_params(deep=False)
    assert params["max_epochs"] == 7 and params["conv1_num_filters"] == 4
    net.set_params(conv1_num_filters=6, max_epochs=2)
    twin = clone(net)
    assert twin.conv1_num_filters == 6 and twin.max_epochs == 2
    X, y = tiny_data()
    twin.fit(X, y)
    assert twin.module_.layers["conv1"][0].out_channels == 6
    assert not hasattr(net, "module_")


def test_clone_copies_shared_variables_instead_of_sharing_them():
    lr = fk.shared(fk.float32(0.01))
    net = tiny_net(update_learning_rate=lr)
    twin = clone(net)
    assert twin.update_learning_rate is not lr
    assert twin.update_learning_rate.get_value() == np.float32(0.01)


def test_shared_value_set_between_epochs_is_used_in_the_next_epoch():
    X, y = tiny_data()
    lr = fk.shared(fk.float32(0.01))

    def halve(nn, history):
        lr.set_value(lr.get_value() / 2)

    net = tiny_net(update_learning_rate=lr, on_epoch_finished=[halve]).fit(X, y)
    used = [h["learning_rate"] for h in net.train_history_]
    assert used == pytest.approx([0.01, 0.005, 0.0025])
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.0025)


def test_on_training_finished_and_stop_iteration():
    X, y = tiny_data()
    calls = []

    def stop_after_two(nn, history):
        calls.append(("epoch", len(history)))
        if len(history) == 2:
            raise StopIteration

    def finished(nn, history):
        calls.append(("finished", len(history)))

    net = tiny_net(max_epochs=10, on_epoch_finished=[stop_after_two],
                   on_training_finished=[finished]).fit(X, y)
    assert len(net.train_history_) == 2
    assert calls == [("epoch", 1), ("epoch", 2), ("finished", 2)]


def test_skorch_callbacks_work_too():
    from skorch.callbacks import Callback

    class Count(Callback):
        def initialize(self):
            self.epochs_ = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs_ += 1

    X, y = tiny_data()
    counter = Count()
    tiny_net(callbacks=[("count", counter)]).fit(X, y)
    assert counter.epochs_ == 3


def test_update_rules_map_onto_torch_optimizers():
    X, y = tiny_data()
    net = tiny_net(update=nesterov_momentum).initialize()
    assert isinstance(net.optimizer_, torch.optim.SGD)
    assert net.optimizer_.param_groups[0]["nesterov"] is True
    assert net.optimizer_.param_groups[0]["momentum"] == pytest.approx(0.9)
    net = tiny_net(update=adam, update_learning_rate=0.001, update_momentum=0.8).fit(X, y)
    assert isinstance(net.optimizer_, torch.optim.Adam)
    assert net.optimizer_.param_groups[0]["betas"][0] == pytest.approx(0.8)
    assert net.train_history_[-1]["momentum"] == pytest.approx(0.8)
    net = tiny_net(update=sgd, update_momentum=None).initialize()
    assert net.optimizer_.param_groups[0]["momentum"] == 0
    with pytest.raises(ValueError, match="update_beta2"):
        tiny_net(update=sgd, update_momentum=None, update_beta2=0.9).initialize()


def test_bad_hyperparameters_fail_before_training():
    X, y = tiny_data()
    with pytest.raises(ValueError, match="update_learning_rate must be > 0"):
        tiny_net(update_learning_rate=-0.1).fit(X, y)
    with pytest.raises(ValueError, match=r"update_momentum must be in \[0, 1\)"):
        tiny_net(update_momentum=1.5).fit(X, y)
    with pytest.raises(ValueError, match="max_epochs"):
        tiny_net(max_epochs=0).fit(X, y)


def test_infinite_targets_and_mismatched_lengths_are_refused():
    X, y = tiny_data()
    y = y.copy()
    y[3, 4] = np.inf                 # (NaN means "not labelled": see test_partial_labels.py)
    with pytest.raises(ValueError, match="infinite"):
        tiny_net().fit(X, y)
    with pytest.raises(ValueError, match="40 rows but y has 39"):
        tiny_net().fit(X, y[:39])


def test_diverging_loss_stops_with_epoch_and_hyperparameters():
    X, y = tiny_data()
    net = tiny_net(update_learning_rate=1e6, update_momentum=0.9, max_epochs=20)
    with pytest.raises(fk.DivergenceError, match=r"epoch \d+.*learning_rate 1e\+06, momentum 0.9"):
        net.fit(X, y * 1e3)
    for p in net.module_.parameters():  # the bad step was not applied
        assert torch.isfinite(p).all()


def test_verbose_prints_layer_summary_and_epoch_table(capsys):
    X, y = tiny_data()
    tiny_net(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "# Neural Network with" in out and "learnable parameters" in out
    header = [line for line in out.splitlines() if "train_loss" in line][0].split()
    assert header == ["epoch", "train_loss", "valid_loss", "valid_rmse_px", "train_val", "dur",
                      "learning_rate", "momentum"]
    assert "*" in out  # best values are marked


def test_pickle_round_trip_predicts_the_same(tmp_path):
    X, y = tiny_data()
    net = tiny_net(batch_iterator_train=fk.FlipBatchIterator(16)).fit(X, y)
    path = tmp_path / "net.pickle"
    with open(path, "wb") as f:
        pickle.dump(net, f, -1)
    with open(path, "rb") as f:
        loaded = pickle.load(f)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert len(loaded.train_history_) == 3


def test_net_pickled_for_cuda_loads_on_a_cpu_only_machine(monkeypatch):
    X, y = tiny_data()
    net = tiny_net().fit(X, y)
    expected = net.predict(X)
    net.device = net.device_ = "cuda"  # as if it had been trained on a GPU
    blob = pickle.dumps(net, -1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(blob)
    assert loaded.device == "cpu"
    np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-6)


def test_score_is_r2():
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X, y)
    from sklearn.metrics import r2_score
    assert net.score(X, y) == pytest.approx(r2_score(y, net.predict(X)))


def test_flat_input_works_with_a_conv_net():
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X.reshape(40, -1), y)
    np.testing.assert_allclose(net.predict(X.reshape(40, -1)), net.predict(X), rtol=1e-6)


def test_dense_only_net_like_net1():
    X, y = tiny_data()
    net = fk.NeuralNet(
        layers=[("input", L.InputLayer), ("hidden", L.DenseLayer), ("output", L.DenseLayer)],
        input_shape=(None, 256), hidden_num_units=10, output_num_units=30,
        output_nonlinearity=None, max_epochs=2, verbose=0).fit(X.reshape(40, -1), y)
    assert net.n_parameters() == 256 * 10 + 10 + 10 * 30 + 30


def test_unfitted_presets_pickle_with_device_auto():
    net = pickle.loads(pickle.dumps(fk.presets.net5(), -1))
    assert net.device == "auto" and net.max_epochs == 3000


# -- data the net cannot train on: a ValueError naming the problem and the fix, before any
#    callback or epoch runs (issue 12, point 8) ------------------------------------------------

def _refused(net, X, y, pattern, error=ValueError):
    with pytest.raises(error, match=pattern):
        net.fit(X, y)
    assert len(net.history) == 0, "no epoch may start on refused data"


def test_fit_on_no_rows_is_refused():
    X, y = tiny_data()
    _refused(tiny_net(), X[:0], y[:0], r"X has no rows \(shape \(0, 1, 16, 16\)\)")
    _refused(tiny_net(eval_size=0), X[:0], y[:0], "X has no rows")


def test_targets_with_fewer_columns_than_output_units_are_refused():
    X, y = tiny_data()
    _refused(tiny_net(), X, y[:, :29], "y has 29 columns but the net's output layer has 30 "
                                       "units: pass targets with 30 columns, or set "
                                       "output_num_units=29")


def test_one_dimensional_targets_are_refused_even_when_the_batch_size_would_broadcast():
    X, y = tiny_data(n=40)
    # 30 rows in one batch of 30: (30, 30) - (30,) broadcasts silently inside MSELoss
    net = tiny_net(eval_size=0, batch_iterator_train=fk.BatchIterator(30))
    _refused(net, X[:30], y[:30, 0], r"y has shape \(30,\), one value per row, but the net's "
                                     r"output layer has 30 units: pass y of shape \(30, 30\)")
    _refused(tiny_net(), X, y[:, :, None], r"y rows have shape \(30, 1\)")
    one = tiny_net(output_num_units=1)
    _refused(one, X, y[:, 0], r"reshape\(-1, 1\)")
    assert one.fit(X, y[:, :1]).predict(X).shape == (40, 1)


def test_module_nets_are_checked_against_the_modules_output():
    X, y = tiny_data()
    X = X.reshape(40, -1)
    net = fk.NeuralNet(module=torch.nn.Linear, module__in_features=256, module__out_features=3,
                       max_epochs=1, verbose=0, device="cpu")
    _refused(net, X, y, "y has 30 columns but the module's output has 3 units")
    assert net.fit(X, y[:, :3]).predict(X).shape == (40, 3)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_nan_or_inf_in_X_is_refused_with_the_rows(as_tensor):
    X, y = tiny_data()
    X = X.copy()
    X[7, 0, 3, 3] = np.nan
    X[9, 0, 0, 0] = np.inf
    X, y = (torch.as_tensor(X), torch.as_tensor(y)) if as_tensor else (X, y)
    _refused(tiny_net(), X, y, r"X contains NaN or infinite values in 2 rows \(first: row 7\); "
                               "clean or drop them")


def test_infinite_targets_name_the_rows():
    X, y = tiny_data()
    y = y.copy()
    y[[4, 11], 2] = -np.inf
    _refused(tiny_net(), X, y, r"y contains infinite values in 2 rows \(first: row 4\)")


def test_nan_targets_are_refused_by_a_criterion_that_does_not_ignore_them():
    X, y = tiny_data()
    y = y.copy()
    y[[4, 11], 2] = np.nan
    _refused(tiny_net(criterion=torch.nn.MSELoss), X, y,
             r"y contains NaN \(unlabelled\) values in 2 rows \(first: row 4\), but the "
             r"criterion MSELoss does not ignore them")


def test_inputs_shaped_unlike_the_input_layer_are_refused():
    X, y = tiny_data()
    _refused(tiny_net(), X[:, :, :8, :8], y, r"X rows have 64 values \(shape \(1, 8, 8\)\) but "
                                             r"the input layer takes 1x16x16 = 256")


def test_non_numeric_inputs_are_a_type_error():
    X, y = tiny_data()
    _refused(tiny_net(), X.astype(str), y, "X must be numeric", error=TypeError)


def test_divergence_message_no_longer_blames_the_inputs():
    X, y = tiny_data()
    with pytest.raises(fk.DivergenceError) as info:
        tiny_net(update_learning_rate=1e6, max_epochs=20).fit(X, y * 1e3)
    assert "lower update_learning_rate" in str(info.value)
    assert "check the inputs" not in str(info.value)
