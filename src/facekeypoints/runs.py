"""Training runs on disk: everything a finished net leaves in its run directory.

A run directory holds ``model.pt`` (safe weights + JSON config), ``history.json`` and
``history.csv``, ``run.json`` (what was asked for: preset, ``--set`` overrides, data, seed,
wall time), ``config.json`` (the net as configured before training, in the model file's
config format plus callbacks and batch iterators: see ``persist.net_config``),
``learning_curve.png`` and ``keypoints.png``. Every file is written atomically. Reading runs
back is in :mod:`facekeypoints.reports`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._safe_io import atomic_write, save_figure, write_json
from .data import KEYPOINT_COLUMNS
from .persist import history_records, net_config, save_model
from .plots import plot_learning_curves, plot_predictions

if TYPE_CHECKING:
    import os

    from numpy.typing import ArrayLike

    from .net import NeuralNet

__all__ = ["write_run", "Stopwatch"]


def write_run(net: NeuralNet, out_dir: str | os.PathLike, run_info: dict[str, Any] | None = None,
              X_valid: ArrayLike | None = None, y_valid: ArrayLike | None = None,
              config: dict[str, Any] | None = None) -> Path:
    """Write every artefact of a fitted net to a run directory.

    Parameters
    ----------
    net : NeuralNet
        A fitted net.
    out_dir : str or path-like
        The run directory (created if needed).
    run_info : dict, optional
        What the run was asked to do, written as ``run.json``.
    X_valid, y_valid : array-like, optional
        Validation faces for ``keypoints.png``: the net's predictions on the first eight,
        drawn over their true keypoints (``y_valid``) when given. Without ``X_valid`` no
        ``keypoints.png`` is written.
    config : dict, optional
        What ``net_config(net, training=True)`` returned before training (default: the net
        as it is now).

    Returns
    -------
    pathlib.Path
        The run directory.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> X, y = fk.load()                                          # doctest: +SKIP
    >>> net = fk.presets.net1(max_epochs=2).fit(X, y)             # doctest: +SKIP
    >>> _, (X_valid, y_valid) = net.train_valid_split(X, y)       # doctest: +SKIP
    >>> write_run(net, "runs/net1", {"preset": "net1"}, X_valid, y_valid)  # doctest: +SKIP
    PosixPath('runs/net1')
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_model(net, out / "model.pt")
    records = history_records(net)
    write_json(out / "history.json", records)
    frame = pd.DataFrame(records)
    atomic_write(out / "history.csv", lambda f: frame.to_csv(f, index=False), text=True)
    write_json(out / "run.json", run_info or {}, default=str)
    write_json(out / "config.json", config if config is not None
               else net_config(net, training=True), default=str)
    _write_pictures(net, out, X_valid, y_valid)
    return out


def _write_pictures(net, out, X_valid, y_valid):
    ax = plot_learning_curves(net, title=f"{out.name}: learning curves")
    save_figure(ax.figure, out / "learning_curve.png", dpi=100, bbox_inches="tight")
    if X_valid is not None and len(X_valid):
        n = min(8, len(X_valid))
        fig = plot_predictions(X_valid[:n], net.predict(X_valid[:n]),
                               None if y_valid is None else y_valid[:n], ncols=4,
                               columns=getattr(net, "columns_", None) or KEYPOINT_COLUMNS,
                               title=f"{out.name}: validation faces")
        save_figure(fig, out / "keypoints.png", dpi=90)


class Stopwatch:
    """Wall time of a block, for ``run.json``.

    Attributes
    ----------
    seconds : float
        Seconds the ``with`` block took (set when it ends, also on an exception).

    Examples
    --------
    >>> with Stopwatch() as clock:
    ...     pass
    >>> clock.seconds >= 0
    True
    """

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
