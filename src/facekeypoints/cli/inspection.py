"""The subcommands that read trained nets and runs: ``evaluate``, ``predict``, ``plot`` and
``compare``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .._json import dumps
from ..precision import PRECISIONS
from ._common import (DATA_HELP, DEVICE_HELP, MODEL_HELP, PARTIAL_LABELS_HELP, PRECISION_HELP,
                      CLIError, add_command, check_file, data_name, histories, is_ensemble,
                      label_summary, load_ensemble, load_model, load_training_data,
                      model_columns, one_line, output_path, positive_int)

__all__ = ["cmd_evaluate", "cmd_predict", "cmd_plot", "cmd_compare", "add_evaluate",
           "add_predict", "add_plot", "add_compare", "DEFAULT_PLOT", "METRICS", "Predictions",
           "load_predictor", "predict_data", "measures_line"]

#: The picture ``plot`` writes without ``-o``.
DEFAULT_PLOT = "learning_curves.png"



def _table(rows, headers, last=None):
    """A tabulate table; ``last`` (the overall row) goes below a rule of its own."""
    from tabulate import tabulate

    lines = tabulate(rows + ([last] if last else []), headers=headers, floatfmt=".2f",
                     disable_numparse=True).splitlines()
    if last:
        lines.insert(len(lines) - 1, lines[1])
    return "\n".join(line.rstrip() for line in lines)


def _fmt(value):
    return f"{value:.2f}" if isinstance(value, float) else value


#: What ``evaluate --metric`` can show; ``nme-io``, ``nme-ip`` and ``nme-box`` also pick the
#: normaliser of every normalised measure.
METRICS = ("rmse", "nme", "nme-io", "nme-ip", "nme-box", "failure", "auc", "pck")
_NORMALIZER_OF = {"nme-io": "inter-ocular", "nme-ip": "inter-pupil", "nme-box": "box"}
_NORMALIZER_TEXT = {"inter-ocular": "inter-ocular distance (outer eye corners)",
                    "inter-pupil": "inter-pupil distance (eye centres)",
                    "box": "box size (the 96 px image side)"}


class Predictions:
    """True and predicted keypoints of one model on one data file (what ``evaluate``,
    ``compare --ced`` and ``errors`` measure).

    Parameters
    ----------
    X : numpy.ndarray
        The faces.
    y_true, y_pred : numpy.ndarray of shape (n, k)
        Scaled targets (NaN: unlabelled) and predictions.
    columns : list of str
        The k keypoint columns.
    rows : numpy.ndarray of shape (n,) or None
        Each face's data row in the CSV (from 1), when known.
    """

    def __init__(self, X, y_true, y_pred, columns, rows=None):
        self.X, self.y_true, self.y_pred = X, y_true, y_pred
        self.columns, self.rows = list(columns), rows


def load_predictor(path, device=None, precision=None):
    """A net, a specialist ensemble or an ONNX file, ready to predict.

    Parameters
    ----------
    path : str or path-like
        A run directory, a model.pt file, an ensemble directory or an ``.onnx`` file.
    device : str, optional
        The device (nets and ensembles).
    precision : str, optional
        The precision (nets).

    Returns
    -------
    (object, str, list of str)
        The predictor (with ``predict(X, tta=...)``), its kind (``'net'``, ``'ensemble'``
        or ``'onnx'``) and the keypoint columns it predicts.

    Raises
    ------
    CLIError
        For a path that is none of them.
    """
    if str(path).lower().endswith(".onnx"):
        return _load_onnx(path)
    if is_ensemble(path):
        ensemble = load_ensemble(path, device)
        return ensemble, "ensemble", list(ensemble.covered_columns)
    net = load_model(path, device, precision)
    return net, "net", model_columns(net)


def _load_onnx(path):
    """An ONNX model through the package's ONNX loader (the export module), when installed."""
    import importlib

    check_file(path, "ONNX file")
    try:    # the export module is optional; imported by name so a missing one is one line
        export = importlib.import_module(__package__.rsplit(".", 1)[0] + ".export")
    except ImportError as exc:
        raise CLIError(f"{path}: reading ONNX files needs facekeypoints' ONNX support "
                       f"({one_line(exc)}); pip install 'facekeypoints[onnx]'") from None
    loader = getattr(export, "load_onnx", None)
    if loader is None:
        raise CLIError(f"{path}: this facekeypoints has no ONNX loader (export.load_onnx)")
    model = loader(path)
    columns = list(getattr(model, "columns", None) or getattr(model, "columns_", None) or ())
    if not columns:
        from ..data import KEYPOINT_COLUMNS

        columns = list(KEYPOINT_COLUMNS)
    return model, "onnx", columns


