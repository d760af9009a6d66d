"""Hyperparameter sweeps of schedules: scikit-learn's searches, run on Dask or local processes.

The recipe's results hinge on the schedule's start and stop values, the patience and the
dropout rates; this module sweeps them::

    from facekeypoints import presets
    from facekeypoints.sweep import run_sweep

    net = presets.net4(max_epochs=50, verbose=0, random_state=0)
    grid = {"callbacks__adjust_lr__start": [0.03, 0.01], "callbacks__adjust_lr__stop": [1e-4, 1e-3]}
    results = run_sweep(net, X, y, grid, cv=3)              # a DataFrame, one row per candidate
    results.attrs["best_params"]

Every fit is scored by :data:`neg_rmse_px`, the validation RMSE in pixels, negated as
scikit-learn's scorers are (greater is better); the results table turns it back into pixels.

Where the fits run (``backend='auto'``): on Dask distributed through joblib's Dask backend
when dask and distributed are installed (``pip install 'facekeypoints[distributed]'``) -- an
existing cluster when ``scheduler`` (or ``$FACEKEYPOINTS_SCHEDULER``) gives its address, else
an embedded ``LocalCluster`` with one single-threaded worker process per core -- and on local
joblib (loky) processes otherwise, which it says. X and y are sent to every worker once, before
the fits start (joblib's ``scatter``); each task then carries only the unfitted net and the
fold's indices. Torch runs one thread per task, and the net's ``random_state`` makes every fit
reproducible, so Dask, loky and in-process runs give the same numbers.

``facekeypoints sweep PRESET --grid key=v1,v2 ...`` is the command-line face of this module
(:func:`register_cli`; also ``python -m facekeypoints.sweep PRESET ...``).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import json
import math
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from .data import PIXELS_PER_UNIT  # one target unit is 48 pixels

SCHEDULER_ENV = "FACEKEYPOINTS_SCHEDULER"
BACKENDS = ("auto", "dask", "loky", "sequential")
_INSTALL_HINT = "pip install 'facekeypoints[distributed]'"


class GridError(ValueError):
    """A malformed or unknown grid entry (``key=v1,v2``)."""


class SweepError(ValueError):
    """The sweep cannot run as asked (no Dask for --scheduler, a scheduler that does not answer)."""


# ---------------------------------------------------------------------------------- scoring
def keypoint_rmse_px(y_true, y_pred, pixels_per_unit=PIXELS_PER_UNIT):
    """Root mean squared error over all keypoint coordinates, in pixels.

    ``y_true`` and ``y_pred`` are scaled targets ((pixel - 48) / 48), so the result is
    ``sqrt(MSE) * 48`` -- the number the recipe quotes ("an RMSE of 1.5 pixels").
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2)) * pixels_per_unit)


def make_rmse_scorer(pixels_per_unit=PIXELS_PER_UNIT):
    """A scikit-learn scorer: minus the RMSE in pixels (greater is better, as scorers are)."""
    from sklearn.metrics import make_scorer

    return make_scorer(keypoint_rmse_px, greater_is_better=False,
                       pixels_per_unit=pixels_per_unit)


def __getattr__(name):
    # ``neg_rmse_px``: ``scoring=neg_rmse_px`` in any scikit-learn search, -(validation RMSE in
    # pixels). Built on first use: scikit-learn's metrics take ~2 s to import, which the command
    # line's parser (it registers `sweep`) should not pay.
    if name == "neg_rmse_px":
        scorer = globals()["neg_rmse_px"] = make_rmse_scorer()
        return scorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------- grids
