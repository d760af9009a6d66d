"""Malformed command-line input: one line ``facekeypoints CMD: error: ...`` and exit status 2,
never a traceback, never 0 or 1 (issue 12, point 9). Everything runs in-process through
``cli.main``; one tiny net1 run (one epoch on 60 rows) is trained for the commands that read a
model.
"""
import json

import pytest
import torch

from facekeypoints import cli
from facekeypoints.reports import read_history, read_run_info


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from facekeypoints.synthetic import write_dataset

    root = tmp_path_factory.mktemp("faces")
    return write_dataset(root, n_train=60, n_test=4)


@pytest.fixture(scope="module")
def run5(faces, tmp_path_factory):
    """net1 trained with --set random_state=5 and no --seed."""
    root = tmp_path_factory.mktemp("run5")
    with pytest.MonkeyPatch.context() as mp:     # module scope: the per-test cache is not set
        mp.setenv("FACEKEYPOINTS_CACHE", str(root / "cache"))
        assert cli.main(["train", "net1", "--data", str(faces["training"]), "--max-epochs",
                         "1", "--set", "random_state=5", "--device", "cpu",
                         "--out", str(root / "run")]) == 0
    return root / "run"


def fails(capsys, argv, *words):
    """Run the command; assert exit status 2 and one line on stderr holding ``words``."""
    capsys.readouterr()
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exc:           # argparse's own errors
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"facekeypoints {argv[0]}: error: "), err
    assert "Traceback" not in out + err
    for word in words:
        assert word in err, err
    return err


# -- --seed and --set random_state --------------------------------------------------------------

def test_set_random_state_wins_over_the_seed_default_and_run_json_says_so(run5):
    info = json.loads((run5 / "run.json").read_text())
    assert info["seed"] == 5
    assert info["set"]["random_state"] == 5


def test_an_explicit_seed_that_disagrees_with_set_random_state_is_refused(faces, tmp_path,
                                                                          capsys):
    fails(capsys, ["train", "net1", "--data", faces["training"], "--seed", "3", "--set",
                   "random_state=5", "--out", tmp_path / "r"],
          "--seed 3 and --set random_state=5 disagree")
    assert not (tmp_path / "r" / "model.pt").exists()


# -- --set values and devices, refused before any data is loaded -------------------------------

@pytest.mark.parametrize("extra, words", [
    (["--set", "update_learning_rate=abc"],
     ["--set update_learning_rate='abc': expected a number or a shared variable"]),
    (["--set", "eval_size=0.25", "--set", "update_momentum=fast"],
     ["--set update_momentum='fast'"]),
    (["--set", "max_epochs=-3"], ["max_epochs"]),
    (["--device", "meta"], ["--device meta: the meta device", "use cpu"]),
    (["--set", "device=meta"], ["--set device=meta: the meta device"]),
    (["--device", "cpu", "--set", "device='cuda:0'"], ["--set device=cuda:0"]),
    (["--device", "nonsense"], ["--device nonsense: 'nonsense' is not a device"]),
])
def test_malformed_settings(faces, tmp_path, capsys, extra, words):
    fails(capsys, ["train", "net1", "--data", faces["training"], "--max-epochs", "1",
                   "--out", tmp_path / "r", *extra], *words)
    assert not (tmp_path / "r" / "model.pt").exists()


@pytest.mark.parametrize("how", ["--device", "--set"])
@pytest.mark.parametrize("device, available", [
    ("cuda", torch.cuda.is_available()), ("mps", torch.backends.mps.is_available())])
def test_a_device_this_machine_lacks(faces, tmp_path, capsys, how, device, available):
    if available:
        pytest.skip(f"this machine has {device}")
    option = ["--device", device] if how == "--device" else ["--set", f"device={device}"]
    label = f"--device {device}" if how == "--device" else f"--set device={device}"
    fails(capsys, ["train", "net1", "--data", faces["training"], "--out", tmp_path / "r",
                   *option], f"{label}: ", "not available here")


def test_inspection_commands_check_the_device_too(run5, capsys):
    fails(capsys, ["evaluate", run5, "--device", "meta"], "--device meta: the meta device")


# -- paths that are not files --------------------------------------------------------------------

def test_data_that_is_a_directory_or_a_device(faces, tmp_path, capsys):
    folder = faces["training"].parent
    fails(capsys, ["train", "net1", "--data", folder, "--out", tmp_path / "r"],
          f"{folder} is a directory, not a CSV file", "training.csv")
    fails(capsys, ["train", "net1", "--data", "/dev/null", "--out", tmp_path / "r"],
          "/dev/null is a character device, not a CSV file")
    fails(capsys, ["train", "net1", "--data", tmp_path / "nope.csv", "--out", tmp_path / "r"],
          "no such data file")