def _predict(model, X, tta):
    try:
        return np.asarray(model.predict(X, tta=tta) if tta else model.predict(X),
                          dtype=np.float64)
    except ValueError as exc:       # --tta on a net whose outputs are not known keypoints
        raise CLIError(one_line(exc)) from None


def predict_data(model, kind, columns, data, split="all", tta=False, partial_labels=False):
    """Predict the faces of a training CSV with any predictor :func:`load_predictor` gives.

    Parameters
    ----------
    model, kind, columns
        What :func:`load_predictor` returned.
    data : str or None
        The CSV (None: the embedded synthetic faces).
    split : {'all', 'valid', 'train'}, default 'all'
        The rows: all, or a net's validation / training fold on this file.
    tta : bool, default False
        Flip test-time augmentation.
    partial_labels : bool, default False
        Keep faces with some of the keypoints (NaN for the others). An ensemble always does:
        each keypoint over the faces that have it.

    Returns
    -------
    Predictions
        The faces, targets and predictions.

    Raises
    ------
    CLIError
        For a split an ensemble or ONNX file cannot make, and for bad input.
    """
    from ..data import KEYPOINT_COLUMNS

    dropna = not (partial_labels or kind == "ensemble")
    X, y = load_training_data(data, cols=None if len(columns) == 30 else columns,
                              dropna=dropna)
    if split != "all":
        if kind != "net":
            raise CLIError(f"--split {split}: only a net knows its validation fold; a "
                           f"{'specialist ensemble' if kind == 'ensemble' else 'ONNX file'} "
                           "evaluates every face (--split all)")
        train, valid = model.train_valid_split(X, y)
        if split == "valid" and not len(valid[0]):
            raise CLIError("--split valid: the model was trained with eval_size=0")
        X, y = valid if split == "valid" else train
    y_pred = _predict(model, X, tta)
    if kind == "ensemble" and y_pred.shape[1] != len(columns):
        y_pred = y_pred[:, [KEYPOINT_COLUMNS.index(c) for c in columns]]
    return Predictions(X, np.asarray(y, dtype=np.float64), y_pred, columns)


def _normalizer(args):
    chosen = {_NORMALIZER_OF[m] for m in args.metric if m in _NORMALIZER_OF}
    if len(chosen) > 1:
        raise CLIError(f"--metric: pick one normaliser, not {' and '.join(sorted(chosen))}")
    return chosen.pop() if chosen else "auto"


def _shown(args):
    shown = {"nme" if m in _NORMALIZER_OF else m for m in args.metric}
    return [m for m in ("rmse", "nme", "failure", "auc", "pck") if m in shown]


def _measures(pred, args):
    """The per-keypoint table and the overall measures, or CLIError when none can be made."""
    from ..reports import keypoint_measures

    try:
        return keypoint_measures(pred.y_true, pred.y_pred, pred.columns, by=_normalizer(args),
                                 threshold=args.threshold, pck_threshold=args.pck_threshold)
    except ValueError as exc:       # e.g. --metric nme-io for a net without eye corners
        raise CLIError(f"--metric: {one_line(exc)}") from None


def _json_measures(summary, shown):
    out = {}
    if any(m in shown for m in ("nme", "failure", "auc", "pck")):
        out.update({"normalizer": summary["normalizer"],
                    "faces_measured": summary["faces_measured"],
                    "faces_without_normalizer": summary["faces_without_normalizer"]})
    if "nme" in shown:
        out["nme"] = summary["nme"]
    if "failure" in shown or "auc" in shown:
        out["threshold"] = summary["threshold"]
    if "failure" in shown:
        out["failure_rate"] = summary["failure_rate"]
    if "auc" in shown:
        out["auc"] = summary["auc"]
    if "pck" in shown:
        out.update({"pck": summary["pck"], "pck_threshold": summary["pck_threshold"]})
    return out


