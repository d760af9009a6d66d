"""Hyperparameter sweeps: RMSE scorer, grid parsing, Dask == in-process, fallback, CLI."""
import ast
import json
import math
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import facekeypoints as fk
from facekeypoints import cli, presets, sweep, sweep_report
from facekeypoints.sweep import neg_rmse_px, parse_grid, parse_grid_item, run_sweep
from tests.conftest import tiny_data, tiny_net

try:
    import distributed
except ImportError:  # the distributed extra is not installed
    distributed = None

needs_dask = pytest.mark.skipif(distributed is None, reason="needs facekeypoints[distributed]")

GRID = {"callbacks__adjust_lr__start": [0.03, 0.01], "max_epochs": [2, 3]}
RESULT_COLUMNS = ["mean_rmse_px", "std_rmse_px", "rank", "fold1_rmse_px", "fold2_rmse_px"]


def schedule_net(**overrides):
    """tiny_net with the recipe's named learning-rate schedule, as the presets have it."""
    params = dict(update_learning_rate=fk.shared(fk.float32(0.03)),
                  callbacks=[("adjust_lr", fk.AdjustVariable("update_learning_rate", 0.03, 0.001))])
    params.update(overrides)
    return tiny_net(**params)


@pytest.fixture(scope="module")
def data():
    return tiny_data(n=40)


@pytest.fixture(scope="module")
def reference(data):
    """The 2x2 grid with 2-fold CV, one fit after another in this process."""
    X, y = data
    return run_sweep(schedule_net(), X, y, GRID, cv=2, backend="sequential", log=None)


