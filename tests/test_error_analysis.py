"""NME & co. at the command line and in Python: ``evaluate`` beside RMSE, ``compare --ced``,
``errors`` and the tables and pictures of ``fk.reports`` / ``fk.plots``. One tiny net1 run
(1 epoch on 60 generated faces) is shared by the module."""
import json

import numpy as np
import pytest

from facekeypoints import cli, metrics
from facekeypoints.data import read_csv
from facekeypoints.layout import KAGGLE
from facekeypoints.reports import face_errors, keypoint_measures

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    root = tmp_path_factory.mktemp("errors")
    paths = write_dataset(root / "data", n_train=60, n_test=4)
    out = root / "net1"
    assert cli.main(["train", "net1", "--data", str(paths["training"]), "--max-epochs", "1",
                     "--set", "eval_size=0.25", "--out", str(out)]) == 0
    return paths, out


def _model_and_data(run):
    import facekeypoints as fk

    paths, out = run
    parsed = read_csv(paths["training"])
    keep = ~np.isnan(parsed.keypoints).all(axis=1)
    X = (parsed.images[keep] / 255.0).astype(np.float32).reshape(-1, 1, 96, 96)
    y = KAGGLE.from_pixels(parsed.keypoints[keep])
    net = fk.load_model(out)
    return net, X, y, np.flatnonzero(keep) + 1


def test_evaluate_json_has_the_measures_and_they_match_the_library(run, capsys):
    import facekeypoints as fk

    paths, out = run
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--data", str(paths["training"]), "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    result = json.loads(text)
    X, y = fk.load2d(paths["training"])
    y_pred = fk.load_model(out).predict(X)
    errors = metrics.normalized_errors(y, y_pred)
    assert result["normalizer"] == "inter-ocular"
    assert result["nme"] == pytest.approx(errors.nme(), rel=1e-5)
    assert result["failure_rate"] == pytest.approx(errors.failure_rate(0.1))
    assert result["auc"] == pytest.approx(errors.auc(0.1), abs=1e-6)
    assert result["pck"] == pytest.approx(errors.pck(0.1), rel=1e-5)
    assert result["faces_without_normalizer"] == 0
    assert result["keypoints"]["nose_tip"]["nme"] == pytest.approx(
        errors.per_keypoint()["nose_tip"], rel=1e-5)
    # RMSE stays what it was
    assert result["rmse_px"] == pytest.approx(
        fk.reports.keypoint_errors(y, y_pred).loc["overall", "rmse"], rel=1e-5)


