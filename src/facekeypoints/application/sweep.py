"""Hyperparameter sweeps of schedules: cross-validated grids, run on Dask or local processes.

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
``scoring='nme'`` scores by the normalised mean error instead
(:func:`facekeypoints.metrics.make_nme_scorer`); :data:`SCORINGS` maps the names to scorers.
Partial-label data (``fk.load2d(dropna=False)``, NaN where a keypoint is not labelled) work
as they are: the nets' default loss and the scorer leave the NaN targets out.
The candidates are scikit-learn's (``ParameterGrid``, or ``ParameterSampler`` for
``n_iter``), the folds its ``check_cv``, the table its ``cv_results_`` layout and ranking,
and the results equal ``GridSearchCV``'s for the same grid and seed (a test checks it); the
fits are dispatched here, through ``joblib.Parallel``, so that each one is reported as it
finishes.
Why not ``GridSearchCV`` itself: it runs all fits in one ``joblib.Parallel`` call that returns
only after the last one (its ``verbose`` lines are printed by the worker process that ran the
fit), so the caller can neither print a line per finished fit nor stop between fits on Ctrl-C.

The first Ctrl-C or SIGTERM abandons the running fits (on every backend) and raises
:class:`SweepInterrupted`, which holds the fits finished before it; no results are made.

Where the fits run (``backend='auto'``): on Dask distributed through joblib's ``"dask"``
backend when dask and distributed are installed (``pip install 'facekeypoints[distributed]'``)
-- an existing cluster when ``scheduler`` (or ``$FACEKEYPOINTS_SCHEDULER``) gives its address,
else an embedded ``LocalCluster`` with one single-threaded worker process per core -- and on
local joblib (loky) processes otherwise, which it says. X and y (partial-label data too) are
sent to every worker once, before the fits start (``Client.scatter``); each task then carries
only the unfitted net and the fold's indices. Torch runs one thread per task, and the net's
``random_state`` makes every fit reproducible, so Dask, loky and in-process runs give the
same numbers.

Tables and plots of the results are in :mod:`facekeypoints.sweep_report`; the command line
(``facekeypoints sweep PRESET --grid key=v1,v2 ...``) is :mod:`facekeypoints.cli.sweep`.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._literals import parse_value, split_top_level
from ._signals import EXIT_STATUS, StopSignals, active, signal_name
from ._suggest import close_matches
from .metrics import PIXELS_PER_UNIT, keypoint_rmse_px
from .sweep_report import (FitProgress, best_params, format_results, plot_results,
                           results_frame)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["GridError", "SweepError", "SweepInterrupted", "SCORINGS", "get_scorer",
           "keypoint_rmse_px", "make_rmse_scorer",
           "neg_rmse_px",  # noqa: F822 - made on first use by __getattr__
           "parse_grid", "parse_grid_item", "check_grid", "run_sweep",
           # presentation, re-exported for code written before sweep_report existed
           "FitProgress", "results_frame", "best_params", "format_results", "plot_results"]

SCHEDULER_ENV = "FACEKEYPOINTS_SCHEDULER"
BACKENDS = ("auto", "dask", "loky", "sequential")
SCATTER_TIMEOUT_S = 120
_INSTALL_HINT = "pip install 'facekeypoints[distributed]'"


class GridError(ValueError):
    """A malformed or unknown grid entry (``key=v1,v2``)."""


class SweepError(ValueError):
    """The sweep cannot run as asked (Dask missing or unreachable, or every fit failed)."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a sweep; the running fits were abandoned, no results made.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C stops on it too.

    Parameters
    ----------
    finished : list of (meta, result)
        The fits finished before the signal.
    total : int
        Fits in the sweep.
    signum : int, optional
        The signal that stopped it.

    Attributes
    ----------
    finished : list of (meta, result)
        The fits that had finished before the signal, as the progress reporter got them
        (``meta`` = ``(params, (split, n_splits), (candidate, n_candidates))``).
    total : int
        Fits in the sweep.
    signum : int or None
        The signal (``signal.SIGINT``, ``signal.SIGTERM``), None for a bare interrupt.
    exit_status : int
        143 after SIGTERM, else 130.
    """

    def __init__(self, finished: list, total: int, signum: int | None = None) -> None:
        self.finished, self.total, self.signum = list(finished), int(total), signum
        self.exit_status = EXIT_STATUS.get(signum, 130) if signum else 130
        what = signal_name(signum) if signum else "an interrupt"
        super().__init__(f"{what} after {len(self.finished)} of {self.total} fits; the "
                         "running fits were abandoned")


@contextlib.contextmanager
def _stop_signals():
    """Signals raise at once for the block (the running fits are abandoned): the active
    StopSignals made non-graceful, or one of this block's own in the main thread."""
    stop = active()
    if stop is not None:
        before = stop.graceful
        stop.graceful = False
        try:
            yield stop
        finally:
            stop.graceful = before
    elif threading.current_thread() is threading.main_thread():
        with StopSignals() as stop:
            yield stop
    else:
        yield None


