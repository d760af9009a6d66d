"""The ``errors`` subcommand: the faces a model gets most wrong, as a table and pictures."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .._json import dumps
from ._common import (DATA_HELP, DEVICE_HELP, MODEL_HELP, CLIError, add_command, data_name,
                      one_line, positive_int)
from .inspection import _check_picture, _predict, load_predictor

__all__ = ["cmd_errors", "add_errors", "read_faces"]


def read_faces(data, columns):
    """Every face of a training CSV that has any of ``columns``, in the file's order.

    Parameters
    ----------
    data : str or None
        The CSV (None: the embedded synthetic faces).
    columns : sequence of str
        The keypoint columns a model predicts.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The images ``(n, 1, 96, 96)`` in [0, 1], the scaled targets ``(n, k)`` (NaN where
        unlabelled) and each face's data row in the CSV (1 = the first row after the header).

    Raises
    ------
    CLIError
        For a missing file or one without any of the columns.
    """
    from ..data import KEYPOINT_COLUMNS, read_csv
    from ..layout import KAGGLE

    if data is None:
        from ..synthetic import ensure_default_dataset

        data = ensure_default_dataset()["training"]
    try:
        parsed = read_csv(data)
    except FileNotFoundError:
        raise CLIError(f"no such data file: {data}") from None
    kp = parsed.keypoints[:, [KEYPOINT_COLUMNS.index(c) for c in columns]]
    keep = ~np.isnan(kp).all(axis=1)
    if not keep.any():
        raise CLIError(f"{data}: no row has any of the model's keypoints")
    X = (parsed.images[keep].astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 96, 96)
    return X, KAGGLE.from_pixels(kp[keep]), np.flatnonzero(keep) + 1


def cmd_errors(args: argparse.Namespace) -> int:
    """The faces a model gets most wrong: row number in the CSV, NME, RMSE and the worst
    keypoint, the worst first.

    Every row of --data with any of the model's keypoints is predicted (unlabelled keypoints
    are left out of a face's error). NME divides the mean point-to-point error by the
    inter-ocular distance (outer eye corners) where the model predicts them, else by the
    inter-pupil distance, else by the 96 px box (--normalize picks); faces without the
    normaliser's keypoints are listed last, by RMSE. --draw pictures the worst faces with the
    labelled keypoints (left) and the predicted ones (right) side by side, so that wrong
    labels and hard faces can be seen; --keypoint-errors draws the mean face with a circle
    per keypoint sized by its RMSE. A face whose labels look wrong is worth checking in the
    CSV (the Kaggle runner-up corrected 56 such labels in training.csv).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_errors` defines).

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
    from ..reports import face_errors, face_errors_table

    pictures = [_check_picture(p, o) for p, o in ((args.draw, "--draw"),
                                                 (args.keypoint_errors, "--keypoint-errors"))
                if p is not None]
    model, kind, columns = load_predictor(args.model, args.device)
    tta = bool(getattr(model, "tta", False)) if args.tta is None else args.tta
    X, y, rows = read_faces(args.data, columns)
    y_pred = _predict(model, X, tta)
    if y_pred.shape[1] != len(columns):          # an ensemble predicts all 30 columns
        from ..data import KEYPOINT_COLUMNS

        y_pred = y_pred[:, [KEYPOINT_COLUMNS.index(c) for c in columns]]
    try:
        table = face_errors(y, y_pred, columns, by=args.normalize, rows=rows)
    except ValueError as exc:
        raise CLIError(f"--normalize: {one_line(exc)}") from None
    position = {row: i for i, row in enumerate(rows)}
    table["position"] = [position[r] for r in table.index]
    worst = table.head(args.worst)
    without = int(table["nme"].isna().sum())
    if args.json:
        print(dumps({"model": str(args.model), "data": data_name(args.data), "faces": len(y),
                     "faces_without_normalizer": without, "tta": tta,
                     "worst": [{"row": int(row), **{k: r[k] for k in (
                         "nme", "rmse_px", "worst_keypoint", "worst_error_px", "keypoints")}}
                               for row, r in worst.iterrows()]}, indent=1))
    else:
        normalizer = _normalizer_name(args.normalize, columns)
        print(f"model: {args.model}\ndata:  {data_name(args.data)}, {len(y)} faces "
              f"(rows counted from 1 after the header){', flip TTA' if tta else ''}\n"
              f"the {len(worst)} faces with the largest NME ({normalizer}):\n")
        print(face_errors_table(worst.drop(columns="position")))
        if without:
            print(f"\n{without} faces lack the normaliser's keypoints: they have no NME and "
                  "are listed after the others, by RMSE")
    wrote = []
    if args.draw is not None:
        from ..plots import plot_worst_faces

        fig = plot_worst_faces(X, y, y_pred, worst, columns=columns,
                               title=f"worst {len(worst)} faces of {data_name(args.data)}: "
                                     "labelled (left) and predicted (right)")
        save_figure(fig, pictures[0], dpi=110, bbox_inches="tight")
        wrote.append(f"wrote {args.draw} ({len(worst)} faces)")
    if args.keypoint_errors is not None:
        from ..plots import plot_keypoint_errors

        ax = plot_keypoint_errors(X, y, y_pred, columns=columns)
        save_figure(ax.figure, pictures[-1], dpi=110, bbox_inches="tight")
        wrote.append(f"wrote {args.keypoint_errors} (RMSE per keypoint on the mean face)")
    if wrote:      # after JSON on stdout, the notes go to stderr
        print(("" if args.json else "\n") + "\n".join(wrote),
              file=sys.stderr if args.json else sys.stdout)
    return 0


def _normalizer_name(by, columns):
    from ..metrics import resolve_normalizer

    try:
        return resolve_normalizer(by, list(columns))
    except ValueError as exc:
        raise CLIError(f"--normalize: {one_line(exc)}") from None


def add_errors(sub: argparse._SubParsersAction) -> None:
    """Register the ``errors`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "errors", cmd_errors,
                    "the faces a model gets most wrong (row, NME, worst keypoint), drawn",
                    epilog="example:\n  facekeypoints errors runs/net4 --data training.csv "
                           "--worst 12 --draw worst.png")
    p.add_argument("model", metavar="RUN_DIR|MODEL", help=MODEL_HELP + ", or an .onnx file")
    p.add_argument("--data", metavar="CSV", help=DATA_HELP)
    p.add_argument("--worst", type=positive_int, default=10, metavar="N",
                   help="how many faces to list and draw (default 10)")
    p.add_argument("--draw", metavar="PNG",
                   help="draw the worst faces, labelled and predicted keypoints side by side")
    p.add_argument("--keypoint-errors", metavar="PNG",
                   help="draw the mean face with a circle per keypoint sized by its RMSE")
    p.add_argument("--normalize", choices=("auto", "inter-ocular", "inter-pupil", "box"),
                   default="auto",
                   help="NME normaliser (default auto: inter-ocular where the outer eye "
                        "corners are predicted, else inter-pupil, else the 96 px box)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation (default: the model's own setting)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device", help=DEVICE_HELP)
