"""Reading finished runs back and turning them into tables.

The epoch histories of run directories (``history.json``) and model files, short labels that
tell runs apart, the recipe's side-by-side table, per-keypoint errors in pixels, and the
mean-keypoint baseline every net must beat. Tables are built with tabulate.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import KEYPOINT_COLUMNS
from .metrics import rmse_px, squared_errors_px

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping, Sequence

    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = ["read_history", "read_run_info", "run_labels", "keypoint_errors", "recipe_table",
           "mean_baseline_loss"]


def read_history(run_or_model: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a run directory or of a model file.

    Parameters
    ----------
    run_or_model : str or path-like
        A run directory holding ``history.json``, a ``model.pt`` file, or a directory holding
        ``model.pt``.

    Returns
    -------
    list of dict
        One dict per finished epoch (``epoch``, ``train_loss``, ``valid_loss``, ...).

    Raises
    ------
    FileNotFoundError
        When there is neither a ``history.json`` nor a model file.
    facekeypoints.persist.ModelFileError
        When the model file is not one of ours or is damaged.
    ValueError
        When ``history.json`` is not JSON, or not a list of per-epoch records (each a dict
        with an integer ``epoch``; the losses, ``dur``, ``learning_rate`` and ``momentum``
        numbers or null where present). The message names the file and the first bad
        record.
    """
    from .persist import read_model_file  # torch: only when a model file must be read

    path = Path(run_or_model)
    if path.is_dir() and (path / "history.json").exists():
        source = path / "history.json"
        return _check_history(_read_json(source), source)
    return _check_history(read_model_file(path)["history"], path)


#: Per-epoch fields that hold numbers (or null) where a history has them.
_NUMBERS = ("train_loss", "valid_loss", "train_val", "dur", "learning_rate", "momentum")


def _read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a JSON text file (it is not UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
                         f"{exc.colno})") from None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_history(records, source):
    """``records`` if they are per-epoch dicts the tables and plots can read; else ValueError."""
    def bad(problem):
        return ValueError(f"{source}: not a facekeypoints history ({problem}); expected a list "
                          'of per-epoch records such as {"epoch": 1, "train_loss": 0.01}')

    if not isinstance(records, list):
        raise bad(f"the top level is a {type(records).__name__}, not a list")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise bad(f"record {i + 1} is a {type(record).__name__}, not an object")
        epoch = record.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise bad(f"record {i + 1} has epoch {epoch!r}; epochs are integers from 1")
        for key in _NUMBERS:
            value = record.get(key)
            if value is not None and not _is_number(value):
                raise bad(f"epoch {epoch} has {key} {value!r}, not a number")
    return records


