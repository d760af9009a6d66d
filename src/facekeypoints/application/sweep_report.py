"""How a sweep looks: per-fit progress lines, the results table, its text form and its plot.

:func:`facekeypoints.sweep.run_sweep` computes; this module presents. Nothing here runs a
fit::

    from facekeypoints.sweep_report import format_results, plot_results

    print(format_results(results))              # parameters, valid RMSE px, ± std, fit s, rank
    plot_results(results).figure.savefig("results.png")

A sweep is scored by one measure (``run_sweep(scoring=...)``): the validation RMSE in pixels
(``rmse_px``, the default) or the NME (``nme``); the table's columns are named after it
(``mean_rmse_px`` or ``mean_nme``), see :data:`MEASURES`.

pandas, tabulate, tqdm and matplotlib are imported by the functions that need them.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["FitProgress", "MEASURES", "short_name", "format_fit", "results_frame",
           "best_params", "param_columns", "measure_of", "format_results", "plot_results"]

#: The measures a sweep can be scored by: ``{name: (column header, progress-line format)}``.
#: Scores are the measure negated (greater is better, as scikit-learn's scorers are).
MEASURES = {"rmse_px": ("valid RMSE px", "valid RMSE {:.3f} px"),
            "nme": ("valid NME", "valid NME {:.4f}")}

#: What :class:`FitProgress` is told about each finished fit: the candidate's parameters,
#: ``(split index, number of splits)`` and ``(candidate index, number of candidates)``.
FitMeta = tuple[Mapping[str, Any] | None, tuple[int, int] | None, tuple[int, int] | None]


def short_name(key: str) -> str:
    """A parameter name without its ``callbacks__`` prefix, for tables and progress lines.

    Parameters
    ----------
    key : str
        A ``set_params`` name.

    Returns
    -------
    str
        ``key`` less a leading ``callbacks__``.

    Examples
    --------
    >>> short_name("callbacks__adjust_lr__start"), short_name("max_epochs")
    ('adjust_lr__start', 'max_epochs')
    """
    return key[len("callbacks__"):] if key.startswith("callbacks__") else key


def format_fit(done: int, total: int, params: Mapping[str, Any] | None = None,
               split: tuple[int, int] | None = None, candidate: tuple[int, int] | None = None,
               result: Mapping[str, Any] | None = None, measure: str = "rmse_px") -> str:
    """One progress line for a finished fit.

    Parameters
    ----------
    done, total : int
        Fits finished so far (this one included), and fits in the sweep.
    params : mapping, optional
        The candidate's parameters.
    split, candidate : (int, int), optional
        ``(index, count)`` of the fold and of the candidate (0-based index).
    result : mapping, optional
        The fit's outcome: ``test_scores`` (minus the RMSE in pixels), ``fit_time`` (s) and
        ``fit_error`` (a traceback, or None).
    measure : str, default 'rmse_px'
        What the score is minus (a key of :data:`MEASURES`).

    Returns
    -------
    str
        E.g. ``[3/8]  candidate 2/4 fold 1/2  adjust_lr__start=0.01  valid RMSE 4.210 px
        fit 1.3 s``.

    Examples
    --------
    >>> format_fit(1, 8, {"max_epochs": 2}, (0, 2), (0, 4),
    ...            {"test_scores": -4.2, "fit_time": 1.25, "fit_error": None})
    '[1/8]  candidate 1/4 fold 1/2  max_epochs=2  valid RMSE 4.200 px  fit 1.2 s'
    """
    width = len(str(total))
    parts = [f"[{done:>{width}}/{total}]"]
    if candidate and split:
        parts.append(f"candidate {candidate[0] + 1}/{candidate[1]} "
                     f"fold {split[0] + 1}/{split[1]}")
    if params:
        parts.append(" ".join(f"{short_name(k)}={v!r}" for k, v in params.items()))
    if isinstance(result, Mapping):
        if result.get("fit_error"):
            error = str(result["fit_error"]).strip().splitlines()[-1]
            parts.append(f"FAILED: {error}")
        else:
            score = result.get("test_scores")
            if isinstance(score, (int, float, np.floating)):
                parts.append(MEASURES[measure][1].format(-float(score)))
        if result.get("fit_time") is not None:
            parts.append(f"fit {result['fit_time']:.1f} s")
    return "  ".join(parts)


class FitProgress:
    """One line per finished fit (and a tqdm bar on a terminal) while a sweep runs.

    Pass an instance, or any callable with the same signature, as ``run_sweep(progress=...)``.

    Parameters
    ----------
    total : int
        Fits in the sweep.
    write : callable, optional
        Where each line goes (default: ``tqdm.write`` while the bar shows, else ``print``).
    bar : bool, optional
        Show the bar (default: when stderr is a terminal).
    measure : str, default 'rmse_px'
        What the scores are minus (a key of :data:`MEASURES`).
    """

    def __init__(self, total: int, write: Callable[[str], object] | None = None,
                 bar: bool | None = None, measure: str = "rmse_px") -> None:
        from tqdm.auto import tqdm

        self.total, self.done, self.measure = total, 0, measure
        self._lock = threading.Lock()
        self.bar = tqdm(total=total, unit="fit", desc="sweep", leave=False,
                        disable=(not sys.stderr.isatty()) if bar is None else not bar,
                        dynamic_ncols=True)
        self._write = write or (tqdm.write if not self.bar.disable else
                                (lambda line: print(line, flush=True)))

    def __call__(self, meta: Sequence[FitMeta], results: Sequence[Any] | None) -> None:
        """Report finished fits: one line each, and the bar moves on.

        Parameters
        ----------
        meta : sequence of (params, split, candidate)
            One entry per finished fit (see :func:`format_fit`).
        results : sequence of mapping, or None
            The fits' outcomes, in the order of ``meta`` (None when unknown).
        """
        with self._lock:
            results = list(results) if isinstance(results, (list, tuple)) \
                else [None] * len(meta)
            for (params, split, candidate), result in zip(meta, results):
                self.done += 1
                self._write(format_fit(self.done, self.total, params, split, candidate,
                                       result, self.measure))
                self.bar.update(1)

    def close(self) -> None:
        """Close the bar (the lines stay)."""
        self.bar.close()


def results_frame(search: Any, keys: Sequence[str] | None = None,
                  measure: str = "rmse_px") -> pd.DataFrame:
    """A search's results as a table of the measure (pixels by default), one row per candidate.

    Parameters
    ----------
    search : fitted scikit-learn search, or mapping
        Anything with ``cv_results_`` (GridSearchCV, RandomizedSearchCV), or such a
        ``cv_results_`` mapping itself (``params``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score``, ``mean_fit_time``, ``std_fit_time``, ``split<k>_test_score``),
        scored by :data:`facekeypoints.sweep.neg_rmse_px` (or minus another measure).
    keys : sequence of str, optional
        The parameter columns, in order (default: every parameter, sorted).
    measure : str, default 'rmse_px'
        What the scores are minus (a key of :data:`MEASURES`); it names the columns.

    Returns
    -------
    pandas.DataFrame
        The parameters, ``mean_rmse_px``, ``std_rmse_px`` (over the folds), ``rank``
        (1 = best), ``mean_fit_time_s``, ``std_fit_time_s`` and ``fold<k>_rmse_px``
        (``mean_nme`` ... for ``measure='nme'``); ``attrs['measure']`` is ``measure``.
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(MEASURES)}")
    import pandas as pd

    r = search if isinstance(search, Mapping) else search.cv_results_
    keys = list(keys or sorted({k for p in r["params"] for k in p}))
    n_splits = sum(1 for k in r if k.startswith("split") and k.endswith("_test_score"))
    rows = []
    for i, params in enumerate(r["params"]):
        row = {k: params.get(k) for k in keys}
        row[f"mean_{measure}"] = -float(r["mean_test_score"][i])
        row[f"std_{measure}"] = float(r["std_test_score"][i])
        row["rank"] = int(r["rank_test_score"][i])
        row["mean_fit_time_s"] = float(r["mean_fit_time"][i])
        row["std_fit_time_s"] = float(r["std_fit_time"][i])
        for s in range(n_splits):
            row[f"fold{s + 1}_{measure}"] = -float(r[f"split{s}_test_score"][i])
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["measure"] = measure
    return frame