def assert_same_results(frame, expected):
    assert list(frame[list(GRID)].itertuples(index=False)) == \
        list(expected[list(GRID)].itertuples(index=False))
    np.testing.assert_allclose(frame[RESULT_COLUMNS].to_numpy(float),
                               expected[RESULT_COLUMNS].to_numpy(float), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------- scorer
def test_scorer_is_negative_rmse_in_pixels():
    from sklearn.base import BaseEstimator, RegressorMixin

    class Constant(RegressorMixin, BaseEstimator):
        def predict(self, X):
            return np.full((len(X), 30), 0.5, dtype=np.float32)

    y = np.zeros((4, 30), dtype=np.float32)
    y[:, 0] = 0.5  # one coordinate of 30 exact, the rest 0.5 off = 24 px
    expected = math.sqrt(29 / 30 * 0.25) * 48
    assert sweep.keypoint_rmse_px(y, Constant().predict(y)) == pytest.approx(expected)
    assert neg_rmse_px(Constant(), np.zeros((4, 1)), y) == pytest.approx(-expected)
    assert sweep.make_rmse_scorer(pixels_per_unit=1.0)(Constant(), np.zeros((4, 1)), y) == \
        pytest.approx(-expected / 48)


def test_scorer_matches_the_nets_validation_loss(data):
    X, y = data
    net = tiny_net(max_epochs=2).fit(X, y)
    n_valid = net.validation_size(len(X))
    rmse = -neg_rmse_px(net, X[:n_valid], y[:n_valid])
    assert rmse == pytest.approx(math.sqrt(net.history[-1]["valid_loss"]) * 48, rel=1e-5)
    assert pickle.loads(pickle.dumps(neg_rmse_px))(net, X, y) == neg_rmse_px(net, X, y)


# ---------------------------------------------------------------------------------- grids
def test_parse_grid_values_are_python_literals():
    grid = parse_grid(["callbacks__adjust_lr__start=0.03,1e-2", "max_epochs=50, 100",
                       "conv1_filter_size=(3,3),(5, 5)", "update=adam,'sgd'", "x=None,True"])
    assert grid == {"callbacks__adjust_lr__start": [0.03, 0.01], "max_epochs": [50, 100],
                    "conv1_filter_size": [(3, 3), (5, 5)], "update": ["adam", "sgd"],
                    "x": [None, True]}
    assert isinstance(grid["max_epochs"][0], int)
    assert parse_grid_item("dropout1_p=0.1") == ("dropout1_p", [0.1])


@pytest.mark.parametrize("items, message", [
    (["max_epochs"], "key=v1,v2"),
    (["=1,2"], "not a parameter name"),
    (["max epochs=1,2"], "not a parameter name"),
    (["max_epochs="], "no values"),
    (["max_epochs=1,,2"], "empty value"),
    (["max_epochs=1,2,"], "empty value"),
    (["max_epochs=1,1"], "repeated"),
    (["max_epochs=1", "max_epochs=2"], "given twice"),
    ([], "at least one"),
])
def test_parse_grid_errors(items, message):
    with pytest.raises(sweep.GridError, match=message):
        parse_grid(items)


def test_unknown_grid_key_fails_early_with_a_suggestion():
    net = presets.net4(verbose=0)
    with pytest.raises(sweep.GridError, match="callbacks__adjust_lr__start"):
        sweep.check_grid(net, {"callbacks__adjust_lr__strat": [0.01]})
    with pytest.raises(sweep.GridError, match="dropout1_p"):  # net4 has no dropout layers
        sweep.check_grid(net, {"dropout1_p": [0.1]})
    sweep.check_grid(presets.net6(verbose=0), {"dropout1_p": [0.1, 0.2],
                                               "callbacks__adjust_momentum__stop": [0.99],
                                               "callbacks__early_stopping__patience": [10]})


# ---------------------------------------------------------------------------------- backends
def test_randomized_search_samples_the_grid(data, reference):
    X, y = data
    frame = run_sweep(schedule_net(), X, y, GRID, cv=2, n_iter=2, backend="sequential",
                      random_state=0, log=None)
    assert len(frame) == 2
    merged = frame.merge(reference, on=list(GRID), suffixes=("", "_ref"))
    assert len(merged) == 2
    np.testing.assert_allclose(merged["mean_rmse_px"], merged["mean_rmse_px_ref"], atol=1e-6)


def test_reference_results_table(reference):
    assert len(reference) == 4
    assert set(RESULT_COLUMNS + ["mean_fit_time_s"]) <= set(reference.columns)
    assert (reference["mean_rmse_px"] > 0).all()
    best = reference.attrs["best_params"]
    assert best == {k: reference[k].iloc[int(reference["mean_rmse_px"].idxmin())] for k in GRID}
    assert isinstance(best["max_epochs"], int)
    assert "valid RMSE px" in sweep_report.format_results(reference)


def test_without_dask_it_runs_on_local_processes_and_says_so(monkeypatch, data, reference):
    def no_dask():
        raise ImportError("No module named 'distributed'")

    monkeypatch.setattr(sweep, "_import_distributed", no_dask)
    monkeypatch.delenv(sweep.SCHEDULER_ENV, raising=False)
    notes, finished = [], []
    X, y = data
    frame = run_sweep(schedule_net(), X, y, GRID, cv=2, n_workers=2, log=notes.append,
                      progress=lambda meta, results: finished.extend(meta))
    assert "not installed" in notes[0] and "facekeypoints[distributed]" in notes[0]
    assert "loky" in frame.attrs["backend"]
    assert len(finished) == 8
    assert_same_results(frame, reference)
    with pytest.raises(sweep.SweepError, match="not installed"):
        run_sweep(schedule_net(), X, y, GRID, cv=2, scheduler="tcp://127.0.0.1:1", log=None)


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes on loopback."""
    if distributed is None:
        pytest.skip("needs facekeypoints[distributed]")
    with warnings.catch_warnings():  # another cluster on this machine may hold port 8787
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                           dashboard_address=None, processes=True)
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
        yield cluster, client


@needs_dask
def test_dask_results_equal_in_process_results_and_data_travels_once(cluster, data, reference,
                                                                     monkeypatch):
    _, client = cluster
    X, y = data
    scattered, batches = [], []
    real_scatter, real_submit = client.scatter, client.submit

    def scatter(payload, *args, **kwargs):
        futures = real_scatter(payload, *args, **kwargs)
        scattered.append((payload, kwargs, futures))
        return futures

    def submit(func, *args, **kwargs):
        if "tasks" in kwargs:
            batches.append(kwargs["tasks"])
        return real_submit(func, *args, **kwargs)

    monkeypatch.setattr(client, "scatter", scatter)
    monkeypatch.setattr(client, "submit", submit)
    finished = []
    frame = run_sweep(schedule_net(), X, y, GRID, cv=2, backend="dask", client=client,
                      log=None, progress=lambda meta, results: finished.extend(results))
    assert_same_results(frame, reference)
    assert frame.attrs["backend"].startswith("dask") and "2 workers" in frame.attrs["backend"]

    # X and y were scattered once, to every worker, before the fits ...
    assert len(scattered) == 1
    payload, kwargs, futures = scattered[0]
    assert payload[0] is X and payload[1] is y and kwargs.get("broadcast") is True
    keys = {f.key for f in futures}
    # ... and the 8 fits refer to them by key: no task carries the data.
    import cloudpickle

    tasks = [task for batch in batches for task in batch]
    assert len(tasks) == 8 and len(finished) == 8
    for _func, args, _kwargs in tasks:
        assert {a.key for a in args if isinstance(a, distributed.Future)} == keys
        assert not any(isinstance(a, np.ndarray) and a.size >= y.size for a in args)
    assert all(len(cloudpickle.dumps(batch)) < X.nbytes for batch in batches)
    # one torch thread per (single-threaded) worker
    assert set(client.run(lambda: __import__("torch").get_num_threads()).values()) == {1}


@needs_dask
def test_scheduler_address_from_the_environment(cluster, data, reference, monkeypatch):
    local_cluster, _ = cluster
    monkeypatch.setenv(sweep.SCHEDULER_ENV, local_cluster.scheduler_address)
    X, y = data
    grid = {"callbacks__adjust_lr__start": [0.03], "max_epochs": [2, 3]}
    frame = run_sweep(schedule_net(), X, y, grid, cv=2, log=None)
    assert local_cluster.scheduler_address in frame.attrs["backend"]
    assert_same_results(frame, reference[reference["callbacks__adjust_lr__start"] == 0.03])


# ---------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("faces"), n_train=60, n_test=4)["training"]


def test_cli_end_to_end(tiny_csv, tmp_path, capsys, request):
    argv = ["net1", "--data", str(tiny_csv), "--max-epochs", "1", "--cv", "2",
            "--grid", "update_learning_rate=0.01,0.001", "--out", str(tmp_path / "sweep")]
    if distributed is not None:
        argv += ["--scheduler", request.getfixturevalue("cluster")[0].scheduler_address]
    else:
        argv += ["--backend", "loky"]
    assert cli.main(["sweep", *argv]) == 0
    out = capsys.readouterr().out
    assert "[4/4]" in out and "valid RMSE px" in out and "best: update_learning_rate=" in out
    frame = pd.read_csv(tmp_path / "sweep" / "results.csv")
    assert list(frame["update_learning_rate"]) == [0.01, 0.001]
    assert (tmp_path / "sweep" / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "sweep" / "sweep.json").exists()

    # the same grid without Dask, in this process: the same numbers
    X, y = fk.load2d(tiny_csv)
    net = presets.net1(max_epochs=1, verbose=0, random_state=0)
    expected = run_sweep(net, X, y, {"update_learning_rate": [0.01, 0.001]}, cv=2,
                         backend="sequential", log=None)
    np.testing.assert_allclose(frame["mean_rmse_px"], expected["mean_rmse_px"], atol=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["net1", "--grid", "max_epochs"], "key=v1,v2"),
    (["net1"], "at least one --grid"),
    (["net9", "--grid", "max_epochs=1,2"], "unknown preset"),
    (["net1", "--grid", "hiden_num_units=10,20"], "did you mean hidden_num_units"),
    (["net1", "--grid", "max_epochs=1,2", "--cv", "1"], "--cv"),
    # issue 12: checked before the data are loaded and any fit starts
    (["net1", "--grid", "update_learning_rate=abc,0.01"],
     "--grid update_learning_rate='abc': expected a number"),
    (["net1", "--grid", "max_epochs=1,-3"], "--grid max_epochs=-3: max_epochs must be a positive"),
    (["net1", "--grid", "max_epochs=1,2", "--max-epochs", "-3"], "expected a positive integer"),
    (["net1", "--grid", "max_epochs=1,2", "--n-iter", "0"], "expected a positive integer"),
    (["net1", "--grid", "max_epochs=1,2", "--device", "meta"], "--device meta: the meta device"),
    (["net1", "--grid", "device=cpu,meta"], "--grid device=meta: the meta device"),
    (["net1", "--grid", "max_epochs=1,2", "--set", "device=meta"], "--set device=meta"),
    (["net1", "--grid", "max_epochs=1,2", "--set", "update_learning_rate=abc"],
     "--set update_learning_rate='abc': expected a number"),
    (["net1", "--grid", "max_epochs=1,2", "--seed", "3", "--set", "random_state=5"],
     "--seed 3 and --set random_state=5 disagree"),
])
def test_cli_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    try:
        rc = cli.main(["sweep", *argv])
    except SystemExit as exc:           # argparse's own errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert err.startswith("facekeypoints sweep: error: ")


def test_cli_refuses_a_device_this_machine_lacks_before_any_fit(capsys):
    import torch

    for device, available in (("cuda", torch.cuda.is_available()),
                              ("mps", torch.backends.mps.is_available())):
        if available:
            continue
        assert cli.main(["sweep", "net1", "--grid", "max_epochs=1,2", "--device", device]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"facekeypoints sweep: error: --device {device}: ")
        assert err.count("\n") == 1 and "not available" in err


def test_cli_out_through_a_file_is_refused_before_any_fit(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert cli.main(["sweep", "net1", "--grid", "max_epochs=1,2",
                     "--out", str(tmp_path / "afile" / "x")]) == 2
    err = capsys.readouterr().err
    assert "afile is a file, not a directory" in err and err.count("\n") == 1


def test_cli_set_random_state_wins_over_the_seed_default_and_is_recorded(tiny_csv, tmp_path,
                                                                         capsys):
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "net1", "--data", str(tiny_csv), "--max-epochs", "1", "--cv", "2",
                     "--grid", "update_learning_rate=0.01", "--set", "random_state=5",
                     "--backend", "sequential", "--out", str(out)]) == 0
    info = json.loads((out / "sweep.json").read_text())
    assert info["seed"] == 5 and info["set"] == {"random_state": 5}


def test_cli_help_describes_the_sweep(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("usage: facekeypoints sweep")
    assert "Cross-validate a preset over a grid of hyperparameters and report validation " \
           "RMSE (px). Fits run on Dask distributed" in out


# ---------------------------------------------------------------------------------- failures
@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_a_failing_candidate_scores_nan_and_every_fit_is_reported(data):
    from sklearn.exceptions import FitFailedWarning

    X, y = data
    lines = []
    progress = sweep_report.FitProgress(4, write=lines.append, bar=False)
    # 29 output units build fine (check_grid passes them) but cannot fit 30-column targets
    with pytest.warns(FitFailedWarning, match="2 fits failed out of a total of 4"):
        frame = run_sweep(tiny_net(max_epochs=1), X, y, {"output_num_units": [30, 29]}, cv=2,
                          backend="sequential", log=None, progress=progress)
    assert np.isnan(frame["mean_rmse_px"].iloc[1]) and list(frame["rank"]) == [1, 2]
    assert frame.attrs["best_params"] == {"output_num_units": 30}
    assert len(lines) == 4
    assert lines[0].startswith("[1/4]  candidate 1/2 fold 1/2  output_num_units=30  valid RMSE ")
    assert lines[3].startswith("[4/4]  candidate 2/2 fold 2/2  output_num_units=29  FAILED: "
                               "ValueError: y has 30 columns but the net's output layer has 29")
    with pytest.raises(sweep.SweepError, match="all the 2 fits failed"):
        run_sweep(tiny_net(max_epochs=1), X, y, {"output_num_units": [29]}, cv=2,
                  backend="sequential", log=None)


@pytest.mark.parametrize("grid, message", [
    ({"update_learning_rate": [0.01, "abc"]},
     "--grid update_learning_rate='abc': expected a number or a shared variable"),
    ({"max_epochs": [2, -3]}, "--grid max_epochs=-3: max_epochs must be a positive integer"),
    ({"hidden_num_units": [16, -1]}, "--grid hidden_num_units=-1: "),
    ({"device": ["cpu", "meta"]}, "--grid device='meta': the meta device holds no data"),
])
def test_values_no_fit_could_start_with_are_refused_before_any_fit(data, grid, message):
    X, y = data
    reported = []
    with pytest.raises(sweep.GridError, match=re.escape(message)):
        run_sweep(tiny_net(max_epochs=1), X, y, grid, cv=2, backend="sequential", log=None,
                  progress=lambda meta, results: reported.append(meta))
    assert reported == []


# ---------------------------------------------------------------------------------- structure
PACKAGE = Path(sweep.__file__).resolve().parent
THIRD_PARTY = ("joblib", "sklearn", "distributed", "dask")


def _imported_names(path):
    """(line, dotted name) of every import in a module: absolute, relative (resolved) and
    importlib.import_module / __import__ calls with a literal name."""
    package = ["facekeypoints", *path.relative_to(PACKAGE).parent.parts]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__")):
            yield node.lineno, node.args[0].value


def _is_private(part):
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def test_no_module_imports_a_private_module_of_joblib_sklearn_or_dask():
    offending = [f"{path.relative_to(PACKAGE.parent)}:{line}: {name}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 for line, name in _imported_names(path)
                 if name.split(".")[0] in THIRD_PARTY
                 and any(_is_private(part) for part in name.split(".")[1:])]
    assert not offending, "private imports:\n" + "\n".join(offending)


@pytest.mark.parametrize("module", ["sweep", "sweep_report"])
def test_sweep_library_does_not_import_the_application_or_the_cli(module):
    forbidden = {"facekeypoints.cli", "facekeypoints.runs", "facekeypoints.plots",
                 "facekeypoints.specialists"}
    if module == "sweep_report":
        forbidden.add("facekeypoints.sweep")  # the report knows nothing of how fits run
    names = [name for _, name in _imported_names(PACKAGE / f"{module}.py")]
    assert not [n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)]
