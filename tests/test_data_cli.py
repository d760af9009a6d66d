"""Data at the command line (issue 26): ``--json`` output is standard JSON (null, never NaN),
data errors give their hint in CLI words, ``--partial-labels`` takes a CSV lacking keypoint
columns, ``evaluate`` suggests ``--partial-labels`` where it would help, and ``make-data``
on a full disk says where and how much. One tiny net1 run (one epoch on 60 faces) serves
the commands that read a model."""
import errno
import json

import numpy as np
import pandas as pd
import pytest

from facekeypoints import cli, synthetic


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return synthetic.write_dataset(tmp_path_factory.mktemp("faces"), n_train=60, n_test=4)


@pytest.fixture(scope="module")
def run(faces, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:     # module scope: the per-test cache is not set
        mp.setenv("FACEKEYPOINTS_CACHE", str(root / "cache"))
        assert cli.main(["train", "net1", "--data", str(faces["training"]), "--max-epochs",
                         "1", "--device", "cpu", "--out", str(root / "net1")]) == 0
    return root / "net1"


def variant(faces, path, drop=(), empty=()):
    """The training file with columns ``drop`` removed and columns ``empty`` blanked."""
    table = pd.read_csv(faces["training"])
    table[list(empty)] = np.nan
    table.drop(columns=list(drop)).to_csv(path, index=False)
    return path


def strict_json(text):
    def refuse(name):
        raise ValueError(f"not standard JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def error_line(capsys, argv):
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out + err, err
    return lines[0]


def test_evaluate_json_is_standard_json_when_a_keypoint_has_no_faces(faces, run, tmp_path,
                                                                    capsys):
    data = variant(faces, tmp_path / "no_nose.csv", empty=["nose_tip_x", "nose_tip_y"])
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--data", str(data), "--partial-labels",
                     "--json"]) == 0
    result = strict_json(capsys.readouterr().out)      # NaN / Infinity would raise here
    nose = result["keypoints"]["nose_tip"]
    assert nose["faces"] == 0 and nose["x"] is None and nose["rmse"] is None
    assert result["keypoints"]["left_eye_center"]["faces"] > 0
    assert isinstance(result["rmse_px"], float) and result["rmse_px"] > 0


def test_a_csv_without_some_keypoint_columns(faces, run, tmp_path, capsys):
    absent = ["nose_tip_x", "nose_tip_y", "mouth_left_corner_x", "mouth_left_corner_y"]
    data = variant(faces, tmp_path / "fewer.csv", drop=absent)
    # Without --partial-labels: the hint says the CLI option, not the Python argument.
    err = error_line(capsys, ["train", "net1", "--data", data, "--max-epochs", "1",
                              "--device", "cpu", "--out", tmp_path / "refused"])
    assert "4 of the 30 keypoint columns are missing" in err and "--partial-labels" in err
    assert "cols=" not in err and "dropna" not in err, err
    # With it, the absent columns are unlabelled, as empty ones are.
    assert cli.main(["train", "net1", "--data", str(data), "--max-epochs", "1",
                     "--partial-labels", "--device", "cpu", "--out",
                     str(tmp_path / "partial")]) == 0
    assert (tmp_path / "partial" / "model.pt").exists()
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--data", str(data), "--partial-labels",
                     "--json"]) == 0
    result = strict_json(capsys.readouterr().out)
    assert result["keypoints"]["nose_tip"]["faces"] == 0
    assert result["faces"] == int(pd.read_csv(data).drop(columns="Image").notna().any(
        axis=1).sum())


def test_evaluate_suggests_partial_labels(faces, run, tmp_path, capsys):
    # None complete: the refusal says what to add.
    data = variant(faces, tmp_path / "gappy.csv", empty=["nose_tip_x"])
    err = error_line(capsys, ["evaluate", run, "--data", data])
    assert "no rows left" in err and "Add --partial-labels to use the 60 faces" in err, err
    # Few complete, many partial: a note on stderr, the table on stdout.
    table = pd.read_csv(faces["training"])
    complete = table.drop(columns="Image").notna().all(axis=1).to_numpy()
    keep = np.flatnonzero(complete)[:5]
    table.loc[complete & ~np.isin(np.arange(len(table)), keep), "nose_tip_x"] = np.nan
    table.to_csv(tmp_path / "few.csv", index=False)
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--data", str(tmp_path / "few.csv")]) == 0
    out, err = capsys.readouterr()
    assert "RMSE px" in out
    assert err.strip() == ("note: only 5 faces have all 15 keypoints; --partial-labels "
                           "evaluates each keypoint over the faces that have it (60 faces "
                           "have some)"), err
    # Enough complete faces, or --partial-labels given: no note.
    assert cli.main(["evaluate", str(run), "--data", str(tmp_path / "few.csv"),
                     "--partial-labels"]) == 0
    assert capsys.readouterr().err == ""


def test_file_kind_hints_are_in_cli_words(faces, run, tmp_path, capsys):
    err = error_line(capsys, ["train", "net1", "--data", faces["test"], "--max-epochs", "1",
                              "--out", tmp_path / "r"])
    assert "It looks like a test file: predict reads it (--test)" in err
    assert "test=True" not in err
    err = error_line(capsys, ["predict", run, "--test", faces["training"], "--lookup",
                              faces["lookup"], "-o", tmp_path / "s.csv"])
    assert "It looks like a training file: pass it as --data" in err
    assert "test=True" not in err and "load(" not in err


def test_make_data_on_a_full_disk(tmp_path, capsys, monkeypatch):
    def full(path, chunks):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(synthetic, "_write_chunks", full)
    err = error_line(capsys, ["make-data", tmp_path / "out", "--train", "1000", "--test",
                              "100"])
    assert err == (f"facekeypoints make-data: error: cannot write the data set into "
                   f"{tmp_path / 'out'}: the disk is full (the files need about 36.9 MB); "
                   "free some space there or choose another DIR")


def test_json_never_holds_nan():
    from facekeypoints._json import dumps

    text = dumps({"a": float("nan"), "b": [np.float32("inf"), -np.inf, np.int64(2)],
                  "c": np.array([1.5, np.nan]), "d": (None, True)}, indent=1)
    assert strict_json(text) == {"a": None, "b": [None, None, 2], "c": [1.5, None],
                                 "d": [None, True]}


def test_written_json_files_hold_null(tmp_path):
    from facekeypoints._safe_io import write_json

    path = write_json(tmp_path / "h.json", [{"epoch": 1, "valid_loss": float("nan")}])
    assert strict_json(path.read_text()) == [{"epoch": 1, "valid_loss": None}]

