"""Specialists: one net per keypoint group, each trained on every row where its group is present.

The recipe's last step. Kaggle's training.csv has all 15 keypoints on only ~2,140 of its 7,049
faces; a net that predicts just the eye centres can use ~7,000. Each specialist is a clone of a
base net (same layers, schedule and batch size) with

* an output layer as wide as its group (2 values per keypoint),
* its group's own keypoint layout, ``KAGGLE.subset(columns)`` (see
  :mod:`facekeypoints.specialist_groups`): its flip pairs for a flipping batch iterator, and
  the net's ``layout`` where the net takes one,
* optionally every layer but the output loaded from a pretrained full net (where shapes match),
* an epoch budget scaled inversely with its rows (see :func:`specialist_epochs`).

:class:`SpecialistEnsemble` is a scikit-learn estimator (``get_params``/``set_params``,
``clone``, ``fit``/``predict``/``score``; it can be cross-validated and swept) that stacks the
members into one (n, 30) prediction in ``KEYPOINT_COLUMNS`` order, and saves/loads as a
directory: one safe model file per member plus ``ensemble.json``, written as one unit (staged,
then committed, under the folder's lock; see :func:`facekeypoints.runs.staged`). The CLI's
``evaluate`` and ``predict`` accept such a directory.

The first Ctrl-C or SIGTERM while specialists train lets the running epoch finish, then stops:
the unfinished ensemble is abandoned (:class:`SpecialistsInterrupted`), nothing is saved.
"""
from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from skorch.callbacks import Callback

from .reports import best_valid_px
from ._rundir import disk_errors
from ._safe_io import write_json
from ._signals import StopSignals, active, signal_name
from .data import KEYPOINT_COLUMNS, ParsedCSV
from .metrics import squared_errors_px
from .reports import keypoint_errors
from .specialist_groups import (DEFAULT_GROUPS, GROUPS_BY_NAME, SpecialistGroup, get_groups,
                                local_flip_indices, specialist_epochs)

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Mapping

    import pandas as pd
    from numpy.typing import ArrayLike

    from .net import NeuralNet

__all__ = ["SpecialistGroup", "DEFAULT_GROUPS", "GROUPS_BY_NAME", "get_groups",
           "local_flip_indices", "specialist_epochs", "load_pretrained", "make_specialist",
           "fit_specialists", "SpecialistEnsemble", "SpecialistsInterrupted", "is_ensemble_dir",
           "check_ensemble_target",
           "load_ensemble", "report_table", "ENSEMBLE_FILE", "ENSEMBLE_FORMAT",
           "ENSEMBLE_VERSION"]

#: The file that marks a specialist ensemble directory and lists its members.
ENSEMBLE_FILE = "ensemble.json"
#: The ``format`` entry of ``ensemble.json``.
ENSEMBLE_FORMAT = "facekeypoints-ensemble"
#: The ``version`` entry of ``ensemble.json``.
ENSEMBLE_VERSION = 1


class SpecialistsInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the training of an ensemble; nothing was made of it.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C stops on it too.

    Parameters
    ----------
    group : str
        The specialist that was training.
    finished : list of str
        The specialists finished before it.
    signum : int, optional
        The signal that stopped it.

    Attributes
    ----------
    group : str
        The specialist that was training (its unfinished fit is dropped).
    finished : list of str
        The specialists finished before it (dropped too: an ensemble is made whole or not).
    signum : int or None
        The signal (``signal.SIGINT``, ``signal.SIGTERM``), None for a bare interrupt.
    exit_status : int
        143 after SIGTERM, else 130.
    """

    def __init__(self, group: str, finished: list[str], signum: int | None = None) -> None:
        import signal

        self.group, self.finished, self.signum = group, list(finished), signum
        self.exit_status = 143 if signum == signal.SIGTERM else 130
        what = signal_name(signum) if signum else "an interrupt"
        super().__init__(f"{what} while training specialist {group!r} "
                         f"({len(finished)} finished before it); no ensemble was made")


# -- building one specialist -----------------------------------------------------------------

def _output_layer(net):
    return net.layers[-1][0]


def _input_shape(net):
    """The shape of one input row the net takes (``input_shape`` less the batch), or None."""
    try:
        shape = net.layer_params().get("input_shape")
    except AttributeError:      # a module= net: it takes what it is given
        return None
    return tuple(int(s) for s in shape[1:]) if shape is not None else None


def _as_input(X, shape):
    """``X`` as rows of ``shape`` (as it is when the net does not say)."""
    X = np.asarray(X)
    return X if shape is None else X.reshape(len(X), *shape)


def _pretrained_state(pretrained):
    """A state dict from a fitted net, a model file or a run directory."""
    if pretrained is None:
        return None
    if isinstance(pretrained, dict):
        return pretrained
    if hasattr(pretrained, "get_params") and not isinstance(pretrained, (str, Path)):
        if not hasattr(pretrained, "module_"):
            raise ValueError("pretrained is a net that was never fitted (a clone of a "
                             "SpecialistEnsemble clones its pretrained net unfitted): pass a "
                             "model file, a run directory or a state_dict to sweep or "
                             "cross-validate an ensemble")
        return {k: v.detach().cpu() for k, v in pretrained.module_.state_dict().items()}
    from .persist import read_model_file

    return read_model_file(pretrained)["state_dict"]


def load_pretrained(net: NeuralNet, pretrained: NeuralNet | str | os.PathLike | Mapping[str, Any],
                    skip: Iterable[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Copy pretrained weights into an initialized net where names and shapes match.

    A layer is loaded whole or not at all: when one of its parameters is missing from
    ``pretrained`` or has another shape, none of its parameters are copied.

    Parameters
    ----------
    net : NeuralNet
        An initialized net (``net.initialize()`` has run); changed in place.
    pretrained : NeuralNet, str, path-like or dict
        A fitted net, a model file or run directory, or a ``state_dict`` of tensors.
    skip : iterable of str, optional
        Layers not to load (default: the output layer, the last of ``net.layers``).

    Returns
    -------
    loaded : list of str
        Layer names whose parameters were all loaded, in the net's order.
    mismatched : dict
        ``{layer: reason}`` for the layers that were not.
    """
    state = pretrained if isinstance(pretrained, dict) else _pretrained_state(pretrained)
    skip = {_output_layer(net)} if skip is None else set(skip)
    own = net.module_.state_dict()
    layer_of = {k: k.split(".")[1] if k.startswith("layers.") else k.split(".")[0] for k in own}
    take, mismatched = {}, {}
    for key, value in own.items():
        layer = layer_of[key]
        if layer in skip:
            continue
        if key not in state:
            mismatched.setdefault(layer, "not in the pretrained net")
        elif tuple(state[key].shape) != tuple(value.shape):
            mismatched.setdefault(layer, f"{key.rsplit('.', 1)[-1]} shape "
                                         f"{tuple(state[key].shape)} in the pretrained net, "
                                         f"{tuple(value.shape)} here")
        else:
            take[key] = state[key]
    for key in list(take):
        if layer_of[key] in mismatched:
            del take[key]
    net.module_.load_state_dict(take, strict=False)
    loaded = []
    for key in take:
        if layer_of[key] not in loaded:
            loaded.append(layer_of[key])
    return loaded, mismatched


def make_specialist(base_net: NeuralNet, group: SpecialistGroup,
                    pretrained: NeuralNet | str | os.PathLike | Mapping[str, Any] | None = None,
                    max_epochs: int | None = None
                    ) -> tuple[NeuralNet, list[str], dict[str, str]]:
    """An initialized clone of a base net for one keypoint group.

    The clone gets an output layer as wide as the group (``output_num_units``), the group's
    layout (``layout=group.layout``, where the net takes a ``layout``), its own flip pairs
    (when the base net trains with a ``FlipBatchIterator`` or a subclass, whose other
    settings are kept), ``columns_``, and a ``stop_on_signal`` callback that ends its fit
    after the epoch in which a graceful ``StopSignals`` received Ctrl-C or SIGTERM (it does
    nothing otherwise); sklearn's ``clone`` is used, or a deep copy when a callback cannot
    be cloned.

    Parameters
    ----------
    base_net : NeuralNet
        The net to clone (the old recipe's layer list with an ``output`` layer).
    group : SpecialistGroup
        The keypoints the specialist predicts.
    pretrained : NeuralNet, str, path-like or dict, optional
        Weights to load into every layer but the output (see :func:`load_pretrained`).
    max_epochs : int, optional
        The specialist's epoch budget (default: the base net's).

    Returns
    -------
    net : NeuralNet
        The initialized, unfitted specialist.
    loaded : list of str
        Layers loaded from ``pretrained`` (empty without it).
    mismatched : dict
        ``{layer: reason}`` for the layers that could not be loaded.
    """
    import copy

    from sklearn.base import clone

    from .iterators import FlipBatchIterator

    try:
        net = clone(base_net)
    except RuntimeError:        # a callback sklearn cannot clone: copy the whole net instead
        net = copy.deepcopy(base_net)
    params = {"output_num_units": group.n_outputs}
    callbacks = list(net.callbacks or [])
    if not any(isinstance(c, tuple) and c[0] == "stop_on_signal" for c in callbacks):
        params["callbacks"] = [*callbacks, ("stop_on_signal", _StopOnSignal())]
    if "layout" in net.get_params(deep=False):
        params["layout"] = group.layout
    if max_epochs is not None:
        params["max_epochs"] = int(max_epochs)
    it = net.batch_iterator_train
    if isinstance(it, FlipBatchIterator):
        it = copy.deepcopy(it)              # every setting kept, the group's own flip pairs
        it.flip_indices = group.flip_indices
        params["batch_iterator_train"] = it
    net.set_params(**params)
    net.initialize()
    net.columns_ = list(group.columns)
    loaded, mismatched = [], {}
    if pretrained is not None:
        loaded, mismatched = load_pretrained(net, pretrained)
    return net, loaded, mismatched


