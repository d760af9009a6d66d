"""Specialists: groups and flip pairs, pretraining, the ensemble's column order, save/load, CLI."""
import json

import numpy as np
import pytest
import torch

import facekeypoints as fk
from facekeypoints import specialists as S
from facekeypoints.cli import main
from facekeypoints.data import FLIP_INDICES, KEYPOINT_COLUMNS

RECIPE = {  # RECIPE.md: outputs and local flip pairs per group
    "eye_centers": (4, ((0, 2), (1, 3))),
    "nose_tip": (2, ()),
    "mouth": (6, ((0, 2), (1, 3))),
    "bottom_lip": (2, ()),
    "eye_corners": (8, ((0, 2), (1, 3), (4, 6), (5, 7))),
    "eyebrows": (8, ((0, 2), (1, 3), (4, 6), (5, 7))),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("spec"), n_train=80, n_test=4)


def test_groups_match_the_recipe():
    assert [g.name for g in S.DEFAULT_GROUPS] == list(RECIPE)
    for g in S.DEFAULT_GROUPS:
        assert (g.n_outputs, g.flip_indices) == RECIPE[g.name]
    every = [c for g in S.DEFAULT_GROUPS for c in g.columns]
    assert sorted(every) == sorted(KEYPOINT_COLUMNS)      # each column in exactly one group


def test_flip_pairs_are_the_global_pairs_restricted():
    for g in S.DEFAULT_GROUPS:
        cols = list(g.columns)
        expected = set()
        for a, b in FLIP_INDICES:
            ca, cb = KEYPOINT_COLUMNS[a], KEYPOINT_COLUMNS[b]
            assert (ca in cols) == (cb in cols)           # no pair is cut in half
            if ca in cols:
                expected.add(tuple(sorted((cols.index(ca), cols.index(cb)))))
        assert set(g.flip_indices) == expected
    with pytest.raises(ValueError, match="mirror"):
        S.SpecialistGroup("half", ("left_eye_center_x", "left_eye_center_y"))


def test_epoch_budget_is_inverse_in_rows():
    assert S.specialist_epochs(100, 2000, 2000) == 100
    assert S.specialist_epochs(100, 7000, 2000) == 29
    assert S.specialist_epochs(1, 7000, 2000) == 1


def _flip_base():
    return fk.presets.net1(max_epochs=1, verbose=0,
                           batch_iterator_train=fk.FlipBatchIterator(batch_size=32))


def test_pretrained_layers_are_loaded_but_not_the_output():
    pre = fk.presets.net1(verbose=0, random_state=1).initialize()
    group = S.GROUPS_BY_NAME["eye_corners"]
    net, loaded, mismatched = S.make_specialist(_flip_base(), group, pre)
    assert loaded == ["hidden"] and mismatched == {}
    own, theirs = net.module_.state_dict(), pre.module_.state_dict()
    for key in ("layers.hidden.0.weight", "layers.hidden.0.bias"):
        assert torch.equal(own[key].cpu(), theirs[key].cpu())
    assert own["layers.output.0.weight"].shape == (8, 100)
    assert net.batch_iterator_train.flip_indices == group.flip_indices
    assert net.columns_ == list(group.columns)


def test_a_shape_mismatch_is_reported_not_loaded():
    pre = fk.presets.net1(verbose=0, hidden_num_units=50).initialize()
    net, loaded, mismatched = S.make_specialist(_flip_base(), S.DEFAULT_GROUPS[1], pre)
    assert loaded == [] and set(mismatched) == {"hidden"}
    assert "(50, 9216)" in mismatched["hidden"]


class _Const:
    """A stand-in member predicting a constant per column."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float32)
        self.layers = None

    def predict(self, X):
        return np.tile(self.values, (len(X), 1))

    def layer_params(self):
        return {"input_shape": (None, 9216)}


def test_ensemble_stacks_members_in_kaggle_order():
    groups = [S.GROUPS_BY_NAME[n] for n in ("eyebrows", "nose_tip", "eye_centers")]
    members = [(g, _Const([KEYPOINT_COLUMNS.index(c) for c in g.columns])) for g in groups]
    ens = S.SpecialistEnsemble(members)
    pred = ens.predict(np.zeros((3, 9216), dtype=np.float32))
    assert pred.shape == (3, 30)
    covered = [KEYPOINT_COLUMNS.index(c) for c in ens.covered_columns]
    assert np.array_equal(pred[0, covered], covered)       # each value landed in its column
    missing = [j for j in range(30) if j not in covered]
    assert np.isnan(pred[:, missing]).all()


def test_fit_save_load_round_trip(dataset, tmp_path):
    X, y = fk.load(dataset["training"])
    pre = fk.presets.net1(max_epochs=1, verbose=0).fit(X, y)
    reports = []
    ens = S.fit_specialists(_flip_base(), dataset["training"], pretrained=pre,
                            groups=["eye_centers", "mouth"], on_specialist=reports.append)
    assert [r["group"] for r in reports] == ["eye_centers", "mouth"]
    assert all(r["loaded"] == ["hidden"] and r["epochs"] >= 1 for r in reports)
    assert reports[0]["rows"] == len(fk.load(dataset["training"],
                                             cols=list(S.DEFAULT_GROUPS[0].columns))[0])
    ens.save(tmp_path / "ens")
    meta = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert [m["name"] for m in meta["members"]] == ["eye_centers", "mouth"]
    assert S.is_ensemble_dir(tmp_path / "ens") and not S.is_ensemble_dir(tmp_path)
    back = S.load_ensemble(tmp_path / "ens")
    Xt, _ = fk.load(dataset["test"], test=True)
    np.testing.assert_allclose(back.predict(Xt), ens.predict(Xt), rtol=1e-6, equal_nan=True)
    assert back.covered_columns == [c for c in KEYPOINT_COLUMNS
                                    if c in S.GROUPS_BY_NAME["eye_centers"].columns
                                    or c in S.GROUPS_BY_NAME["mouth"].columns]


def test_cli_round_trip(dataset, tmp_path, capsys):
    data = str(dataset["training"])
    assert main(["train", "net1", "--max-epochs", "1", "--data", data,
                 "--out", str(tmp_path / "net1")]) == 0
    out = tmp_path / "ens"
    assert main(["train-specialists", "net1", "--max-epochs", "1", "--data", data,
                 "--pretrained", str(tmp_path / "net1"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for i, g in enumerate(S.DEFAULT_GROUPS, start=1):
        assert f"[{i}/6] {g.name}:" in text
    assert "best valid RMSE px" in text and "pretrained layers: hidden" in text
    assert main(["evaluate", str(out), "--data", data, "--split", "valid", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["keypoints"]) == [c[:-2] for c in KEYPOINT_COLUMNS[0::2]]
    assert np.isfinite(result["rmse_px"])
    sub = tmp_path / "sub.csv"
    assert main(["predict", str(out), "--test", str(dataset["test"]), "-o", str(sub)]) == 0
    lines = sub.read_text().splitlines()
    assert lines[0] == "RowId,Location" and len(lines) > 1