def parse_value(text):
    """A Python literal (``0.03``, ``1e-3``, ``(3, 3)``, ``None``, ``'adam'``) or a bare string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _split_top_level(text):
    """Split at commas that are not inside brackets or quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_grid_item(text):
    """``'key=v1,v2'`` -> ``('key', [v1, v2])``; values are Python literals or bare strings.

    Commas inside brackets belong to the value: ``conv1_filter_size=(3,3),(5,5)`` is two values.
    """
    if "=" not in text:
        raise GridError(f"--grid takes key=v1,v2,..., got {text!r}")
    key, _, values = text.partition("=")
    key = key.strip()
    if not key or not key.replace("__", "_").replace("_", "a").isalnum():
        raise GridError(f"--grid {text!r}: {key!r} is not a parameter name")
    if not values.strip():
        raise GridError(f"--grid {text!r}: no values after '='")
    parts = [p.strip() for p in _split_top_level(values)]
    if any(not p for p in parts):
        raise GridError(f"--grid {text!r}: an empty value (two commas in a row, or a "
                        "trailing comma)")
    parsed = [parse_value(p) for p in parts]
    if len({repr(v) for v in parsed}) != len(parsed):
        raise GridError(f"--grid {text!r}: a value is repeated")
    return key, parsed


def parse_grid(items):
    """Several ``key=v1,v2`` strings -> ``{key: [v1, v2], ...}`` (scikit-learn's param_grid)."""
    grid = {}
    for item in items or ():
        key, values = parse_grid_item(item)
        if key in grid:
            raise GridError(f"--grid {key} is given twice; put all its values in one "
                            f"--grid {key}=v1,v2,...")
        grid[key] = values
    if not grid:
        raise GridError("give at least one --grid key=v1,v2,...")
    return grid


def _settable_names(estimator):
    """Parameter names for suggestions: get_params plus callbacks__<name>__<param>."""
    names = set(estimator.get_params(deep=False))
    for item in getattr(estimator, "callbacks", None) or ():
        if isinstance(item, (tuple, list)) and len(item) == 2 and hasattr(item[1], "get_params"):
            names.update(f"callbacks__{item[0]}__{k}" for k in item[1].get_params())
    return sorted(n for n in names if not n.startswith("_"))


def check_grid(estimator, param_grid):
    """Fail fast, in this process, on a parameter the net does not have or refuses.

    Every candidate is set on a clone (cheap: nothing is initialised), so a typo fails here
    with a suggestion instead of in every worker.
    """
    from sklearn.base import clone
    from sklearn.model_selection import ParameterGrid

    names = _settable_names(estimator)
    for key in param_grid:
        try:
            clone(estimator).set_params(**{key: param_grid[key][0]})
        except (ValueError, TypeError) as exc:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            detail = str(exc).split(".")[0] if "Valid parameters" in str(exc) else str(exc)
            raise GridError(f"--grid {key}: not a parameter of this net ({detail}){hint}") \
                from None
    for params in ParameterGrid(param_grid):
        try:
            clone(estimator).set_params(**params)
        except (ValueError, TypeError) as exc:
            raise GridError(f"--grid: the net refuses {params}: {exc}") from None


# ---------------------------------------------------------------------------------- backends
def _import_distributed():
    """``distributed``, or ImportError when the extra is not installed (a seam for tests)."""
    import dask  # noqa: F401
    import distributed

    return distributed


def dask_available():
    try:
        _import_distributed()
    except ImportError:
        return False
    return True


