"""The ``facekeypoints`` command, run as a subprocess on a tiny synthetic dataset.

One net1 run (two epochs on 60 rows, of which about 18 are complete faces) is trained once
per module and shared by the evaluate / predict / plot / compare tests. Cheaper checks of
error paths and ``--help`` call ``cli.main`` in-process.
"""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from facekeypoints import cli
from facekeypoints.metrics import rmse_px
from facekeypoints.reports import keypoint_errors, recipe_table, run_labels

COMMANDS = ("train", "evaluate", "predict", "plot", "compare", "recipe", "make-data")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    root = tmp_path_factory.mktemp("cli")
    paths = write_dataset(root / "data", n_train=60, n_test=8)
    environ = dict(os.environ, FACEKEYPOINTS_CACHE=str(root / "cache"), PYTHONUNBUFFERED="1")
    return {"root": root, "paths": paths, "env": environ}


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "facekeypoints.cli", *map(str, args)],
                          capture_output=True, text=True, env=env["env"], cwd=env["root"],
                          timeout=300)


def assert_one_line_error(proc, command):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"facekeypoints {command}: error: "), lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def trained(env):
    out = env["root"] / "run_a"
    proc = run(env, "train", "net1", "--data", env["paths"]["training"], "--max-epochs", 2,
               "--set", "eval_size=0.25", "--set", "update_learning_rate=0.005", "--out", out)
    return proc, out


# -- train ----------------------------------------------------------------------------------