# ---------------------------------------------------------------------------------- scoring
def make_rmse_scorer(pixels_per_unit: float = PIXELS_PER_UNIT) -> Callable[..., float]:
    """A scikit-learn scorer: minus the validation RMSE in pixels.

    Parameters
    ----------
    pixels_per_unit : float, default 48
        Pixels per unit of the targets (1 for targets already in pixels).

    Returns
    -------
    callable
        ``scorer(estimator, X, y)`` = ``-keypoint_rmse_px(y, estimator.predict(X))``
        (negated: greater is better, as for every scikit-learn scorer), over the labelled
        targets only (NaN in ``y`` is left out). It pickles.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV  # doctest: +SKIP
    >>> GridSearchCV(net, grid, scoring=make_rmse_scorer())  # doctest: +SKIP
    """
    from sklearn.metrics import make_scorer

    return make_scorer(keypoint_rmse_px, greater_is_better=False,
                       pixels_per_unit=pixels_per_unit)


def _nme_scorer():
    from .metrics import make_nme_scorer

    return make_nme_scorer()


#: The scorers a sweep can use, by name: ``{name: (make the scorer, the measure's name in the
#: results table: see facekeypoints.sweep_report.MEASURES)}``.
SCORINGS: dict[str, tuple[Callable[[], Callable[..., float]], str]] = {
    "rmse": (make_rmse_scorer, "rmse_px"),
    "nme": (_nme_scorer, "nme"),
}


def get_scorer(name: str) -> tuple[Callable[..., float], str]:
    """The scorer of a sweep, by name.

    Parameters
    ----------
    name : {'rmse', 'nme'}
        ``'rmse'``: minus the validation RMSE in pixels; ``'nme'``: minus the normalised
        mean error (normaliser ``'auto'``, see :func:`facekeypoints.metrics.nme`).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``, greater is better.
    measure : str
        The measure's name in the results table (``'rmse_px'`` or ``'nme'``).

    Raises
    ------
    ValueError
        For another name.

    Examples
    --------
    >>> get_scorer("rmse")[1]
    'rmse_px'
    """
    if name not in SCORINGS:
        raise ValueError(f"unknown scoring {name!r}; use one of {', '.join(SCORINGS)}")
    make, measure = SCORINGS[name]
    return make(), measure


def __getattr__(name):
    # ``neg_rmse_px``: ``scoring=neg_rmse_px`` in any scikit-learn search, -(validation RMSE in
    # pixels). Built on first use: scikit-learn's metrics take ~2 s to import, which the command
    # line's parser (it registers `sweep`) should not pay.
    if name == "neg_rmse_px":
        scorer = globals()["neg_rmse_px"] = make_rmse_scorer()
        return scorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------- grids