def default_n_workers():
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _torch_threads_plugin(n_threads=1):
    """A distributed WorkerPlugin that sets torch's intra-op threads on every worker."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreads(WorkerPlugin):
        name = "facekeypoints-torch-threads"

        def __init__(self, n):
            self.n = n

        def setup(self, worker):
            import torch
            torch.set_num_threads(self.n)

    return TorchThreads(n_threads)


@contextlib.contextmanager
def _dask_client(scheduler, client, n_workers, log):
    """Yield (client, description); close what this function opened."""
    distributed = _import_distributed()
    if client is not None:
        yield client, f"dask: {_describe_cluster(client)}"
        return
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client, f"dask: {_describe_cluster(client)}"
        finally:
            client.close()
        return
    import logging

    n = n_workers or default_n_workers()
    log(f"starting a local Dask cluster: {n} worker process{'es' if n > 1 else ''} "
        "x 1 thread")
    with warnings.catch_warnings():
        # Its (unused) HTTP server moves off port 8787 when another cluster has it; fine.
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=120)
        yield client, f"dask: embedded LocalCluster, {_describe_cluster(client)}"


def _describe_cluster(client):
    if not client.nthreads():
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise SweepError(f"the Dask scheduler at {client.scheduler.address} has no "
                             "workers (start some with: dask worker ADDRESS --nthreads 1)") \
                from None
    nthreads = client.nthreads()
    workers, threads = len(nthreads), sum(nthreads.values())
    return (f"{client.scheduler.address} ({workers} worker{'s' if workers != 1 else ''}, "
            f"{threads} thread{'s' if threads != 1 else ''})")


def _shippable(estimator):
    """The estimator, checked to survive the pickling that sends it to worker processes."""
    import pickle

    try:
        pickle.loads(pickle.dumps(estimator))
    except Exception as exc:  # noqa: BLE001 - reported below
        raise SweepError(f"the net cannot be pickled, so it cannot be sent to worker "
                         f"processes: {type(exc).__name__}: {exc}") from None
    return estimator


@contextlib.contextmanager
def _torch_threads(n):
    """Run a block with ``n`` torch threads, as every task on a worker runs (same numbers)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


SCATTER_TIMEOUT_S = 120


