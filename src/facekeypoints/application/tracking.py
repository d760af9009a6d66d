"""Experiment tracking: skorch's TensorBoard, MLflow and W&B loggers, fitted to ``fk.NeuralNet``.

Each epoch's finished history row is recorded: ``train_loss``, ``valid_loss``,
``train_rmse_px`` and ``valid_rmse_px`` (when the net measures them), ``learning_rate``,
``momentum``, ``train_val`` and ``dur``; values that are None or not finite are left out. The
run's settings are recorded once (TensorBoard: a text entry; MLflow: run parameters; W&B:
the run's config) and, for MLflow and W&B, the saved model (a safe
:func:`facekeypoints.save_model` file) and ``history.json`` are logged as artifacts (W&B:
the run's files) when training ends.

A net's default callbacks (the losses, the pixel errors, the epoch table) run before the
``callbacks`` a user adds, so a logger in ``callbacks`` sees each epoch's finished row. A
callback before the logger that ends training with ``StopIteration`` would hide the last
epoch from it; the loggers record that epoch when training ends.

The command line's ``--log KIND:TARGET`` (``tensorboard:DIR``, ``mlflow:URI``,
``wandb:DIR``: W&B in offline mode, never any network access) is parsed by
:func:`parse_log`; :func:`check_target` refuses a target that cannot be written, in one line,
before training starts. Resumed runs continue the same record: TensorBoard writes into the same
directory and its steps (epochs) continue, MLflow and W&B log into the same run (its id is kept
in ``run.json``).

Examples
--------
>>> from facekeypoints.tracking import parse_log
>>> parse_log("tensorboard:runs/tb")
LogTarget(kind='tensorboard', target='runs/tb')
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from skorch.callbacks import MlflowLogger as _SkorchMlflowLogger
from skorch.callbacks import TensorBoard as _SkorchTensorBoard
from skorch.callbacks import WandbLogger as _SkorchWandbLogger
from skorch.callbacks.logging import filter_log_keys

from .callbacks import ConstructorParams

__all__ = ["KINDS", "LogTarget", "TrackingError", "parse_log", "check_target",
           "epoch_metrics", "net_settings", "tensorboard_tag", "mlflow_client",
           "start_mlflow_run", "end_mlflow_run", "TensorBoardLogger", "MlflowLogger",
           "WandbLogger", "wandb_settings", "new_wandb_id",
           "SpecialistLabel", "SweepFitLabel", "run_loggers", "loggers_for_run", "finish_tracking",
           "default_experiment"]

#: The tracking tools ``--log`` knows, with what the target is.
KINDS = {"tensorboard": "a directory for TensorBoard's event files",
         "mlflow": "an MLflow tracking URI: a local directory (a file store), "
                   "sqlite:///FILE.db or http(s)://HOST:PORT",
         "wandb": "a directory for Weights & Biases offline runs (DIR/wandb/offline-run-*)"}

#: The experiment an MLflow run goes into unless another is named (or MLflow's own
#: ``MLFLOW_EXPERIMENT_NAME`` is set).
DEFAULT_EXPERIMENT = "facekeypoints"


def default_experiment() -> str:
    """The MLflow experiment of new runs.

    Returns
    -------
    str
        ``MLFLOW_EXPERIMENT_NAME`` when set, else ``'facekeypoints'``.
    """
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


class TrackingError(ValueError):
    """A ``--log`` spec or target that cannot be used; the message says what to do."""


class LogTarget(NamedTuple):
    """One ``--log KIND:TARGET``: the tool and where it writes.

    Parameters
    ----------
    kind : str
        ``'tensorboard'``, ``'mlflow'`` or ``'wandb'`` (see :data:`KINDS`).
    target : str
        The directory or URI.
    """

    kind: str
    target: str


def parse_log(spec: str) -> LogTarget:
    """Read a ``KIND:TARGET`` spec (``tensorboard:DIR``, ``mlflow:URI``, ``wandb:DIR``).

    Parameters
    ----------
    spec : str
        The spec, e.g. ``'tensorboard:runs/tb'`` or ``'mlflow:http://localhost:5000'``
        (the text up to the first colon is the kind).

    Returns
    -------
    LogTarget
        The kind and the target.

    Raises
    ------
    TrackingError
        For an unknown kind or an empty target.

    Examples
    --------
    >>> parse_log("mlflow:http://localhost:5000")
    LogTarget(kind='mlflow', target='http://localhost:5000')
    """
    from ._suggest import did_you_mean

    kind, sep, target = str(spec).partition(":")
    kind = kind.strip().lower()
    if kind == "tb":
        kind = "tensorboard"
    if not sep or kind not in KINDS:
        known = ", ".join(f"{k}:TARGET" for k in KINDS)
        raise TrackingError(f"--log {spec}: expected KIND:TARGET with KIND one of {known}"
                            f"{did_you_mean(kind, KINDS, style='paren')}")
    if not target.strip():
        raise TrackingError(f"--log {spec}: give the target after the colon: {KINDS[kind]}")
    return LogTarget(kind, target.strip())


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file:")


def _local_path(uri: str) -> Path:
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return Path(uri)


def _check_directory(folder: Path, label: str) -> Path:
    """Create ``folder`` if needed and prove it writable, or raise a one-line TrackingError."""
    try:
        folder = Path(os.path.abspath(folder))
        if folder.exists() and not folder.is_dir():
            raise TrackingError(f"{label}: {folder} is a file, not a directory; give a "
                                "directory")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except TrackingError:
        raise
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise TrackingError(f"{label}: cannot write to {folder} ({why}); give a directory "
                            "you can write to") from None
    return folder


def check_target(target: LogTarget) -> LogTarget:
    """Make sure a target can be written before training starts; return it made absolute.

    A directory (TensorBoard's, W&B's, an MLflow file store, the folder of an MLflow sqlite
    file) is created if needed and a file is written into it and removed. A server URI is not
    contacted here (:func:`start_mlflow_run` does).

    Parameters
    ----------
    target : LogTarget
        What :func:`parse_log` returned.

    Returns
    -------
    LogTarget
        The same target, local paths made absolute (so that a resumed run finds them from
        any folder).

    Raises
    ------
    TrackingError
        In one line, naming the target: it is a file, or cannot be created or written.
    """
    label = f"--log {target.kind}:{target.target}"
    if target.kind in ("tensorboard", "wandb"):
        return LogTarget(target.kind, str(_check_directory(Path(target.target), label)))
    uri = target.target
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        folder = _check_directory(db.parent, label)
        return LogTarget(target.kind, f"sqlite:///{folder / db.name}")
    if _is_local(uri):
        return LogTarget(target.kind, str(_check_directory(_local_path(uri), label)))
    return target


def epoch_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of one history row that a tracker records.

    skorch's filter applies (``epoch``, ``*_best``, ``*_batch_count`` and ``event_*`` are
    left out), and so are per-batch entries, booleans, None and values that are not finite.

    Parameters
    ----------
    row : dict
        One epoch of ``net.history``.

    Returns
    -------
    dict
        ``{key: float}``, e.g. ``train_loss``, ``valid_loss``, ``valid_rmse_px``,
        ``learning_rate``, ``momentum``, ``dur``.

    Examples
    --------
    >>> epoch_metrics({"epoch": 3, "train_loss": 0.5, "valid_loss_best": True,
    ...                "valid_rmse_px": None, "learning_rate": 0.01, "batches": []})
    {'train_loss': 0.5, 'learning_rate': 0.01}
    """
    out = {}
    for key in filter_log_keys(row, keys_ignored={"batches"}):
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:                            # numpy scalars and 0-d tensors
                value = value.item() if not isinstance(value, bool) else None
            except AttributeError:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, type) or callable(value):
        return getattr(value, "__name__", None) or repr(value)
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, str)) for v in value):
        return str(tuple(value))
    return None