# -- data --------------------------------------------------------------------------------------

class _TrainingFile(NamedTuple):
    """A training.csv parsed once, for the groups to take their rows from."""

    parsed: ParsedCSV
    name: str                   # the file's name, for error messages


def _read_data(data):
    """A training.csv path (None: the embedded synthetic data) parsed, as a _TrainingFile,
    read once for every group; anything else (in-memory ``(X, y)``) as it is."""
    if not (data is None or isinstance(data, (str, Path))):
        return data
    from .data import read_csv

    if data is None:
        from .synthetic import ensure_default_dataset

        data = ensure_default_dataset()["training"]
    return _TrainingFile(read_csv(data), Path(data).name)


def _group_data(data, group, shape):
    """``(X, y)`` of the rows where every column of ``group`` is present, X as rows of
    ``shape`` (see :func:`_input_shape`).

    ``data``: what :func:`_read_data` returns, or what it takes. From a file the rows are
    exactly ``load(path, cols=group.columns)``'s (``load2d``'s for a net with 4-d input)."""
    from .data import select_rows

    data = _read_data(data)
    if isinstance(data, _TrainingFile):
        X, y = select_rows(data.parsed, list(group.columns), data.name)
        return _as_input(X, shape), y
    X, y = data
    y = np.asarray(y)
    idx = [KEYPOINT_COLUMNS.index(c) for c in group.columns]
    if y.ndim != 2 or y.shape[1] != len(KEYPOINT_COLUMNS):
        raise ValueError("in-memory data must be (X, y) with y of 30 columns (NaN where missing)")
    rows = np.isfinite(y[:, idx]).all(axis=1)
    return _as_input(np.asarray(X)[rows], shape), y[rows][:, idx].astype(np.float32)


def _complete_rows(data):
    """Rows with all 30 keypoints (0 for a file that is not a training file);
    ``data`` as for :func:`_group_data`."""
    from .data import DataFormatError

    try:
        data = _read_data(data)
    except DataFormatError:
        return 0
    if isinstance(data, _TrainingFile):
        return int((~np.isnan(data.parsed.keypoints).any(axis=1)).sum())
    return int(np.isfinite(np.asarray(data[1])).all(axis=1).sum())


def _best_valid_px(net):
    """The lowest validation RMSE in pixels of a fitted member, as its history measured it
    (``valid_rmse_px``); for an older history, derived from an MSE loss; else None."""
    best = best_valid_px(list(net.history), getattr(net, "criterion", None))
    return best[0] if best is not None else None


# -- stopping on a signal ----------------------------------------------------------------------

class _StopOnSignal(Callback):
    """Ends the fit after the epoch in which a graceful StopSignals received a signal."""

    def on_epoch_end(self, net, **kwargs):
        stop = active()
        if stop is not None and stop.received:
            raise KeyboardInterrupt     # skorch ends the fit loop; the caller reports it


def _fit_one(net, X, y, stop):
    """``partial_fit`` (its ``stop_on_signal`` callback stops at the end of the epoch a
    signal arrives in); True when the fit was interrupted (a signal, or a KeyboardInterrupt
    skorch swallowed mid-epoch)."""
    net.partial_fit(X, y)       # initialize() already ran: keeps the pretrained weights
    cut = len(net.history) > 0 and "train_loss" not in net.history[-1]
    return bool(cut or (stop is not None and stop.received))


