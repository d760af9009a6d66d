"""benchmarks/sim_to_real.py: its helpers compute what they say; --quick runs end to end.

MTFL itself is never needed: a tiny Kaggle-format CSV with MTFL's gaps stands in for it, and
the embedded faces are replaced by a few random faces so that nothing is generated.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import facekeypoints as fk

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "sim_to_real.py"
MTFL_COLUMNS = [0, 1, 2, 3, 20, 21, 22, 23, 24, 25]


@pytest.fixture(scope="module")
def s2r():
    spec = importlib.util.spec_from_file_location("sim_to_real", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _faces(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, 96, 96), dtype=np.float32)
    y = np.clip(rng.normal(0, 0.3, (n, 30)), -0.9, 0.9).astype(np.float32)
    return X, y


def _mtfl_like_csv(path, n=120):
    import pandas as pd

    X, y = _faces(n, seed=1)
    y = y.astype(np.float64)
    keep = np.zeros(30, bool)
    keep[MTFL_COLUMNS] = True
    y[:, ~keep] = np.nan
    frame = pd.DataFrame(y * 48 + 48, columns=list(fk.KEYPOINT_COLUMNS))
    frame["Image"] = [" ".join(map(str, (x.ravel() * 255).astype(int))) for x in X]
    frame.to_csv(path, index=False)
    return path


def test_split_is_fixed_disjoint_and_nested(s2r):
    e1, p1 = s2r.split_mtfl(50, 10, seed=3)
    e2, p2 = s2r.split_mtfl(50, 10, seed=3)
    assert np.array_equal(e1, e2) and np.array_equal(p1, p2)
    assert not set(e1) & set(p1) and len(set(e1) | set(p1)) == 50
    with pytest.raises(ValueError, match="--eval-size"):
        s2r.split_mtfl(50, 50)


def test_metrics_use_labelled_keypoints_and_the_inter_pupil_distance(s2r):
    y = np.full((2, 30), np.nan)
    y[:, MTFL_COLUMNS] = 0.0
    y[:, 0], y[:, 2] = -0.25, 0.25                  # eye centres 24 px apart
    pred = np.nan_to_num(y)
    pred[:, 20] += 0.05                             # nose tip 2.4 px off in x, nothing else
    m = s2r.mtfl_metrics(pred, None, y)
    assert m["nme_by"] == "inter-pupil" and m["faces_without_normalizer"] == 0
    assert m["rmse_px"] == pytest.approx(2.4 / np.sqrt(10))
    assert m["nme"] == pytest.approx(2.4 / 24 / 5)
    assert m["keypoint_rmse_px"]["nose_tip"] == pytest.approx(2.4 / np.sqrt(2))
    assert m["keypoint_rmse_px"]["left_eye_center"] == 0.0
    assert list(m["keypoint_rmse_px"]) == list(s2r.MTFL_KEYPOINTS)


def test_a_mean_row_is_a_baseline_for_every_face(s2r):
    y = np.full((3, 30), np.nan)
    y[:, MTFL_COLUMNS] = [[0.1], [0.2], [0.3]]
    y[:, 2] += 0.5                                  # right eye centres apart from the left
    mean = s2r.mean_keypoints(y)
    assert mean[0] == pytest.approx(0.2) and mean[4] == 0.0
    assert s2r.mtfl_metrics(mean, None, y)["rmse_px"] == pytest.approx(
        48 * np.sqrt(2 * 0.01 / 3))


def test_equal_time_epochs_and_improvement(s2r):
    assert s2r.equal_time_epochs(10.0, 0.4, 100) == (25, False)
    assert s2r.equal_time_epochs(10.0, 0.04, 100) == (100, True)
    assert s2r.improvement_pct(2.0, 1.5) == 25.0


def test_help_and_a_missing_csv(s2r, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        s2r.main(["--help"])
    assert exc.value.code == 0 and "--embedded-model" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        s2r.main([str(tmp_path / "none.csv")])
    assert exc.value.code == 2 and "no MTFL CSV" in capsys.readouterr().err
    csv = tmp_path / "m.csv"
    csv.write_text("")
    for bad, says in ((["--pretrain-seconds", "0"], "--pretrain-seconds"),
                      (["--valid-fraction", "1"], "--valid-fraction"),
                      (["--sizes", "1"], "--sizes")):
        with pytest.raises(SystemExit) as exc:
            s2r.main([str(csv), *bad])
        assert exc.value.code == 2 and says in capsys.readouterr().err


def test_quick_run_writes_every_part(s2r, monkeypatch, tmp_path, capsys):
    real_load2d = fk.load2d
    embedded = _faces(96)
    monkeypatch.setattr(fk, "load2d", lambda path=None, **kw: embedded if path is None
                        else real_load2d(path, **kw))
    csv = _mtfl_like_csv(tmp_path / "mtfl.csv")
    out, model = tmp_path / "r.json", tmp_path / "emb.pt"
    assert s2r.main([str(csv), "--quick", "--out", str(out),
                     "--save-embedded-model", str(model)]) == 0
    text = capsys.readouterr().out
    assert "| real faces N |" in text and "mean keypoints of the embedded faces" in text
    r = json.loads(out.read_text())
    assert r["quick"] and r["eval_faces"] == 40 and r["mtfl_faces"] == 120
    row = r["curve"][0]
    assert row["n"] == 20 and row["pretrained"]["weights_loaded"] == row["pretrained"]["weights"]
    assert {"scratch", "pretrained", "scratch_equal_time"} <= set(row)
    assert r["eval"]["net"]["nme_by"] == "inter-pupil"
    # the saved net is reused, its history giving the pretraining time
    assert s2r.main([str(csv), "--quick", "--no-equal-time", "--embedded-model",
                     str(model)]) == 0
    assert "read from" in capsys.readouterr().out
