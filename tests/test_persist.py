"""Safe model files: round trip, and files that would run code or name unknown parts."""
import json
import pickle

import numpy as np
import pytest
import torch

import facekeypoints as fk
from facekeypoints._safe_io import seal
from facekeypoints.checkpoint import save_checkpoint
from facekeypoints.persist import ModelFileError, load_model, read_model_file, save_model
from tests.conftest import PickleBomb, tiny_data, tiny_net


def test_round_trip_predicts_the_same_and_keeps_the_history(tmp_path):
    X, y = tiny_data()
    net = tiny_net(update_learning_rate=fk.shared(fk.float32(0.02))).fit(X, y)
    path = save_model(net, tmp_path / "model.pt")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert [h["epoch"] for h in loaded.saved_history_] == [1, 2, 3]
    assert loaded.update_learning_rate == pytest.approx(0.02)
    assert load_model(tmp_path).predict(X[:2]).shape == (2, 30)  # a run directory works too


def test_presets_round_trip(tmp_path):
    net = fk.presets.net6(verbose=0).initialize()
    loaded = load_model(save_model(net, tmp_path / "net6.pt"))
    assert loaded.n_parameters() == net.n_parameters()
    assert loaded.dropout4_p == 0.5


def test_module_nets_are_refused_with_the_alternative(tmp_path):
    net = fk.NeuralNet(module=torch.nn.Linear(256, 30), verbose=0).initialize()
    with pytest.raises(ValueError, match="layers="):
        save_model(net, tmp_path / "m.pt")


def test_a_model_file_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.pt"
    with open(bad, "wb") as f:
        pickle.dump({"format": "facekeypoints-model", "state_dict": PickleBomb(marker)}, f)
    with pytest.raises(ModelFileError, match="not a valid facekeypoints model file"):
        load_model(bad)
    assert not marker.exists()


def _rewrite_config(path, **changes):
    """Change the config and write a fresh checksum: a forged file, not a damaged one."""
    payload = torch.load(path, weights_only=True)
    config = json.loads(payload["config"])
    config.update(changes)
    payload["config"] = json.dumps(config)
    torch.save(seal(payload), path)


def test_unknown_layer_or_update_in_the_config_is_refused(tmp_path):
    X, y = tiny_data()
    path = save_model(tiny_net(max_epochs=1).fit(X, y), tmp_path / "model.pt")
    config = read_model_file(path)["config"]
    _rewrite_config(path, layers=config["layers"][:-1] + [["output", "EvilLayer"]])
    with pytest.raises(ModelFileError, match="unknown layer type 'EvilLayer'"):
        load_model(path)
    _rewrite_config(path, layers=config["layers"], update="os.system")
    with pytest.raises(ModelFileError, match="unknown update rule 'os.system'"):
        load_model(path)


@pytest.mark.parametrize("save", [save_model, save_checkpoint], ids=["model", "checkpoint"])
def test_saving_over_a_good_file_never_leaves_half_a_file(save, tmp_path, monkeypatch):
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X, y)
    path = save(net, tmp_path / "saved.pt")
    good = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save(net, path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved.pt"]


def _legacy(path):
    """Rewrite a file as the previous release wrote it: format version 1, no checksum."""
    payload = torch.load(path, weights_only=True)
    assert payload["checksum"].startswith("sha256:") and payload["version"] == 2
    del payload["checksum"]
    payload["version"] = 1
    torch.save(payload, path)


def test_files_from_before_checksums_still_load_with_the_other_checks(tmp_path):
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X, y)
    path = save_model(net, tmp_path / "model.pt")
    _legacy(path)
    np.testing.assert_array_equal(load_model(path).predict(X), net.predict(X))
    _rewrite_config(path, layer_kwargs={**read_model_file(path)["config"]["layer_kwargs"],
                                        "hidden_num_units": 93_000_000})
    with pytest.raises(ModelFileError, match="weights do not fit the config"):
        load_model(path)
    save_model(load_model(save_model(net, path)), path)   # saving again adds a checksum
    assert torch.load(path, weights_only=True)["checksum"].startswith("sha256:")


def test_the_checksum_covers_config_history_and_weights(tmp_path):
    X, y = tiny_data()
    path = save_model(tiny_net(max_epochs=1).fit(X, y), tmp_path / "model.pt")
    good = torch.load(path, weights_only=True)
    for change in (lambda p: p.update(config=p["config"].replace("16", "17", 1)),
                   lambda p: p.update(history=p["history"].replace("1", "2", 1)),
                   lambda p: p["state_dict"]["layers.output.0.bias"].add_(1e-7),
                   lambda p: p.update(version=1)):
        payload = {k: (dict(v) if isinstance(v, dict) else v) for k, v in good.items()}
        payload["state_dict"] = {k: v.clone() for k, v in good["state_dict"].items()}
        change(payload)
        torch.save(payload, path)
        with pytest.raises(ModelFileError, match="is damaged: its contents do not match"):
            read_model_file(path)


def test_memory_layout_does_not_change_the_checksum():
    from facekeypoints._safe_io import payload_digest

    w = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    nhwc = w.to(memory_format=torch.channels_last)
    assert payload_digest({"w": w}) == payload_digest({"w": nhwc})
    assert payload_digest({"w": w}) != payload_digest({"w": w.reshape(2, 3, 20)})
    assert payload_digest({"a": "1"}) != payload_digest({"a": 1})
    assert payload_digest({"a": [1, 2]}) != payload_digest({"a": [[1], 2]})


def test_affine_iterator_settings_survive_a_model_file(tmp_path):
    X, y = tiny_data()
    iterator = fk.AffineBatchIterator(8, rotate=7.5, scale=0.05, shift=2.0, flip=False,
                                      padding_mode="zeros", shuffle=True)
    net = tiny_net(max_epochs=1, batch_iterator_train=iterator).fit(X, y * 0.3)
    loaded = load_model(save_model(net, tmp_path / "m.pt"))
    again = loaded.batch_iterator_train
    assert type(again) is fk.AffineBatchIterator
    assert (again.batch_size, again.rotate, again.scale, again.shift, again.flip,
            again.padding_mode, again.shuffle) == (8, 7.5, 0.05, 2.0, False, "zeros", True)


@pytest.mark.parametrize("change", [{"rotate": 500.0}, {"scale": 1.5}, {"flip": "yes"},
                                    {"padding_mode": "mirror"}, {"shuffle": 1},
                                    {"unknown": 1}])
def test_bad_affine_iterator_config_is_refused(tmp_path, change):
    X, y = tiny_data()
    net = tiny_net(max_epochs=1, batch_iterator_train=fk.AffineBatchIterator(8)).fit(X, y * 0.3)
    path = save_model(net, tmp_path / "m.pt")
    iterators = read_model_file(path)["config"]["batch_iterators"]
    train = next(key for key in iterators if "train" in key)
    iterators[train].update(change)
    _rewrite_config(path, batch_iterators=iterators)
    with pytest.raises(ModelFileError, match="batch iterator"):
        load_model(path)
