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
from .metrics import squared_errors_px

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping, Sequence

    import pandas as pd
    from numpy.typing import ArrayLike

__all__ = ["read_history", "read_run_info", "run_labels", "keypoint_errors", "recipe_table",
           "mean_baseline_loss", "best_valid_px", "keypoint_measures", "face_errors",
           "face_errors_table"]


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


def best_valid_px(history: Sequence[Mapping[str, Any]],
                  criterion: Any = None) -> tuple[float, int] | None:
    """The best validation RMSE in pixels of a run, and its epoch.

    Read from each epoch's ``valid_rmse_px`` (measured from the predictions, whatever the
    loss). A history written before that was recorded falls back to ``sqrt(valid_loss) * 48``
    when ``criterion`` is a mean squared error, and has no pixels otherwise.

    Parameters
    ----------
    history : sequence of dict
        ``net.history`` or what :func:`read_history` returns.
    criterion : object, optional
        The criterion the run trained with (a class, instance or name; None, the default,
        is the library's masked MSE); it matters only for old histories.

    Returns
    -------
    (float, int) or None
        ``(pixels, epoch)`` of the lowest value; None when no epoch has one.

    Examples
    --------
    >>> best_valid_px([{"epoch": 1, "valid_loss": 0.3, "valid_rmse_px": 3.5},
    ...                {"epoch": 2, "valid_loss": 0.2, "valid_rmse_px": 2.5}])
    (2.5, 2)
    >>> best_valid_px([{"epoch": 1, "valid_loss": 0.0001}])      # an old MSE history
    (0.48, 1)
    >>> best_valid_px([{"epoch": 1, "valid_loss": 0.0001}], criterion="l1") is None
    True
    """
    from .pixels import best_valid_px as _best_px   # torch: not for an ONNX file's evaluate

    best = _best_px(history, criterion)
    return None if best is None else (round(best[0], 12), best[1])


def recipe_table(histories: Mapping[str, Sequence[Mapping[str, Any]]],
                 epochs: Sequence[int] | None = None, criterion: Any = None) -> str:
    """The recipe's side-by-side table: epoch | train | valid | train/val for each run.

    Parameters
    ----------
    histories : dict
        ``{label: records}``, records as :func:`read_history` returns them.
    epochs : sequence of int, optional
        The epochs to show; by default about six evenly spaced epochs ending at the last one.
        Epochs a run did not reach are left blank.
    criterion : object, optional
        The criterion the runs trained with, for histories written before ``valid_rmse_px``
        was recorded (see :func:`best_valid_px`); None is the default masked MSE.

    Returns
    -------
    str
        The table, then per run the best validation RMSE in pixels (measured,
        ``valid_rmse_px``) with its epoch and loss, and the last epoch's.

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
    return "\n".join(table) + _best_and_last(histories, criterion)


def _group_line(header, labels):
    """Each run's label centred over its columns, after the header's '|' separators."""
    bars = [i for i, ch in enumerate(header) if ch == "|"]
    ends = bars[1:] + [len(header)]
    line = " " * bars[0]
    for label, start, end in zip(labels, bars, ends):
        line += f"| {str(label):^{max(end - start - 2, len(str(label)))}} "
    return line.rstrip()


def _best_and_last(histories, criterion=None):
    from .pixels import epoch_px   # torch: not for an ONNX file's evaluate

    notes = []
    width = max(len(str(label)) for label in histories)
    for label, records in histories.items():
        valid = [(epoch_px(r, "valid", criterion), r) for r in records if "valid_loss" in r]
        measured = [(px, r) for px, r in valid if px is not None and not math.isnan(px)]
        if measured:
            px, row = min(measured, key=lambda item: item[0])
            end_px, end = valid[-1]
            last = (f"{end_px:.2f} px" if end_px is not None else
                    f"loss {end['valid_loss']:.6f}")
            notes.append(f"{label:<{width}}  best valid RMSE {px:.2f} px "
                         f"(loss {row['valid_loss']:.6f}, epoch {row['epoch']}); last {last} "
                         f"(epoch {end['epoch']} of {len(records)})")
        elif valid:
            loss, epoch = min((r["valid_loss"], r["epoch"]) for _, r in valid)
            notes.append(f"{label:<{width}}  best valid loss {loss:.6f} (epoch {epoch}; no "
                         "pixels: the history predates valid_rmse_px and the loss is not MSE)")
        elif records and epoch_px(records[-1], "train", criterion) is not None:
            notes.append(f"{label:<{width}}  no validation loss (eval_size=0); last train RMSE "
                         f"{epoch_px(records[-1], 'train', criterion):.2f} px")
    return "\n\n" + "\n".join(notes) if notes else ""


# -- the face-alignment measures and error analysis ------------------------------------------

def _normalized(y_true, y_pred, columns, by, scaled, box_size):
    from .metrics import normalized_errors

    return normalized_errors(y_true, y_pred, by=by, scaled=scaled, layout=list(columns),
                             box_size=box_size)


def keypoint_measures(y_true: ArrayLike, y_pred: ArrayLike,
                      columns: Sequence[str] = KEYPOINT_COLUMNS, by: str = "auto",
                      threshold: float = 0.1, pck_threshold: float = 0.1, scaled: bool = True,
                      box_size: Any = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-keypoint RMSE in pixels beside NME and PCK, and the overall measures.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, k)
        Targets and predictions (scaled, or pixels with ``scaled=False``); NaN in ``y_true``
        marks an unlabelled value.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the k outputs (x, y pairs).
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser of NME, failure rate, AUC and PCK (see
        :func:`facekeypoints.metrics.normalizer_px`).
    threshold : float, default 0.1
        For the failure rate and the AUC.
    pck_threshold : float, default 0.1
        For PCK.
    scaled : bool, default True
        Whether the values are scaled targets.
    box_size : float or array-like, optional
        For ``by='box'`` (default: the image side).

    Returns
    -------
    table : pandas.DataFrame
        :func:`keypoint_errors`' table (``x``, ``y``, ``rmse``, ``n``) with ``nme`` and
        ``pck`` columns; the ``overall`` row has the overall NME and PCK.
    summary : dict
        :meth:`facekeypoints.metrics.NormalizedErrors.summary` plus ``rmse_px``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((2, 30)); y[:, 6], y[:, 10] = -0.5, 0.5      # eye corners 48 px apart
    >>> table, summary = keypoint_measures(y, y + 0.05)
    >>> summary["normalizer"], round(summary["nme"], 4), summary["failure_rate"]
    ('inter-ocular', 0.0707, 0.0)
    >>> round(float(table.loc["nose_tip", "nme"]), 4)
    0.0707
    """
    table = keypoint_errors(y_true, y_pred, columns, scaled=scaled)
    errors = _normalized(y_true, y_pred, columns, by, scaled, box_size)
    per_kp = errors.per_keypoint()
    pck = errors.pck_per_keypoint(pck_threshold)
    summary = errors.summary(threshold, pck_threshold)
    table["nme"] = [per_kp.get(k, summary["nme"]) if k != "overall" else summary["nme"]
                    for k in table.index]
    table["pck"] = [pck.get(k, summary["pck"]) if k != "overall" else summary["pck"]
                    for k in table.index]
    summary["rmse_px"] = float(table.loc["overall", "rmse"])
    return table, summary