def test_predict_names_a_lookup_table_that_is_not_text(run5, faces, tmp_path, capsys):
    import gzip

    binary = tmp_path / "IdLookupTable.csv"          # a compressed file with a .csv name
    binary.write_bytes(gzip.compress(faces["lookup"].read_bytes(), mtime=0))
    err = fails(capsys, ["predict", run5, "--test", faces["test"], "--lookup", binary,
                         "-o", tmp_path / "s.csv"],
                f"lookup table {binary}: not a readable CSV file", "not UTF-8")
    assert "codec" not in err
    binary.write_bytes(bytes(range(256)) * 8)
    fails(capsys, ["predict", run5, "--test", faces["test"], "--lookup", binary,
                   "-o", tmp_path / "s.csv"], f"lookup table {binary}: not a readable CSV file")
    fails(capsys, ["predict", run5, "--test", faces["test"].parent, "--lookup",
                   faces["lookup"], "-o", tmp_path / "s.csv"], "is a directory, not a CSV file")


def test_output_paths_through_a_file(run5, faces, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    fails(capsys, ["plot", run5, "-o", tmp_path / "afile" / "x.png"],
          "afile is a file, not a directory")
    fails(capsys, ["predict", run5, "--test", faces["test"], "--lookup", faces["lookup"],
                   "-o", tmp_path / "afile" / "s.csv"], "afile is a file, not a directory")
    (tmp_path / "d.png").mkdir()
    fails(capsys, ["plot", run5, "-o", tmp_path / "d.png"], "that is a directory")


# -- malformed history.json and run.json ----------------------------------------------------------

BAD_HISTORIES = {
    "not json": b"[{'epoch': 1}",
    "not utf-8": bytes(range(128, 256)),
    "an object": b'{"epoch": 1}',
    "not records": b"[1, 2]",
    "text epochs": b'[{"epoch": "x", "train_loss": "a"}]',
    "no epoch": b'[{"train_loss": 0.1}]',
    "text losses": b'[{"epoch": 1, "train_loss": "a"}]',
    "bool epoch": b'[{"epoch": true, "train_loss": 0.1}]',
}


@pytest.mark.parametrize("command", ["compare", "plot"])
@pytest.mark.parametrize("kind", list(BAD_HISTORIES))
def test_malformed_history_json(tmp_path, capsys, command, kind):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_bytes(BAD_HISTORIES[kind])
    argv = [command, run] + (["-o", tmp_path / "x.png"] if command == "plot" else [])
    fails(capsys, argv, str(run / "history.json"))
    assert not (tmp_path / "x.png").exists()


def test_malformed_run_json_is_named_before_the_table_prints(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_text('[{"epoch": 1, "train_loss": 0.1, "valid_loss": 0.2}]')
    (run / "run.json").write_text("[1, 2]")
    fails(capsys, ["compare", run], f"{run / 'run.json'}: not a facekeypoints run.json")
    assert capsys.readouterr().out == ""


def test_read_history_accepts_what_runs_write(tmp_path):
    records = [{"epoch": 1, "train_loss": 0.1, "valid_loss": None, "dur": 1},
               {"epoch": 2, "train_loss": float("nan"), "learning_rate": 0.01, "note": "x"}]
    (tmp_path / "history.json").write_text(json.dumps(records))
    got = read_history(tmp_path)
    assert got[0] == records[0] and got[1]["note"] == "x"
    (tmp_path / "run.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"run.json: not valid JSON \(.* line 1, column 2\)"):
        read_run_info(tmp_path)


# -- predict to stdout and into a FIFO ------------------------------------------------------------

def test_predict_to_stdout_keeps_the_csv_clean(run5, faces, capsys):
    capsys.readouterr()
    assert cli.main(["predict", str(run5), "--test", str(faces["test"]), "--lookup",
                     str(faces["lookup"]), "-o", "-"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "RowId,Location" and len(lines) > 1
    assert "wrote the submission to stdout" in err and "predicted" in err


def test_predict_into_a_fifo_does_not_hang(run5, faces, tmp_path):
    import os
    import threading

    fifo = tmp_path / "sub.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    assert cli.main(["predict", str(run5), "--test", str(faces["test"]), "--lookup",
                     str(faces["lookup"]), "-o", str(fifo)]) == 0
    reader.join(timeout=30)
    assert received and received[0].startswith("RowId,Location")
    assert fifo.exists() and not fifo.is_file()      # still a FIFO, not replaced by a file