def net_settings(net: Any) -> dict[str, Any]:
    """The net's settings as plain values: its scalar parameters and its callbacks' ones.

    Parameters
    ----------
    net : NeuralNet
        A net (fitted or not).

    Returns
    -------
    dict
        ``get_params()`` entries that are numbers, strings, booleans, None, classes or
        functions (by name) or tuples of numbers (``input_shape``); callbacks' parameters
        appear as ``callbacks__<name>__<param>``. The loggers' own are left out.
    """
    from .schedules import Schedule

    try:
        params = net.get_params(deep=True)
    except Exception:   # noqa: BLE001 - a third-party estimator: settings are optional
        return {}
    out = {}
    for key, value in sorted(params.items()):
        if key.startswith(("callbacks__tensorboard", "callbacks__mlflow", "callbacks__wandb")):
            continue
        value = repr(value) if isinstance(value, Schedule) else _plain(value)
        if value is not None or params[key] is None:
            out[key] = value
    return out


def tensorboard_tag(key: str) -> str:
    """The TensorBoard tag a history key is written under (grouped by what it measures).

    Parameters
    ----------
    key : str
        A history key.

    Returns
    -------
    str
        ``Loss/<key>`` for losses and the train/valid ratio, ``RMSE_px/<key>`` for pixel
        errors, ``Optimizer/<key>`` for the learning rate and momentum, ``Time/<key>`` for
        durations, else the key.

    Examples
    --------
    >>> tensorboard_tag("valid_rmse_px"), tensorboard_tag("learning_rate")
    ('RMSE_px/valid_rmse_px', 'Optimizer/learning_rate')
    """
    if key.endswith("_px"):
        return f"RMSE_px/{key}"
    if key.endswith("_loss") or key == "train_val":
        return f"Loss/{key}"
    if key in ("learning_rate", "momentum") or key.startswith("update_"):
        return f"Optimizer/{key}"
    if key == "dur" or key.endswith("_time"):
        return f"Time/{key}"
    return key


def _settings_markdown(settings: dict[str, Any]) -> str:
    lines = ["| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {json.dumps(v, default=str)} |" for k, v in sorted(settings.items())]
    return "\n".join(lines)


