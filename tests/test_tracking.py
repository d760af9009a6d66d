"""Experiment tracking on fk nets: what skorch's TensorBoard and MLflow loggers record, read
back with the tools' own readers (TensorBoard's EventAccumulator, MLflow's client on a local
file store), from Python and from ``--log`` on the command line, resumed runs included.
"""
import json
import pickle
import shutil

import numpy as np
import pytest
from sklearn.base import clone

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import facekeypoints as fk  # noqa: E402
from facekeypoints import cli  # noqa: E402
from facekeypoints.synthetic import write_dataset  # noqa: E402
from facekeypoints.tracking import (MlflowLogger, SweepFitLabel, TensorBoardLogger,  # noqa: E402
                                    TrackingError, check_target, mlflow_client, parse_log)

from .conftest import tiny_data, tiny_net  # noqa: E402

PER_EPOCH = ("train_loss", "valid_loss", "valid_rmse_px", "learning_rate", "momentum", "dur")


def scalars(logdir):
    events = EventAccumulator(str(logdir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}, events


def tb_key(tag):
    return tag.split("/")[-1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), n_train=120, n_test=4)["training"]


def scheduled_net(**overrides):
    return tiny_net(max_epochs=4, update_learning_rate=fk.shared(0.03),
                    update_momentum=fk.shared(0.9), on_epoch_finished=[
                        fk.AdjustVariable("update_learning_rate", 0.03, 0.001),
                        fk.AdjustVariable("update_momentum", 0.9, 0.99)], **overrides)