def measures_line(summary, shown):
    """One line of the normalised measures: ``NME 0.0712 (inter-ocular ...; 18 faces) ...``.

    Parameters
    ----------
    summary : dict
        What :func:`facekeypoints.reports.keypoint_measures` returned second.
    shown : sequence of str
        Which of ``nme``, ``failure``, ``auc``, ``pck`` to include.

    Returns
    -------
    str
        The line ('' when none is shown).
    """
    def num(v, fmt):
        return "n/a" if v is None or not np.isfinite(v) else format(v, fmt)

    parts = []
    t = f"{summary['threshold']:g}"
    if "nme" in shown:
        parts.append(f"NME {num(summary['nme'], '.4f')}")
    if "failure" in shown:
        parts.append(f"failure rate@{t} {num(summary['failure_rate'], '.1%')}")
    if "auc" in shown:
        parts.append(f"AUC@{t} {num(summary['auc'], '.4f')}")
    if "pck" in shown:
        parts.append(f"PCK@{summary['pck_threshold']:g} {num(summary['pck'], '.1%')}")
    if not parts:
        return ""
    note = (f"normalised by the {_NORMALIZER_TEXT[summary['normalizer']]}; "
            f"{summary['faces_measured']} faces")
    if summary["faces_without_normalizer"]:
        note += (f", {summary['faces_without_normalizer']} left out for lack of the "
                 "normaliser's keypoints")
    return ", ".join(parts) + f"\n  ({note})"


def cmd_evaluate(args: argparse.Namespace) -> int:
    """RMSE in pixels of a trained net beside the face-alignment measures, overall and per
    keypoint.

    Evaluates every row of the data that has all the model's keypoints (--split valid: only
    the rows the net held out for validation when it was trained on this file; --split
    train: the others). With --partial-labels, every row that has any of them: each keypoint
    over the faces that have it (the "faces" column), the overall RMSE over every labelled
    value; use it for a net trained with --partial-labels, so that --split picks the same
    folds. A specialist ensemble always evaluates each member on every face that has its
    keypoints. --tta averages each face's prediction with that of its mirror image.

    Beside RMSE: NME (mean point-to-point error divided by the inter-ocular distance, outer
    eye corners, where the model predicts them, else the inter-pupil distance, else the 96 px
    box), the failure rate (share of faces with NME above --threshold), AUC@--threshold
    (area under the cumulative error distribution) and PCK (share of keypoints within
    --pck-threshold of the normaliser). --metric picks which to show. A model file, run
    directory, specialist ensemble or .onnx file (where ONNX support is installed) alike.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_evaluate` defines).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    """
    _normalizer(args)                   # a bad --metric before anything is read
    model, kind, columns = load_predictor(args.model, args.device, args.precision)
    if kind == "ensemble":
        return _evaluate_ensemble(args, model, columns)
    if args.tta is None:
        args.tta = bool(getattr(model, "tta", False))
    pred = predict_data(model, kind, columns, args.data, args.split, args.tta,
                        args.partial_labels)
    if not args.partial_labels and args.split == "all":
        _suggest_partial_labels(args.data, columns, len(pred.y_true))
    table, summary = _measures(pred, args)
    shown = _shown(args)
    y = pred.y_true
    if args.json:
        keypoints = {}
        for k, row in table.drop(index="overall").iterrows():
            entry = {c: float(row[c]) for c in ("x", "y", "rmse")}
            entry["faces"] = int(row["n"])
            entry.update({c: float(row[c]) for c in ("nme", "pck") if c in shown})
            keypoints[k] = entry
        print(dumps({
            "model": str(args.model), "data": data_name(args.data), "split": args.split,
            "partial_labels": args.partial_labels, "tta": args.tta,
            "faces": len(y), "labelled_values": int((~np.isnan(y)).sum()),
            "rmse_px": table.loc["overall", "rmse"], **_json_measures(summary, shown),
            "keypoints": keypoints,
        }, indent=1))
        return 0
    which = (f"{label_summary(y)}; each keypoint over the faces that have it"
             if args.partial_labels else
             f"{len(y)} faces with all {len(columns) // 2} keypoints")
    tta = ", flip TTA" if args.tta else ""
    onnx = " (ONNX)" if kind == "onnx" else ""
    print(f"model: {args.model}{onnx}\ndata:  {data_name(args.data)}, {which} (split: "
          f"{args.split}{tta})\n")
    _print_table(table, summary, shown, faces=args.partial_labels)
    return 0