def parse_grid_item(text: str) -> tuple[str, list]:
    """One ``key=v1,v2`` string as a parameter name and its values.

    Values are Python literals or bare strings (:func:`facekeypoints._literals.parse_value`);
    commas inside brackets or quotes belong to the value, so ``conv1_filter_size=(3,3),(5,5)``
    is two values.

    Parameters
    ----------
    text : str
        ``"name=v1,v2,..."``.

    Returns
    -------
    tuple of (str, list)
        The name and its values.

    Raises
    ------
    GridError
        No ``=``, a name that is not an identifier, no values, an empty or repeated value.

    Examples
    --------
    >>> parse_grid_item("conv1_filter_size=(3,3),(5, 5)")
    ('conv1_filter_size', [(3, 3), (5, 5)])
    """
    if "=" not in text:
        raise GridError(f"--grid takes key=v1,v2,..., got {text!r}")
    key, _, values = text.partition("=")
    key = key.strip()
    if not key or not key.replace("__", "_").replace("_", "a").isalnum():
        raise GridError(f"--grid {text!r}: {key!r} is not a parameter name")
    if not values.strip():
        raise GridError(f"--grid {text!r}: no values after '='")
    parts = [p.strip() for p in split_top_level(values)]
    if any(not p for p in parts):
        raise GridError(f"--grid {text!r}: an empty value (two commas in a row, or a "
                        "trailing comma)")
    parsed = [parse_value(p) for p in parts]
    if len({repr(v) for v in parsed}) != len(parsed):
        raise GridError(f"--grid {text!r}: a value is repeated")
    return key, parsed


def parse_grid(items: Iterable[str] | None) -> dict[str, list]:
    """Several ``key=v1,v2`` strings as scikit-learn's ``param_grid``.

    Parameters
    ----------
    items : iterable of str
        The ``--grid`` arguments, one parameter each.

    Returns
    -------
    dict
        ``{key: [v1, v2], ...}`` in the order given.

    Raises
    ------
    GridError
        A malformed item (see :func:`parse_grid_item`), a key given twice, or no items.

    Examples
    --------
    >>> parse_grid(["max_epochs=50,100", "update=adam,'sgd'"])
    {'max_epochs': [50, 100], 'update': ['adam', 'sgd']}
    """
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


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def _device_refusal(device):
    """Why nets cannot run on ``device`` here, or None (CUDA is not touched to find out)."""
    if device is None or device == "auto":
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        return f"{device!r} is not a device (use cpu, cuda, cuda:1, mps or auto)"
    if dev.type == "cpu":
        return None
    if dev.type == "meta":
        return "the meta device holds no data, so nets cannot train on it"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available here"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"this machine has {torch.cuda.device_count()} CUDA device(s)"
        return None
    try:
        torch.empty(1, device=dev)
    except Exception:  # noqa: BLE001 - torch raises several kinds for a missing backend
        return f"this machine (or this PyTorch build) has no {dev.type} device"
    return None


def _refusal(estimator, params):
    """Why the net refuses ``params``: set on a clone and, for a net, built on the CPU."""
    from sklearn.base import clone

    trial = clone(estimator)
    try:
        trial.set_params(**params)
        if not hasattr(trial, "initialize"):
            return None
        problem = _device_refusal(getattr(trial, "device", None))
        if problem:
            return problem
        if "device" in trial.get_params(deep=False):
            trial.set_params(device="cpu")
        trial.initialize()
        if hasattr(trial, "hyperparameter_values"):
            trial.hyperparameter_values()     # also those the update rule does not take
    except Exception as exc:  # noqa: BLE001 - whatever the net refuses, said in one line
        return _one_line(exc)
    return None