def read_run_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run.json`` of a run directory.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory (anything else gives ``{}``).

    Returns
    -------
    dict
        What the run was asked to do (preset, ``--set`` overrides, data, seed, wall time);
        ``{}`` when there is no ``run.json`` (e.g. for a model file).

    Raises
    ------
    ValueError
        When ``run.json`` is not JSON, or not a JSON object; the message names the file.

    Examples
    --------
    >>> read_run_info("no/such/run")
    {}
    """
    path = Path(run_dir) / "run.json"
    if Path(run_dir).is_dir() and path.exists():
        info = _read_json(path)
        if not isinstance(info, dict):
            raise ValueError(f"{path}: not a facekeypoints run.json (the top level is a "
                             f"{type(info).__name__}, not an object)")
        return info
    return {}


def run_labels(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Short, distinct labels for run directories or model files (for legends and tables).

    Parameters
    ----------
    paths : iterable of str or path-like
        Run directories or ``model.pt`` files.

    Returns
    -------
    list of str
        The last path component of each, or as many trailing components as it takes to tell
        them apart; the same run given twice is numbered (``'net4 (2)'``).

    Examples
    --------
    >>> run_labels(["runs/a/net4", "runs/b/net5"])
    ['net4', 'net5']
    >>> run_labels(["runs/a/net4", "runs/b/net4/model.pt"])
    ['a/net4', 'b/net4']
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


def keypoint_errors(y_true: ArrayLike, y_pred: ArrayLike, columns: Sequence[str] = KEYPOINT_COLUMNS,
                    scaled: bool = True) -> pd.DataFrame:
    """Per-keypoint RMSE in pixels, each keypoint over the faces that have it.

    A NaN target is unlabelled and left out (``fk.load(dropna=False)`` keeps faces with
    gaps): each keypoint's errors are over the faces where it is labelled, and ``n`` counts
    them.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, k)
        Targets and predictions, in the library's scaled units (or pixels with
        ``scaled=False``); NaN in ``y_true`` marks an unlabelled value.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the k outputs (x, y pairs).
    scaled : bool, default True
        Whether the values are scaled targets.

    Returns
    -------
    pandas.DataFrame
        Indexed by keypoint, with ``x``, ``y``, ``rmse`` (over both coordinates) and ``n``
        (faces with that keypoint), plus a last row ``overall`` over every labelled value
        (``n``: faces with at least one); the overall value equals ``rmse_px`` of the mean
        squared error the net reports as its loss. A keypoint no face has gets NaN errors
        and ``n`` 0.

    Raises
    ------
    ValueError
        When targets and predictions differ in shape, or ``columns`` has another length.

    Examples
    --------
    >>> import numpy as np
    >>> table = keypoint_errors(np.zeros((2, 30)), np.full((2, 30), 0.05))
    >>> len(table), round(float(table.loc["overall", "rmse"]), 2)
    (16, 2.4)
    >>> y_true = np.zeros((2, 30))
    >>> y_true[1, 2:] = np.nan                      # the second face has one keypoint
    >>> table = keypoint_errors(y_true, np.full((2, 30), 0.05))
    >>> table.loc[["left_eye_center", "right_eye_center", "overall"], "n"].tolist()
    [2, 1, 2]
    """
    import pandas as pd

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"targets {y_true.shape} and predictions {y_pred.shape} differ in shape")
    columns = list(columns)
    if y_true.shape[1] != len(columns):
        raise ValueError(f"{y_true.shape[1]} outputs but {len(columns)} column names")
    sq = squared_errors_px(y_true, y_pred, scaled=scaled)
    labelled = ~np.isnan(y_true)
    rows = {}
    for j in range(0, len(columns) - 1, 2):
        name = columns[j][:-2] if columns[j].endswith("_x") else columns[j]
        part = np.s_[:, j:j + 2]
        rows[name] = {"x": _rms(sq[:, j], labelled[:, j]),
                      "y": _rms(sq[:, j + 1], labelled[:, j + 1]),
                      "rmse": _rms(sq[part], labelled[part]),
                      "n": int(labelled[part].any(axis=1).sum())}
    rows["overall"] = {"x": _rms(sq[:, 0::2], labelled[:, 0::2]),
                       "y": _rms(sq[:, 1::2], labelled[:, 1::2]),
                       "rmse": _rms(sq, labelled), "n": int(labelled.any(axis=1).sum())}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "keypoint"
    return table


def mean_baseline_loss(y_train: ArrayLike, y_valid: ArrayLike) -> float:
    """The validation MSE of predicting the mean training keypoints for every face.

    NaN targets are unlabelled: each keypoint's mean is over the training faces that have it
    (0, the image centre, for a keypoint no training face has), and the error is over the
    labelled validation values, as the net's validation loss is.

    Parameters
    ----------
    y_train, y_valid : array-like of shape (n, k)
        Training and validation targets (scaled); NaN marks an unlabelled value.

    Returns
    -------
    float
        The loss a net must beat to have learned anything; ``rmse_px`` turns it into pixels.

    Raises
    ------
    ValueError
        When no validation target is labelled.

    Examples
    --------
    >>> round(mean_baseline_loss([[0.1], [-0.1]], [[0.2]]), 6)
    0.04
    >>> round(mean_baseline_loss([[0.1, 0.5], [-0.1, float("nan")]],
    ...                          [[0.2, float("nan")]]), 6)
    0.04
    """
    y_train = np.asarray(y_train, dtype=np.float64)
    y_valid = np.asarray(y_valid, dtype=np.float64)
    train_labelled, valid_labelled = ~np.isnan(y_train), ~np.isnan(y_valid)
    if train_labelled.all() and valid_labelled.all():
        return float(((y_valid - y_train.mean(axis=0)) ** 2).mean())
    if not valid_labelled.any():
        raise ValueError("no validation target is labelled (all are NaN): no baseline loss")
    counts = train_labelled.sum(axis=0)
    sums = np.where(train_labelled, y_train, 0.0).sum(axis=0)
    mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return float(((y_valid - mean) ** 2)[valid_labelled].mean())


def _rms(squared, labelled):
    """The root of the mean of ``squared`` over ``labelled`` (NaN, silently, over none)."""
    if labelled.all():
        return math.sqrt(squared.mean())
    if not labelled.any():
        return float("nan")
    return math.sqrt(squared[labelled].mean())


_FIELDS = (("train_loss", "train", "{:.6f}"), ("valid_loss", "valid", "{:.6f}"),
           ("train_val", "train/val", "{:.2f}"))


def recipe_table(histories: Mapping[str, Sequence[Mapping[str, Any]]],
                 epochs: Sequence[int] | None = None) -> str:
    """The recipe's side-by-side table: epoch | train | valid | train/val for each run.

    Parameters
    ----------
    histories : dict
        ``{label: records}``, records as :func:`read_history` returns them.
    epochs : sequence of int, optional
        The epochs to show; by default about six evenly spaced epochs ending at the last one.
        Epochs a run did not reach are left blank.

    Returns
    -------
    str
        The table, then per run the best valid loss as RMSE in pixels with its epoch, and the
        last epoch's.

    Raises
    ------
    ValueError
        When there are no runs, or none has a finished epoch.

    Examples
    --------
    >>> records = [{"epoch": e, "train_loss": 0.01 / e, "valid_loss": 0.012 / e,
    ...             "train_val": 0.833} for e in (1, 2, 3, 4)]
    >>> print(recipe_table({"net4": records}, epochs=[1, 4]))
               |               net4
      epoch    |     train     valid    train/val
    ---------------------------------------------
          1    |  0.010000  0.012000         0.83
          4    |  0.002500  0.003000         0.83
    <BLANKLINE>
    net4  best valid RMSE 2.63 px (loss 0.003000, epoch 4); last 2.63 px (epoch 4 of 4)
    """
    from tabulate import tabulate

    if not histories:
        raise ValueError("no runs to tabulate")
    last = max((len(h) for h in histories.values()), default=0)
    if last == 0:
        raise ValueError("the runs have no finished epochs")
    if epochs is None:
        epochs = sorted({max(1, round(last * f)) for f in (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)})
    headers, rows = ["epoch"], [[str(e)] for e in epochs]
    for records in histories.values():
        by_epoch = {r["epoch"]: r for r in records}
        headers += ["|"] + [name for _, name, _ in _FIELDS]
        for row, e in zip(rows, epochs):
            entry = by_epoch.get(e, {})
            row += ["|"] + [fmt.format(entry[key]) if key in entry else ""
                            for key, _, fmt in _FIELDS]
    body = [line.rstrip() for line in tabulate(rows, headers=headers, tablefmt="plain",
                                               disable_numparse=True,
                                               stralign="right").splitlines()]
    table = [_group_line(body[0], list(histories)), body[0], "-" * len(body[0]), *body[1:]]
    return "\n".join(table) + _best_and_last(histories)


def _group_line(header, labels):
    """Each run's label centred over its columns, after the header's '|' separators."""
    bars = [i for i, ch in enumerate(header) if ch == "|"]
    ends = bars[1:] + [len(header)]
    line = " " * bars[0]
    for label, start, end in zip(labels, bars, ends):
        line += f"| {str(label):^{max(end - start - 2, len(str(label)))}} "
    return line.rstrip()


def _best_and_last(histories):
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
        elif records and records[-1].get("train_loss") is not None:
            notes.append(f"{label:<{width}}  no validation loss (eval_size=0); last train RMSE "
                         f"{rmse_px(records[-1]['train_loss']):.2f} px")
    return "\n\n" + "\n".join(notes) if notes else ""
