"""Training runs on disk: train a preset, write the model, history, config and pictures.

A run directory holds ``model.pt`` (safe weights + JSON config), ``history.json`` and
``history.csv``, ``run.json`` (what was asked for), ``learning_curve.png`` and
``keypoints.png``. The CLI and the examples read and write runs through this module.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .persist import history_records, save_model

PIXELS_PER_UNIT = 48.0


def rmse_px(loss):
    """RMSE in pixels from an MSE on targets scaled by (y - 48) / 48."""
    return math.sqrt(loss) * PIXELS_PER_UNIT


def write_run(net, out_dir, run_info=None, X_valid=None, y_valid=None):
    """Write every artefact of a fitted net to ``out_dir``; returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_model(net, out / "model.pt")
    records = history_records(net)
    _write_text(out / "history.json", json.dumps(records, indent=1))
    pd.DataFrame(records).to_csv(out / "history.csv", index=False)
    _write_text(out / "run.json", json.dumps(run_info or {}, indent=1, default=str))
    _write_pictures(net, out, X_valid, y_valid)
    return out


def _write_text(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _write_pictures(net, out, X_valid, y_valid):
    from .plots import plot_learning_curves, plot_predictions

    ax = plot_learning_curves(net, title=f"{out.name}: learning curves")
    ax.figure.tight_layout()
    ax.figure.savefig(out / "learning_curve.png", dpi=100)
    if X_valid is not None and len(X_valid):
        n = min(8, len(X_valid))
        fig = plot_predictions(X_valid[:n], net.predict(X_valid[:n]),
                               None if y_valid is None else y_valid[:n], ncols=4)
        fig.savefig(out / "keypoints.png", dpi=90)


def read_history(run_or_model):
    """The per-epoch records of a run directory (history.json) or of a model file."""
    path = Path(run_or_model)
    if path.is_dir() and (path / "history.json").exists():
        return json.loads((path / "history.json").read_text())
    from .persist import read_model_file

    return read_model_file(path)["history"]


def validation_split(net, X, y):
    """The rows the net held out for validation (nolearn's first fold)."""
    n_valid = net._n_valid(len(X))
    return X[:n_valid], y[:n_valid]


def recipe_table(histories, epochs=None):
    """The recipe's side-by-side table: epoch | train | valid | train/val for each run.

    ``histories``: {label: records}. ``epochs`` defaults to about six evenly spaced epochs
    ending at the last one. Returns a string.
    """
    last = max(len(h) for h in histories.values())
    if epochs is None:
        epochs = sorted({max(1, round(last * f)) for f in (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)})
    columns = {"epoch": epochs}
    for label, records in histories.items():
        by_epoch = {r["epoch"]: r for r in records}
        for key, name in (("train_loss", "train"), ("valid_loss", "valid"),
                          ("train_val", "train/val")):
            columns[f"{label} {name}"] = [
                f"{by_epoch[e][key]:.6f}" if e in by_epoch and key in by_epoch[e] else ""
                for e in epochs]
    table = pd.DataFrame(columns).to_string(index=False)
    best = []
    for label, records in histories.items():
        valid = [r["valid_loss"] for r in records if "valid_loss" in r]
        if valid:
            i = int(np.argmin(valid))
            best.append(f"{label}: best valid RMSE {rmse_px(valid[i]):.2f} px "
                        f"(loss {valid[i]:.6f}, epoch {i + 1})")
    return table + ("\n\n" + "\n".join(best) if best else "")


class Stopwatch:
    """Wall time of a block, for run.json."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