def test_tensorboard_and_mlflow_record_each_finished_epoch(tmp_path):
    X, y = tiny_data()
    net = scheduled_net(callbacks=[
        ("tensorboard", TensorBoardLogger(tmp_path / "tb", settings={"preset": "tiny"})),
        ("mlflow", MlflowLogger(str(tmp_path / "ml"), run_name="tiny"))]).fit(X, y)
    history = [dict(h) for h in net.history]

    found, events = scalars(tmp_path / "tb")
    by_key = {tb_key(tag): values for tag, values in found.items()}
    assert "RMSE_px/valid_rmse_px" in found and "Optimizer/learning_rate" in found
    for key in PER_EPOCH:
        assert [s for s, _ in by_key[key]] == [1, 2, 3, 4], key
        assert np.allclose([v for _, v in by_key[key]], [h[key] for h in history]), key
    lrs = [v for _, v in by_key["learning_rate"]]
    assert lrs[0] == pytest.approx(0.03) and lrs[-1] == pytest.approx(0.001)  # the schedule
    text = events.Tensors("settings/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '| preset | "tiny" |' in text and "| max_epochs | 4 |" in text

    logger = dict(net.callbacks_)["mlflow"]
    client = mlflow_client(str(tmp_path / "ml"))
    run = client.get_run(logger.run_id_)
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    for key in PER_EPOCH:
        got = sorted((m.step, m.value) for m in client.get_metric_history(logger.run_id_, key))
        assert [s for s, _ in got] == [1, 2, 3, 4], key
        assert np.allclose([v for _, v in got], [h[key] for h in history]), key
    assert run.data.params["max_epochs"] == "4"
    assert run.data.params["update"] == "nesterov_momentum"
    assert {a.path for a in client.list_artifacts(logger.run_id_)} >= {"model.pt",
                                                                       "history.json"}
    model = client.download_artifacts(logger.run_id_, "model.pt", str(tmp_path / "dl"))
    assert np.allclose(fk.load_model(model).predict(X), net.predict(X), atol=1e-6)


def test_an_epoch_ended_by_an_earlier_callback_is_still_recorded(tmp_path):
    X, y = tiny_data()
    net = tiny_net(max_epochs=20, update_learning_rate=1.0, callbacks=[
        ("stop", fk.EarlyStopping(patience=1, verbose=False)),
        ("tensorboard", TensorBoardLogger(tmp_path / "tb"))]).fit(X, y)
    found, _ = scalars(tmp_path / "tb")
    assert len(net.history) < 20
    assert [s for s, _ in found["Loss/valid_loss"]] == [h["epoch"] for h in net.history]


def test_no_validation_set_logs_no_valid_numbers(tmp_path):
    X, y = tiny_data()
    tiny_net(max_epochs=2, eval_size=0, callbacks=[
        ("tensorboard", TensorBoardLogger(tmp_path / "tb"))]).fit(X, y)
    found, _ = scalars(tmp_path / "tb")
    assert "Loss/train_loss" in found
    assert not [t for t in found if "valid" in t]


def test_nets_with_loggers_clone_and_pickle(tmp_path):
    X, y = tiny_data()
    net = tiny_net(max_epochs=1, callbacks=[
        ("tensorboard", TensorBoardLogger(tmp_path / "tb")),
        ("mlflow", MlflowLogger(str(tmp_path / "ml")))])
    clone(net)
    net.fit(X, y)
    again = pickle.loads(pickle.dumps(net))
    assert np.allclose(again.predict(X), net.predict(X))
    assert dict(clone(net).callbacks)["tensorboard"].logdir == tmp_path / "tb"


def test_log_specs_and_targets_are_checked_in_one_line(tmp_path):
    assert parse_log("tb:runs") == ("tensorboard", "runs")
    assert parse_log("mlflow:http://localhost:5000").target == "http://localhost:5000"
    for bad in ("wandb2:x", "tensorboard", "mlflow:"):
        with pytest.raises(TrackingError, match="--log"):
            parse_log(bad)
    a_file = tmp_path / "file"
    a_file.write_text("")
    for spec in (f"tensorboard:{a_file}", f"tensorboard:{a_file}/below",
                 f"mlflow:{a_file}/store"):
        with pytest.raises(TrackingError) as err:
            check_target(parse_log(spec))
        assert "\n" not in str(err.value) and str(a_file) in str(err.value)
    made = check_target(parse_log(f"tensorboard:{tmp_path}/new/tb"))
    assert (tmp_path / "new" / "tb").is_dir() and made.target == str(tmp_path / "new" / "tb")


def _train(data, out, *extra):
    return ["train", "net1", "--data", str(data), "--out", str(out), "--seed", "1",
            *map(str, extra)]


def test_cli_log_records_a_run_and_its_resume_continues_the_same_record(data, tmp_path):
    tb, ml, run = tmp_path / "tb", tmp_path / "ml", tmp_path / "run"
    assert cli.main(_train(data, run, "--max-epochs", 2, "--log", f"tensorboard:{tb}",
                           "--log", f"mlflow:{ml}")) == 0
    tracking = json.loads((run / "run.json").read_text())["tracking"]
    run_id = next(t["run_id"] for t in tracking if t["kind"] == "mlflow")
    assert next(t["logdir"] for t in tracking if t["kind"] == "tensorboard") == str(tb / "run")

    # resumed without --log: the run keeps its own tracking
    assert cli.main(["train", "net1", "--resume", str(run), "--max-epochs", "4"]) == 0
    history = json.loads((run / "history.json").read_text())
    found, _ = scalars(tb / "run")
    assert [s for s, _ in found["RMSE_px/valid_rmse_px"]] == [1, 2, 3, 4]
    assert np.allclose([v for _, v in found["RMSE_px/valid_rmse_px"]],
                       [h["valid_rmse_px"] for h in history])

    client = mlflow_client(str(ml))
    runs = client.search_runs([client.get_experiment_by_name("facekeypoints").experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]              # one run, continued
    steps = sorted(m.step for m in client.get_metric_history(run_id, "valid_rmse_px"))
    assert steps == [1, 2, 3, 4]
    run_info = client.get_run(run_id)
    assert run_info.info.status == "FINISHED"
    assert run_info.data.params["preset"] == "net1"
    assert json.loads((run / "run.json").read_text())["tracking"] == tracking


def test_cli_log_to_an_unusable_directory_is_one_line_before_training(data, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    for spec in (f"tensorboard:{a_file}/tb", f"mlflow:{a_file}/ml", "nope:x"):
        out = tmp_path / "run"
        assert cli.main(_train(data, out, "--max-epochs", 1, "--log", spec)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--log" in err and "Traceback" not in err
        assert not (out / "model.pt").exists() and not (out / ".partial").exists()


def test_sweep_fit_labels_name_the_candidate_and_the_fold():
    X, y = tiny_data()
    splits = [(np.arange(20, 40), np.arange(20)), (np.arange(20), np.arange(20, 40))]
    label = SweepFitLabel(["update_learning_rate"], SweepFitLabel.fold_digests(y, splits))
    net = tiny_net(update_learning_rate=0.03)
    assert label(net, X[:20], y[:20]) == "update_learning_rate=0.03 fold 2"


def _runs_by_name(store):
    client = mlflow_client(str(store))
    experiment = client.get_experiment_by_name("facekeypoints")
    return client, {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


def test_cli_sweep_logs_one_run_per_fit_under_a_parent(data, tmp_path):
    tb, ml, out = tmp_path / "tb", tmp_path / "ml", tmp_path / "sweep"
    assert cli.main(["sweep", "net1", "--data", str(data), "--max-epochs", "2", "--cv", "2",
                     "--grid", "update_learning_rate=0.01,0.02", "--backend", "sequential",
                     "--out", str(out), "--log", f"tensorboard:{tb}",
                     "--log", f"mlflow:{ml}"]) == 0
    fits = {f"update_learning_rate={lr} fold {k}" for lr in (0.01, 0.02) for k in (1, 2)}
    assert {p.name for p in (tb / "sweep").iterdir()} == fits
    client, runs = _runs_by_name(ml)
    assert set(runs) == fits | {"sweep"}
    parent = runs["sweep"].info.run_id
    for name in fits:
        assert runs[name].data.tags["mlflow.parentRunId"] == parent
        assert runs[name].info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(runs[name].info.run_id,
                                                          "valid_rmse_px")] == [1, 2]
    assert "best_mean_rmse_px" in runs["sweep"].data.metrics
    assert {a.path for a in client.list_artifacts(parent)} >= {"results.csv"}


def test_cli_specialists_log_one_run_per_group(data, tmp_path):
    tb, ml, out = tmp_path / "tb", tmp_path / "ml", tmp_path / "ens"
    assert cli.main(["train-specialists", "net1", "--data", str(data), "--max-epochs", "1",
                     "--groups", "nose_tip", "mouth", "--out", str(out),
                     "--log", f"tensorboard:{tb}", "--log", f"mlflow:{ml}"]) == 0
    assert {p.name for p in (tb / "ens").iterdir()} == {"nose_tip", "mouth"}
    _, runs = _runs_by_name(ml)
    assert set(runs) == {"ens", "nose_tip", "mouth"}
    assert runs["mouth"].data.tags["mlflow.parentRunId"] == runs["ens"].info.run_id
    assert runs["ens"].info.status == "FINISHED"


def test_a_schedule_among_the_callbacks_logs_the_rate_each_epoch_trained_with(tmp_path):
    X, y = tiny_data()
    net = tiny_net(max_epochs=3, update_learning_rate=fk.shared(0.03), callbacks=[
        ("adjust_lr", fk.AdjustVariable("update_learning_rate", 0.03, 0.01)),
        ("tensorboard", TensorBoardLogger(tmp_path / "tb"))]).fit(X, y)
    found, _ = scalars(tmp_path / "tb")
    logged = [v for _, v in found["Optimizer/learning_rate"]]
    assert np.allclose(logged, [0.03, 0.02, 0.01])
    assert np.allclose(logged, [h["learning_rate"] for h in net.history])


def test_epochs_a_killed_run_logged_after_its_checkpoint_are_replaced_on_resume(tmp_path):
    from facekeypoints.checkpoint import Checkpoint

    X, y = tiny_data()
    first = tiny_net(max_epochs=2, callbacks=[
        ("checkpoint", Checkpoint(tmp_path / "ckpt.pt")),
        ("tensorboard", TensorBoardLogger(tmp_path / "tb"))]).fit(X, y)
    shutil.copy(tmp_path / "ckpt.pt", tmp_path / "epoch2.pt")
    first.partial_fit(X, y, epochs=1)           # epoch 3 logged, then "killed"
    assert first.history[-1]["epoch"] == 3
    again = tiny_net(max_epochs=4, callbacks=[
        ("checkpoint", Checkpoint(tmp_path / "ckpt2.pt")),
        ("tensorboard", TensorBoardLogger(tmp_path / "tb"))])
    again.fit(X, y * 0.5, resume=tmp_path / "epoch2.pt")   # epochs 3 and 4, other values
    assert again.history[2]["train_loss"] != pytest.approx(first.history[2]["train_loss"])
    found, _ = scalars(tmp_path / "tb")
    assert [s for s, _ in found["Loss/train_loss"]] == [1, 2, 3, 4]
    assert np.allclose([v for _, v in found["Loss/train_loss"]],
                       [h["train_loss"] for h in again.history])
