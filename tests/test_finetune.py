"""Fine-tuning: start a net from another model's weights, layer by layer where shapes match."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import facekeypoints as fk
from facekeypoints.finetune import format_init_table, init_from


def test_matching_layers_load_and_the_rest_stay_new(tmp_path):
    source = fk.presets.modern(device="cpu", random_state=0).initialize()
    fk.save_model(source, tmp_path / "model.pt")
    net = fk.presets.modern(device="cpu", random_state=1, output_num_units=8)
    rows = init_from(net, tmp_path)                   # a run directory holding model.pt
    by_name = {r["name"]: r for r in rows}
    assert not by_name["layers.output.0.weight"]["loaded"]
    assert by_name["layers.conv1.0.weight"]["loaded"] if "layers.conv1.0.weight" in by_name \
        else by_name[rows[0]["name"]]["loaded"]
    loaded = [r for r in rows if r["loaded"]]
    assert 0 < len(loaded) < len(rows)
    own, theirs = net.module_.state_dict(), source.module_.state_dict()
    for r in loaded:
        assert torch.equal(own[r["name"]], theirs[r["name"]])
    assert net.init_from_["checksum"].startswith("sha256:")
    table = format_init_table(rows)
    assert f"{len(loaded)} of {len(rows)} weight tensors loaded" in table
    assert "source has shape" in table


def test_fit_trains_from_the_loaded_weights(default_data):
    X, y = fk.load2d()
    X, y = X[:64], y[:64]
    source = fk.pretrained()
    net = fk.presets.modern(device="cpu", random_state=3, max_epochs=1, verbose=0,
                            eval_size=0.25)
    init_from(net, "pretrained")
    before = np.abs(net.predict(X) - source.predict(X)).max()
    assert before < 1e-5                             # the same weights, before training
    net.fit(X, y)                                     # warm start: no new weights drawn
    assert len(net.history) == 1
    fresh = fk.presets.modern(device="cpu", random_state=3, max_epochs=1, verbose=0,
                              eval_size=0.25).fit(X, y)
    assert net.history[-1]["valid_loss"] < fresh.history[-1]["valid_loss"]


def test_a_missing_source_is_a_clear_error(tmp_path):
    net = fk.presets.modern(device="cpu")
    with pytest.raises(FileNotFoundError, match="pretrained"):
        init_from(net, tmp_path / "nothing.pt")