def _suggest_partial_labels(data, columns, complete):
    """One line on stderr when few faces have all the model's keypoints (under 100) and
    --partial-labels would at least double the faces evaluated."""
    from ..data import KEYPOINT_COLUMNS, read_csv

    if complete >= 100:
        return
    if data is None:
        from ..synthetic import ensure_default_dataset

        data = ensure_default_dataset()["training"]
    keypoints = read_csv(data).keypoints[:, [KEYPOINT_COLUMNS.index(c) for c in columns]]
    some = int((~np.isnan(keypoints)).any(axis=1).sum())
    if some >= 2 * max(complete, 1):
        print(f"note: only {complete} faces have all {len(columns) // 2} keypoints; "
              f"--partial-labels evaluates each keypoint over the faces that have it ({some} "
              "faces have some)", file=sys.stderr)


def _print_table(table, summary, shown, faces=False, group=None):
    headers, cells = ["keypoint"], []
    if group is not None:
        headers.append("group")
    if faces:
        headers.append("faces")
    if "nme" in shown:
        headers.append("NME")
    if "pck" in shown:
        headers.append(f"PCK@{summary['pck_threshold']:g}")
    if "rmse" in shown:            # last: scripts read the RMSE from the last column
        headers += ["x px", "y px", "RMSE px"]
    for k, r in table.iterrows():
        row = [k]
        if group is not None:
            row.append(group.get(k, ""))
        if faces:
            row.append(str(int(r.n)))
        if "nme" in shown:
            row.append(_num(r.nme, ".4f"))
        if "pck" in shown:
            row.append(_num(r.pck, ".1%"))
        if "rmse" in shown:
            row += ["" if not np.isfinite(v) else _fmt(float(v)) for v in (r.x, r.y, r.rmse)]
        cells.append(row)
    if len(headers) > 1 + faces + (group is not None):
        print(_table(cells[:-1], headers, last=cells[-1]))
    line = measures_line(summary, shown)
    if line:
        print(("\n" if len(headers) > 1 else "") + line)


def _num(value, fmt):
    return "-" if not np.isfinite(value) else format(float(value), fmt)