def check_grid(estimator: Any, param_grid: Mapping[str, Sequence]) -> None:
    """Fail fast, in this process, on a parameter the net does not have or a value it refuses.

    Every candidate is set on a clone, so a typo fails here, with a suggestion, instead of
    in every worker. The net, and a clone with each value of each parameter, are also built
    on the CPU (``initialize``; a fraction of a second each), so that a value no fit could
    start with (``update_learning_rate='abc'``, ``max_epochs=-3``, a device this machine
    does not have) is refused before any fit starts.

    Parameters
    ----------
    estimator : scikit-learn estimator
        The unfitted net.
    param_grid : mapping of str to sequence
        ``{name: [values]}``.

    Raises
    ------
    GridError
        An unknown name (with the closest known names), a candidate ``set_params`` refuses,
        a net that cannot be built as it is, or a value it cannot be built with.
    """
    from sklearn.base import clone
    from sklearn.model_selection import ParameterGrid

    names = _settable_names(estimator)
    for key in param_grid:
        try:
            clone(estimator).set_params(**{key: param_grid[key][0]})
        except (ValueError, TypeError) as exc:
            close = close_matches(key, names, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            detail = str(exc).split(".")[0] if "Valid parameters" in str(exc) else str(exc)
            raise GridError(f"--grid {key}: not a parameter of this net ({detail}){hint}") \
                from None
    for params in ParameterGrid(param_grid):
        try:
            clone(estimator).set_params(**params)
        except (ValueError, TypeError) as exc:
            raise GridError(f"--grid: the net refuses {params}: {exc}") from None
    problem = _refusal(estimator, {})
    if problem:
        raise GridError(f"the net cannot be built with its own settings: {problem}")
    for key, values in param_grid.items():
        for value in values:
            problem = _refusal(estimator, {key: value})
            if problem:
                raise GridError(f"--grid {key}={value!r}: {problem}")


# ---------------------------------------------------------------------------------- backends
def _import_distributed():
    """``distributed``, or ImportError when the extra is not installed (a seam for tests)."""
    import dask  # noqa: F401
    import distributed

    return distributed


def dask_available() -> bool:
    """Whether dask and distributed can be imported (the ``distributed`` extra).

    Returns
    -------
    bool
        True when the ``dask`` backend can run.
    """
    try:
        _import_distributed()
    except ImportError:
        return False
    return True


def default_n_workers() -> int:
    """One worker per core this process may use.

    Returns
    -------
    int
        The cores in this process's affinity mask (else ``os.cpu_count()``, else 1).
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _torch_threads_plugin(distributed, n_threads=1):
    """A distributed WorkerPlugin that sets torch's intra-op threads on every worker."""

    class TorchThreads(distributed.WorkerPlugin):
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


# ---------------------------------------------------------------------------------- one fit
def _take(data, index):
    """Rows ``index`` of an array, tensor or pandas object."""
    return data.iloc[index] if hasattr(data, "iloc") else data[index]


def _fit_and_score(task, estimator, X, y, train, test, parameters, scorer, error_score):
    """Fit a clone of the net on ``train`` with ``parameters``, score it on ``test``.

    Runs in a worker. Returns ``(task, result)``; ``result`` has scikit-learn's keys
    (``test_scores``, ``fit_time``, ``score_time``, ``fit_error``), so that a failed fit is
    a score of ``error_score`` and its traceback, as in scikit-learn's searches.
    """
    from sklearn.base import clone

    estimator = estimator.set_params(**clone(parameters, safe=False))
    result = {"fit_error": None, "score_time": 0.0}
    start = time.perf_counter()
    try:
        estimator.fit(_take(X, train), _take(y, train))
    except Exception:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        result.update(test_scores=error_score, fit_time=time.perf_counter() - start,
                      fit_error=traceback.format_exc())
        return task, result
    result["fit_time"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        score = float(scorer(estimator, _take(X, test), _take(y, test)))
    except Exception:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        warnings.warn(f"Scoring failed. The score on this train-test partition for these "
                      f"parameters will be set to {error_score}. Details:\n"
                      f"{traceback.format_exc()}", UserWarning, stacklevel=1)
        score = error_score
    result.update(test_scores=score, score_time=time.perf_counter() - start)
    return task, result


def _fits(estimator, X, y, candidates, splits, scorer, error_score, n_jobs,
          one_thread_client=None) -> Iterator:
    """``(task, meta, result)`` per fit, in the order they finish, on the active backend.

    joblib runs the tasks of a Dask cluster with a single thread in this process (its
    one-job shortcut), where the scattered X and y are unresolved futures; for such a
    cluster (``one_thread_client``) the fits are submitted to it directly instead.
    """
    import joblib
    from sklearn.base import clone

    n_candidates, n_splits = len(candidates), len(splits)
    meta = [(params, (s, n_splits), (c, n_candidates))
            for c, params in enumerate(candidates) for s in range(n_splits)]
    args = ((c * n_splits + s, clone(estimator), X, y, train, test, params, scorer, error_score)
            for c, params in enumerate(candidates) for s, (train, test) in enumerate(splits))
    if one_thread_client is not None:
        distributed = _import_distributed()
        futures = [one_thread_client.submit(_fit_and_score, *a, pure=False) for a in args]
        for future in distributed.as_completed(futures, loop=one_thread_client.loop):
            task, result = future.result()
            yield task, meta[task], result
        return
    jobs = (joblib.delayed(_fit_and_score)(*a) for a in args)
    parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    for task, result in parallel(jobs):
        yield task, meta[task], result


def _cv_results(candidates, n_splits, results):
    """scikit-learn's ``cv_results_`` layout (test scores and times) from the fits' results."""
    def table(key):
        return np.array([r[key] for r in results], dtype=np.float64).reshape(-1, n_splits)

    out = {"params": list(candidates)}
    for key, name in (("fit_time", "fit_time"), ("score_time", "score_time"),
                      ("test_scores", "test_score")):
        array = table(key)
        if name == "test_score":
            for s in range(n_splits):
                out[f"split{s}_test_score"] = array[:, s]
        mean = np.average(array, axis=1)
        out[f"mean_{name}"] = mean
        out[f"std_{name}"] = np.sqrt(np.average((array - mean[:, None]) ** 2, axis=1))
    mean = out["mean_test_score"]
    if not np.isfinite(mean).all():
        warnings.warn(f"One or more of the test scores are non-finite: {mean}", UserWarning,
                      stacklevel=3)
    if np.isnan(mean).all():
        rank = np.ones(len(mean), dtype=np.int32)
    else:  # failed candidates tie with the worst, as in scikit-learn
        filled = np.nan_to_num(mean, nan=np.nanmin(mean) - 1)
        rank = 1 + (filled[None, :] > filled[:, None]).sum(axis=1)  # 'min' ranks, descending
    out["rank_test_score"] = rank.astype(np.int32)
    return out


def _report_failures(results, error_score):
    """Raise when every fit failed; warn (scikit-learn's FitFailedWarning) when some did."""
    from sklearn.exceptions import FitFailedWarning

    errors = [r["fit_error"] for r in results if r["fit_error"] is not None]
    if not errors:
        return
    counts = Counter(str(e).strip().splitlines()[-1] for e in errors)
    summary = "; ".join(f"{n} x {error}" for error, n in counts.most_common())
    if len(errors) == len(results):
        raise SweepError(f"all the {len(results)} fits failed ({summary}); run with "
                         "error_score='raise' to see the traceback")
    warnings.warn(f"{len(errors)} fits failed out of a total of {len(results)}; their score "
                  f"is set to {error_score} ({summary})", FitFailedWarning, stacklevel=3)


# ---------------------------------------------------------------------------------- the sweep
def run_sweep(estimator: Any, X: Any, y: Any, param_grid: Mapping[str, Sequence], *,
              cv: int | Any = 3, scheduler: str | None = None, n_iter: int | None = None,
              backend: str = "auto", client: Any = None, n_workers: int | None = None,
              random_state: int | None = 0, refit: bool = False,
              error_score: float | str = np.nan,
              progress: bool | Callable[[list, list], object] = False,
              log: Callable[[str], object] | None = print,
              scoring: str = "rmse") -> pd.DataFrame:
    """Cross-validate every candidate of ``param_grid``; return one row per candidate.

    Parameters
    ----------
    estimator : NeuralNet
        An unfitted net (a preset); give it a ``random_state`` for reproducible fits.
    X, y : array-like
        The training data (all of it: the folds are cut from it). ``y`` may hold NaN where
        a keypoint is not labelled (``fk.load2d(dropna=False)``).
    param_grid : mapping of str to sequence
        ``{name: [values]}`` with any ``set_params`` name (``callbacks__adjust_lr__start``,
        ``dropout1_p``, ``max_epochs``, ...).
    cv : int or scikit-learn splitter, default 3
        Folds (K-fold, unshuffled: the loaders already shuffle), or anything ``check_cv``
        takes.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:8786``); default ``$FACEKEYPOINTS_SCHEDULER``.
        Without one, Dask runs on an embedded LocalCluster of ``n_workers`` single-threaded
        worker processes.
    n_iter : int, optional
        Sample this many candidates (scikit-learn's ``ParameterSampler``, seeded by
        ``random_state``) instead of trying them all.
    backend : {'auto', 'dask', 'loky', 'sequential'}, default 'auto'
        Dask when installed, else local joblib processes; 'loky' (local joblib processes);
        'sequential' (this process, one fit after another).
    client : distributed.Client, optional
        An open client to use instead of a scheduler address (it is left open).
    n_workers : int, optional
        Processes for loky, or workers of the embedded cluster (default: one per core).
    random_state : int, optional
        Seed of the candidate sampling (``n_iter``).
    refit : bool, default False
        Refit the best candidate on all of X, y (returned in ``attrs['best_estimator']``).
    error_score : float or 'raise', default nan
        The score of a fit that fails, or ``'raise'`` to stop the sweep at the first failure.
    progress : bool or callable, default False
        True for a line per finished fit (and a bar on a terminal), or a callable
        ``f(meta, results)`` as :class:`~facekeypoints.sweep_report.FitProgress`.
    log : callable, optional
        Where notes go (which backend runs the fits); None for silence.
    scoring : {'rmse', 'nme'}, default 'rmse'
        What each fit is scored by (see :func:`get_scorer`).

    Returns
    -------
    pandas.DataFrame
        The parameters, ``mean_rmse_px``, ``std_rmse_px`` (over the folds), ``rank``
        (1 = best), ``mean_fit_time_s``, ``std_fit_time_s`` and ``fold<k>_rmse_px``
        (``mean_nme``, ... with ``scoring='nme'``); ``attrs`` holds ``best_params``,
        ``backend``, ``cv``, ``n_fits``, ``seconds``, ``measure``, ``scoring`` and, with
        ``refit``, ``best_estimator``.

    Raises
    ------
    GridError
        A parameter the net does not have or refuses.
    SweepError
        Dask asked for but missing, a scheduler that does not answer, a net that does not
        pickle, or every fit failed.
    SweepInterrupted
        After Ctrl-C or SIGTERM: the running fits were abandoned.

    Examples
    --------
    >>> results = run_sweep(presets.net1(max_epochs=5, verbose=0), X, y,
    ...                     {"update_learning_rate": [0.01, 0.001]}, cv=2)  # doctest: +SKIP
    >>> results.attrs["best_params"]  # doctest: +SKIP
    {'update_learning_rate': 0.01}
    """
    import joblib
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import ParameterGrid, ParameterSampler, check_cv

    log = log or (lambda *_: None)
    scorer, measure = get_scorer(scoring)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    param_grid = {k: list(v) for k, v in dict(param_grid).items()}
    check_grid(estimator, param_grid)
    X = X if hasattr(X, "__array__") and hasattr(X, "shape") else np.asarray(X)
    y = y if hasattr(y, "__array__") and hasattr(y, "shape") else np.asarray(y)

    if n_iter is None:
        candidates = list(ParameterGrid(param_grid))
    else:
        if int(n_iter) < 1:
            raise ValueError(f"n_iter must be >= 1, got {n_iter}")
        n = min(int(n_iter), len(ParameterGrid(param_grid)))
        candidates = list(ParameterSampler(param_grid, n, random_state=random_state))
    splits = list(check_cv(cv, y, classifier=is_classifier(estimator)).split(X, y))
    n_candidates, n_splits = len(candidates), len(splits)
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
        _shippable(estimator)

    reporter = FitProgress(n_fits, measure=measure) if progress is True else (progress or None)
    results = [None] * n_fits
    finished = []
    counts = f"{n_fits} fits ({n_candidates} candidates x {n_splits} folds)"
    started = time.perf_counter()

    def run(data_X, data_y, n_jobs, one_thread_client=None):
        # A signal raises at once; skorch's fit swallows it in this process (sequential),
        # so it is also looked for after every fit: that fit's score is not kept.
        try:
            for task, meta, result in _fits(estimator, data_X, data_y, candidates, splits,
                                            scorer, error_score, n_jobs, one_thread_client):
                if stop is not None and stop.received:
                    raise SweepInterrupted(finished, n_fits, stop.requested)
                results[task] = result
                finished.append((meta, result))
                if reporter is not None:
                    try:
                        reporter([meta], [result])
                    except Exception as exc:  # noqa: BLE001 - never stall the sweep
                        print(f"sweep progress report failed: {exc!r}", file=sys.stderr)
        except SweepInterrupted:
            raise
        except KeyboardInterrupt as exc:
            raise _interrupted(exc) from None

    def _interrupted(exc):
        signum = stop.requested if stop is not None and stop.received else None
        if signum is None and getattr(exc, "exit_status", None) == 143:
            import signal

            signum = signal.SIGTERM
        return SweepInterrupted(finished, n_fits, signum)

    stack = contextlib.ExitStack()
    stop = stack.enter_context(_stop_signals())
    try:
        if kind == "dask":
            with _dask_client(scheduler, client, n_workers, log) as (dask_client, where):
                distributed = _import_distributed()
                register = (getattr(dask_client, "register_plugin", None)
                            or dask_client.register_worker_plugin)  # distributed < 2023.9
                register(_torch_threads_plugin(distributed, 1))
                log(f"running {counts} on {where}")
                # X and y go to every worker once (fresh keys: never shared with an earlier
                # sweep's data on the same cluster; a time limit instead of a hang); the
                # tasks refer to them by key.
                data = dask_client.scatter([X, y], broadcast=True, hash=False,
                                           timeout=SCATTER_TIMEOUT_S)
                one_thread = sum(dask_client.nthreads().values()) == 1
                with joblib.parallel_config(backend="dask", client=dask_client):
                    run(data[0], data[1], n_jobs=-1,
                        one_thread_client=dask_client if one_thread else None)
                del data
        elif kind == "loky":
            n = n_workers or default_n_workers()
            where = f"local joblib processes (loky, {n} at a time, 1 torch thread each)"
            log(f"running {counts} on {where}")
            with joblib.parallel_config(backend="loky", n_jobs=n, inner_max_num_threads=1):
                run(X, y, n_jobs=n)
        else:
            where = "this process, one fit at a time"
            log(f"running {counts} in {where}")
            with joblib.parallel_config(backend="sequential"), _torch_threads(1):
                run(X, y, n_jobs=1)
    except SweepInterrupted:
        stack.close()
        raise
    except KeyboardInterrupt as exc:    # e.g. another signal while a cluster shuts down
        stack.close()
        raise _interrupted(exc) from None
    except BaseException:
        stack.close()
        raise
    finally:
        if isinstance(reporter, FitProgress):
            reporter.close()

    with stack:
        _report_failures(results, error_score)
        cv_results = _cv_results(candidates, n_splits, results)
        frame = results_frame(cv_results, list(param_grid), measure=measure)
        frame.attrs.update(backend=where, cv=n_splits, n_fits=n_fits,
                           seconds=round(time.perf_counter() - started, 2), scoring=scoring,
                           best_params=best_params(frame, list(param_grid)))
        if refit:
            best = candidates[int(np.argmin(cv_results["rank_test_score"]))]
            with _torch_threads(1) if kind == "sequential" else contextlib.nullcontext():
                frame.attrs["best_estimator"] = clone(estimator).set_params(
                    **clone(best, safe=False)).fit(X, y)
            if stop is not None and stop.received:   # skorch swallowed it in the refit
                raise SweepInterrupted(finished, n_fits, stop.requested)
    return frame