class TensorBoardLogger(ConstructorParams, _SkorchTensorBoard):
    """The skorch ``TensorBoard`` callback, opening its own ``SummaryWriter`` in ``logdir``.

    Built from a directory instead of a writer, so that it is picklable and clonable (sweeps,
    ``sklearn.base.clone``); the writer opens when training begins. Each epoch's numbers
    (:func:`epoch_metrics`) are written at step = epoch under :func:`tensorboard_tag` tags;
    the settings (:func:`net_settings` and ``settings``) as a text entry ``settings`` when a
    run starts. A resumed net (its history restored) writes into the same directory and its
    steps continue; epochs past the resumed one that a killed run had logged are purged
    (``SummaryWriter(purge_step=...)``).

    Parameters
    ----------
    logdir : str or path-like
        TensorBoard's directory for this run (``tensorboard --logdir`` its parent to compare
        runs).
    settings : dict, optional
        More settings to record (the command line's preset, data, seed).
    keys_ignored : str or list of str, optional
        History keys not to write.
    close_after_train : bool, default True
        Close the writer when training ends.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> from facekeypoints.tracking import TensorBoardLogger
    >>> net = fk.presets.net1(max_epochs=3, callbacks=[("tensorboard",
    ...                       TensorBoardLogger("runs/tb/net1"))])   # doctest: +SKIP
    """

    def __init__(self, logdir: str | os.PathLike, settings: dict[str, Any] | None = None,
                 keys_ignored: str | list[str] | None = None, close_after_train: bool = True):
        super().__init__(writer=None, close_after_train=close_after_train,
                         keys_ignored=keys_ignored, key_mapper=tensorboard_tag)
        self.logdir = logdir
        self.settings = settings

    def initialize(self):
        """Forget the last epoch written (the writer opens in :meth:`on_train_begin`)."""
        super().initialize()
        self.last_logged_epoch_ = 0
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Open the writer in ``logdir``; record the settings when the run starts."""
        from torch.utils.tensorboard import SummaryWriter

        done = len(net.history)
        self.writer = SummaryWriter(log_dir=str(self.logdir),
                                    purge_step=done + 1 if done else None)
        self.last_logged_epoch_ = done
        if not done:
            settings = {**net_settings(net), **(self.settings or {})}
            self.writer.add_text("settings", _settings_markdown(settings), global_step=0)

    def on_epoch_end(self, net, **kwargs):
        """Write the epoch's numbers at step = epoch."""
        if self.writer is None:
            return
        if not Path(self.logdir).is_dir():   # before the writer's thread fails on it
            self.writer = None               # (its thread is a daemon; nothing to flush)
            _logging_lost(f"tensorboard:{self.logdir}", "the directory is gone or replaced",
                          net)
            return
        row = net.history[-1]
        ignored = getattr(self, "keys_ignored_", set())
        for key, value in epoch_metrics(row).items():
            if key not in ignored:
                self.writer.add_scalar(self.key_mapper(key), value, global_step=row["epoch"])
        self.last_logged_epoch_ = row["epoch"]

    def on_train_end(self, net, **kwargs):
        """Write an epoch a stopping callback hid, flush, and close the writer."""
        if self.writer is None:
            return
        if len(net.history) and net.history[-1]["epoch"] > self.last_logged_epoch_:
            self.on_epoch_end(net)
        self.writer.flush()
        super().on_train_end(net, **kwargs)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["writer"] = None          # a SummaryWriter holds a thread and a file
        return state


def _logging_lost(target, why, net):
    """Warn once, in one line, that a logger stopped mid-run; the training goes on."""
    epoch = len(net.history)
    warnings.warn(f"--log {target}: cannot record epoch {epoch} there ({why}); logging "
                  "stopped, training goes on", RuntimeWarning, stacklevel=3)


def mlflow_client(tracking_uri: str | None = None):
    """An ``MlflowClient`` for ``tracking_uri``; a local directory is a file store.

    MLflow 3 keeps its file store in maintenance mode and refuses it unless
    ``MLFLOW_ALLOW_FILE_STORE`` is set: for a local directory this sets it (unless it is set
    already), so a directory works with ``mlflow-skinny`` alone. A ``sqlite:///`` URI needs
    the full ``mlflow`` package (or SQLAlchemy and Alembic).

    Parameters
    ----------
    tracking_uri : str, optional
        A directory, ``file:``, ``sqlite:///`` or ``http(s)://`` URI (None: MLflow's own
        default, ``MLFLOW_TRACKING_URI``).

    Returns
    -------
    mlflow.tracking.MlflowClient
        The client.

    Raises
    ------
    TrackingError
        When MLflow is not installed (``pip install 'facekeypoints[tracking]'``).
    """
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError("MLflow is not installed: pip install 'facekeypoints[tracking]' "
                            "(or mlflow-skinny)") from None
    uri = tracking_uri
    if uri is not None and _is_local(str(uri)):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = _local_path(str(uri)).resolve().as_uri()
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client, name):
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:   # noqa: BLE001 - created meanwhile by another fit of a sweep
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