def _evaluate_ensemble(args, ensemble, columns):
    args.tta = bool(args.tta)
    try:
        table = ensemble.keypoint_errors(args.data, split=args.split, tta=args.tta)
    except FileNotFoundError:
        raise CLIError(f"no such data file: {args.data}") from None
    overall = float(table.loc["overall", "rmse"])
    shown = _shown(args)
    summary = None
    if args.split == "all" and any(m != "rmse" for m in shown):
        pred = predict_data(ensemble, "ensemble", columns, args.data, "all", args.tta)
        measured, summary = _measures(pred, args)
        table = table.join(measured[["nme", "pck"]], how="left")
    if args.json:
        keypoints = {}
        for k, row in table.drop(index="overall").iterrows():
            entry = {"group": row["group"], "x": float(row["x"]), "y": float(row["y"]),
                     "rmse": float(row["rmse"]), "n": int(row["n"])}
            if summary is not None:
                entry.update({c: float(row[c]) for c in ("nme", "pck") if c in shown})
            keypoints[k] = entry
        print(dumps({
            "model": str(args.model), "data": data_name(args.data), "split": args.split,
            "faces": int(table.loc["overall", "n"]), "rmse_px": overall,
            **(_json_measures(summary, shown) if summary is not None else {}),
            "keypoints": keypoints,
        }, indent=1))
        return 0
    tta = ", flip TTA" if args.tta else ""
    print(f"model: {args.model} (specialist ensemble, {len(ensemble.members)} members)\n"
          f"data:  {data_name(args.data)}; each specialist on the faces that have its "
          f"keypoints (split: {args.split}{tta})\n")
    groups = table["group"].to_dict()
    groups["overall"] = ""
    if summary is None:
        shown = [m for m in shown if m == "rmse"]
        summary = {"pck_threshold": args.pck_threshold}
        if args.split != "all":
            print("(NME, failure rate, AUC and PCK need --split all: the members' validation "
                  "folds differ)\n")
    table.loc["overall", ["x", "y"]] = float("nan")
    _print_table(table, summary, shown, faces=True, group=groups)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the keypoints of a test.csv and write a Kaggle submission (RowId,Location).

    --tta averages each face's prediction with the un-mirrored prediction of its mirror
    image (flip test-time augmentation; twice the prediction time).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_predict` defines).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    """
    import pandas as pd

    from ..data import KEYPOINT_COLUMNS, load2d, read_csv, write_submission

    net, kind, columns = load_predictor(args.model, args.device, args.precision)  # .onnx too
    ensemble = kind == "ensemble"
    args.tta = bool(getattr(net, "tta", False)) if args.tta is None else args.tta
    test, lookup = args.test, args.lookup
    if test is None:
        from ..synthetic import ensure_default_dataset

        paths = ensure_default_dataset()
        test, lookup = paths["test"], lookup or paths["lookup"]
    if lookup is None:
        lookup = Path(test).with_name("IdLookupTable.csv")
        if not lookup.exists():
            raise CLIError(f"no --lookup given and no IdLookupTable.csv next to {test}")
    for what, path in (("test file", test), ("lookup table", lookup)):
        check_file(path, what)
    output_path(args.output, "-o")
    ids = read_csv(test, test=True).image_ids
    X, _ = load2d(test, test=True)
    try:
        y_pred = net.predict(X, tta=args.tta)
    except ValueError as exc:       # --tta on a net whose outputs are not known keypoints
        raise CLIError(one_line(exc)) from None
    if ensemble and len(columns) != 30:
        y_pred = y_pred[:, [KEYPOINT_COLUMNS.index(c) for c in columns]]
    predictions = pd.DataFrame(y_pred, columns=columns, index=ids) if len(columns) != 30 else y_pred
    out = write_submission(predictions, lookup, args.output,
                           image_ids=None if len(columns) != 30 else ids)
    # one row per lookup row (write_submission checks it); the output may be a FIFO or stdout,
    # which cannot be read back
    n_rows = len(pd.read_csv(lookup, usecols=["RowId"]))
    to_stdout = str(args.output) == "-"
    report = sys.stderr if to_stdout else sys.stdout   # keep the CSV on stdout clean
    print(f"predicted {len(X)} faces from {test} with {args.model}"
          f"{' (flip TTA)' if args.tta else ''}", file=report)
    print(f"wrote {'the submission to stdout' if to_stdout else out} ({n_rows} rows of "
          "RowId,Location, pixels clipped to [0, 96])", file=report)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Learning curves of one or several runs on one figure: train (dashed) and valid
    (solid) RMSE in pixels on a log axis, with each run's learning rate and momentum on
    axes to the right.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_plot` defines).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    """
    from .._safe_io import save_figure
    from ..plots import plot_learning_curves

    found = histories(args.runs)
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise CLIError(f"-o {out}: use a .png, .pdf, .svg or .jpg file name")
    output_path(out, "-o")
    title = args.title or ("learning curves: " + ", ".join(found))
    ax = plot_learning_curves(found, show_schedule=not args.no_schedule, title=title)
    save_figure(ax.figure, out, dpi=args.dpi, bbox_inches="tight")
    print(f"wrote {out} ({len(found)} run{'s' if len(found) > 1 else ''}: "
          f"{', '.join(found)})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The recipe's table for several runs side by side (epoch | train | valid | train/val
    per run at chosen epochs), then each run's best and last valid RMSE in pixels.

    With --ced PNG, also predicts --data with every run and draws their cumulative error
    distribution curves (share of faces with NME at most x) in one picture, each labelled
    with its NME and AUC@--threshold.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_compare` defines).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    """
    from ..reports import read_run_info, recipe_table, run_labels

    found = histories(args.runs)
    if args.ced is not None:
        _check_picture(args.ced, "--ced")
    infos = []
    for label, p in zip(run_labels(args.runs), args.runs):
        try:
            infos.append((label, read_run_info(p)))
        except ValueError as exc:      # a malformed run.json; the message names it
            raise CLIError(str(exc)) from None
    print(recipe_table(found, epochs=args.epochs))
    if any(info for _, info in infos):
        print()
        for label, info in infos:
            if info:
                given = info.get("set")
                sets = "".join(f" {k}={v}" for k, v in
                               (given.items() if isinstance(given, dict) else ()))
                epochs = info.get("epochs_run", info.get("max_epochs", "?"))
                print(f"{label}: {info.get('preset', '?')}{sets}; {epochs} epochs on "
                      f"{info.get('rows', '?')} faces ({info.get('data', '?')}) in "
                      f"{info.get('seconds', '?')} s on {info.get('device', '?')}")
    if args.ced is not None:
        _draw_ced(args, list(found))
    return 0