def face_errors(y_true: ArrayLike, y_pred: ArrayLike, columns: Sequence[str] = KEYPOINT_COLUMNS,
                by: str = "auto", scaled: bool = True, rows: Sequence[int] | None = None,
                worst: int | None = None, box_size: Any = None) -> pd.DataFrame:
    """One row per face, the worst first: NME, RMSE in pixels and the worst keypoint.

    The table of error analysis: the faces a net gets most wrong are often the ones with
    wrong labels (the Kaggle runner-up corrected 56 in training.csv) or unusual faces.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n, k)
        Targets and predictions (scaled, or pixels with ``scaled=False``); NaN in ``y_true``
        marks an unlabelled value.
    columns : sequence of str, default KEYPOINT_COLUMNS
        Names of the k outputs (x, y pairs).
    by : {'auto', 'inter-ocular', 'inter-pupil', 'box'}, default 'auto'
        The normaliser of the NME.
    scaled : bool, default True
        Whether the values are scaled targets.
    rows : sequence of int, optional
        Each face's row number (e.g. its data row in the CSV, from 1); default 1..n.
    worst : int, optional
        Keep only this many faces (the worst).
    box_size : float or array-like, optional
        For ``by='box'``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``row``, with ``nme`` (NaN for a face without the normaliser's keypoints;
        those come last, by RMSE), ``rmse_px``, ``worst_keypoint``, ``worst_error_px`` and
        ``keypoints`` (labelled on that face); sorted by ``nme`` from the largest.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((3, 30)); y[:, 6], y[:, 10] = -0.5, 0.5
    >>> p = y.copy(); p[1, 20:22] += 0.25                       # face 2: the nose, 17 px off
    >>> table = face_errors(y, p)
    >>> worst = table.iloc[0]
    >>> int(table.index[0]), worst["worst_keypoint"], round(float(worst["worst_error_px"]), 1)
    (2, 'nose_tip', 17.0)
    """
    import pandas as pd

    errors = _normalized(y_true, y_pred, columns, by, scaled, box_size)
    px = errors.errors_px
    n = len(px)
    rows = np.arange(1, n + 1) if rows is None else np.asarray(rows)
    if len(rows) != n:
        raise ValueError(f"{len(rows)} row numbers for {n} faces")
    labelled = np.isfinite(px)
    filled = np.where(labelled, px, -1.0)
    worst_j = filled.argmax(axis=1)
    count = labelled.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(np.where(labelled, px ** 2, 0.0).sum(axis=1) / count)
    table = pd.DataFrame({
        "row": rows, "nme": errors.per_face(), "rmse_px": rmse,
        "worst_keypoint": [errors.names[j] if c else "" for j, c in zip(worst_j, count)],
        "worst_error_px": np.where(count > 0, filled[np.arange(n), worst_j], np.nan),
        "keypoints": count}).set_index("row")
    table = table.sort_values(["nme", "rmse_px"], ascending=False, na_position="last",
                              kind="stable")
    if table["nme"].isna().any():       # no normaliser: after the measured faces, by RMSE
        measured = table[table["nme"].notna()]
        rest = table[table["nme"].isna()].sort_values("rmse_px", ascending=False, kind="stable")
        table = pd.concat([measured, rest])
    return table.head(worst) if worst is not None else table


def face_errors_table(table: pd.DataFrame) -> str:
    """:func:`face_errors`' table as text (row, NME, RMSE px, worst keypoint and its error).

    Parameters
    ----------
    table : pandas.DataFrame
        What :func:`face_errors` returned.

    Returns
    -------
    str
        A plain table; a face without an NME shows ``-``.
    """
    from tabulate import tabulate

    rows = [[str(row), "-" if not np.isfinite(r.nme) else f"{r.nme:.4f}", f"{r.rmse_px:.2f}",
             r.worst_keypoint, f"{r.worst_error_px:.2f}", str(int(r.keypoints))]
            for row, r in table.iterrows()]
    text = tabulate(rows, headers=["row", "NME", "RMSE px", "worst keypoint", "its error px",
                                   "keypoints"], disable_numparse=True, stralign="right")
    return "\n".join(line.rstrip() for line in text.splitlines())