@contextlib.contextmanager
def _answer_quickly(tracking_uri):
    """For a server URI: one retry and a 10 s timeout (unless the user set MLflow's own
    variables), so that an unreachable server is refused before training in seconds, not
    after MLflow's minutes of retries."""
    remote = tracking_uri is not None and not _is_local(str(tracking_uri))
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    added = [k for k in names if remote and k not in os.environ]
    os.environ.update({k: names[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def start_mlflow_run(tracking_uri: str | None, experiment: str = DEFAULT_EXPERIMENT,
                     run_name: str | None = None, tags: dict[str, str] | None = None,
                     run_id: str | None = None) -> str:
    """Create an MLflow run (or reopen ``run_id``) and return its id, before training.

    Parameters
    ----------
    tracking_uri : str or None
        Where MLflow records (see :func:`mlflow_client`).
    experiment : str, default 'facekeypoints'
        The experiment, created if needed.
    run_name : str, optional
        The run's name (the preset, say).
    tags : dict, optional
        Tags of a new run (``mlflow.parentRunId`` makes it a child run).
    run_id : str, optional
        An existing run to continue: it is set back to RUNNING.

    Returns
    -------
    str
        The run id (what ``run.json`` keeps so that a resumed training logs into the same
        run).

    Raises
    ------
    TrackingError
        In one line, when MLflow cannot record there (or ``run_id`` is not a run there).
    """
    client = mlflow_client(tracking_uri)
    try:
        with _answer_quickly(tracking_uri):
            if run_id is not None:
                client.update_run(run_id, status="RUNNING")
                return run_id
            run = client.create_run(_experiment_id(client, experiment), run_name=run_name,
                                    tags=dict(tags or {}))
            return run.info.run_id
    except Exception as exc:   # noqa: BLE001 - MLflow raises many kinds; all mean "not here"
        what = f"run {run_id}" if run_id else "a run"
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise TrackingError(f"--log mlflow:{tracking_uri}: MLflow cannot record {what} there "
                            f"({text})") from None


class MlflowLogger(ConstructorParams, _SkorchMlflowLogger):
    """The skorch ``MlflowLogger``, opening its own client and run from a tracking URI.

    Each epoch's numbers (:func:`epoch_metrics`) are logged at step = epoch in one batch
    per epoch; the settings (:func:`net_settings` and ``settings``) become run parameters
    (on a resumed run, parameters already there are kept: MLflow's are immutable); when
    training ends the model (:func:`facekeypoints.save_model`'s ``model.pt``) and
    ``history.json`` are logged as artifacts and the run is ended (FINISHED, or KILLED
    after an interrupt, to be resumed).

    Parameters
    ----------
    tracking_uri : str, optional
        Where MLflow records (see :func:`mlflow_client`); None: MLflow's default.
    experiment : str, default 'facekeypoints'
        The experiment of a new run.
    run_id : str, optional
        Log into this run (a resumed training); None: a new run when training begins.
    run_name : str, optional
        The name of a new run.
    settings : dict, optional
        More settings to record as parameters (the command line's preset, data, seed).
    tags : dict, optional
        Tags of a new run (``mlflow.parentRunId`` groups the fits of a sweep).
    log_model : bool, default True
        Log ``model.pt`` and ``history.json`` when training ends.
    terminate_after_train : bool, default True
        End the MLflow run when training ends.

    Attributes
    ----------
    run_id_ : str
        The run logged into (set when training begins).

    Examples
    --------
    >>> import facekeypoints as fk
    >>> from facekeypoints.tracking import MlflowLogger
    >>> net = fk.presets.net1(max_epochs=3, callbacks=[("mlflow",
    ...                       MlflowLogger("runs/mlflow"))])          # doctest: +SKIP
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
                 run_id: str | None = None, run_name: str | None = None,
                 settings: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
                 log_model: bool = True, terminate_after_train: bool = True):
        super().__init__(run=None, client=None, create_artifact=log_model,
                         terminate_after_train=terminate_after_train)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_id = run_id
        self.run_name = run_name
        self.settings = settings
        self.tags = tags
        self.log_model = log_model

    def initialize(self):
        """Reset; MLflow is imported and the run opened only when training begins."""
        self.keys_ignored_ = {"batches"}
        self.batch_suffix_ = self.epoch_suffix_ = ""
        self.last_logged_epoch_ = 0
        self.run_ = self.client_ = None
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Open the client and the run; record the settings not yet recorded."""
        from mlflow.entities import Param

        self.client_ = mlflow_client(self.tracking_uri)
        # partial_fit goes on in the same run; a new fit (empty history) opens a new one
        run_id = self.run_id or (getattr(self, "run_id_", None) if len(net.history) else None)
        run_id = start_mlflow_run(self.tracking_uri, self.experiment, self.run_name,
                                  self.tags, run_id=run_id)
        self.run_ = self.client_.get_run(run_id)
        self.run_id_ = run_id
        self.last_logged_epoch_ = len(net.history)
        settings = {**net_settings(net), **(self.settings or {})}
        have = self.run_.data.params
        params = [Param(k[:250], str(v)[:6000]) for k, v in settings.items()
                  if k[:250] not in have]
        for i in range(0, len(params), 100):         # MLflow's batch limit
            self.client_.log_batch(run_id, params=params[i:i + 100])

    def on_batch_end(self, net, training=None, **kwargs):
        """Nothing per batch (an epoch is the unit of record)."""

    def on_epoch_end(self, net, **kwargs):
        """Log the epoch's numbers at step = epoch, in one batch."""
        from mlflow.entities import Metric

        row = net.history[-1]
        stamp = int(time.time() * 1000)
        metrics = [Metric(k, v, stamp, int(row["epoch"])) for k, v in epoch_metrics(row).items()]
        if self.client_ is None:
            return
        try:
            if metrics:
                self.client_.log_batch(self.run_id_, metrics=metrics)
        except Exception as exc:   # noqa: BLE001 - MLflow raises many kinds; all mean "gone"
            self.client_ = None
            _logging_lost(f"mlflow:{self.tracking_uri}", " ".join(str(exc).split())[:200], net)
            return
        self.last_logged_epoch_ = row["epoch"]

    def on_train_end(self, net, **kwargs):
        """Log a hidden last epoch and the artifacts, then end the run."""
        if self.client_ is None:
            return
        try:
            if len(net.history) and net.history[-1]["epoch"] > self.last_logged_epoch_:
                self.on_epoch_end(net)
            if self.log_model:
                self.log_artifacts(net)
        finally:
            if self.terminate_after_train and self.client_ is not None:
                status = "KILLED" if getattr(net, "interrupted_", False) else "FINISHED"
                self.client_.set_terminated(self.run_id_, status=status)

    def log_artifacts(self, net: Any) -> list[str]:
        """Log ``model.pt`` (a safe model file) and ``history.json`` to the run.

        Parameters
        ----------
        net : NeuralNet
            The trained net.

        Returns
        -------
        list of str
            The artifact names logged (``model.pt`` is missing for a net that
            :func:`facekeypoints.save_model` cannot write, e.g. a ``module=`` net).
        """
        with tempfile.TemporaryDirectory(prefix="facekeypoints-mlflow-") as tmp:
            names = _write_run_files(net, Path(tmp))
            for name in names:
                self.client_.log_artifact(self.run_id_, str(Path(tmp) / name))
        return names

    def __getstate__(self):
        state = dict(self.__dict__)
        state["client_"] = None
        state["run_"] = None
        return state



def _write_run_files(net: Any, folder: Path) -> list[str]:
    """Write ``model.pt`` (a safe model file, when the net has one) and ``history.json``
    (the per-epoch records, strict JSON) into ``folder``; the names written."""
    from ._safe_io import write_json
    from .persist import history_records, save_model

    names = []
    try:
        save_model(net, folder / "model.pt")
        names.append("model.pt")
    except ValueError:
        pass                                # a net without a safe model file
    write_json(folder / "history.json", history_records(net))
    return names + ["history.json"]

def end_mlflow_run(tracking_uri: str | None, run_id: str, params: dict[str, Any] | None = None,
                   metrics: dict[str, float] | None = None, artifacts: tuple = (),
                   status: str = "FINISHED") -> None:
    """Record a run's summary (a sweep's parent run: its grid, best score, results) and end it.

    Parameters
    ----------
    tracking_uri : str or None
        Where MLflow records (see :func:`mlflow_client`).
    run_id : str
        The run.
    params : dict, optional
        Parameters to log (as strings).
    metrics : dict, optional
        Metrics to log at step 0 (values that are not finite numbers are left out).
    artifacts : tuple of path-like, default ()
        Files to log as artifacts.
    status : str, default 'FINISHED'
        The run's end status (``'FAILED'``, ``'KILLED'``).
    """
    from mlflow.entities import Metric, Param

    client = mlflow_client(tracking_uri)
    have = client.get_run(run_id).data.params
    items = [Param(k[:250], str(v)[:6000]) for k, v in (params or {}).items()
             if k[:250] not in have]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])
    stamp = int(time.time() * 1000)
    good = epoch_metrics(dict(metrics or {}))
    if good:
        client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in good.items()])
    for path in artifacts:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status=status)