def test_train_writes_a_complete_run(trained):
    proc, out = trained
    assert proc.returncode == 0, proc.stderr
    for name in ("model.pt", "history.json", "history.csv", "run.json", "config.json",
                 "learning_curve.png", "keypoints.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["learning_rate"] == pytest.approx(0.005) for h in history)
    csv = pd.read_csv(out / "history.csv")
    assert list(csv["epoch"]) == [1, 2] and "valid_loss" in csv
    info = json.loads((out / "run.json").read_text())
    assert info["preset"] == "net1" and info["max_epochs"] == 2
    assert info["set"] == {"eval_size": 0.25, "update_learning_rate": 0.005}
    config = json.loads((out / "config.json").read_text())
    assert config["layer_kwargs"]["hidden_num_units"] == 100
    assert config["eval_size"] == 0.25
    # the epoch table, with lr and momentum columns, and the closing summary
    assert "train_loss" in proc.stdout and "learning_rate" in proc.stdout
    assert "best valid RMSE" in proc.stdout


def test_train_set_reaches_a_callback(env, tmp_path, capsys):
    """--set callbacks__adjust_lr__stop=... feeds set_params (in-process: net4 is large)."""
    out = tmp_path / "net4"
    rc = cli.main(["train", "net4", "--data", str(env["paths"]["training"]), "--max-epochs", "2",
                   "--set", "eval_size=0.25", "--set", "callbacks__adjust_lr__stop=1e-3",
                   "--out", str(out)])
    assert rc == 0
    history = json.loads((out / "history.json").read_text())
    assert [h["learning_rate"] for h in history] == pytest.approx([0.03, 1e-3])
    assert [h["momentum"] for h in history] == pytest.approx([0.9, 0.999])
    config = json.loads((out / "config.json").read_text())
    adjust = [c for c in config["callbacks"] if c["name"] == "adjust_lr"][0]
    assert adjust["params"]["stop"] == 1e-3
    assert config["hyperparameters"]["update_learning_rate"] == pytest.approx(0.03)


# -- evaluate -------------------------------------------------------------------------------

def test_evaluate_prints_a_table(env, trained):
    proc = run(env, "evaluate", trained[1], "--data", env["paths"]["training"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("keypoint") and "RMSE px" in line for line in lines)
    rows = [line for line in lines if line.split() and line.split()[0] in (
        "left_eye_center", "nose_tip", "mouth_center_bottom_lip", "overall")]
    assert len(rows) == 4
    overall = float(rows[-1].split()[-1])
    assert 0 < overall < 96


def test_evaluate_json_on_the_validation_fold_matches_the_history(env, trained, capsys):
    proc, out = trained
    rc = cli.main(["evaluate", str(out / "model.pt"), "--data", str(env["paths"]["training"]),
                   "--split", "valid", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["keypoints"]) == 15 and result["split"] == "valid"
    last = json.loads((out / "history.json").read_text())[-1]
    assert result["rmse_px"] == pytest.approx(rmse_px(last["valid_loss"]), rel=1e-4)


# -- predict --------------------------------------------------------------------------------

def test_predict_writes_a_submission(env, trained):
    paths = env["paths"]
    target = env["root"] / "sub" / "submission.csv"
    target.parent.mkdir()
    proc = run(env, "predict", trained[1], "--test", paths["test"], "--lookup", paths["lookup"],
               "-o", target)
    assert proc.returncode == 0, proc.stderr
    sub = pd.read_csv(target)
    lookup = pd.read_csv(paths["lookup"])
    assert list(sub.columns) == ["RowId", "Location"]
    assert list(sub["RowId"]) == list(lookup["RowId"])
    assert np.isfinite(sub["Location"]).all()
    assert sub["Location"].between(0, 96).all()
    assert str(target) in proc.stdout


# -- plot and compare -----------------------------------------------------------------------

def test_plot_several_runs(env, trained):
    out_b = env["root"] / "other" / "run_a"      # same name, other folder: labels must differ
    out_b.parent.mkdir(exist_ok=True)
    import shutil

    shutil.copytree(trained[1], out_b)
    png = env["root"] / "curves.png"
    proc = run(env, "plot", trained[1], out_b / "model.pt", "-o", png)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2 runs" in proc.stdout


def test_compare_prints_the_recipe_table(env, trained):
    proc = run(env, "compare", trained[1], trained[1] / "model.pt", "--epochs", 1, 2, 5)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "run_a" in lines[0] and "run_a (2)" in lines[0]     # the same run twice
    header = lines[1].split()
    assert header[0] == "epoch" and header.count("train/val") == 2
    assert [line.split()[0] for line in lines[3:6]] == ["1", "2", "5"]
    assert proc.stdout.count("best valid RMSE") == 2
    assert "net1" in proc.stdout               # run.json summary


# -- make-data and recipe -------------------------------------------------------------------

def test_make_data(env):
    target = env["root"] / "made"
    proc = run(env, "make-data", target, "--train", 12, "--test", 3)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(target / "training.csv")) == 12
    assert len(pd.read_csv(target / "test.csv")) == 3
    assert (target / "IdLookupTable.csv").is_file()
    assert "complete rows" in proc.stdout


def test_recipe(env):
    out = env["root"] / "recipe"
    proc = run(env, "recipe", "--nets", "net1", "--epochs", 1, "--data",
               env["paths"]["training"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "net1" / "model.pt").is_file() and (out / "learning_curves.png").is_file()
    assert "best valid RMSE" in proc.stdout
    # The quick run states its budget, and trains with the quick batch size it states.
    assert "1 epochs each on" in proc.stdout and "training batch 16" in proc.stdout
    config = json.loads((out / "net1" / "config.json").read_text())
    assert "16" in json.dumps(config["batch_iterator_train"])


def test_recipe_batch_size_flag(env):
    out = env["root"] / "recipe-bs"
    proc = run(env, "recipe", "--nets", "net1", "--epochs", 1, "--batch-size", 7, "--data",
               env["paths"]["training"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "training batch 7" in proc.stdout and "recipe's is 128" not in proc.stdout


def test_with_batch_size_copies_the_iterator():
    from facekeypoints.cli.training import with_batch_size
    from facekeypoints.iterators import FlipBatchIterator

    original = FlipBatchIterator(batch_size=128, shuffle=True)
    copied = with_batch_size(original, 16)
    assert type(copied) is FlipBatchIterator and copied.shuffle
    assert (copied.batch_size, original.batch_size) == (16, 128)
    assert with_batch_size(None, 8).batch_size == 8


# -- bad arguments: one line on stderr, exit status 2, no traceback -------------------------

def test_missing_data_file(env):
    proc = run(env, "train", "net1", "--data", "nowhere/training.csv")
    assert_one_line_error(proc, "train")
    assert "nowhere/training.csv" in proc.stderr


class _Payload:
    """Unpickling this would create a file: the CLI must refuse it without running it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_that_is_not_a_model_is_refused_unexecuted(env):
    marker = env["root"] / "pwned"
    bad = env["root"] / "evil.pt"
    with open(bad, "wb") as f:
        pickle.dump(_Payload(str(marker)), f)
    proc = run(env, "evaluate", bad, "--data", env["paths"]["training"])
    assert_one_line_error(proc, "evaluate")
    assert "not a valid facekeypoints model" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("argv, command, words", [
    (["train", "net9"], "train", "invalid choice: 'net9'"),
    (["train", "net1", "--set", "max_epochs"], "train", "expected KEY=VALUE"),
    (["train", "net1", "--set", "hiden_num_units=5"], "train", "did you mean 'hidden_num_units'"),
    (["train", "net1", "--set", "callbacks__adjust_lr__stop=1e-3"], "train", "no callback"),
    (["train", "net4", "--set", "callbacks__adjust_lr__stopp=1e-3"], "train", "no parameter"),
    (["train", "net1", "--max-epochs", "0"], "train", "positive integer"),
    (["evaluate", "nowhere"], "evaluate", "no run directory or model file"),
    (["predict", "nowhere", "--test", "t.csv"], "predict", "no run directory or model file"),
    (["plot", "nowhere"], "plot", "no run directory or model file"),
    (["compare", "."], "compare", "not a run directory"),
    (["evaluate", ".", "--split", "most"], "evaluate", "invalid choice"),
])
def test_bad_arguments_in_process(argv, command, words, capsys):
    """The same one-line errors, without a process start each (the subprocess tests above
    show that nothing else reaches stderr)."""
    try:
        rc = cli.main(argv)
    except SystemExit as exc:           # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"facekeypoints {command}: error: ")
    assert words in err


def test_predict_and_plot_argument_errors(env, trained, capsys):
    paths = env["paths"]
    assert cli.main(["predict", str(trained[1]), "--test", str(paths["test"]), "--lookup",
                     "nope.csv"]) == 2
    assert "no such lookup table: nope.csv" in capsys.readouterr().err
    assert cli.main(["plot", str(trained[1]), "-o", str(env["root"] / "curves.txt")]) == 2
    assert ".png" in capsys.readouterr().err


def test_wrong_typed_set_value_and_missing_cuda(env, tmp_path, capsys):
    data = str(env["paths"]["training"])
    rc = cli.main(["train", "net1", "--data", data, "--max-epochs", "1", "--out",
                   str(tmp_path / "r"), "--set", "hidden_num_units='many'"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--set" in err
    import torch

    if not torch.cuda.is_available():
        assert cli.main(["train", "net1", "--device", "cuda", "--data", data]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: facekeypoints {command}")


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


# -- runs helpers ---------------------------------------------------------------------------

def test_keypoint_errors_overall_is_the_loss_in_pixels():
    rng = np.random.default_rng(0)
    y = rng.uniform(-1, 1, (20, 30))
    pred = y + rng.normal(0, 0.05, y.shape)
    table = keypoint_errors(y, pred)
    assert len(table) == 16 and table.index[-1] == "overall"
    assert table.loc["overall", "rmse"] == pytest.approx(rmse_px(np.mean((pred - y) ** 2)))
    one = keypoint_errors(np.zeros((3, 2)), np.full((3, 2), 1 / 48), columns=["nose_tip_x",
                                                                              "nose_tip_y"])
    assert one.loc["nose_tip", "rmse"] == pytest.approx(1.0)


def test_run_labels_tell_runs_apart(tmp_path):
    assert run_labels([tmp_path / "a" / "net4", tmp_path / "b" / "net5"]) == ["net4", "net5"]
    assert run_labels([tmp_path / "a" / "net4", tmp_path / "b" / "net4" / "model.pt"]) == [
        "a/net4", "b/net4"]


def test_recipe_table_blank_for_missing_epochs():
    h1 = [{"epoch": e, "train_loss": 0.01 / e, "valid_loss": 0.02 / e, "train_val": 0.5}
          for e in (1, 2, 3)]
    text = recipe_table({"x": h1, "y": h1[:2]}, epochs=[1, 3])
    lines = text.splitlines()
    assert lines[0].split() == ["|", "x", "|", "y"]
    first, second = (line.replace("|", " ").split() for line in lines[3:5])
    assert first == ["1", "0.010000", "0.020000", "0.50", "0.010000", "0.020000", "0.50"]
    assert second == ["3", "0.003333", "0.006667", "0.50"]    # y has no epoch 3
    assert "x  best valid RMSE" in text and "epoch 3" in text