def measure_of(frame: pd.DataFrame) -> str:
    """The measure a results table holds: ``attrs['measure']``, else read from its columns.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table from :func:`results_frame` (or read back from ``results.csv``).

    Returns
    -------
    str
        A key of :data:`MEASURES`.

    Raises
    ------
    ValueError
        When the table has no ``mean_<measure>`` column.
    """
    measure = frame.attrs.get("measure")
    if measure in MEASURES:
        return measure
    for name in MEASURES:
        if f"mean_{name}" in frame.columns:
            return name
    wanted = ", ".join(f"mean_{m}" for m in MEASURES)
    raise ValueError(f"not a sweep results table: it has none of the columns {wanted}")


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The parameter columns of a results table.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table from :func:`results_frame`.

    Returns
    -------
    list of str
        The columns before ``mean_rmse_px`` (``mean_<measure>``).
    """
    cols = list(frame.columns)
    return cols[:cols.index(f"mean_{measure_of(frame)}")]


def best_params(frame: pd.DataFrame, keys: Sequence[str] | None = None) -> dict | None:
    """The parameters of the candidate with the lowest mean validation RMSE (or NME).

    Parameters
    ----------
    frame : pandas.DataFrame
        A table from :func:`results_frame`.
    keys : sequence of str, optional
        The parameter columns (default: :func:`param_columns`).

    Returns
    -------
    dict or None
        ``{name: value}`` with plain Python values, or None when every fit failed.
    """
    keys = list(keys or param_columns(frame))
    scores = frame[f"mean_{measure_of(frame)}"].to_numpy(dtype=float)
    if not np.isfinite(scores).any():
        return None
    i = int(np.nanargmin(scores))
    return {k: _plain(frame[k].iloc[i]) for k in keys}


def _reprs(column):
    return [repr(_plain(v)) for v in column]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def format_results(frame: pd.DataFrame, keys: Sequence[str] | None = None) -> str:
    """The results as a text table.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table from :func:`results_frame`.
    keys : sequence of str, optional
        The parameter columns to show (default: :func:`param_columns`).

    Returns
    -------
    str
        Parameters, mean and std validation RMSE (px), fit time (s) and rank; the best
        candidate's rank is starred.
    """
    from tabulate import tabulate

    keys = list(keys or param_columns(frame))
    measure = measure_of(frame)
    digits = 3 if measure == "rmse_px" else 4
    headers = [short_name(k) for k in keys] + [MEASURES[measure][0], "± std", "fit s", "rank"]
    rows = []
    for i in range(len(frame)):
        cell = {k: _plain(frame[k].iloc[i]) for k in frame.columns}
        rows.append([cell[k] if isinstance(cell[k], str) else repr(cell[k]) for k in keys]
                    + [f"{cell[f'mean_{measure}']:.{digits}f}",
                       f"{cell[f'std_{measure}']:.{digits}f}",
                       f"{cell['mean_fit_time_s']:.1f}",
                       f"{cell['rank']}{' *' if cell['rank'] == 1 else '  '}"])
    return tabulate(rows, headers=headers, disable_numparse=True, stralign="right")


def plot_results(frame: pd.DataFrame, keys: Sequence[str] | None = None,
                 ax: Axes | None = None, title: str | None = None) -> Axes:
    """Mean validation RMSE (px), or NME, per candidate, with std error bars across the folds.

    With one swept parameter it is on the x axis; with two, the second gives one line per
    value; otherwise every candidate is a point, labelled with its parameters. The best
    candidate is starred.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table from :func:`results_frame`.
    keys : sequence of str, optional
        The parameter columns (default: :func:`param_columns`).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new ``matplotlib.figure.Figure``, no pyplot state).
    title : str, optional
        The title (default ``"sweep results"``).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on; ``ax.figure.savefig(...)`` writes the picture.
    """
    from matplotlib.figure import Figure

    keys = list(keys or param_columns(frame))
    measure = measure_of(frame)
    varying = [k for k in keys if frame[k].astype(str).nunique() > 1] or keys[:1]
    mean = frame[f"mean_{measure}"].to_numpy(float)
    std = frame[f"std_{measure}"].to_numpy(float)
    best = int(np.nanargmin(mean)) if np.isfinite(mean).any() else None
    label = ("validation RMSE (px)" if measure == "rmse_px" else "validation NME") + \
        ", mean ± std over folds"
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