#: The W&B project of new runs unless ``WANDB_PROJECT`` names another.
DEFAULT_WANDB_PROJECT = "facekeypoints"

_WANDB_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_wandb_id() -> str:
    """A fresh W&B run id (8 lowercase letters and digits), chosen before the run starts.

    Returns
    -------
    str
        The id; ``run.json`` keeps it so that a resumed training logs into the same run.
    """
    import secrets

    return "".join(secrets.choice(_WANDB_ID_CHARS) for _ in range(8))


def _import_wandb():
    # Before wandb is imported: no error reports to W&B's servers, no banner on the console.
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb
    except ImportError:
        raise TrackingError("W&B is not installed: pip install 'facekeypoints[tracking]' "
                            "(or wandb)") from None
    return wandb


def wandb_settings() -> dict[str, Any]:
    """The ``wandb.Settings`` every W&B run of facekeypoints starts with: offline, quiet.

    Offline mode (nothing is sent; ``wandb sync DIR/wandb/offline-run-*`` uploads a run
    later), no console capture, no system metrics sampling, no git, code or machine
    metadata, no requirements file, no viewer query. Set before ``wandb`` is imported:
    ``WANDB_ERROR_REPORTING=false`` and ``WANDB_SILENT=true`` (unless set already).

    Returns
    -------
    dict
        Keyword arguments of ``wandb.Settings``.

    Examples
    --------
    >>> wandb_settings()["mode"], wandb_settings()["console"]
    ('offline', 'off')
    """
    return {"mode": "offline", "silent": True, "console": "off", "disable_git": True,
            "disable_code": True, "save_code": False, "x_disable_stats": True,
            "x_disable_meta": True, "x_disable_machine_info": True, "x_disable_viewer": True,
            "x_save_requirements": False}