def test_evaluate_metric_picks_what_is_shown(run, capsys):
    paths, out = run
    data = str(paths["training"])
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--data", data]) == 0
    text = capsys.readouterr().out
    assert "NME" in text and "PCK@0.1" in text and "failure rate@0.1" in text
    assert "AUC@0.1" in text and "RMSE px" in text and "outer eye corners" in text
    assert cli.main(["evaluate", str(out), "--data", data, "--metric", "nme-ip",
                     "--threshold", "0.08", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["normalizer"] == "inter-pupil" and "pck" not in result
    assert "failure_rate" not in result and "nme" in result
    assert cli.main(["evaluate", str(out), "--data", data, "--metric", "rmse"]) == 0
    text = capsys.readouterr().out
    assert "RMSE px" in text and "NME" not in text


def test_evaluate_partial_labels_counts_faces_without_the_normaliser(run, capsys):
    paths, out = run
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--data", str(paths["training"]),
                     "--partial-labels", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    y = read_csv(paths["training"]).keypoints
    y = y[~np.isnan(y).all(axis=1)]
    lacking = int(np.isnan(y[:, [6, 7, 10, 11]]).any(axis=1).sum())
    assert lacking > 0
    assert result["faces_without_normalizer"] == lacking
    assert result["faces_measured"] == len(y) - lacking


def test_evaluate_bad_metric_options_are_one_line_errors(run, capsys):
    paths, out = run
    data = str(paths["training"])
    for argv in (["--threshold", "2"], ["--metric", "mse"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(["evaluate", str(out), "--data", data, *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and argv[0] in err[0]
    assert cli.main(["evaluate", str(out), "--data", data, "--metric", "nme-io",
                     "nme-ip"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pick one normaliser" in err[0]


def test_errors_lists_the_worst_faces_with_their_csv_rows(run, tmp_path, capsys):
    paths, out = run
    capsys.readouterr()
    draw, where = tmp_path / "worst.png", tmp_path / "where.png"
    assert cli.main(["errors", str(out), "--data", str(paths["training"]), "--worst", "4",
                     "--draw", str(draw), "--keypoint-errors", str(where), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert draw.read_bytes()[:8] == PNG and where.read_bytes()[:8] == PNG
    assert f"wrote {draw}" in captured.err
    worst = result["worst"]
    assert len(worst) == 4
    nmes = [w["nme"] for w in worst]
    assert nmes == sorted(nmes, reverse=True)
    net, X, y, rows = _model_and_data(run)
    per_face = metrics.normalized_errors(y, net.predict(X)).per_face()
    assert np.nanmax(per_face) == pytest.approx(nmes[0], rel=1e-5)
    # the row number is the face's data row in the CSV: its NME recomputed from that row
    first = worst[0]
    i = list(rows).index(first["row"])
    assert per_face[i] == pytest.approx(first["nme"], rel=1e-5)
    errors_px = metrics.point_errors_px(y[i:i + 1], net.predict(X[i:i + 1]))[0]
    assert KAGGLE.names[int(np.nanargmax(errors_px))] == first["worst_keypoint"]
    assert result["faces_without_normalizer"] == int(np.isnan(per_face).sum())


def test_errors_prints_a_table(run, capsys):
    paths, out = run
    capsys.readouterr()
    assert cli.main(["errors", str(out), "--data", str(paths["training"]), "--worst", "3"]) == 0
    text = capsys.readouterr().out
    header = [line for line in text.splitlines() if line.split()[:2] == ["row", "NME"]]
    assert header and "worst keypoint" in header[0]
    assert "lack the normaliser's keypoints" in text


def test_errors_refuses_a_bad_picture_name_before_predicting(run, tmp_path, capsys):
    paths, out = run
    capsys.readouterr()
    assert cli.main(["errors", str(out), "--data", str(paths["training"]), "--draw",
                     str(tmp_path / "worst.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--draw" in err[0] and ".png" in err[0]


def test_compare_draws_ced_curves(run, tmp_path, capsys):
    paths, out = run
    capsys.readouterr()
    ced = tmp_path / "ced.png"
    assert cli.main(["compare", str(out), str(out / "model.pt"), "--data",
                     str(paths["training"]), "--ced", str(ced), "--threshold", "0.08"]) == 0
    text = capsys.readouterr().out
    assert ced.read_bytes()[:8] == PNG
    assert f"wrote {ced}" in text and text.count("AUC@0.08") == 2


def test_face_errors_table_in_python(run):
    net, X, y, rows = _model_and_data(run)
    y_pred = net.predict(X)
    table = face_errors(y, y_pred, rows=rows, worst=5)
    assert list(table.columns) == ["nme", "rmse_px", "worst_keypoint", "worst_error_px",
                                   "keypoints"]
    assert len(table) == 5 and table["nme"].is_monotonic_decreasing
    assert set(table.index) <= set(rows)
    full = face_errors(y, y_pred, rows=rows)
    assert len(full) == len(y) and full["nme"].isna().sum() == int(
        np.isnan(y[:, [6, 7, 10, 11]]).any(axis=1).sum())
    measures, summary = keypoint_measures(y, y_pred)
    assert summary["faces_without_normalizer"] == full["nme"].isna().sum()
    assert measures.loc["overall", "nme"] == pytest.approx(full["nme"].mean())
    # the scikit-learn scorer on a real net: minus the same NME
    assert metrics.neg_nme_scorer(net, X, y) == pytest.approx(-summary["nme"], rel=1e-6)


def test_error_pictures(run):
    from facekeypoints.metrics import normalized_errors
    from facekeypoints.plots import plot_ced, plot_keypoint_errors, plot_worst_faces

    net, X, y, rows = _model_and_data(run)
    y_pred = net.predict(X)
    ax = plot_keypoint_errors(X, y, y_pred)
    assert len(ax.patches) == 15
    radii = sorted(p.radius for p in ax.patches)
    table = keypoint_measures(y, y_pred)[0].drop(index="overall")
    np.testing.assert_allclose(radii, sorted(table["rmse"]), rtol=1e-5)
    fig = plot_worst_faces(X, y, y_pred, face_errors(y, y_pred, worst=3))
    assert sum(bool(a.images) for a in fig.axes) == 6
    ax = plot_ced({"a": normalized_errors(y, y_pred), "b": normalized_errors(y, y)})
    perfect = ax.get_lines()[1].get_ydata()
    assert perfect[0] == 1.0 and "AUC@0.1 1.000" in ax.get_lines()[1].get_label()
