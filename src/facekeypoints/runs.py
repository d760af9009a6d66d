"""Training runs on disk: train a preset, write the model, history, config and pictures.

A run directory holds ``model.pt`` (safe weights + JSON config), ``history.json`` and
``history.csv``, ``run.json`` (what was asked for: preset, ``--set`` overrides, data, seed,
wall time), ``config.json`` (the net as configured before training: layers, hyperparameters,
callbacks, batch iterators), ``learning_curve.png`` and ``keypoints.png``. The CLI and the
examples read and write runs through this module.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ._safe_io import atomic_write
from .data import KEYPOINT_COLUMNS, PIXELS_PER_UNIT  # PIXELS_PER_UNIT: re-exported
from .persist import history_records, save_model


def rmse_px(loss):
    """RMSE in pixels from an MSE on targets scaled by (y - 48) / 48."""
    return math.sqrt(loss) * PIXELS_PER_UNIT


def describe_net(net):
    """A JSON-safe description of a (fitted or unfitted) net: what ``config.json`` holds.

    The safe model config (layers, layer keywords, update rule, hyperparameters as they are
    now: call this before ``fit`` to record a schedule's starting values) plus the training
    plumbing that the model file does not need: callbacks with their parameters, batch
    iterators, random state.
    """
    from .persist import net_config

    try:
        config = net_config(net)
    except ValueError as exc:      # module= nets: no safe config, describe what we can
        config = {"note": str(exc)}
    from .progress import EpochProgress

    try:                  # set_params(callbacks__adjust_lr=...) replaces a callback here only
        params = net.get_params()
    except Exception:
        params = {}
    items = []
    for item in net.callbacks or []:
        if isinstance(item, (tuple, list)):
            item = (item[0], params.get(f"callbacks__{item[0]}", item[1]))
        if not isinstance(item[1] if isinstance(item, tuple) else item, EpochProgress):
            items.append(item)
    config["callbacks"] = [_describe_callback(item) for item in items]
    for key in ("on_epoch_finished", "on_training_finished"):
        handlers = getattr(net, key, None) or []
        if handlers:
            config[key] = [_describe_callback(h) for h in handlers]
    for key in ("batch_iterator_train", "batch_iterator_test"):
        it = getattr(net, key, None)
        config[key] = None if it is None else repr(it)
    config["random_state"] = getattr(net, "random_state", None)
    config["device"] = str(getattr(net, "device", ""))
    return json.loads(json.dumps(config, default=str))


def _describe_callback(item):
    name, cb = item if isinstance(item, (tuple, list)) else (None, item)
    entry = {"name": name, "class": type(cb).__name__}
    get_params = getattr(cb, "get_params", None)
    if callable(get_params):
        try:
            entry["params"] = {k: v for k, v in get_params().items()
                               if isinstance(v, (bool, int, float, str, type(None)))}
        except Exception:          # a third-party callback with odd params: name it only
            pass
    return entry


def write_run(net, out_dir, run_info=None, X_valid=None, y_valid=None, config=None):
    """Write every artefact of a fitted net to ``out_dir``; returns the directory.

    ``config``: what :func:`describe_net` returned before training (default: the net now).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_model(net, out / "model.pt")
    records = history_records(net)
    _write_text(out / "history.json", json.dumps(records, indent=1))
    frame = pd.DataFrame(records)
    atomic_write(out / "history.csv", lambda f: frame.to_csv(f, index=False))
    _write_text(out / "run.json", json.dumps(run_info or {}, indent=1, default=str))
    _write_text(out / "config.json",
                json.dumps(config if config is not None else describe_net(net), indent=1,
                           default=str))
    _write_pictures(net, out, X_valid, y_valid)
    return out


def _write_text(path, text):
    atomic_write(path, lambda f: f.write(text), text=True)


def _write_pictures(net, out, X_valid, y_valid):
    from .plots import plot_learning_curves, plot_predictions

    ax = plot_learning_curves(net, title=f"{out.name}: learning curves")
    ax.figure.savefig(out / "learning_curve.png", dpi=100, bbox_inches="tight")
    if X_valid is not None and len(X_valid):
        n = min(8, len(X_valid))
        fig = plot_predictions(X_valid[:n], net.predict(X_valid[:n]),
                               None if y_valid is None else y_valid[:n], ncols=4,
                               columns=getattr(net, "columns_", None) or KEYPOINT_COLUMNS,
                               title=f"{out.name}: validation faces")
        fig.savefig(out / "keypoints.png", dpi=90)


def read_history(run_or_model):
    """The per-epoch records of a run directory (history.json) or of a model file."""
    path = Path(run_or_model)
    if path.is_dir() and (path / "history.json").exists():
        return json.loads((path / "history.json").read_text())
    from .persist import read_model_file

    return read_model_file(path)["history"]


def read_run_info(run_dir):
    """``run.json`` of a run directory as a dict ({} when absent, e.g. for a model file)."""
    path = Path(run_dir) / "run.json"
    if Path(run_dir).is_dir() and path.exists():
        return json.loads(path.read_text())
    return {}


def run_labels(paths):
    """Short, distinct labels for run directories or model files (for legends and tables).

    The last path component, or as many trailing components as it takes to tell them apart.
    """
    parts = [Path(p).resolve() for p in paths]
    parts = [(p.parent if p.name == "model.pt" else p).parts[1:] for p in parts]
    if len(set(parts)) < len(parts):       # the same run twice: number the repeats
        labels = [p[-1] if p else "/" for p in parts]
        seen = {}
        for i, label in enumerate(labels):
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                labels[i] = f"{label} ({seen[label]})"
        return labels
    depth = 1
    while True:
        labels = ["/".join(p[-depth:]) or "/" for p in parts]
        if len(set(labels)) == len(labels) or depth >= max(len(p) for p in parts):
            return labels
        depth += 1


def validation_split(net, X, y):
    """The rows the net held out for validation (nolearn's first fold)."""
    n_valid = net._n_valid(len(X))
    return X[:n_valid], y[:n_valid]


def keypoint_errors(y_true, y_pred, columns=KEYPOINT_COLUMNS, scaled=True):
    """Per-keypoint RMSE in pixels: a DataFrame indexed by keypoint with ``x``, ``y``, ``rmse``
    (over both coordinates) and ``n`` (faces), plus a last row ``overall`` over every value.

    ``y_true``/``y_pred``: (n, k) in the library's scaled units (or pixels with
    ``scaled=False``); ``columns`` names the k outputs (x, y pairs). The overall value equals
    ``rmse_px`` of the mean squared error the net reports as its loss.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"targets {y_true.shape} and predictions {y_pred.shape} differ in shape")
    columns = list(columns)
    if y_true.shape[1] != len(columns):
        raise ValueError(f"{y_true.shape[1]} outputs but {len(columns)} column names")
    factor = PIXELS_PER_UNIT if scaled else 1.0
    sq = ((y_pred - y_true) * factor) ** 2
    rows = {}
    for j in range(0, len(columns) - 1, 2):
        name = columns[j][:-2] if columns[j].endswith("_x") else columns[j]
        rows[name] = {"x": math.sqrt(sq[:, j].mean()), "y": math.sqrt(sq[:, j + 1].mean()),
                      "rmse": math.sqrt(sq[:, j:j + 2].mean()), "n": len(sq)}
    rows["overall"] = {"x": math.sqrt(sq[:, 0::2].mean()), "y": math.sqrt(sq[:, 1::2].mean()),
                       "rmse": math.sqrt(sq.mean()), "n": len(sq)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "keypoint"
    return table


def recipe_table(histories, epochs=None):
    """The recipe's side-by-side table: epoch | train | valid | train/val for each run.

    ``histories``: {label: records}. ``epochs`` defaults to about six evenly spaced epochs
    ending at the last one; epochs a run did not reach are left blank. Below the table, per
    run: the best valid loss as RMSE in pixels and its epoch, and the last epoch's. Returns
    a string.
    """
    if not histories:
        raise ValueError("no runs to tabulate")
    last = max((len(h) for h in histories.values()), default=0)
    if last == 0:
        raise ValueError("the runs have no finished epochs")
    if epochs is None:
        epochs = sorted({max(1, round(last * f)) for f in (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)})
    fields = (("train_loss", "train", "{:.6f}"), ("valid_loss", "valid", "{:.6f}"),
              ("train_val", "train/val", "{:.2f}"))
    cells = {}
    for label, records in histories.items():
        by_epoch = {r["epoch"]: r for r in records}
        cells[label] = [[fmt.format(by_epoch[e][key]) if e in by_epoch and key in by_epoch[e]
                         else "" for key, _, fmt in fields] for e in epochs]
    ew = max(5, *(len(str(e)) for e in epochs))
    widths = {label: [max(len(name), *(len(row[i]) for row in cells[label]))
                      for i, (_, name, _) in enumerate(fields)] for label in histories}
    group = {label: sum(w) + 2 * (len(w) - 1) for label, w in widths.items()}
    for label in histories:                  # a long label widens its group's last column
        extra = len(str(label)) - group[label]
        if extra > 0:
            widths[label][-1] += extra
            group[label] += extra
    lines = [" " * ew + "".join(f" | {str(label):^{group[label]}}" for label in histories),
             f"{'epoch':>{ew}}" + "".join(
                 " | " + "  ".join(f"{name:>{w}}" for (_, name, _), w in zip(fields, widths[label]))
                 for label in histories)]
    lines.append("-" * len(lines[1]))
    for i, e in enumerate(epochs):
        lines.append(f"{e:>{ew}}" + "".join(
            " | " + "  ".join(f"{v:>{w}}" for v, w in zip(cells[label][i], widths[label]))
            for label in histories))
    table = "\n".join(line.rstrip() for line in lines)
    notes = []
    width = max(len(str(label)) for label in histories)
    for label, records in histories.items():
        valid = [(r["valid_loss"], r["epoch"]) for r in records if "valid_loss" in r]
        if valid:
            loss, epoch = min(valid)
            end_loss, end_epoch = valid[-1]
            notes.append(f"{label:<{width}}  best valid RMSE {rmse_px(loss):.2f} px "
                         f"(loss {loss:.6f}, epoch {epoch}); last {rmse_px(end_loss):.2f} px "
                         f"(epoch {end_epoch} of {len(records)})")
        elif records:
            notes.append(f"{label:<{width}}  no validation loss (eval_size=0); last train RMSE "
                         f"{rmse_px(records[-1]['train_loss']):.2f} px")
    return table + ("\n\n" + "\n".join(notes) if notes else "")


class Stopwatch:
    """Wall time of a block, for run.json."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