class WandbLogger(ConstructorParams, _SkorchWandbLogger):
    """The skorch ``WandbLogger``, opening its own offline W&B run in a directory.

    Built from a directory instead of a run, so that it is picklable and clonable; the run
    opens when training begins, in offline mode (:func:`wandb_settings`: never any network
    access), in ``directory/wandb/offline-run-<time>-<id>/``. Each epoch's numbers
    (:func:`epoch_metrics`) are logged at step = epoch; the settings (:func:`net_settings`
    and ``settings``) are the run's config. When training ends ``model.pt`` (a safe
    :func:`facekeypoints.save_model` file) and ``history.json`` are saved into the run's
    ``files/`` (``wandb sync`` uploads them) and the run is finished (exit code 0, or 1
    after an interrupt). A resumed net (``run_id`` given, or ``partial_fit``) continues the
    same run: W&B writes another directory with the same id. Read a run back with
    :func:`facekeypoints.wandb_records.read_wandb_run`. skorch's ``watch`` of the module
    (gradient histograms from per-batch hooks) is left out.

    Parameters
    ----------
    directory : str or path-like
        Where W&B writes (``wandb.init(dir=...)``).
    project : str, optional
        The W&B project; None: ``WANDB_PROJECT`` or ``'facekeypoints'``.
    run_id : str, optional
        The run to log into (:func:`new_wandb_id`, or a resumed run's); None: a new id
        when training begins.
    run_name : str, optional
        The run's display name.
    group : str, optional
        The W&B group (a sweep's or an ensemble's fits share one).
    settings : dict, optional
        More settings for the config (the command line's preset, data, seed).
    keys_ignored : str or list of str, optional
        History keys not to log.
    save_model : bool, default True
        Save ``model.pt`` and ``history.json`` into the run when training ends.

    Attributes
    ----------
    run_id_ : str
        The run logged into (set when training begins).
    run_dir_ : str
        Its directory (``directory/wandb/offline-run-<time>-<id>``) of the latest fit.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> from facekeypoints.tracking import WandbLogger
    >>> net = fk.presets.net1(max_epochs=3, callbacks=[("wandb",
    ...                       WandbLogger("runs/wandb"))])          # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike, project: str | None = None,
                 run_id: str | None = None, run_name: str | None = None,
                 group: str | None = None, settings: dict[str, Any] | None = None,
                 keys_ignored: str | list[str] | None = None, save_model: bool = True):
        super().__init__(wandb_run=None, save_model=save_model, keys_ignored=keys_ignored)
        self.directory = directory
        self.project = project
        self.run_id = run_id
        self.run_name = run_name
        self.group = group
        self.settings = settings

    def initialize(self):
        """Reset; W&B is imported and the run opened only when training begins."""
        super().initialize()
        self.wandb_run = None
        self.last_logged_epoch_ = 0
        return self

    def _open(self, net, run_id, run_name):
        wandb = _import_wandb()
        folder = _check_directory(Path(self.directory), f"--log wandb:{self.directory}")
        project = self.project or os.environ.get("WANDB_PROJECT") or DEFAULT_WANDB_PROJECT
        config = {**net_settings(net), **(self.settings or {})}
        self.wandb_run = wandb.init(dir=str(folder), project=project, id=run_id,
                                    name=run_name, group=self.group, config=config,
                                    resume="allow", mode="offline", reinit="create_new",
                                    allow_val_change=True,
                                    settings=wandb.Settings(**wandb_settings()))
        self.run_id_ = self.wandb_run.id
        self.run_dir_ = str(Path(self.wandb_run.dir).parent)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Open the offline run (the same one for ``run_id`` or a ``partial_fit``)."""
        # partial_fit goes on in the same run; a new fit (empty history) opens a new one
        run_id = self.run_id or (getattr(self, "run_id_", None) if len(net.history) else None)
        self._open(net, run_id or new_wandb_id(), self.run_name)
        self.last_logged_epoch_ = len(net.history)

    def on_epoch_end(self, net, **kwargs):
        """Log the epoch's numbers at step = epoch."""
        row = net.history[-1]
        metrics = {k: v for k, v in epoch_metrics(row).items() if k not in self.keys_ignored_}
        if metrics:
            self.wandb_run.log(metrics, step=int(row["epoch"]))
        self.last_logged_epoch_ = row["epoch"]

    def on_train_end(self, net, **kwargs):
        """Log a hidden last epoch, save the model and history into the run, finish it."""
        if self.wandb_run is None:
            return
        try:
            if len(net.history) and net.history[-1]["epoch"] > self.last_logged_epoch_:
                self.on_epoch_end(net)
            if self.save_model:
                self.save_files(net)
        finally:
            run, self.wandb_run = self.wandb_run, None
            run.finish(exit_code=1 if getattr(net, "interrupted_", False) else 0)
            self._wait_written(Path(self.run_dir_) / f"run-{self.run_id_}.wandb")

    def _wait_written(self, path, timeout=60.0):
        # finish() returns before wandb-core has written the run out: wait for it, so that
        # the record is complete when fit returns (a resume, a reader, the process exiting)
        from .wandb_records import wandb_run_written

        deadline = time.monotonic() + timeout
        while not wandb_run_written(path):
            if time.monotonic() > deadline:
                import warnings

                warnings.warn(f"W&B had not written {path} out {timeout:.0f} s after the run "
                              "finished; its last records may be missing", stacklevel=2)
                return
            time.sleep(0.05)

    def save_files(self, net: Any) -> list[str]:
        """Write ``model.pt`` (a safe model file) and ``history.json`` into the run's files.

        Parameters
        ----------
        net : NeuralNet
            The trained net.

        Returns
        -------
        list of str
            The file names saved (``model.pt`` is missing for a net that
            :func:`facekeypoints.save_model` cannot write, e.g. a ``module=`` net).
        """
        files = Path(self.wandb_run.dir)
        saved = _write_run_files(net, files)
        for name in saved:
            self.wandb_run.save(str(files / name), base_path=str(files), policy="end")
        return saved

    def on_batch_end(self, net, **kwargs):
        """Nothing per batch (an epoch is the unit of record)."""

    def __getstate__(self):
        state = dict(self.__dict__)
        state["wandb_run"] = None           # a live run holds a connection to wandb-core
        return state


class _LabelledWandb(WandbLogger):
    """A WandbLogger whose every fit is a new run named ``label(net, X, y)`` in ``group``."""

    def __init__(self, directory, project=None, run_id=None, run_name=None, group=None,
                 settings=None, keys_ignored=None, save_model=True, label=None):
        super().__init__(directory, project=project, run_id=run_id, run_name=run_name,
                         group=group, settings=settings, keys_ignored=keys_ignored,
                         save_model=save_model)
        self.label = label

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self._open(net, new_wandb_id(), self.label(net, X, y))
        self.last_logged_epoch_ = len(net.history)


