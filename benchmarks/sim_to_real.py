"""Do the embedded faces teach real faces? The modern preset measured on MTFL (issue 21).

MTFL (real faces from LFW and AFLW, 5 of Kaggle's 15 keypoints labelled: the eye centres,
the nose tip and the mouth corners; NaN elsewhere) is read from the Kaggle-format CSV given
on the command line; nothing of it is stored in the repository.

1. **Embedded faces only.** The modern preset trains on the embedded faces
   (``fk.load2d()``, the complete faces, at its default budget of 40 epochs), or is read
   from ``--embedded-model``. It is scored on a fixed, seeded evaluation split of MTFL
   (``--eval-size`` faces) and on all of MTFL: RMSE in pixels over the labelled
   coordinates, NME normalised by the inter-pupil distance (the eye centres: MTFL has no
   outer eye corners, and ``by='auto'`` on Kaggle's 30 columns would pick the inter-ocular
   distance and measure no face at all) and the RMSE of each keypoint; beside two baselines:
   every face predicted as the mean keypoints of MTFL's training pool, and as the mean of the
   embedded faces.
2. **Fine-tuning curve.** For each N of ``--sizes`` the first N faces of the pool (a seeded
   permutation, so smaller sets are part of larger ones) train the modern preset from
   scratch and from the embedded-faces net (:func:`facekeypoints.finetune.init_from`, every
   weight loaded), both for ``--epochs``; then, unless ``--no-equal-time``, from scratch for
   as long as pretraining plus fine-tuning took (epochs from the scratch run's measured epoch
   time, at most ``--max-scratch-epochs``; ``--pretrain-seconds`` replaces the measured
   pretraining time, e.g. by a quiet machine's when the cores were shared). The net's own
   validation split is the preset's (``eval_size=0.2``: the first 20% of the N faces
   validate and do not train; change it with ``--valid-fraction``, 0 trains on all N);
   nothing stops early, so the scored net is the last epoch's. Every score is on the
   evaluation split, which no run trains on.
3. A markdown table for the README is printed; ``--out FILE`` writes every number as JSON,
   with the command, CPU, torch version, the generator version and the time of each part.

The pieces are importable for screening generator variants: :func:`load_mtfl`,
:func:`split_mtfl`, :func:`mtfl_metrics`, :func:`mean_keypoints`, :func:`train_embedded`,
:func:`fine_tune_curve` and :func:`markdown_tables`.

    python benchmarks/sim_to_real.py /path/to/mtfl.csv [--sizes 100 300 1000] [--epochs 40]
        [--eval-size 2000] [--seed 0] [--no-equal-time] [--max-scratch-epochs 200]
        [--pretrain-seconds S] [--valid-fraction F] [--verbose]
        [--embedded-model PATH | --save-embedded-model PATH] [--out results.json] [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import facekeypoints as fk

__all__ = ["MTFL_KEYPOINTS", "load_mtfl", "labelled_columns", "split_mtfl", "mean_keypoints",
           "improvement_pct", "equal_time_epochs", "mtfl_metrics", "train_embedded",
           "fine_tune_curve", "markdown_tables", "main"]

#: The keypoints MTFL labels, in Kaggle's names.
MTFL_KEYPOINTS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_left_corner",
                  "mouth_right_corner")

#: What ``--quick`` shrinks the run to (a smoke test, it measures nothing).
QUICK = {"epochs": 1, "sizes": [20], "eval_size": 40, "mtfl_rows": 120, "embedded_faces": 96,
         "max_scratch_epochs": 2}


def load_mtfl(path: str | Path, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read MTFL (or any Kaggle-format CSV with gaps) as ``load2d(path, dropna=False)``.

    Parameters
    ----------
    path : str or Path
        The CSV.
    rows : int, optional
        Keep only the first ``rows`` faces (of ``load2d``'s fixed shuffle).

    Returns
    -------
    X : numpy.ndarray of shape (n, 1, 96, 96)
    y : numpy.ndarray of shape (n, 30)
        Scaled targets, NaN where a keypoint is not labelled.
    """
    X, y = fk.load2d(path, dropna=False)
    if rows is not None:
        X, y = X[:rows], y[:rows]
    return X, y


