"""W&B in offline mode on fk nets: what the WandbLogger records, read back from the run's own
``.wandb`` file (wandb's protobuf records; no server, no ``wandb.Api``) and ``files/``, from
Python and from ``--log wandb:DIR`` on the command line, a resumed run included.
"""
import json
import pickle

import numpy as np
import pytest
from sklearn.base import clone

pytest.importorskip("wandb")

import facekeypoints as fk  # noqa: E402
from facekeypoints import cli  # noqa: E402
from facekeypoints.synthetic import write_dataset  # noqa: E402
from facekeypoints.tracking import WandbLogger  # noqa: E402
from facekeypoints.wandb_records import WandbRecordError, read_wandb_run  # noqa: E402

from .conftest import tiny_data, tiny_net  # noqa: E402

PER_EPOCH = ("train_loss", "valid_loss", "valid_rmse_px", "learning_rate", "momentum", "dur")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    # offline whatever the environment says: a user's WANDB_MODE=online must not send
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")


def test_wandb_records_each_epoch_the_settings_and_the_model_offline(tmp_path):
    X, y = tiny_data()
    net = tiny_net(max_epochs=3, update_learning_rate=fk.shared(0.03), on_epoch_finished=[
        fk.AdjustVariable("update_learning_rate", 0.03, 0.01)], callbacks=[
        ("wandb", WandbLogger(tmp_path, run_name="tiny", settings={"preset": "tiny"}))])
    net.fit(X, y)
    logger = dict(net.callbacks_)["wandb"]
    run = read_wandb_run(tmp_path, logger.run_id_)

    assert run["name"] == "tiny" and run["project"] == "facekeypoints"
    assert len(run["dirs"]) == 1 and run["dirs"][0].parent == tmp_path / "wandb"
    assert run["dirs"][0].name.startswith("offline-run-")
    assert [row["_step"] for row in run["history"]] == [1, 2, 3]
    for key in PER_EPOCH:
        assert np.allclose([row[key] for row in run["history"]],
                           [h[key] for h in net.history]), key
    assert np.allclose([row["learning_rate"] for row in run["history"]], [0.03, 0.02, 0.01])
    assert run["config"]["preset"] == "tiny" and run["config"]["max_epochs"] == 3
    assert run["config"]["update"] == "nesterov_momentum"
    assert run["exit_codes"] == [0]
    assert {"model.pt", "history.json"} <= set(run["files"])
    model = run["dirs"][0] / "files" / "model.pt"
    assert np.allclose(fk.load_model(model).predict(X), net.predict(X), atol=1e-6)


def test_no_validation_set_logs_no_valid_numbers_and_nets_clone_and_pickle(tmp_path):
    X, y = tiny_data()
    net = tiny_net(max_epochs=1, eval_size=0, callbacks=[("wandb", WandbLogger(tmp_path))])
    assert dict(clone(net).callbacks)["wandb"].directory == tmp_path
    net.fit(X, y)
    row = read_wandb_run(tmp_path, dict(net.callbacks_)["wandb"].run_id_)["history"][0]
    assert "train_loss" in row and not [k for k in row if "valid" in k]
    assert np.allclose(pickle.loads(pickle.dumps(net)).predict(X), net.predict(X))


def test_a_missing_run_is_named_in_one_line(tmp_path):
    with pytest.raises(WandbRecordError) as err:
        read_wandb_run(tmp_path, "nosuchid")
    assert "nosuchid" in str(err.value) and "\n" not in str(err.value)


def test_cli_log_wandb_records_a_run_and_its_resume_continues_the_same_run(tmp_path):
    data = write_dataset(tmp_path / "data", n_train=60, n_test=2)["training"]
    wb, out = tmp_path / "wb", tmp_path / "run"
    assert cli.main(["train", "net1", "--data", str(data), "--out", str(out), "--seed", "1",
                     "--max-epochs", "2", "--log", f"wandb:{wb}"]) == 0
    tracking = json.loads((out / "run.json").read_text())["tracking"]
    assert [t["kind"] for t in tracking] == ["wandb"] and tracking[0]["target"] == str(wb)
    run_id = tracking[0]["run_id"]

    # resumed without --log: the run keeps its own tracking, in the same W&B run
    assert cli.main(["train", "net1", "--resume", str(out), "--max-epochs", "3"]) == 0
    history = json.loads((out / "history.json").read_text())
    run = read_wandb_run(wb, run_id)
    assert len(run["dirs"]) == 2 and run["exit_codes"] == [0, 0]      # one run id, two parts
    assert [row["_step"] for row in run["history"]] == [1, 2, 3]
    assert np.allclose([row["valid_rmse_px"] for row in run["history"]],
                       [h["valid_rmse_px"] for h in history])
    assert run["name"] == "run" and run["config"]["preset"] == "net1"
    assert json.loads((out / "run.json").read_text())["tracking"] == tracking


def test_cli_log_wandb_to_an_unusable_directory_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    data = write_dataset(tmp_path / "data", n_train=20, n_test=2)["training"]
    assert cli.main(["train", "net1", "--data", str(data), "--out", str(tmp_path / "run"),
                     "--max-epochs", "1", "--log", f"wandb:{a_file}/wb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--log wandb:" in err and "Traceback" not in err


def test_cli_specialists_log_one_wandb_run_per_group_in_one_group(tmp_path):
    data = write_dataset(tmp_path / "data", n_train=60, n_test=2)["training"]
    wb = tmp_path / "wb"
    assert cli.main(["train-specialists", "net1", "--data", str(data), "--max-epochs", "1",
                     "--groups", "nose_tip", "mouth", "--out", str(tmp_path / "ens"),
                     "--log", f"wandb:{wb}"]) == 0
    runs = [read_wandb_run(wb, p.name.split("-")[3])
            for p in (wb / "wandb").glob("offline-run-*")]
    assert sorted(r["name"] for r in runs) == ["mouth", "nose_tip"]
    assert {r["group"] for r in runs} == {"ens"}
    assert all([row["_step"] for row in r["history"]] == [1] and r["exit_codes"] == [0]
               for r in runs)


def test_epochs_a_killed_run_logged_after_its_checkpoint_read_as_the_resumed_ones(tmp_path):
    import shutil

    from facekeypoints.checkpoint import Checkpoint

    X, y = tiny_data()
    first = tiny_net(max_epochs=2, callbacks=[
        ("checkpoint", Checkpoint(tmp_path / "ckpt.pt")),
        ("wandb", WandbLogger(tmp_path / "wb"))]).fit(X, y)
    run_id = dict(first.callbacks_)["wandb"].run_id_
    shutil.copy(tmp_path / "ckpt.pt", tmp_path / "epoch2.pt")
    first.partial_fit(X, y, epochs=1)           # epoch 3 logged in the same run, then "killed"
    again = tiny_net(max_epochs=4, callbacks=[
        ("checkpoint", Checkpoint(tmp_path / "ckpt2.pt")),
        ("wandb", WandbLogger(tmp_path / "wb", run_id=run_id))])
    again.fit(X, y * 0.5, resume=tmp_path / "epoch2.pt")   # epochs 3 and 4, other values
    assert again.history[2]["train_loss"] != pytest.approx(first.history[2]["train_loss"])
    run = read_wandb_run(tmp_path / "wb", run_id)
    assert len(run["dirs"]) == 3
    assert [row["_step"] for row in run["history"]] == [1, 2, 3, 4]
    assert np.allclose([row["train_loss"] for row in run["history"]],
                       [h["train_loss"] for h in again.history])
