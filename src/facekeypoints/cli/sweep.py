"""``facekeypoints sweep PRESET --grid KEY=V1,V2 ...``: cross-validate a grid of hyperparameters.

The command's face only: it parses, calls :func:`facekeypoints.sweep.run_sweep`, prints with
:mod:`facekeypoints.sweep_report` and writes ``results.csv``, ``results.png`` and
``sweep.json`` into ``--out`` as one unit (staged, then committed: see
:func:`facekeypoints.runs.staged`). ``--out`` is created, checked and locked before the data
are loaded, so two sweeps into one folder do not both run. The first Ctrl-C or SIGTERM
abandons the running fits on every backend and exits 130 or 143, writing nothing: ``--out``
keeps what it held before. Building the parser imports neither torch nor scikit-learn.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._json import jsonable
from .._literals import parse_value
from ..sweep import (BACKENDS, SCHEDULER_ENV, SCORINGS, GridError, SweepInterrupted,
                     check_grid, parse_grid, run_sweep)
from ..sweep_report import MEASURES, format_results, plot_results
from ._common import (DEFAULT_SEED, check_device, check_settings, device_setting, output_path,
                      positive_int, seed_setting)

__all__ = ["add_arguments", "register_cli", "cmd_sweep"]

#: The command's description in ``--help`` (argparse re-wraps it).
DESCRIPTION = ("Cross-validate a preset over a grid of hyperparameters and report validation "
               "RMSE (px). Fits run on Dask distributed (an embedded local cluster, or "
               "--scheduler ADDRESS), else on local joblib processes. Writes results.csv, "
               "results.png and sweep.json to --out.")


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the sweep command's arguments to a parser.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The ``sweep`` subparser (or any parser).

    Returns
    -------
    argparse.ArgumentParser
        ``p``, with ``func=cmd_sweep`` as its default.
    """
    p.add_argument("preset", help="net1 .. net7 or modern (see train --help)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2", default=[],
                   help="a parameter and its values (Python literals), repeatable: "
                        "--grid callbacks__adjust_lr__start=0.03,0.01 --grid max_epochs=50,100")
    p.add_argument("--cv", type=int, default=3, metavar="K", help="folds (default 3)")
    p.add_argument("--n-iter", type=positive_int, metavar="N",
                   help="try N random candidates of the grid instead of all of them")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"a Dask scheduler, e.g. tcp://10.0.0.5:8786 (default ${SCHEDULER_ENV}; "
                        "without one: a local Dask cluster, one worker per core)")
    p.add_argument("--scoring", choices=list(SCORINGS), default="rmse",
                   help="what each fit is scored by: rmse (validation RMSE in pixels, the "
                        "default) or nme (normalised mean error)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="where fits run (default auto: Dask when installed, else local "
                        "joblib processes)")
    p.add_argument("--max-epochs", type=positive_int, metavar="N",
                   help="epochs per fit (default: the preset's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="a fixed set_params override, e.g. callbacks__adjust_lr__stop=1e-3")
    p.add_argument("--data", help="a Kaggle training.csv (default: the embedded synthetic faces)")
    p.add_argument("--partial-labels", action="store_true",
                   help="use every face with at least one keypoint, NaN marking the missing "
                        "ones; the loss and the validation RMSE leave them out")
    p.add_argument("--out", help="directory for results.csv and results.png "
                                 "(default runs/sweep-PRESET)")
    p.add_argument("--device", help="cpu, cuda ... on the workers (default: CUDA when present)")
    p.add_argument("--log", action="append", metavar="KIND:TARGET",
                   help="record every fit (losses, valid RMSE px, learning rate, momentum, "
                        "duration, settings): tensorboard:DIR (DIR/<out name>/<fit>), "
                        "mlflow:URI (a run per fit under one parent run) or wandb:DIR (W&B "
                        "offline, a run per fit in one group); repeatable; the workers must "
                        "see DIR")
    p.add_argument("--seed", type=int, default=None,
                   help=f"random_state of the nets (default {DEFAULT_SEED}, or --set "
                        "random_state=N)")
    p.set_defaults(func=cmd_sweep)
    return p


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``sweep`` to the ``facekeypoints`` command's subcommands.

    Parameters
    ----------
    subparsers : argparse subparsers action
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``sweep`` subparser.
    """
    p = subparsers.add_parser(
        "sweep", help="cross-validate a grid of hyperparameters, on Dask when available",
        description=DESCRIPTION)
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
    return jsonable(value, fallback=repr)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Cross-validate a preset over a grid and report the validation RMSE in pixels.

    Fits run on Dask distributed (an embedded local cluster, or ``--scheduler ADDRESS``),
    else on local joblib processes. Prints a line per fit, the results table and the best
    parameters; writes ``results.csv``, ``results.png`` and ``sweep.json`` to ``--out``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sweep`` arguments (see :func:`add_arguments`).

    Returns
    -------
    int
        0, or 130 after Ctrl-C and 143 after SIGTERM (nothing written). Problems the user
        can fix raise ``ValueError`` (``GridError``, ``SweepError``) or ``OSError``; the
        ``facekeypoints`` command prints them as one line.
    """
    from .._signals import StopSignals, exit_status

    try:
        with StopSignals():
            return _sweep(args)
    except SweepInterrupted as exc:
        print(f"facekeypoints sweep: stopped: {exc}; no results or best were written, "
              f"{args.out or f'runs/sweep-{args.preset}'} keeps what it held before",
              file=sys.stderr, flush=True)
        return exc.exit_status
    except KeyboardInterrupt as exc:    # before or after the fits: nothing half-written
        what = "terminated" if exit_status(exc) == 143 else "interrupted"
        print(f"facekeypoints sweep: {what}; nothing was written", file=sys.stderr,
              flush=True)
        return exit_status(exc)


def _sweep(args):
    from .. import presets
    from .._rundir import RunInUseError, RunLock, make_location, remove_created

    grid = parse_grid(args.grid)
    sets = _parse_sets(args.set)
    if args.cv < 2:
        raise GridError(f"--cv must be at least 2, got {args.cv}")
    # Everything is checked here, before the data are loaded and any fit starts.
    seed = seed_setting(args, sets)
    overrides = dict(verbose=0, random_state=seed)
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    device = device_setting(args, sets)
    if device is not None:
        overrides["device"] = device
    for value in grid.get("device", ()):
        check_device(value, label=f"--grid device={value}")
    net = presets.get(args.preset, **overrides)
    if sets:
        check_settings(net, sets)
        try:
            net.set_params(**sets)
        except (ValueError, TypeError) as exc:
            raise GridError(f"--set: {str(exc).splitlines()[0]}") from None
    check_grid(net, grid)
    target = Path(args.out or f"runs/sweep-{args.preset}")
    created = [p for p in (target, *target.parents) if not p.exists()]   # deepest first
    out = output_path(target, "--out", directory=True)
    if (out / "model.pt").exists() or (out / "run.json").exists():
        raise GridError(f"--out: {out} holds a training run (model.pt); write the sweep to "
                        "another folder")
    try:
        make_location(out)
        lock = RunLock(out).acquire()
    except (RunInUseError, OSError) as exc:
        remove_created(created)
        raise GridError(f"--out: {' '.join(str(exc).split())}") from None
    try:
        return _run(args, net, grid, sets, seed, out)
    finally:
        lock.release()
        remove_created(created)      # folders made here that are still empty (an interrupt)


def _run(args, net, grid, sets, seed, out):
    """Load the data, sweep, print, and write the results into ``out`` (locked) as one unit."""
    from .._safe_io import atomic_write, save_figure, write_json
    from ..data import load2d
    from ..runs import staged

    X, y = load2d(args.data, dropna=not args.partial_labels)
    n_cand = math.prod(len(v) for v in grid.values())
    labels = (f", {int((~np.isnan(y)).sum())} labelled keypoint values (partial labels)"
              if args.partial_labels else "")
    print(f"sweep {args.preset}: {n_cand} candidates"
          f"{f' ({args.n_iter} sampled)' if args.n_iter else ''} x {args.cv} folds on "
          f"{len(X)} faces ({args.data or 'embedded synthetic faces'}{labels}), "
          f"{net.max_epochs} max epochs", flush=True)
    tracking = _tracking(args, net, X, y, grid, out, seed)
    try:
        frame = run_sweep(net, X, y, grid, cv=args.cv, scheduler=args.scheduler,
                          n_iter=args.n_iter, backend=args.backend, random_state=seed,
                          progress=True, log=lambda line: print(line, flush=True),
                          scoring=args.scoring)
    except BaseException:
        _finish_tracking(tracking, status="KILLED")
        raise
    measure = frame.attrs["measure"]
    keys = list(grid)
    print()
    print(format_results(frame, keys))
    best = frame.attrs["best_params"]
    if best is None:
        print("\nevery fit failed; no best parameters")
    else:
        i = int(np.nanargmin(frame[f"mean_{measure}"].to_numpy(float)))
        mean, std = frame[f"mean_{measure}"].iloc[i], frame[f"std_{measure}"].iloc[i]
        value = (f"valid RMSE {mean:.3f} ± {std:.3f} px" if measure == "rmse_px" else
                 f"{MEASURES[measure][0]} {mean:.4f} ± {std:.4f}")
        print(f"\nbest: {' '.join(f'{k}={v!r}' for k, v in best.items())}  ({value})")
    title = "validation RMSE" if measure == "rmse_px" else "validation NME"
    ax = plot_results(frame, keys, title=f"{args.preset}: {args.cv}-fold {title}")
    info = {"preset": args.preset, "grid": _jsonable(grid), "set": _jsonable(sets),
            "cv": args.cv, "n_iter": args.n_iter, "max_epochs": net.max_epochs,
            "seed": seed, "data": str(args.data or "embedded synthetic faces"),
            "partial_labels": bool(args.partial_labels), "rows": len(X),
            "scoring": args.scoring, "backend": frame.attrs["backend"],
            "seconds": frame.attrs["seconds"], "best_params": _jsonable(best)}
    with staged(out) as stage:       # the three files replace the previous sweep's together
        atomic_write(stage / "results.csv", lambda f: frame.to_csv(f, index=False), text=True)
        save_figure(ax.figure, stage / "results.png", dpi=100)
        write_json(stage / "sweep.json", info, indent=1)
    print(f"wrote {out / 'results.csv'}, {out / 'results.png'}, {out / 'sweep.json'} "
          f"({frame.attrs['seconds']:.0f} s)")
    _finish_tracking(tracking, params={f"best.{k}": v for k, v in (best or {}).items()},
                     metrics={f"best_mean_{measure}": float(np.nanmin(
                         frame[f"mean_{measure}"].to_numpy(float)))} if best else None,
                     artifacts=(out / "results.csv", out / "results.png", out / "sweep.json"))
    return 0


def _tracking(args, net, X, y, grid, out, seed):
    """``--log``: a logger per fit on the net (named by candidate and fold), checked now."""
    if not args.log:
        return []
    from sklearn.model_selection import check_cv

    from ..tracking import SweepFitLabel, run_loggers

    splits = list(check_cv(args.cv).split(X, y))      # run_sweep's folds: K-fold, unshuffled
    label = SweepFitLabel(list(grid), SweepFitLabel.fold_digests(y, splits))
    settings = {"preset": args.preset, "grid": str(_jsonable(grid)), "cv": args.cv,
                "seed": seed, "data": str(args.data or "embedded synthetic faces")}
    loggers, record = run_loggers(args.log, out.name, settings=settings, label=label)
    net.set_params(callbacks=[*(net.callbacks or []), *loggers])
    return record


def _finish_tracking(record, **summary):
    if record:
        from ..tracking import finish_tracking

        finish_tracking(record, **summary)