class SpecialistLabel:
    """Names a specialist's record after its keypoint group (``eyes``, ``mouth`` ...).

    Given to a logger as ``label``, so that the specialists cloned from one net log into one
    directory (TensorBoard) or run (MLflow) each.
    """

    def __call__(self, net: Any, X: Any = None, y: Any = None) -> str:
        """The group whose columns the net predicts, else ``'<n>-keypoints'``.

        Parameters
        ----------
        net : NeuralNet
            A specialist (``columns_`` set by :func:`facekeypoints.specialists.make_specialist`).
        X, y : array-like, optional
            The fit's data (unused).

        Returns
        -------
        str
            The label.
        """
        from .specialist_groups import GROUPS_BY_NAME

        columns = tuple(getattr(net, "columns_", None) or ())
        for name, group in GROUPS_BY_NAME.items():
            if tuple(group.columns) == columns:
                return name
        return f"{len(columns) // 2 or 'all'}-keypoints"


def _digest(y: Any) -> str:
    import hashlib

    import numpy as np

    return hashlib.sha1(np.ascontiguousarray(np.asarray(y, dtype=np.float32))
                        .tobytes()).hexdigest()[:16]


class SweepFitLabel:
    """Names one fit of a sweep: its candidate's grid values and its fold.

    The fold is told by the fit's training targets (a digest per fold, computed where the
    folds are cut), so it works in any worker process.

    Parameters
    ----------
    keys : sequence of str
        The grid's ``set_params`` names.
    folds : dict, optional
        ``{digest of the fold's training targets: fold number (1-based)}``
        (see :meth:`fold_digests`).
    """

    def __init__(self, keys: tuple = (), folds: dict[str, int] | None = None):
        self.keys = tuple(keys)
        self.folds = dict(folds or {})

    @staticmethod
    def fold_digests(y: Any, splits: Any) -> dict[str, int]:
        """The digests of each fold's training targets, for ``folds``.

        Parameters
        ----------
        y : array-like
            All the sweep's targets.
        splits : iterable of (train, test) index arrays
            The folds, as the sweep cuts them.

        Returns
        -------
        dict
            ``{digest: fold number}``.
        """
        import numpy as np

        y = np.asarray(y)
        return {_digest(y[train]): i for i, (train, _) in enumerate(splits, start=1)}

    def __call__(self, net: Any, X: Any = None, y: Any = None) -> str:
        """``'start=0.03 stop=0.0001 fold 2'``.

        Parameters
        ----------
        net : NeuralNet
            The fit's net (the candidate's values set).
        X : array-like, optional
            The fit's inputs (unused).
        y : array-like, optional
            The fit's training targets (tell the fold).

        Returns
        -------
        str
            The label.
        """
        params = net.get_params(deep=True)
        parts = [f"{'__'.join(k.split('__')[-2:]) if k.startswith('callbacks__') else k}="
                 f"{params.get(k)!r}" for k in self.keys]
        digest = _digest(y) if y is not None else None
        fold = self.folds.get(digest)
        if fold is not None:
            parts.append(f"fold {fold}")
        elif digest is not None:      # folds cut otherwise: still one name per fit
            parts.append(f"rows {digest[:8]}")
        return " ".join(parts) or "fit"


def run_loggers(specs: list[str] | None, run_name: str, settings: dict[str, Any] | None = None,
                recorded: list[dict[str, Any]] | None = None,
                label: Any = None) -> tuple[list, list[dict[str, Any]]]:
    """The logger callbacks for ``--log`` specs, checked before training, and their record.

    Parameters
    ----------
    specs : list of str or None
        ``--log`` values (``tensorboard:DIR``, ``mlflow:URI``, ``wandb:DIR``); None or empty: the
        ``recorded`` ones (a resumed run keeps its tracking).
    run_name : str
        The run's name: TensorBoard writes into ``DIR/run_name``, MLflow names its run so.
    settings : dict, optional
        The run's settings to record (preset, data, seed, ``--set`` values).
    recorded : list of dict, optional
        ``run.json``'s ``tracking`` entry of a run being resumed: the same TensorBoard
        directory and the same MLflow and W&B runs are used.
    label : callable, optional
        ``label(net, X, y)`` names each fit (:class:`SpecialistLabel`, :class:`SweepFitLabel`):
        TensorBoard then writes into ``DIR/run_name/<label>`` and each fit's MLflow run is a
        child of one parent run named ``run_name``, created here (end it with
        :func:`finish_tracking`); each fit is a W&B run of its own in the group ``run_name``.

    Returns
    -------
    callbacks : list of (str, Callback)
        ``('tensorboard', TensorBoardLogger)`` / ``('mlflow', MlflowLogger)`` /
        ``('wandb', WandbLogger)`` items for the net's ``callbacks``.
    record : list of dict
        What ``run.json`` keeps as ``tracking``: ``kind``, ``target`` and, for MLflow, the
        ``run_id`` (the parent run's, with ``parent: True``, when ``label`` is given); for
        W&B the ``run_id`` (chosen here), or the ``group`` when ``label`` is given.

    Raises
    ------
    TrackingError
        In one line: a bad spec, an unwritable target, MLflow or W&B missing, MLflow
        refusing.
    """
    previous = {(r.get("kind"), r.get("target")): r for r in recorded or ()}
    targets = [check_target(parse_log(s)) for s in specs or ()]
    if not targets:
        targets = [LogTarget(r["kind"], r["target"]) for r in recorded or ()
                   if r.get("kind") in KINDS and r.get("target")]
    callbacks, record = [], []
    for kind, target in targets:
        before = previous.get((kind, target), {})
        if kind == "tensorboard":
            folder = before.get("logdir") or str(Path(target) / run_name)
            logger = TensorBoardLogger(folder, settings=settings)
            if label is not None:
                logger = _LabelledTensorBoard(folder, settings=settings, label=label)
            callbacks.append(("tensorboard", logger))
            record.append({"kind": kind, "target": target, "logdir": folder})
            continue
        if kind == "wandb":
            _import_wandb()                 # missing: one line before training
            if label is not None:           # a run per fit, grouped under the run's name
                callbacks.append(("wandb", _LabelledWandb(target, group=run_name,
                                                          settings=settings, label=label)))
                record.append({"kind": kind, "target": target, "group": run_name})
                continue
            run_id = before.get("run_id") or new_wandb_id()
            callbacks.append(("wandb", WandbLogger(target, run_id=run_id, run_name=run_name,
                                                   settings=settings)))
            record.append({"kind": kind, "target": target, "run_id": run_id})
            continue
        experiment = before.get("experiment") or default_experiment()
        if label is not None:       # one parent run, a child run per fit
            parent_id = start_mlflow_run(target, experiment, run_name)
            tags = {"mlflow.parentRunId": parent_id}
            callbacks.append(("mlflow", _LabelledMlflow(target, experiment, settings=settings,
                                                        tags=tags, label=label)))
            record.append({"kind": kind, "target": target, "experiment": experiment,
                           "run_id": parent_id, "parent": True})
            continue
        run_id = start_mlflow_run(target, experiment, run_name, run_id=before.get("run_id"))
        callbacks.append(("mlflow", MlflowLogger(target, experiment, run_id=run_id,
                                                 run_name=run_name, settings=settings)))
        record.append({"kind": kind, "target": target, "experiment": experiment,
                       "run_id": run_id})
    return callbacks, record