def _check_picture(path, option):
    out = Path(path)
    if out.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise CLIError(f"{option} {out}: use a .png, .pdf, .svg or .jpg file name")
    output_path(out, option)
    return out


def _draw_ced(args, labels):
    """CED curves of every run on --data, in one picture at --ced."""
    from .._safe_io import save_figure
    from ..metrics import normalized_errors
    from ..plots import plot_ced

    errors = {}
    for label, path in zip(labels, args.runs):
        model, kind, columns = load_predictor(path, args.device)
        tta = bool(getattr(model, "tta", False))
        pred = predict_data(model, kind, columns, args.data, args.split, tta)
        try:
            errors[label] = normalized_errors(pred.y_true, pred.y_pred, by=args.normalize,
                                              layout=pred.columns)
        except ValueError as exc:
            raise CLIError(f"--normalize: {path}: {one_line(exc)}") from None
    # the whole curve: to the NME below which 99 % of every run's faces lie (0.1 at least)
    worst = max(float(np.quantile(e.per_face()[np.isfinite(e.per_face())], 0.99))
                if e.faces_measured else 0.0 for e in errors.values())
    limit = max(args.threshold, 0.1, min(1.0, np.ceil(worst * 20) / 20))
    ax = plot_ced(errors, max_error=limit, threshold=args.threshold,
                  title=f"CED on {data_name(args.data)} (split: {args.split})")
    save_figure(ax.figure, Path(args.ced), dpi=110, bbox_inches="tight")
    print(f"\nwrote {args.ced} (CED curves of {len(errors)} run{'s' * (len(errors) > 1)} on "
          f"{data_name(args.data)})")
    for label, e in errors.items():
        lost = (f", {e.faces_without_normalizer} faces without the normaliser left out"
                if e.faces_without_normalizer else "")
        print(f"{label}: NME {e.nme():.4f} ({e.by}), failure rate@{args.threshold:g} "
              f"{e.failure_rate(args.threshold):.1%}, AUC@{args.threshold:g} "
              f"{e.auc(args.threshold):.4f} over {e.faces_measured} faces{lost}")


# -- parsers ---------------------------------------------------------------------------------

def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "evaluate", cmd_evaluate,
                    "RMSE in pixels, NME, failure rate, AUC and PCK, overall and per keypoint",
                    epilog="example:\n  facekeypoints evaluate runs/net4 --data training.csv "
                           "--split valid")
    p.add_argument("model", metavar="RUN_DIR|MODEL", help=MODEL_HELP + ", or an .onnx file")
    p.add_argument("--data", metavar="CSV", help=DATA_HELP)
    p.add_argument("--split", choices=("all", "valid", "train"), default="all",
                   help="which rows: all (default), or the validation / training fold the "
                        "net used when trained on this file")
    p.add_argument("--partial-labels", action="store_true",
                   help=PARTIAL_LABELS_HELP + "; each keypoint is evaluated over the faces that "
                        "have it (as a net trained with --partial-labels splits its data)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation: average each face's prediction with "
                        "the un-mirrored prediction of its mirror image (default: the "
                        "model's own setting, off unless it was trained with tta=True)")
    add_measure_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS,
                   help=PRECISION_HELP + " (default: the one the model trained with)")