@contextlib.contextmanager
def _graceful_signals():
    """The active StopSignals made graceful for the block, or one of its own (main thread)."""
    notice = "finishing this epoch, then stopping the specialists (no ensemble is made)"
    stop = active()
    if stop is not None:
        before = stop.graceful, stop.notice
        stop.graceful, stop.notice = True, notice
        try:
            yield stop
        finally:
            stop.graceful, stop.notice = before
    elif threading.current_thread() is threading.main_thread():
        with StopSignals(graceful=True, notice=notice) as stop:
            yield stop
    else:
        yield None


def _fit_members(base_net, data, groups, pretrained, base_epochs, reference_rows, epochs,
                 on_specialist):
    """Train one specialist per group: ``(members, report)``."""
    shape = _input_shape(base_net)
    state = _pretrained_state(pretrained)
    base_epochs = base_net.max_epochs if base_epochs is None else base_epochs
    members, report = [], []
    ref = None
    data = _read_data(data) if groups else data     # a file: parsed once
    with _graceful_signals() as stop:
        for i, group in enumerate(groups, start=1):
            X, y = _group_data(data, group, shape)
            n_epochs = epochs.get(group.name) if isinstance(epochs, dict) else epochs
            if n_epochs is None:
                if ref is None:
                    ref = reference_rows or _complete_rows(data) or len(X)
                n_epochs = specialist_epochs(base_epochs, len(X), ref)
            net, loaded, mismatched = make_specialist(base_net, group, state,
                                                      max_epochs=n_epochs)
            start = time.perf_counter()
            if _fit_one(net, X, y, stop):
                raise SpecialistsInterrupted(group.name, [g.name for g, _ in members],
                                             stop.requested if stop is not None else None)
            info = {"group": group.name, "index": i, "of": len(groups), "rows": len(X),
                    "epochs": len(net.history), "best_valid_rmse_px": _best_valid_px(net),
                    "loaded": loaded, "mismatched": mismatched,
                    "seconds": time.perf_counter() - start}
            members.append((group, net))
            report.append(info)
            if on_specialist is not None:
                on_specialist(info)
    return members, report


def fit_specialists(base_net: NeuralNet,
                    X_or_path: str | Path | tuple[ArrayLike, ArrayLike] | None = None,
                    groups: Iterable[str | SpecialistGroup] | None = DEFAULT_GROUPS,
                    pretrained: NeuralNet | str | os.PathLike | None = None,
                    base_epochs: int | None = None, reference_rows: int | None = None,
                    epochs: int | Mapping[str, int] | None = None,
                    on_specialist: Callable[[dict[str, Any]], object] | None = None
                    ) -> SpecialistEnsemble:
    """Train one specialist per keypoint group (the recipe's last step).

    ``SpecialistEnsemble(base_net, groups, ...).fit(...)`` in one call. Each specialist is
    made by :func:`make_specialist` and trained on every row where its group's keypoints
    are present.

    Parameters
    ----------
    base_net : NeuralNet
        The net each specialist is cloned from (unfitted is fine).
    X_or_path : str, pathlib.Path or (X, y), optional
        A training.csv path, each group's rows being ``load(path, cols=group.columns)``'s
        (``load2d``'s for a net with 4-d input); ``None`` for the embedded synthetic data;
        or ``(X, y)`` in memory with y of shape (n, 30), NaN where a keypoint is missing.
    groups : iterable of str or SpecialistGroup, default DEFAULT_GROUPS
        The groups (see :func:`get_groups`; ``None`` means all six).
    pretrained : NeuralNet, str or path-like, optional
        A fitted net, model file or run directory; every layer but the output is loaded
        where shapes match (``ensemble.report_`` says which).
    base_epochs : int, optional
        The budget :func:`specialist_epochs` scales (default ``base_net.max_epochs``).
    reference_rows : int, optional
        The rows ``base_epochs`` is meant for (default: the rows with all 30 keypoints;
        when there are none, the rows of the first group whose budget is scaled).
    epochs : int or dict, optional
        Epochs for every specialist, or ``{group name: epochs}``; groups not given get the
        scaled budget.
    on_specialist : callable, optional
        Called after each specialist with its report dict (``group``, ``index``, ``of``,
        ``rows``, ``epochs``, ``best_valid_rmse_px`` (None when not measured), ``loaded``,
        ``mismatched``, ``seconds``).

    Returns
    -------
    SpecialistEnsemble
        The fitted ensemble; ``report_`` holds one report dict per member.

    Raises
    ------
    SpecialistsInterrupted
        After Ctrl-C or SIGTERM (a ``KeyboardInterrupt``): the running epoch finished, the
        unfinished ensemble was dropped.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> ensemble = fit_specialists(fk.presets.net5(max_epochs=100), "training.csv",
    ...                            pretrained="runs/net5")            # doctest: +SKIP
    >>> print(report_table(ensemble.report_))                        # doctest: +SKIP
    """
    ensemble = SpecialistEnsemble(base_net, groups, pretrained=pretrained,
                                  base_epochs=base_epochs, reference_rows=reference_rows,
                                  epochs=epochs)
    return ensemble.fit(X_or_path, on_specialist=on_specialist)