class _LabelledTensorBoard(TensorBoardLogger):
    """A TensorBoardLogger that writes into ``logdir/<label(net, X, y)>``."""

    def __init__(self, logdir, settings=None, keys_ignored=None, close_after_train=True,
                 label=None):
        super().__init__(logdir, settings=settings, keys_ignored=keys_ignored,
                         close_after_train=close_after_train)
        self.label = label

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        base = self.logdir
        name = self.label(net, X, y)
        self.logdir = str(Path(base) / name.replace("/", "_"))
        try:
            super().on_train_begin(net, X=X, y=y, **kwargs)
            self.writer.add_text("fit", name, global_step=0)
        finally:
            self.logdir = base


class _LabelledMlflow(MlflowLogger):
    """An MlflowLogger whose new run is named ``label(net, X, y)``."""

    def __init__(self, tracking_uri=None, experiment=DEFAULT_EXPERIMENT, run_id=None,
                 run_name=None, settings=None, tags=None, log_model=True,
                 terminate_after_train=True, label=None):
        super().__init__(tracking_uri, experiment, run_id=run_id, run_name=run_name,
                         settings=settings, tags=tags, log_model=log_model,
                         terminate_after_train=terminate_after_train)
        self.label = label

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        base = self.run_name
        self.run_name = self.label(net, X, y)
        self.run_id_ = None
        try:
            super().on_train_begin(net, X=X, y=y, **kwargs)
        finally:
            self.run_name = base


def loggers_for_run(specs: list[str] | None, run_dir: str | os.PathLike,
                    settings: dict[str, Any] | None = None,
                    resume: bool = False) -> tuple[list, list[dict[str, Any]]]:
    """:func:`run_loggers` for a run directory: named after it, resumed from its ``run.json``.

    Parameters
    ----------
    specs : list of str or None
        ``--log`` values; on resume, None or empty keeps the run's recorded tracking.
    run_dir : str or path-like
        The run directory (its name names the record).
    settings : dict, optional
        The run's settings to record.
    resume : bool, default False
        Continue the tracking recorded in the run's ``run.json``.

    Returns
    -------
    callbacks : list of (str, Callback)
        The loggers.
    record : list of dict
        ``run.json``'s ``tracking`` entry (empty without loggers).
    """
    recorded = None
    if resume:
        from .runs import RunError, resume_point

        try:
            recorded = resume_point(run_dir)[0].get("tracking")
        except RunError:
            recorded = None          # the resume itself reports it
    return run_loggers(specs, Path(run_dir).name, settings=settings, recorded=recorded)


def finish_tracking(record: list[dict[str, Any]], params: dict[str, Any] | None = None,
                    metrics: dict[str, float] | None = None, artifacts: tuple = (),
                    status: str = "FINISHED") -> None:
    """End the parent MLflow runs :func:`run_loggers` opened, with a summary.

    Parameters
    ----------
    record : list of dict
        What :func:`run_loggers` returned as ``record``.
    params : dict, optional
        Parameters of the whole (a sweep's grid, the ensemble's groups).
    metrics : dict, optional
        Its results (a sweep's best score).
    artifacts : tuple of path-like, default ()
        Files to attach (a sweep's ``results.csv`` and ``results.png``).
    status : str, default 'FINISHED'
        ``'FINISHED'``, ``'FAILED'`` or ``'KILLED'``.
    """
    for entry in record:
        if entry.get("kind") == "mlflow" and entry.get("parent"):
            end_mlflow_run(entry["target"], entry["run_id"], params=params, metrics=metrics,
                           artifacts=artifacts, status=status)