def _progress_backend(base):
    """``base`` (a joblib backend class) whose finished batches are reported to a callable."""

    class WithProgress(base):
        def __init__(self, *args, on_done=None, scatter=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._on_done = on_done
            if scatter:
                # joblib's own scatter, but with fresh keys (hash=False: never shared with an
                # earlier sweep's data on the same cluster) and a time limit instead of a hang.
                self._scatter = list(scatter)
                futures = self.client.scatter(list(scatter), broadcast=True, hash=False,
                                              timeout=SCATTER_TIMEOUT_S)
                self.data_futures = {id(x): f for x, f in zip(scatter, futures)}

        def submit(self, func, callback=None):
            if self._on_done is None:
                return super().submit(func, callback)
            meta = _batch_meta(func)

            def done(out):
                try:
                    if callback is not None:
                        callback(out)
                finally:
                    try:
                        results = self.retrieve_result_callback(out)
                    except BaseException:  # noqa: BLE001 - the error reaches joblib anyway
                        results = None
                    try:
                        self._on_done(meta, results)
                    except Exception as exc:  # noqa: BLE001 - never stall the sweep
                        print(f"sweep progress report failed: {exc!r}", file=sys.stderr)

            return super().submit(func, done)

    WithProgress.__name__ = WithProgress.__qualname__ = f"Progress{base.__name__}"
    return WithProgress


def _batch_meta(func):
    """(parameters, split_progress, candidate_progress) of each fit in a joblib batch."""
    meta = []
    for item in getattr(func, "items", None) or ():
        try:
            kwargs = item[2]
        except (TypeError, IndexError):
            kwargs = {}
        meta.append((kwargs.get("parameters"), kwargs.get("split_progress"),
                     kwargs.get("candidate_progress")))
    return meta


class FitProgress:
    """One line per finished fit (and a tqdm bar on a terminal) while a sweep runs."""

    def __init__(self, total, write=None, bar=None):
        from tqdm.auto import tqdm

        self.total, self.done = total, 0
        self._lock = threading.Lock()
        self.bar = tqdm(total=total, unit="fit", desc="sweep", leave=False,
                        disable=(not sys.stderr.isatty()) if bar is None else not bar,
                        dynamic_ncols=True)
        self._write = write or (tqdm.write if not self.bar.disable else
                                (lambda line: print(line, flush=True)))

    def __call__(self, meta, results):
        with self._lock:
            results = results if isinstance(results, list) else [None] * len(meta)
            for (params, split, candidate), result in zip(meta, results):
                self.done += 1
                self._write(self._line(params, split, candidate, result))
                self.bar.update(1)

    def _line(self, params, split, candidate, result):
        width = len(str(self.total))
        parts = [f"[{self.done:>{width}}/{self.total}]"]
        if candidate and split:
            parts.append(f"candidate {candidate[0] + 1}/{candidate[1]} "
                         f"fold {split[0] + 1}/{split[1]}")
        if params:
            parts.append(" ".join(f"{short_name(k)}={v!r}" for k, v in params.items()))
        if isinstance(result, dict):
            if result.get("fit_error"):
                error = str(result["fit_error"]).strip().splitlines()[-1]
                parts.append(f"FAILED: {error}")
            else:
                score = result.get("test_scores")
                if isinstance(score, (int, float, np.floating)):
                    parts.append(f"valid RMSE {-float(score):.3f} px")
            if result.get("fit_time") is not None:
                parts.append(f"fit {result['fit_time']:.1f} s")
        return "  ".join(parts)

    def close(self):
        self.bar.close()


def short_name(key):
    """``callbacks__adjust_lr__start`` -> ``adjust_lr__start`` (for tables and progress)."""
    return key[len("callbacks__"):] if key.startswith("callbacks__") else key


# ---------------------------------------------------------------------------------- the sweep
def run_sweep(estimator, X, y, param_grid, *, cv=3, scheduler=None, n_iter=None,
              backend="auto", client=None, n_workers=None, random_state=0, refit=False,
              error_score=np.nan, progress=False, log=print):
    """Cross-validate every candidate of ``param_grid``; return one row per candidate.

    estimator: an unfitted NeuralNet (a preset); give it a ``random_state`` for reproducible
        fits. param_grid: ``{name: [values]}`` with any ``set_params`` name
        (``callbacks__adjust_lr__start``, ``dropout1_p``, ``max_epochs``, ...).
    cv: folds (K-fold, unshuffled: the loaders already shuffle) or a scikit-learn splitter.
    n_iter: sample this many candidates (RandomizedSearchCV, seeded by ``random_state``)
        instead of trying them all (GridSearchCV).
    backend: 'auto' (Dask when installed, else local processes), 'dask', 'loky' (local joblib
        processes) or 'sequential' (this process, one fit after another).
    scheduler: a Dask scheduler address (``tcp://host:8786``); default
        ``$FACEKEYPOINTS_SCHEDULER``; without one, Dask runs on an embedded LocalCluster of
        ``n_workers`` (default: one per core) single-threaded worker processes.
    client: an existing ``distributed.Client`` to use instead (it is left open).
    refit: refit the best candidate on all of X, y (returned in ``attrs['best_estimator']``).
    progress: True for a line per finished fit (and a bar on a terminal), or a callable
        ``f(meta, results)`` as :class:`FitProgress`.
    log: where notes go (which backend runs the fits); None for silence.

    Returns a pandas DataFrame: the parameters, ``mean_rmse_px``, ``std_rmse_px`` (over the
    folds), ``rank`` (1 = best), ``mean_fit_time_s``, ``std_fit_time_s`` and
    ``fold<k>_rmse_px``; ``attrs`` holds ``best_params``, ``backend``, ``cv``, ``n_fits``.
    """
    import joblib
    from sklearn.model_selection import (GridSearchCV, ParameterGrid, RandomizedSearchCV,
                                         check_cv)

    log = log or (lambda *_: None)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    param_grid = {k: list(v) for k, v in dict(param_grid).items()}
    check_grid(estimator, param_grid)
    X = X if hasattr(X, "__array__") and hasattr(X, "shape") else np.asarray(X)
    y = y if hasattr(y, "__array__") and hasattr(y, "shape") else np.asarray(y)

    if n_iter is None:
        search = GridSearchCV(estimator, param_grid, scoring=make_rmse_scorer(), cv=cv, refit=refit,
                              error_score=error_score, n_jobs=-1)
        n_candidates = len(ParameterGrid(param_grid))
    else:
        if int(n_iter) < 1:
            raise ValueError(f"n_iter must be >= 1, got {n_iter}")
        n_candidates = min(int(n_iter), len(ParameterGrid(param_grid)))
        search = RandomizedSearchCV(estimator, param_grid, n_iter=n_candidates,
                                    scoring=make_rmse_scorer(), cv=cv, refit=refit,
                                    error_score=error_score, n_jobs=-1,
                                    random_state=random_state)
    n_splits = check_cv(cv, y, classifier=False).get_n_splits(X, y)
    n_fits = n_candidates * n_splits

    if not scheduler and client is None and backend in ("auto", "dask"):
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    kind = backend
    if backend == "auto":
        kind = "dask" if dask_available() else "loky"
        if kind == "loky":
            if scheduler:
                raise SweepError(f"a Dask scheduler ({scheduler}) was given but dask and "
                                 f"distributed are not installed: {_INSTALL_HINT}")
            log(f"note: dask/distributed are not installed, so the sweep runs on local joblib "
                f"processes ({_INSTALL_HINT} to run it on Dask)")
    elif backend == "dask" and not dask_available():
        raise SweepError(f"backend='dask' needs dask and distributed: {_INSTALL_HINT}")
    elif backend != "dask" and (scheduler or client is not None):
        raise SweepError(f"a Dask scheduler or client was given with backend={backend!r}")

    if getattr(estimator, "random_state", 0) is None:
        log("note: the net has no random_state, so the results will differ between runs")
    if kind != "sequential":
        search.set_params(estimator=_shippable(estimator))

    from joblib._parallel_backends import LokyBackend

    reporter = FitProgress(n_fits) if progress is True else (progress or None)
    started = time.perf_counter()
    try:
        if kind == "dask":
            from joblib._dask import DaskDistributedBackend

            with _dask_client(scheduler, client, n_workers, log) as (dask_client, where):
                register = (getattr(dask_client, "register_plugin", None)
                            or dask_client.register_worker_plugin)  # distributed < 2023.9
                register(_torch_threads_plugin(1))
                log(f"running {n_fits} fits ({n_candidates} candidates x {n_splits} folds) "
                    f"on {where}")
                # scatter: X and y go to every worker once; tasks refer to them by key.
                runner = _progress_backend(DaskDistributedBackend)(
                    client=dask_client, scatter=[X, y], on_done=reporter)
                with joblib.parallel_config(backend=runner, n_jobs=-1):
                    search.fit(X, y)
        elif kind == "loky":
            n = n_workers or default_n_workers()
            where = f"local joblib processes (loky, {n} at a time, 1 torch thread each)"
            log(f"running {n_fits} fits ({n_candidates} candidates x {n_splits} folds) "
                f"on {where}")
            runner = _progress_backend(LokyBackend)(on_done=reporter)
            with joblib.parallel_config(backend=runner, n_jobs=n, inner_max_num_threads=1):
                search.set_params(n_jobs=n).fit(X, y)
        else:
            where = "this process, one fit at a time"
            log(f"running {n_fits} fits ({n_candidates} candidates x {n_splits} folds) "
                f"in {where}")
            with joblib.parallel_config(backend="sequential"), _torch_threads(1):
                search.set_params(n_jobs=None).fit(X, y)
    finally:
        if isinstance(reporter, FitProgress):
            reporter.close()

    frame = results_frame(search, list(param_grid))
    frame.attrs.update(backend=where, cv=n_splits, n_fits=n_fits,
                       seconds=round(time.perf_counter() - started, 2),
                       best_params=best_params(frame, list(param_grid)))
    if refit:
        frame.attrs["best_estimator"] = search.best_estimator_
    return frame


def results_frame(search, keys=None):
    """A fitted search's ``cv_results_`` as a table in pixels (one row per candidate)."""
    import pandas as pd

    r = search.cv_results_
    keys = keys or sorted({k for p in r["params"] for k in p})
    n_splits = sum(1 for k in r if k.startswith("split") and k.endswith("_test_score"))
    rows = []
    for i, params in enumerate(r["params"]):
        row = {k: params.get(k) for k in keys}
        row["mean_rmse_px"] = -float(r["mean_test_score"][i])
        row["std_rmse_px"] = float(r["std_test_score"][i])
        row["rank"] = int(r["rank_test_score"][i])
        row["mean_fit_time_s"] = float(r["mean_fit_time"][i])
        row["std_fit_time_s"] = float(r["std_fit_time"][i])
        for s in range(n_splits):
            row[f"fold{s + 1}_rmse_px"] = -float(r[f"split{s}_test_score"][i])
        rows.append(row)
    return pd.DataFrame(rows)


def best_params(frame, keys=None):
    """The parameters of the candidate with the lowest mean validation RMSE."""
    keys = keys or param_columns(frame)
    scores = frame["mean_rmse_px"].to_numpy(dtype=float)
    if not np.isfinite(scores).any():
        return None
    i = int(np.nanargmin(scores))
    return {k: _plain(frame[k].iloc[i]) for k in keys}


def param_columns(frame):
    """The parameter columns of a results table (everything before ``mean_rmse_px``)."""
    cols = list(frame.columns)
    return cols[:cols.index("mean_rmse_px")]


def _reprs(column):
    return [repr(_plain(v)) for v in column]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def format_results(frame, keys=None):
    """The results as a text table: parameters, mean/std valid RMSE px, fit time, rank."""
    from tabulate import tabulate

    keys = keys or param_columns(frame)
    headers = [short_name(k) for k in keys] + ["valid RMSE px", "± std", "fit s", "rank"]
    rows = []
    for i in range(len(frame)):
        cell = {k: _plain(frame[k].iloc[i]) for k in frame.columns}
        rows.append([cell[k] if isinstance(cell[k], str) else repr(cell[k]) for k in keys]
                    + [f"{cell['mean_rmse_px']:.3f}", f"{cell['std_rmse_px']:.3f}",
                       f"{cell['mean_fit_time_s']:.1f}",
                       f"{cell['rank']}{' *' if cell['rank'] == 1 else '  '}"])
    return tabulate(rows, headers=headers, disable_numparse=True, stralign="right")


def plot_results(frame, keys=None, ax=None, title=None):
    """Mean validation RMSE (px) per candidate with std error bars across folds.

    With one swept parameter it is on the x axis; with two, the second gives one line per
    value; otherwise every candidate is a point, labelled with its parameters.
    """
    from matplotlib.figure import Figure

    keys = keys or param_columns(frame)
    varying = [k for k in keys if frame[k].astype(str).nunique() > 1] or keys[:1]
    mean, std = frame["mean_rmse_px"].to_numpy(float), frame["std_rmse_px"].to_numpy(float)
    best = int(np.nanargmin(mean)) if np.isfinite(mean).any() else None
    label = "validation RMSE (px), mean ± std over folds"
    if ax is None:
        tall = len(varying) > 2
        fig = Figure(figsize=(7, max(3.0, 1.2 + 0.35 * len(frame))) if tall else (7, 4.5))
        ax = fig.subplots()
    if len(varying) in (1, 2):
        x_key = varying[0]
        x_values = list(dict.fromkeys(_reprs(frame[x_key])))
        pos = {v: i for i, v in enumerate(x_values)}
        groups = [(None, np.ones(len(frame), bool))]
        if len(varying) == 2:
            second = np.array(_reprs(frame[varying[1]]), dtype=object)
            groups = [(v, second == v) for v in dict.fromkeys(second)]
        n = len(groups)
        for j, (value, mask) in enumerate(groups):
            xs = np.array([pos[v] for v in np.array(_reprs(frame[x_key]), dtype=object)[mask]],
                          float)
            xs += (j - (n - 1) / 2) * 0.06  # keep overlapping error bars apart
            order = np.argsort(xs)
            ax.errorbar(xs[order], mean[mask][order], yerr=std[mask][order], marker="o",
                        capsize=4, label=None if value is None else
                        f"{short_name(varying[1])} = {value}")
            if best is not None and mask[best]:
                ax.plot(xs[list(np.flatnonzero(mask)).index(best)], mean[best], marker="*",
                        markersize=16, color="gold", markeredgecolor="k", zorder=5,
                        linestyle="none", label="best" if j == 0 else "_best")
        ax.set_xticks(range(len(x_values)), x_values)
        ax.set_xlabel(short_name(x_key))
        ax.set_ylabel(label)
        ax.legend(fontsize="small")
    else:
        ys = np.arange(len(frame))[::-1]
        ax.errorbar(mean, ys, xerr=std, marker="o", linestyle="none", capsize=4)
        if best is not None:
            ax.plot(mean[best], ys[best], marker="*", markersize=16, color="gold",
                    markeredgecolor="k", zorder=5, linestyle="none", label="best")
            ax.legend(fontsize="small")
        labels = [" ".join(f"{short_name(k)}={r}" for k, r in zip(varying, values))
                  for values in zip(*(_reprs(frame[k]) for k in varying))]
        ax.set_yticks(ys, labels, fontsize="small")
        ax.set_xlabel(label)
    ax.set_title(title or "sweep results")
    ax.grid(True, alpha=0.3)
    ax.figure.tight_layout()
    return ax


# ---------------------------------------------------------------------------------- CLI
def add_arguments(p):
    """The sweep command's arguments, on an argparse parser."""
    p.add_argument("preset", help="net1 .. net7")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2", default=[],
                   help="a parameter and its values (Python literals), repeatable: "
                        "--grid callbacks__adjust_lr__start=0.03,0.01 --grid max_epochs=50,100")
    p.add_argument("--cv", type=int, default=3, metavar="K", help="folds (default 3)")
    p.add_argument("--n-iter", type=int, metavar="N",
                   help="try N random candidates of the grid instead of all of them")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"a Dask scheduler, e.g. tcp://10.0.0.5:8786 (default ${SCHEDULER_ENV}; "
                        "without one: a local Dask cluster, one worker per core)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="where fits run (default auto: Dask when installed, else local "
                        "joblib processes)")
    p.add_argument("--max-epochs", type=int, metavar="N", help="epochs per fit (default: "
                   "the preset's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="a fixed set_params override, e.g. callbacks__adjust_lr__stop=1e-3")
    p.add_argument("--data", help="a Kaggle training.csv (default: the embedded synthetic faces)")
    p.add_argument("--out", help="directory for results.csv and results.png "
                                 "(default runs/sweep-PRESET)")
    p.add_argument("--device", help="cpu, cuda ... on the workers (default: CUDA when present)")
    p.add_argument("--seed", type=int, default=0, help="random_state of the nets (default 0)")
    p.set_defaults(func=cmd_sweep)
    return p


def register_cli(subparsers):
    """Add ``sweep`` to the ``facekeypoints`` command's subparsers."""
    p = subparsers.add_parser(
        "sweep", help="cross-validate a grid of hyperparameters, on Dask when available",
        description=cmd_sweep.__doc__)
    return add_arguments(p)


def _parse_sets(pairs):
    params = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise GridError(f"--set takes key=value, got {pair!r}")
        key, _, value = pair.partition("=")
        params[key.strip()] = parse_value(value.strip())
    return params


def _jsonable(value):
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def cmd_sweep(args):
    """Cross-validate a preset over a grid of hyperparameters and report validation RMSE (px).

    Fits run on Dask distributed (an embedded local cluster, or --scheduler ADDRESS), else on
    local joblib processes. Writes results.csv, results.png and sweep.json to --out.
    """
    from . import presets
    from .data import load2d

    grid = parse_grid(args.grid)
    sets = _parse_sets(args.set)
    if args.cv < 2:
        raise GridError(f"--cv must be at least 2, got {args.cv}")
    overrides = dict(verbose=0, random_state=args.seed)
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    if args.device:
        overrides["device"] = args.device
    net = presets.get(args.preset, **overrides)
    if sets:
        try:
            net.set_params(**sets)
        except ValueError as exc:
            raise GridError(f"--set: {str(exc).splitlines()[0]}") from None
    check_grid(net, grid)
    out = Path(args.out or f"runs/sweep-{args.preset}")

    X, y = load2d(args.data)
    n_cand = math.prod(len(v) for v in grid.values())
    print(f"sweep {args.preset}: {n_cand} candidates"
          f"{f' ({args.n_iter} sampled)' if args.n_iter else ''} x {args.cv} folds on "
          f"{len(X)} faces ({args.data or 'embedded synthetic faces'}), "
          f"{net.max_epochs} max epochs", flush=True)
    frame = run_sweep(net, X, y, grid, cv=args.cv, scheduler=args.scheduler,
                      n_iter=args.n_iter, backend=args.backend, random_state=args.seed,
                      progress=True, log=lambda line: print(line, flush=True))
    keys = list(grid)
    print()
    print(format_results(frame, keys))
    best = frame.attrs["best_params"]
    if best is None:
        print("\nevery fit failed; no best parameters")
    else:
        i = int(np.nanargmin(frame["mean_rmse_px"].to_numpy(float)))
        print(f"\nbest: {' '.join(f'{k}={v!r}' for k, v in best.items())}  (valid RMSE "
              f"{frame['mean_rmse_px'].iloc[i]:.3f} ± {frame['std_rmse_px'].iloc[i]:.3f} px)")
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "results.csv", index=False)
    ax = plot_results(frame, keys, title=f"{args.preset}: {args.cv}-fold validation RMSE")
    ax.figure.savefig(out / "results.png", dpi=100)
    info = {"preset": args.preset, "grid": {k: _jsonable(v) for k, v in grid.items()},
            "set": {k: _jsonable(v) for k, v in sets.items()}, "cv": args.cv,
            "n_iter": args.n_iter, "max_epochs": net.max_epochs, "seed": args.seed,
            "data": str(args.data or "embedded synthetic faces"), "rows": len(X),
            "backend": frame.attrs["backend"], "seconds": frame.attrs["seconds"],
            "best_params": None if best is None else {k: _jsonable(v) for k, v in best.items()}}
    (out / "sweep.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {out / 'results.csv'}, {out / 'results.png'}, {out / 'sweep.json'} "
          f"({frame.attrs['seconds']:.0f} s)")
    return 0


def build_parser(prog="python -m facekeypoints.sweep"):
    """A parser with the sweep command alone (``python -m facekeypoints.sweep PRESET ...``)."""
    p = argparse.ArgumentParser(prog=prog, description=cmd_sweep.__doc__)
    return add_arguments(p)


def main(argv=None):
    """Run the sweep command; bad arguments and unreachable schedulers exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"facekeypoints sweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facekeypoints sweep: interrupted", file=sys.stderr)
        return 130


__all__ = ["GridError", "SweepError", "FitProgress", "keypoint_rmse_px", "make_rmse_scorer",
           "neg_rmse_px",  # noqa: F822 - made on first use by __getattr__
           "parse_grid", "parse_grid_item", "check_grid", "run_sweep",
           "results_frame", "best_params", "format_results", "plot_results", "register_cli",
           "main"]


if __name__ == "__main__":
    sys.exit(main())