def fraction(text):
    """An argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1] (e.g. 0.08 or 0.1)")
    return value


def add_measure_options(p: argparse.ArgumentParser, metric: bool = True) -> None:
    """The options of the normalised measures: ``--metric``, ``--threshold``,
    ``--pck-threshold``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    metric : bool, default True
        Whether to add ``--metric`` (else ``--normalize``).
    """
    if metric:
        p.add_argument("--metric", nargs="+", choices=METRICS, metavar="M",
                       default=["rmse", "nme", "failure", "auc", "pck"],
                       help="what to show: rmse (pixels), nme (normalised mean error: "
                            "inter-ocular where the outer eye corners are predicted, else "
                            "inter-pupil, else the box), nme-io / nme-ip / nme-box (NME with "
                            "that normaliser, which the others then use too), failure "
                            "(failure rate), auc (area under the CED curve), pck (default: "
                            "all but the nme-* variants)")
    else:
        p.add_argument("--normalize", choices=("auto", "inter-ocular", "inter-pupil", "box"),
                       default="auto",
                       help="NME normaliser (default auto: inter-ocular where the outer eye "
                            "corners are predicted, else inter-pupil, else the 96 px box)")
    p.add_argument("--threshold", type=fraction, default=0.1, metavar="T",
                   help="NME threshold of the failure rate and the AUC (default 0.1; 300W "
                        "papers also use 0.08)")
    p.add_argument("--pck-threshold", type=fraction, default=0.1, metavar="T",
                   help="PCK counts keypoints within T normalisers (default 0.1)")


def add_predict(sub: argparse._SubParsersAction) -> None:
    """Register the ``predict`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "predict", cmd_predict,
                    "predict a test.csv and write a Kaggle submission",
                    epilog="example:\n  facekeypoints predict runs/net4 --test test.csv "
                           "--lookup IdLookupTable.csv -o submission.csv")
    p.add_argument("model", metavar="RUN_DIR|MODEL", help=MODEL_HELP)
    p.add_argument("--test", metavar="CSV",
                   help="Kaggle test.csv (ImageId,Image); default: the embedded synthetic one")
    p.add_argument("--lookup", metavar="CSV",
                   help="IdLookupTable.csv (default: the one next to --test)")
    p.add_argument("-o", "--output", default="submission.csv", metavar="CSV",
                   help="submission to write (default: submission.csv)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation: average each face's prediction with "
                        "the un-mirrored prediction of its mirror image (default: the "
                        "model's own setting, off unless it was trained with tta=True)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS,
                   help=PRECISION_HELP + " (default: the one the model trained with)")


def add_plot(sub: argparse._SubParsersAction) -> None:
    """Register the ``plot`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "plot", cmd_plot, "learning curves of one or several runs on one figure",
                    epilog="example:\n  facekeypoints plot runs/net3 runs/net4 runs/net5 "
                           "-o curves.png")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or model files")
    p.add_argument("-o", "--output", default=DEFAULT_PLOT, metavar="PNG",
                   help=f"picture to write (default: {DEFAULT_PLOT} in the current directory)")
    p.add_argument("--title", help="figure title")
    p.add_argument("--no-schedule", action="store_true",
                   help="leave out the learning-rate and momentum axes")
    p.add_argument("--dpi", type=positive_int, default=110, help="resolution (default 110)")


def add_compare(sub: argparse._SubParsersAction) -> None:
    """Register the ``compare`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "compare", cmd_compare,
                    "the recipe's table for several runs side by side",
                    epilog="example:\n  facekeypoints compare runs/net4 runs/net5 --epochs 50 "
                           "100 250 500 1000")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or model files")
    p.add_argument("--epochs", nargs="+", type=positive_int, metavar="E",
                   help="epochs to show (default: about six, evenly spread to the last)")
    p.add_argument("--ced", metavar="PNG",
                   help="also draw the runs' cumulative error distribution (CED) curves on "
                        "--data into this picture")
    p.add_argument("--data", metavar="CSV", help="for --ced: " + DATA_HELP)
    p.add_argument("--split", choices=("all", "valid", "train"), default="all",
                   help="for --ced: all rows (default) or each net's validation / training "
                        "fold on --data")
    add_measure_options(p, metric=False)
    p.add_argument("--device", help=DEVICE_HELP)
