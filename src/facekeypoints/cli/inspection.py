"""The subcommands that read trained nets and runs: ``evaluate``, ``predict``, ``plot`` and
``compare``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..precision import PRECISIONS
from ._common import (DATA_HELP, DEVICE_HELP, MODEL_HELP, PARTIAL_LABELS_HELP, PRECISION_HELP,
                      CLIError, add_command, check_file, data_name, histories, is_ensemble,
                      label_summary, load_ensemble, load_model, load_training_data,
                      model_columns, one_line, output_path, positive_int)

__all__ = ["cmd_evaluate", "cmd_predict", "cmd_plot", "cmd_compare", "add_evaluate",
           "add_predict", "add_plot", "add_compare", "DEFAULT_PLOT"]

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


def cmd_evaluate(args: argparse.Namespace) -> int:
    """RMSE in pixels of a trained net, overall and per keypoint.

    Evaluates every row of the data that has all the model's keypoints (--split valid: only
    the rows the net held out for validation when it was trained on this file; --split
    train: the others). With --partial-labels, every row that has any of them: each keypoint
    over the faces that have it (the "faces" column), the overall RMSE over every labelled
    value; use it for a net trained with --partial-labels, so that --split picks the same
    folds. A specialist ensemble always evaluates each member on every face that has its
    keypoints. --tta averages each face's prediction with that of its mirror image.

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
    import numpy as np

    from ..reports import keypoint_errors

    if is_ensemble(args.model):
        return _evaluate_ensemble(args)
    net = load_model(args.model, args.device, args.precision)
    if args.tta is None:
        args.tta = bool(net.tta)
    columns = model_columns(net)
    X, y = load_training_data(args.data, cols=None if len(columns) == 30 else columns,
                              dropna=not args.partial_labels)
    if args.split != "all":
        train, valid = net.train_valid_split(X, y)
        if args.split == "valid" and not len(valid[0]):
            raise CLIError("--split valid: the model was trained with eval_size=0")
        X, y = valid if args.split == "valid" else train
    try:
        y_pred = net.predict(X, tta=args.tta)
    except ValueError as exc:       # --tta on a net whose outputs are not known keypoints
        raise CLIError(one_line(exc)) from None
    table = keypoint_errors(y, y_pred, columns)
    if args.json:
        print(json.dumps({
            "model": str(args.model), "data": data_name(args.data), "split": args.split,
            "partial_labels": args.partial_labels, "tta": args.tta,
            "faces": len(X), "labelled_values": int((~np.isnan(y)).sum()),
            "rmse_px": table.loc["overall", "rmse"],
            "keypoints": {k: {**{c: float(v) for c, v in row.items() if c != "n"},
                              "faces": int(row["n"])}
                          for k, row in table.drop(index="overall").iterrows()},
        }, indent=1))
        return 0
    which = (f"{label_summary(y)}; each keypoint over the faces that have it"
             if args.partial_labels else
             f"{len(X)} faces with all {len(columns) // 2} keypoints")
    tta = ", flip TTA" if args.tta else ""
    print(f"model: {args.model}\ndata:  {data_name(args.data)}, {which} (split: "
          f"{args.split}{tta})\n")
    if args.partial_labels:
        rows = [[k, str(int(r.n)), *(_fmt(float(v)) for v in (r.x, r.y, r.rmse))]
                for k, r in table.iterrows()]
        print(_table(rows[:-1], ["keypoint", "faces", "x px", "y px", "RMSE px"],
                     last=rows[-1]))
    else:
        rows = [[k, *(_fmt(float(v)) for v in (r.x, r.y, r.rmse))] for k, r in table.iterrows()]
        print(_table(rows[:-1], ["keypoint", "x px", "y px", "RMSE px"], last=rows[-1]))
    return 0


def _evaluate_ensemble(args):
    ensemble = load_ensemble(args.model, args.device)
    args.tta = bool(args.tta)
    try:
        table = ensemble.keypoint_errors(args.data, split=args.split, tta=args.tta)
    except FileNotFoundError:
        raise CLIError(f"no such data file: {args.data}") from None
    overall = float(table.loc["overall", "rmse"])
    if args.json:
        print(json.dumps({
            "model": str(args.model), "data": data_name(args.data), "split": args.split,
            "faces": int(table.loc["overall", "n"]), "rmse_px": overall,
            "keypoints": {k: {"group": row["group"], "x": float(row["x"]), "y": float(row["y"]),
                              "rmse": float(row["rmse"]), "n": int(row["n"])}
                          for k, row in table.drop(index="overall").iterrows()},
        }, indent=1))
        return 0
    tta = ", flip TTA" if args.tta else ""
    print(f"model: {args.model} (specialist ensemble, {len(ensemble.members)} members)\n"
          f"data:  {data_name(args.data)}; each specialist on the faces that have its "
          f"keypoints (split: {args.split}{tta})\n")
    rows = [[k, r.group, str(int(r.n)), *(_fmt(float(v)) for v in (r.x, r.y, r.rmse))]
            for k, r in table.drop(index="overall").iterrows()]
    print(_table(rows, ["keypoint", "group", "faces", "x px", "y px", "RMSE px"],
                 last=["overall", "", "", "", "", _fmt(overall)]))
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

    ensemble = is_ensemble(args.model)
    if ensemble:
        net = load_ensemble(args.model, args.device)
        columns = net.covered_columns
    else:
        net = load_model(args.model, args.device, args.precision)
        columns = model_columns(net)
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
    return 0


# -- parsers ---------------------------------------------------------------------------------

def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "evaluate", cmd_evaluate, "RMSE in pixels, overall and per keypoint",
                    epilog="example:\n  facekeypoints evaluate runs/net4 --data training.csv "
                           "--split valid")
    p.add_argument("model", metavar="RUN_DIR|MODEL", help=MODEL_HELP)
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
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS,
                   help=PRECISION_HELP + " (default: the one the model trained with)")


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
