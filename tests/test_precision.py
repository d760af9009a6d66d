"""Precision names, bf16 detection from the CPU's flags, and the autocast context."""
import pytest
import torch

from facekeypoints import precision as P


def test_names_resolve():
    assert P.resolve_precision("32", "cpu") == "32"
    assert P.resolve_precision(32, "cpu") == "32"
    assert P.resolve_precision("fp32", "cpu") == "32"
    assert P.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of 32, bf16, auto"):
        P.resolve_precision("fp16", "cpu")


def test_auto_is_bf16_exactly_where_the_hardware_has_it(monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_flags", lambda: ("amx_bf16",))
    assert P.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(P, "cpu_bf16_flags", lambda: ())
    assert P.resolve_precision("auto", "cpu") == "32"
    assert P.resolve_precision("auto", "meta") == "32"


def test_cpu_flags_are_read_not_assumed():
    amd = "processor : 0\nflags\t\t: fpu vme avx2 fma\n"
    xeon = "processor : 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16 amx_int8\n"
    assert P._bf16_flags_in(amd) == ()
    assert P._bf16_flags_in(xeon) == ("amx_bf16", "avx512_bf16")
    assert P._bf16_flags_in("no flags line") == ()


def test_autocast_runs_the_forward_pass_in_bf16_only_when_asked():
    layer = torch.nn.Linear(4, 2)
    x = torch.ones(3, 4)
    with P.autocast("bf16", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with P.autocast("32", "cpu"):
        assert layer(x).dtype == torch.float32


def _tiny(**kw):
    import facekeypoints as fk
    from facekeypoints import layers as L
    return fk.NeuralNet(
        layers=[("input", L.InputLayer), ("conv", L.Conv2DLayer), ("pool", L.MaxPool2DLayer),
                ("hidden", L.DenseLayer), ("output", L.DenseLayer)],
        input_shape=(None, 1, 16, 16), conv_num_filters=4, conv_filter_size=(3, 3),
        pool_pool_size=(2, 2), hidden_num_units=16, output_num_units=30,
        output_nonlinearity=None, update_learning_rate=0.01, update_momentum=0.9,
        **{"max_epochs": 3, "verbose": 0, "random_state": 0, "device": "cpu", **kw})


def _data():
    import numpy as np
    rng = np.random.default_rng(0)
    return (rng.random((40, 1, 16, 16), dtype=np.float32),
            rng.uniform(-1, 1, (40, 30)).astype(np.float32))


def test_bf16_net_keeps_float32_weights_losses_and_predictions():
    X, y = _data()
    net = _tiny(precision="bf16").fit(X, y)
    assert net.precision == "bf16" and net.precision_ == "bf16"
    assert all(p.dtype == torch.float32 for p in net.module_.parameters())
    assert all(isinstance(h["train_loss"], float) for h in net.history)
    assert net.predict(X).dtype.name == "float32"
    ref = _tiny(precision="32").fit(X, y)
    # the same run in float32 is close, not equal (bf16 keeps 8 bits of mantissa)
    assert abs(net.history[-1]["valid_loss"] - ref.history[-1]["valid_loss"]) < 0.05


def test_precision_is_a_parameter_and_auto_resolves_without_changing_it(monkeypatch):
    from sklearn.base import clone
    monkeypatch.setattr(P, "cpu_bf16_flags", lambda: ())
    X, y = _data()
    net = _tiny(precision="auto", max_epochs=1).fit(X, y)
    assert net.precision == "auto" and net.precision_ == "32"
    assert clone(net).get_params()["precision"] == "auto"
    with pytest.raises(ValueError, match="precision must be one of"):
        _tiny(precision="fp16").fit(X, y)


def test_cli_precision_is_recorded_and_used_by_evaluate(tmp_path, capsys):
    import json

    from facekeypoints import cli, load_model
    from facekeypoints.synthetic import write_dataset

    data = write_dataset(tmp_path / "faces", n_train=40, n_test=4)
    out = tmp_path / "run"
    assert cli.main(["train", "net1", "--data", str(data["training"]), "--max-epochs", "1",
                     "--precision", "bf16", "--device", "cpu", "--out", str(out)]) == 0
    assert "precision bf16" in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["precision"] == "bf16"
    net = load_model(out)
    assert net.precision == "bf16" and net.precision_ == "bf16"
    assert load_model(out, precision="32").precision_ == "32"
    assert cli.main(["evaluate", str(out), "--data", str(data["training"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] > 0


def test_model_files_without_precision_load_in_float32(tmp_path):
    from facekeypoints.persist import build_net, net_config

    config = net_config(_tiny())
    assert config["precision"] == "32"
    del config["precision"]                 # as written before precision was recorded
    assert build_net(config).precision == "32"