def labelled_columns(y: np.ndarray) -> list[int]:
    """The indices of the target columns that some face labels.

    Parameters
    ----------
    y : numpy.ndarray of shape (n, k)
        Targets, NaN where unlabelled.

    Returns
    -------
    list of int

    Examples
    --------
    >>> labelled_columns(np.array([[0.1, np.nan, 0.2], [np.nan, np.nan, 0.3]]))
    [0, 2]
    """
    return [int(j) for j in np.flatnonzero(~np.isnan(np.asarray(y, dtype=float)).all(axis=0))]


def split_mtfl(n: int, eval_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed split of ``n`` faces into an evaluation set and a training pool.

    Parameters
    ----------
    n : int
        Faces in all.
    eval_size : int
        Faces in the evaluation set (at least 1, fewer than ``n``).
    seed : int, default 0
        Seeds the permutation.

    Returns
    -------
    eval_rows, pool_rows : numpy.ndarray of int
        Disjoint; together every row. The pool keeps the permutation's order, so its first
        N rows are a random N faces and smaller sets are part of larger ones.

    Examples
    --------
    >>> e, p = split_mtfl(10, 3, seed=0)
    >>> len(e), len(p), sorted(np.concatenate([e, p]).tolist()) == list(range(10))
    (3, 7, True)
    """
    if not 0 < eval_size < n:
        raise ValueError(f"--eval-size must be between 1 and {n - 1} (the data has {n} faces), "
                         f"got {eval_size}")
    order = np.random.default_rng(seed).permutation(n)
    return order[:eval_size], order[eval_size:]


def mean_keypoints(y: np.ndarray) -> np.ndarray:
    """Each target column's mean over the faces that label it (0, the centre, for none).

    Parameters
    ----------
    y : numpy.ndarray of shape (n, k)

    Returns
    -------
    numpy.ndarray of shape (k,)

    Examples
    --------
    >>> mean_keypoints(np.array([[0.2, np.nan, np.nan], [0.4, 0.1, np.nan]])).round(3).tolist()
    [0.3, 0.1, 0.0]
    """
    y = np.asarray(y, dtype=np.float64)
    labelled = ~np.isnan(y)
    counts = labelled.sum(axis=0)
    sums = np.where(labelled, y, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def improvement_pct(baseline: float, better: float) -> float:
    """How much lower ``better`` is than ``baseline``, in percent of ``baseline``.

    Examples
    --------
    >>> improvement_pct(2.0, 1.5)
    25.0
    """
    return 100.0 * (baseline - better) / baseline


def equal_time_epochs(seconds: float, epoch_seconds: float, cap: int) -> tuple[int, bool]:
    """Epochs that fill ``seconds`` at ``epoch_seconds`` each, at least 1, at most ``cap``.

    Returns
    -------
    epochs : int
    capped : bool
        Whether the cap cut it.

    Examples
    --------
    >>> equal_time_epochs(100.0, 0.5, 250), equal_time_epochs(100.0, 0.5, 150)
    ((200, False), (150, True))
    """
    wanted = max(1, int(round(seconds / epoch_seconds)))
    return min(wanted, int(cap)), wanted > cap


def _layout(columns):
    return fk.layout.KAGGLE.subset([fk.KEYPOINT_COLUMNS[j] for j in columns])


def _bias(y_true, y_pred, layout):
    """Each keypoint's mean signed error (predicted - true) in pixels, as [x, y]."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # a keypoint no face has
        mean = np.nanmean(np.where(np.isnan(y_true), np.nan, y_pred - y_true), axis=0)
    mean = mean * layout.pixel_scale
    return {k: [float(mean[2 * i]), float(mean[2 * i + 1])] for i, k in enumerate(layout.names)}


def mtfl_metrics(net_or_predictions: Any, X: np.ndarray | None, y: np.ndarray,
                 columns: list[int] | None = None) -> dict[str, Any]:
    """RMSE in pixels, inter-pupil NME and each keypoint's RMSE over the labelled keypoints.

    Parameters
    ----------
    net_or_predictions : NeuralNet or array-like
        A fitted net (``predict(X)`` is scored, with the net's own test-time augmentation), or
        predictions of shape (n, 30), or one row of 30 (the same for every face: a baseline).
    X : numpy.ndarray or None
        The faces (needed only with a net).
    y : numpy.ndarray of shape (n, 30)
        Scaled targets, NaN where unlabelled.
    columns : list of int, optional
        The columns to score (default: those some face of ``y`` labels).

    Returns
    -------
    dict
        ``faces``, ``rmse_px``, ``nme`` (inter-pupil, mean over the faces that have both eye
        centres; NaN when none has), ``nme_by``, ``faces_without_normalizer``,
        ``keypoint_rmse_px`` ({keypoint: px}), ``keypoint_bias_px`` ({keypoint: [mean
        predicted - true x, y] in px}: a systematic offset, e.g. another labelling
        convention) and
        ``predict_s`` (seconds spent predicting; 0 for given predictions).

    Examples
    --------
    >>> y = np.full((2, 30), np.nan)
    >>> y[:, [0, 1, 2, 3]] = [[-0.25, 0.0, 0.25, 0.0], [-0.25, 0.0, 0.25, 0.0]]
    >>> m = mtfl_metrics(np.nan_to_num(y) + 0.05, None, y)     # every coordinate 2.4 px off
    >>> round(m["rmse_px"], 2), round(m["nme"], 4), m["keypoint_rmse_px"]["left_eye_center"]
    (2.4, 0.1414, 2.4)
    """
    from facekeypoints.metrics import keypoint_rmse_px, normalized_errors
    from facekeypoints.reports import keypoint_errors

    y = np.asarray(y, dtype=np.float64)
    start = time.perf_counter()
    if hasattr(net_or_predictions, "predict"):
        pred = np.asarray(net_or_predictions.predict(X), dtype=np.float64)
        predict_s = time.perf_counter() - start
    else:
        pred, predict_s = np.asarray(net_or_predictions, dtype=np.float64), 0.0
    pred = np.broadcast_to(pred, y.shape)
    cols = labelled_columns(y) if columns is None else list(columns)
    yt, yp = y[:, cols], pred[:, cols]
    layout = _layout(cols)
    by = "inter-pupil" if all(k in layout.names for k in ("left_eye_center",
                                                          "right_eye_center")) else "auto"
    errors = normalized_errors(yt, yp, by=by, layout=layout)
    table = keypoint_errors(yt, yp, columns=layout.columns)
    return {"faces": int(len(y)), "rmse_px": keypoint_rmse_px(yt, yp),
            "nme": errors.nme(), "nme_by": errors.by,
            "faces_without_normalizer": errors.faces_without_normalizer,
            "keypoint_rmse_px": {k: float(table.loc[k, "rmse"]) for k in layout.names},
            "keypoint_bias_px": _bias(yt, yp, layout),
            "predict_s": predict_s}


def _modern(epochs, seed, valid_fraction, verbose=0):
    overrides = {"max_epochs": int(epochs), "verbose": verbose, "random_state": seed}
    if valid_fraction is not None:
        overrides["eval_size"] = valid_fraction or None
    return fk.presets.modern(**overrides)


def _history(net):
    records = fk.persist.history_records(net)
    return {"epochs": len(records),
            "dur_s": [r.get("dur") for r in records],
            "train_loss": [r.get("train_loss") for r in records],
            "valid_rmse_px": [r.get("valid_rmse_px") for r in records]}


def _epoch_seconds(durations):
    """The typical epoch time: the median after the first epoch (which warms up)."""
    values = [d for d in durations if d is not None]
    return float(np.median(values[1:] if len(values) > 1 else values))


def train_embedded(epochs: int = 40, seed: int = 0, faces: int | None = None,
                   valid_fraction: float | None = None, verbose: int = 0,
                   data: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[Any, dict[str, Any]]:
    """Train the modern preset on the embedded faces (``fk.load2d()``, complete faces).

    ``data=(X, y)`` trains on other faces instead (a generator variant being screened).

    Parameters
    ----------
    epochs : int, default 40
    seed : int, default 0
    faces : int, optional
        Use only the first ``faces`` of them (smoke tests).
    valid_fraction : float, optional
        The net's ``eval_size`` (default: the preset's, 0.2).
    verbose : int, default 0
        1 prints the net's epoch table.
    data : (X, y), optional
        The faces to train on (default: ``fk.load2d()``).

    Returns
    -------
    net : NeuralNet
    info : dict
        ``faces``, ``train_s`` (wall clock of ``fit``), ``epoch_s`` and the history.
    """
    X, y = fk.load2d() if data is None else data
    if faces is not None:
        X, y = X[:faces], y[:faces]
    net = _modern(epochs, seed, valid_fraction, verbose)
    start = time.perf_counter()
    net.fit(X, y)
    train_s = time.perf_counter() - start
    hist = _history(net)
    return net, {"faces": int(len(X)), "train_s": train_s,
                 "epoch_s": _epoch_seconds(hist["dur_s"]), "history": hist,
                 "mean_keypoints": mean_keypoints(y)}


def _fit(net, X, y):
    start = time.perf_counter()
    net.fit(X, y)
    return time.perf_counter() - start


def fine_tune_curve(X_pool: np.ndarray, y_pool: np.ndarray, X_eval: np.ndarray,
                    y_eval: np.ndarray, embedded_net: Any, pretrain_s: float,
                    sizes=(100, 300, 1000), epochs: int = 40, seed: int = 0,
                    equal_time: bool = True, max_scratch_epochs: int = 200,
                    valid_fraction: float | None = None, log=print) -> list[dict[str, Any]]:
    """From scratch against from the embedded-faces net, on N real faces each.

    Parameters
    ----------
    X_pool, y_pool : numpy.ndarray
        The training pool; the first N faces train (and validate, see ``valid_fraction``).
    X_eval, y_eval : numpy.ndarray
        The evaluation set every net is scored on.
    embedded_net : NeuralNet
        The net trained on the embedded faces, the start of each fine-tuning.
    pretrain_s : float
        Seconds its training took (the equal-time budget's first part).
    sizes : sequence of int
    epochs : int, default 40
    seed : int, default 0
    equal_time : bool, default True
        Also train from scratch for the time pretraining + fine-tuning took.
    max_scratch_epochs : int, default 200
        The most epochs that equal-time run gets.
    valid_fraction : float, optional
        Each net's ``eval_size`` (default: the preset's, 0.2; 0 trains on all N).
    log : callable
        Called with a line of progress.

    Returns
    -------
    list of dict
        One per N: ``scratch``, ``pretrained`` and (with ``equal_time``)
        ``scratch_equal_time``, each with the metrics of :func:`mtfl_metrics`, ``epochs``,
        ``train_s`` and the history; and the improvements in percent.
    """
    from facekeypoints.finetune import init_from

    rows = []
    for n in sizes:
        X, y = X_pool[:n], y_pool[:n]
        row = {"n": int(n)}
        scratch = _modern(epochs, seed, valid_fraction)
        train_s = _fit(scratch, X, y)
        hist = _history(scratch)
        row["scratch"] = {"epochs": int(epochs), "train_s": train_s, "history": hist,
                          "epoch_s": _epoch_seconds(hist["dur_s"]),
                          "train_faces": int(n - scratch.validation_size(n)),
                          **mtfl_metrics(scratch, X_eval, y_eval)}
        log(f"N={n}: scratch {epochs} epochs {row['scratch']['rmse_px']:.3f} px "
            f"({train_s:.0f} s)")
        pre = _modern(epochs, seed, valid_fraction)
        loaded = init_from(pre, embedded_net)
        train_s = _fit(pre, X, y)
        row["pretrained"] = {"epochs": int(epochs), "train_s": train_s,
                             "weights_loaded": sum(r["loaded"] for r in loaded),
                             "weights": len(loaded), "history": _history(pre),
                             **mtfl_metrics(pre, X_eval, y_eval)}
        log(f"N={n}: pretrained {epochs} epochs {row['pretrained']['rmse_px']:.3f} px "
            f"({train_s:.0f} s)")
        for key in ("rmse_px", "nme"):
            row[f"improvement_{key}_pct"] = improvement_pct(row["scratch"][key],
                                                            row["pretrained"][key])
        if equal_time:
            budget = pretrain_s + train_s
            n_epochs, capped = equal_time_epochs(budget, row["scratch"]["epoch_s"],
                                                 max_scratch_epochs)
            eq = _modern(n_epochs, seed, valid_fraction)
            eq_s = _fit(eq, X, y)
            row["scratch_equal_time"] = {"epochs": n_epochs, "capped": capped,
                                         "budget_s": budget, "train_s": eq_s,
                                         "history": _history(eq),
                                         **mtfl_metrics(eq, X_eval, y_eval)}
            for key in ("rmse_px", "nme"):
                row[f"improvement_equal_time_{key}_pct"] = improvement_pct(
                    row["scratch_equal_time"][key], row["pretrained"][key])
            log(f"N={n}: scratch equal time {n_epochs} epochs"
                f"{' (capped)' if capped else ''} "
                f"{row['scratch_equal_time']['rmse_px']:.3f} px ({eq_s:.0f} s)")
        rows.append(row)
    return rows


def _cell(m):
    return f"{m['rmse_px']:.2f} px / {m['nme']:.3f}"


def markdown_tables(results: dict[str, Any]) -> str:
    """The results as markdown tables (RMSE px / inter-pupil NME on MTFL's 5 keypoints).

    Parameters
    ----------
    results : dict
        What :func:`main` writes to ``--out``.

    Returns
    -------
    str
    """
    ev, n_all = results["eval_faces"], results["mtfl_faces"]
    emb = results["embedded"]
    version = emb.get("generator_version")
    version = "unknown" if version is None else version
    lines = [f"MTFL, 5 keypoints: RMSE px / NME (inter-pupil); evaluation split {ev:,} faces, "
             f"all {n_all:,} faces; net trained on generator version {version}, embedded "
             f"mean of version {results['generator_version']}",
             "",
             f"| predictor | MTFL eval ({ev:,}) | all MTFL ({n_all:,}) |",
             "|---|---:|---:|"]
    trained = (f"read from {Path(emb['model']).name}" if emb.get("model")
               else f"{emb['faces']:,} faces")
    names = {"net": f"modern on the embedded faces ({emb['epochs']} epochs, {trained})",
             "mtfl_mean": "mean keypoints of MTFL's training pool",
             "embedded_mean": "mean keypoints of the embedded faces"}
    for key, label in names.items():
        lines.append(f"| {label} | {_cell(results['eval'][key])} | "
                     f"{_cell(results['all'][key])} |")
    lines += ["", f"Per keypoint, RMSE px on the evaluation split ({ev:,} faces)", "",
              "| keypoint | embedded-faces net | MTFL mean | embedded mean |",
              "|---|---:|---:|---:|"]
    for k in results["eval"]["net"]["keypoint_rmse_px"]:
        lines.append("| " + k.replace("_", " ") + " | " + " | ".join(
            f"{results['eval'][key]['keypoint_rmse_px'][k]:.2f}" for key in names) + " |")
    curve = results.get("curve") or []
    if curve:
        equal = "scratch_equal_time" in curve[0]
        epochs = curve[0]["scratch"]["epochs"]
        head = (f"| real faces N | scratch, {epochs} ep | embedded-faces net + {epochs} ep | "
                "better |")
        rule = "|---:|---:|---:|---:|"
        if equal:
            head += " scratch, equal time | better |"
            rule += "---:|---:|"
        lines += ["", f"Fine-tuning on N MTFL faces ({results['valid_fraction_text']}), "
                  f"scored on the evaluation split: RMSE px / NME; better = lower RMSE of the "
                  "pretrained net, in %", "", head, rule]
        for row in curve:
            line = (f"| {row['n']:,} | {_cell(row['scratch'])} | {_cell(row['pretrained'])} | "
                    f"{row['improvement_rmse_px_pct']:.0f}% |")
            if equal:
                eq = row["scratch_equal_time"]
                line += (f" {_cell(eq)} ({eq['epochs']} ep{', capped' if eq['capped'] else ''})"
                         f" | {row['improvement_equal_time_rmse_px_pct']:.0f}% |")
            lines.append(line)
        if equal:
            lines += ["", f"Equal time: scratch trains for the seconds of embedded pretraining "
                      f"({results['pretrain_s_matched']:.0f} s) plus fine-tuning, at its "
                      f"measured epoch time, at most {results['max_scratch_epochs']} epochs."]
    return "\n".join(lines)


def _strict(value):
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return _strict(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _parser():
    p = argparse.ArgumentParser(
        prog="sim_to_real.py",
        description="Train the modern preset on the embedded faces and measure it on MTFL, "
                    "then the fine-tuning curve: from scratch vs from the embedded-faces net.")
    p.add_argument("mtfl_csv", help="MTFL as a Kaggle-format CSV (5 keypoints, NaN elsewhere)")
    p.add_argument("--epochs", type=int, default=40,
                   help="epochs of every run but the equal-time one (default 40, the "
                        "preset's budget)")
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000],
                   help="numbers of MTFL faces to fine-tune on (default 100 300 1000)")
    p.add_argument("--seed", type=int, default=0, help="seeds the split and the nets")
    p.add_argument("--eval-size", type=int, default=2000,
                   help="MTFL faces held out for evaluation (default 2000)")
    p.add_argument("--no-equal-time", action="store_true",
                   help="skip the scratch runs at equal wall-clock time")
    p.add_argument("--max-scratch-epochs", type=int, default=200,
                   help="the most epochs an equal-time scratch run gets (default 200)")
    p.add_argument("--valid-fraction", type=float, default=None,
                   help="each net's eval_size: the share of its training faces it validates "
                        "on (default: the preset's, 0.2; 0 trains on all of them)")
    p.add_argument("--pretrain-seconds", type=float, metavar="S",
                   help="the pretraining time the equal-time runs match (default: as measured "
                        "here, or summed from --embedded-model's history); give a quiet "
                        "machine's figure when the cores were shared")
    p.add_argument("--embedded-model", metavar="PATH",
                   help="a model file of the embedded-faces net (skips its training; its "
                        "saved history gives the pretraining time)")
    p.add_argument("--save-embedded-model", metavar="PATH",
                   help="write the embedded-faces net to this model file")
    p.add_argument("--out", metavar="FILE", help="write every number as JSON")
    p.add_argument("--verbose", action="store_true",
                   help="print the epoch table of the embedded-faces training")
    p.add_argument("--quick", action="store_true",
                   help="a tiny smoke run (few faces, 1 epoch): measures nothing")
    return p


def _check(parser, args):
    if not Path(args.mtfl_csv).is_file():
        parser.error(f"no MTFL CSV at {args.mtfl_csv} (give the path of MTFL as a Kaggle-format "
                     "CSV, 5 keypoints labelled, NaN elsewhere)")
    if args.embedded_model and not Path(args.embedded_model).exists():
        parser.error(f"--embedded-model: no model file at {args.embedded_model}")
    if args.embedded_model and args.save_embedded_model:
        parser.error("--save-embedded-model writes a net trained here; with --embedded-model "
                     "nothing is trained: give one of them")
    if args.epochs < 1 or args.max_scratch_epochs < 1:
        parser.error("--epochs and --max-scratch-epochs must be at least 1")
    if any(n < 2 for n in args.sizes):
        parser.error(f"--sizes must be at least 2 faces each, got {args.sizes}")
    if args.valid_fraction is not None and not 0 <= args.valid_fraction < 1:
        parser.error(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    if args.pretrain_seconds is not None and not args.pretrain_seconds > 0:
        parser.error(f"--pretrain-seconds must be > 0, got {args.pretrain_seconds}")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        parser.error(f"--out: no folder {Path(args.out).resolve().parent}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.eval_size = QUICK["epochs"], QUICK["eval_size"]
        args.max_scratch_epochs = QUICK["max_scratch_epochs"]
        if args.sizes == parser.get_default("sizes"):
            args.sizes = QUICK["sizes"]
    _check(parser, args)
    import torch

    from facekeypoints.precision import cpu_model

    t0 = time.perf_counter()
    try:
        X, y = load_mtfl(args.mtfl_csv, QUICK["mtfl_rows"] if args.quick else None)
    except (fk.DataFormatError, ValueError, OSError) as exc:
        parser.error(f"cannot read {args.mtfl_csv}: {exc}")
    columns = labelled_columns(y)
    if not columns:
        parser.error(f"{args.mtfl_csv} labels no keypoint")
    try:
        eval_rows, pool_rows = split_mtfl(len(X), args.eval_size, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    if max(args.sizes) > len(pool_rows):
        parser.error(f"--sizes: the pool has {len(pool_rows)} faces ({len(X)} less "
                     f"--eval-size {args.eval_size}), fewer than {max(args.sizes)}")
    load_s = time.perf_counter() - t0
    names = [fk.KEYPOINT_COLUMNS[j] for j in columns]
    print(f"MTFL: {len(X)} faces ({load_s:.1f} s), labelled columns {', '.join(names)}; "
          f"evaluation split {len(eval_rows)}, pool {len(pool_rows)}", flush=True)
    print(f"CPU {cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"generator version {fk.synthetic.GENERATOR_VERSION}", flush=True)

    t0 = time.perf_counter()
    if args.embedded_model:
        try:
            net = fk.load_model(args.embedded_model, device="auto")
        except (fk.ModelFileError, OSError) as exc:
            parser.error(f"--embedded-model: {exc}")
        hist = {"dur_s": [r.get("dur") for r in net.saved_history_]}
        emb_y = fk.load2d()[1]
        embedded = {"model": str(args.embedded_model), "faces": None,
                    "generator_version": None,     # the file does not say which it trained on
                    "epochs": len(net.saved_history_),
                    "train_s": float(sum(d for d in hist["dur_s"] if d is not None)),
                    "history": hist, "mean_keypoints": mean_keypoints(emb_y)}
        embedded["faces"] = int(len(emb_y))
        record = Path(args.embedded_model).with_suffix(".json")   # train_pretrained.py's record
        if record.is_file():
            with contextlib.suppress(ValueError, OSError):
                embedded["generator_version"] = json.loads(record.read_text()).get(
                    "generator_version")
        if not embedded["train_s"] and not args.no_equal_time and not args.pretrain_seconds:
            parser.error(f"--embedded-model: {args.embedded_model} records no epoch times, so "
                         "there is no pretraining time to match; add --no-equal-time")
        print(f"embedded-faces net read from {args.embedded_model}: {embedded['epochs']} "
              f"epochs, {embedded['train_s']:.0f} s of training by its history", flush=True)
    else:
        net, embedded = train_embedded(args.epochs, args.seed,
                                       QUICK["embedded_faces"] if args.quick else None,
                                       args.valid_fraction, args.verbose)
        embedded["epochs"] = args.epochs
        embedded["generator_version"] = fk.synthetic.GENERATOR_VERSION
        last = embedded["history"]["valid_rmse_px"][-1]
        print(f"embedded faces: {embedded['faces']} faces, {args.epochs} epochs in "
              f"{embedded['train_s']:.0f} s ({embedded['epoch_s']:.1f} s an epoch), embedded "
              f"validation {last if last is None else round(last, 3)} px", flush=True)
        if args.save_embedded_model:
            fk.save_model(net, args.save_embedded_model)
            print(f"embedded-faces net written to {args.save_embedded_model}", flush=True)
    embedded_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    pool_mean = mean_keypoints(y[pool_rows])
    results: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in [sys.argv[0], *(
            sys.argv[1:] if argv is None else argv)]),
        "cpu": cpu_model(), "machine": platform.machine(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "python": platform.python_version(),
        "device": str(net.device_),
        "facekeypoints": fk.__version__, "generator_version": fk.synthetic.GENERATOR_VERSION,
        "quick": args.quick, "seed": args.seed, "epochs": args.epochs,
        "mtfl_csv": str(args.mtfl_csv), "mtfl_faces": int(len(X)),
        "eval_faces": int(len(eval_rows)), "pool_faces": int(len(pool_rows)),
        "columns": names, "max_scratch_epochs": args.max_scratch_epochs,
        "valid_fraction": args.valid_fraction,
        "valid_fraction_text": ("the preset's eval_size 0.2: the first 20% of the N validate"
                                if args.valid_fraction is None else
                                f"eval_size {args.valid_fraction}" if args.valid_fraction
                                else "all N train, no validation"),
        "embedded": embedded, "eval": {}, "all": {}}
    start = time.perf_counter()
    pred = net.predict(X)                      # once for both parts (the net's own TTA)
    predict_s = time.perf_counter() - start
    for part, rows in (("eval", eval_rows), ("all", np.arange(len(X)))):
        results[part]["net"] = mtfl_metrics(pred[rows], None, y[rows], columns)
        results[part]["net"]["predict_s"] = predict_s * len(rows) / len(X)
        results[part]["mtfl_mean"] = mtfl_metrics(pool_mean, None, y[rows], columns)
        results[part]["embedded_mean"] = mtfl_metrics(embedded["mean_keypoints"], None,
                                                      y[rows], columns)
    score_s = time.perf_counter() - t0
    print(f"embedded-faces net on MTFL: eval {results['eval']['net']['rmse_px']:.3f} px, "
          f"all {results['all']['net']['rmse_px']:.3f} px ({score_s:.0f} s to score)",
          flush=True)

    pretrain_s = embedded["train_s"] if args.pretrain_seconds is None else args.pretrain_seconds
    results["pretrain_s_matched"] = pretrain_s
    t0 = time.perf_counter()
    results["curve"] = fine_tune_curve(
        X[pool_rows], y[pool_rows], X[eval_rows], y[eval_rows], net, pretrain_s,
        sizes=args.sizes, epochs=args.epochs, seed=args.seed,
        equal_time=not args.no_equal_time, max_scratch_epochs=args.max_scratch_epochs,
        valid_fraction=args.valid_fraction, log=lambda line: print(line, flush=True))
    curve_s = time.perf_counter() - t0
    results["times_s"] = {"load_mtfl": load_s, "embedded": embedded_s,
                          "score_embedded": score_s, "curve": curve_s,
                          "total": load_s + embedded_s + score_s + curve_s}
    print()
    print(markdown_tables(results))
    print(f"\nCPU {results['cpu']}, torch {results['torch']}; times: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in results["times_s"].items()))
    if args.out:
        Path(args.out).write_text(json.dumps(_strict(results), indent=1, allow_nan=False))
        print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