# -- the ensemble ------------------------------------------------------------------------------

def _is_members(value):
    """Whether ``value`` is a sequence of (SpecialistGroup, net) pairs."""
    if not isinstance(value, (list, tuple)):
        return False
    return all(isinstance(item, (list, tuple)) and len(item) == 2
               and isinstance(item[0], SpecialistGroup) for item in value)


class SpecialistEnsemble(RegressorMixin, BaseEstimator):
    """Specialists stacked into one predictor of all 30 columns in KEYPOINT_COLUMNS order.

    A scikit-learn estimator: the constructor only stores its parameters, ``fit`` trains one
    specialist per group (as :func:`fit_specialists`), ``clone``, ``get_params`` /
    ``set_params`` (``base_net__max_epochs=...`` too), ``cross_val_score`` and the search
    tools work.

    Parameters
    ----------
    base_net : NeuralNet, optional
        The net each specialist is cloned from. (Given fitted members instead, a list of
        ``(SpecialistGroup, net)``, as before the ensemble was an estimator, the ensemble is
        those members, fitted; :meth:`from_members` says it more plainly.)
    groups : iterable of str or SpecialistGroup, optional
        The groups (default: all six of ``DEFAULT_GROUPS``).
    pretrained : str, path-like, dict or NeuralNet, optional
        Weights for every layer but the output (see :func:`load_pretrained`). ``clone``
        copies a net here unfitted: to sweep or cross-validate, give a model file, a run
        directory or a ``state_dict``.
    base_epochs, reference_rows, epochs : optional
        The epoch budget, as for :func:`fit_specialists`.

    Attributes
    ----------
    members_ : list of (SpecialistGroup, NeuralNet)
        The fitted members; where groups overlap, the later member wins. ``members`` is the
        same list.
    columns_ : list of str
        ``KEYPOINT_COLUMNS``, the columns of :meth:`predict`'s output.
    report_ : list of dict
        One entry per member from :meth:`fit` or :func:`load_ensemble` (rows, epochs, best
        valid RMSE in pixels, ...); empty when built from members.

    See Also
    --------
    fit_specialists : Train an ensemble.
    load_ensemble : Read one that :meth:`save` wrote.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> from sklearn.base import clone
    >>> ens = SpecialistEnsemble(fk.presets.net1(max_epochs=2), groups=["nose_tip"])
    >>> clone(ens).set_params(base_net__max_epochs=3).base_net.max_epochs
    3
    """

    def __init__(self, base_net: Any = None, groups: Iterable[str | SpecialistGroup] | None = None,
                 *, pretrained: Any = None, base_epochs: int | None = None,
                 reference_rows: int | None = None,
                 epochs: int | Mapping[str, int] | None = None) -> None:
        if _is_members(base_net):   # fitted members (the constructor before it was an estimator)
            self._set_members([(g, net) for g, net in base_net], [])
            base_net = None
        self.base_net = base_net
        self.groups = groups
        self.pretrained = pretrained
        self.base_epochs = base_epochs
        self.reference_rows = reference_rows
        self.epochs = epochs

    @classmethod
    def from_members(cls, members: Iterable[tuple[SpecialistGroup, NeuralNet]],
                     report: Iterable[Mapping[str, Any]] | None = None) -> SpecialistEnsemble:
        """An ensemble of fitted members (no base net: it predicts, it cannot be refitted).

        Parameters
        ----------
        members : iterable of (SpecialistGroup, NeuralNet)
            Each group with its fitted net.
        report : iterable of dict, optional
            What is known of each member (as ``report_``).

        Returns
        -------
        SpecialistEnsemble
            The fitted ensemble.
        """
        ensemble = cls()
        ensemble._set_members([(g, net) for g, net in members], [dict(r) for r in report or ()])
        return ensemble

    def _set_members(self, members, report):
        self.members_ = members
        self.report_ = report
        self.columns_ = list(KEYPOINT_COLUMNS)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags

    @property
    def members(self) -> list[tuple[SpecialistGroup, NeuralNet]]:
        """The fitted members (``members_``); empty before :meth:`fit`."""
        return getattr(self, "members_", [])

    @property
    def covered_columns(self) -> list[str]:
        """The columns some member predicts, in KEYPOINT_COLUMNS order."""
        covered = {c for g, _ in self.members for c in g.columns}
        return [c for c in KEYPOINT_COLUMNS if c in covered]

    def fit(self, X: str | Path | ArrayLike | None, y: ArrayLike | None = None,
            on_specialist: Callable[[dict[str, Any]], object] | None = None
            ) -> SpecialistEnsemble:
        """Train one specialist per group, each on the rows where its keypoints are present.

        Parameters
        ----------
        X : array-like, str, pathlib.Path or None
            Faces (with ``y``), or without ``y`` a training.csv path (None: the embedded
            synthetic data).
        y : array-like, optional
            (n, 30) scaled targets in KEYPOINT_COLUMNS order, NaN where a keypoint is missing.
        on_specialist : callable, optional
            Called after each specialist with its report dict (see :func:`fit_specialists`).

        Returns
        -------
        SpecialistEnsemble
            ``self``, fitted.

        Raises
        ------
        ValueError
            Without a ``base_net``, or for data of the wrong shape.
        SpecialistsInterrupted
            After Ctrl-C or SIGTERM (see :func:`fit_specialists`); ``self`` is unchanged.
        """
        if self.base_net is None:
            raise ValueError("this SpecialistEnsemble has no base_net to clone its specialists "
                             "from: SpecialistEnsemble(fk.presets.net5(), groups=...)")
        data = X if y is None else (X, y)
        members, report = _fit_members(self.base_net, data, get_groups(self.groups),
                                       self.pretrained, self.base_epochs, self.reference_rows,
                                       self.epochs, on_specialist)
        self._set_members(members, report)
        return self

    def _check_fitted(self):
        if not hasattr(self, "members_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this SpecialistEnsemble is not fitted yet: call fit(X, y) "
                                 "first, or load one with load_ensemble(directory)")

    def predict(self, X: np.ndarray, tta: bool = False) -> np.ndarray | None:
        """Predict all 30 keypoint columns, each member its own.

        Parameters
        ----------
        X : numpy.ndarray
            Faces, as rows or images; reshaped to each member's ``input_shape``.
        tta : bool, default False
            Flip test-time augmentation in every member (see
            :meth:`facekeypoints.NeuralNet.predict`): each member averages its prediction
            with the un-mirrored prediction of the mirror image, swapping its own columns.

        Returns
        -------
        numpy.ndarray or None
            (n, 30) scaled predictions in KEYPOINT_COLUMNS order; NaN where no member
            predicts. Where groups overlap, the later member wins. None for an ensemble
            without members.
        """
        self._check_fitted()
        out = None
        for group, net in self.members_:
            Xm = _as_input(X, _input_shape(net))
            pred = np.asarray(net.predict(Xm, tta=True) if tta else net.predict(Xm))
            if out is None:
                out = np.full((len(pred), len(KEYPOINT_COLUMNS)), np.nan, dtype=pred.dtype)
            out[:, [KEYPOINT_COLUMNS.index(c) for c in group.columns]] = pred
        return out

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """R^2 of the predictions, as for every scikit-learn regressor (greater is better).

        Each predicted column's R^2 is over the rows where it is labelled (NaN in ``y`` is
        unlabelled; columns no member predicts, or with fewer than two labels, are left
        out), then averaged, as :meth:`facekeypoints.NeuralNet.score` does.

        Parameters
        ----------
        X : array-like
            Faces.
        y : array-like
            (n, 30) true scaled targets, NaN where a keypoint is missing.

        Returns
        -------
        float
            The mean R^2 over the scored columns.

        Raises
        ------
        ValueError
            When no predicted column has two labelled values.
        """
        from sklearn.metrics import r2_score

        y_true = np.asarray(y, dtype=np.float64)
        y_pred = np.asarray(self.predict(X), dtype=np.float64)
        scores = []
        for j in range(y_true.shape[1]):
            rows = np.isfinite(y_true[:, j]) & np.isfinite(y_pred[:, j])
            if rows.sum() >= 2:
                scores.append(r2_score(y_true[rows, j], y_pred[rows, j]))
        if not scores:
            raise ValueError("score: no predicted column has two labelled targets")
        return float(np.mean(scores))

    def keypoint_errors(self, data: str | Path | tuple[ArrayLike, ArrayLike] | None = None,
                        split: str = "all", tta: bool = False) -> pd.DataFrame:
        """Per-keypoint RMSE in pixels, each member on its own rows of the data.

        Parameters
        ----------
        data : str, pathlib.Path or (X, y), optional
            As ``X_or_path`` of :func:`fit_specialists` (default: the embedded synthetic
            data).
        split : {'all', 'valid', 'train'}, default 'all'
            Which of each member's rows: all of them, or the validation / training fold the
            member used when trained on this data.
        tta : bool, default False
            Predict with flip test-time augmentation (see :meth:`predict`).

        Returns
        -------
        pandas.DataFrame
            Indexed by keypoint in Kaggle order, with ``group``, ``x``, ``y``, ``rmse`` and
            ``n`` (faces), plus a last row ``overall`` (group ``'all'``) whose ``rmse`` is
            pooled over every value and ``n`` is the largest member's.

        Raises
        ------
        ValueError
            When no member has any rows to evaluate.
        """
        import pandas as pd

        self._check_fitted()
        tables, sq, n_values = [], 0.0, 0
        data = _read_data(data) if self.members_ else data       # a file: parsed once
        for group, net in self.members_:
            X, y = _group_data(data, group, _input_shape(net))
            if split in ("train", "valid"):
                train, valid = net.train_valid_split(X, y)
                X, y = valid if split == "valid" else train
            if not len(X):
                continue
            pred = net.predict(X, tta=True) if tta else net.predict(X)
            t = keypoint_errors(y, pred, group.columns).drop(index="overall")
            t.insert(0, "group", group.name)
            tables.append(t)
            sq += float(squared_errors_px(y, pred).sum())
            n_values += y.size
        table = pd.concat(tables)
        order = [c[:-2] for c in KEYPOINT_COLUMNS[0::2]]
        table = table.loc[[k for k in order if k in table.index]]   # Kaggle order
        overall = math.sqrt(sq / n_values) if n_values else float("nan")
        table.loc["overall"] = ["all", float("nan"), float("nan"), overall, int(table["n"].max())]
        return table

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the ensemble to a directory, as one unit: a model file per member plus
        ``ensemble.json``.

        The files are written into a staging folder under the directory's lock, then put in
        place together (:func:`facekeypoints.runs.staged`): a kill at any moment leaves the
        previous ensemble or the new one, never members of both, and no temporary files
        (they are cleared by the next writer or reader). Member files of the previous
        ensemble that the new one lacks are removed.

        Parameters
        ----------
        directory : str or path-like
            The directory (created if needed); the CLI's ``evaluate`` and ``predict`` accept
            it, and :func:`load_ensemble` reads it back.

        Returns
        -------
        pathlib.Path
            The directory.

        Raises
        ------
        ValueError
            When the directory holds a training run (``model.pt``) rather than an ensemble.
        OSError
            A directory that cannot be written, one another process is writing
            (``RunInUseError``), or a full disk (``DiskFullError``), each in one line.
        """
        from .persist import save_model
        from .runs import staged

        self._check_fitted()
        directory = Path(directory)
        check_ensemble_target(directory)
        before = _member_files(directory)
        entries = []
        with staged(directory) as stage:
            for group, net in self.members_:
                net.columns_ = list(group.columns)
                file = f"{group.name}.pt"
                with disk_errors(directory / file):
                    save_model(net, stage / file)
                entry = {"name": group.name, "columns": list(group.columns),
                         "flip_indices": [list(p) for p in group.flip_indices], "file": file,
                         "layout": group.layout.to_dict()}
                info = next((r for r in self.report_ if r.get("group") == group.name), None)
                if info:
                    entry.update({k: info[k] for k in ("rows", "epochs", "best_valid_rmse_px",
                                                       "loaded") if k in info})
                entries.append(entry)
            with disk_errors(directory / ENSEMBLE_FILE):
                write_json(stage / ENSEMBLE_FILE, {"format": ENSEMBLE_FORMAT,
                                                   "version": ENSEMBLE_VERSION,
                                                   "members": entries}, default=float)
        for name in before - {e["file"] for e in entries}:   # an ensemble from before manifests
            with contextlib.suppress(OSError):
                (directory / name).unlink()
        return directory


def check_ensemble_target(directory: str | os.PathLike) -> None:
    """Refuse to write an ensemble into a training run's directory.

    Parameters
    ----------
    directory : str or path-like
        Where an ensemble is to be saved.

    Raises
    ------
    ValueError
        When ``directory`` holds a run (``model.pt`` or ``run.json``) and no ensemble: saving
        there would replace the run's files.
    """
    directory = Path(directory)
    if (directory / ENSEMBLE_FILE).exists():
        return
    if (directory / "model.pt").exists() or (directory / "run.json").exists():
        raise ValueError(f"{directory} holds a training run (model.pt), not a specialist "
                         "ensemble; write the ensemble to another folder")


def _member_files(directory):
    """The member files the ensemble.json in ``directory`` lists (empty when none)."""
    try:
        meta = json.loads((Path(directory) / ENSEMBLE_FILE).read_text())
        return {str(m["file"]) for m in meta["members"]
                if isinstance(m, dict) and Path(str(m["file"])).name == str(m["file"])}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def is_ensemble_dir(path: str | os.PathLike) -> bool:
    """Whether a path is a specialist ensemble directory.

    Parameters
    ----------
    path : str or path-like
        Any path.

    Returns
    -------
    bool
        True when ``path`` is a directory holding ``ensemble.json``, as
        :meth:`SpecialistEnsemble.save` writes.

    Examples
    --------
    >>> is_ensemble_dir("no/such/directory")
    False
    """
    path = Path(path)
    return path.is_dir() and (path / ENSEMBLE_FILE).is_file()


def load_ensemble(directory: str | os.PathLike, device: str = "cpu") -> SpecialistEnsemble:
    """Load a :class:`SpecialistEnsemble` saved with :meth:`SpecialistEnsemble.save`.

    Members are read with :func:`facekeypoints.load_model` (never unpickled).

    Parameters
    ----------
    directory : str or path-like
        The ensemble directory.
    device : str, default 'cpu'
        Where the members' weights go (``'auto'``: CUDA when present).

    Returns
    -------
    SpecialistEnsemble
        The ensemble; ``report_`` holds what ``ensemble.json`` recorded of each member.

    Raises
    ------
    FileNotFoundError
        When ``directory`` has no ``ensemble.json``.
    facekeypoints.persist.ModelFileError
        When ``ensemble.json`` is damaged or not an ensemble's, names a member file outside
        ``directory``, or a member's columns do not match it.
    """
    from .persist import ModelFileError, load_model
    from .runs import settle

    directory = Path(directory)
    settle(directory)     # a save killed after its commit point: finish putting it in place
    try:
        meta = json.loads((directory / ENSEMBLE_FILE).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no {ENSEMBLE_FILE} in {directory}") from None
    except json.JSONDecodeError:
        raise ModelFileError(f"{directory / ENSEMBLE_FILE} is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != ENSEMBLE_FORMAT:
        raise ModelFileError(f"{directory / ENSEMBLE_FILE} is not a specialist ensemble")
    members, report = [], []
    for entry in meta.get("members", []):
        file = Path(entry["file"])
        if file.is_absolute() or ".." in file.parts:
            raise ModelFileError(f"{ENSEMBLE_FILE}: member file {entry['file']!r} is outside "
                                 f"{directory}")
        group = SpecialistGroup(entry["name"], tuple(entry["columns"]))
        net = load_model(directory / file, device=device)
        if list(net.columns_ or []) != list(group.columns):
            raise ModelFileError(f"{directory / file}: its columns do not match {ENSEMBLE_FILE}")
        members.append((group, net))
        report.append({k: v for k, v in entry.items() if k not in ("columns", "file", "layout")}
                      | {"group": entry["name"]})
    return SpecialistEnsemble.from_members(members, report)


def report_table(report: Iterable[Mapping[str, Any]]) -> str:
    """The final table of a specialist run: group, rows used, epochs, best valid RMSE px.

    Parameters
    ----------
    report : iterable of dict
        Report dicts with ``group``, ``rows``, ``epochs`` and ``best_valid_rmse_px``, as in
        ``SpecialistEnsemble.report_``.

    Returns
    -------
    str
        A tabulate table, one line per specialist (``-`` where no RMSE in pixels was
        measured).

    Examples
    --------
    >>> print(report_table([{"group": "eye_centers", "rows": 7033, "epochs": 304,
    ...                      "best_valid_rmse_px": 1.2345}]))
    group          rows    epochs    best valid RMSE px
    -----------  ------  --------  --------------------
    eye_centers    7033       304                  1.23
    """
    from tabulate import tabulate

    rows = [(r["group"], r["rows"], r["epochs"], r.get("best_valid_rmse_px")) for r in report]
    return tabulate(rows, headers=["group", "rows", "epochs", "best valid RMSE px"],
                    floatfmt=".2f", missingval="-")
