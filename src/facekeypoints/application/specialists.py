"""Specialists: one net per keypoint group, each trained on every row where its group is present.

The recipe's last step. Kaggle's training.csv has all 15 keypoints on only ~2,140 of its 7,049
faces; a net that predicts just the eye centres can use ~7,000. Each specialist is a clone of a
base net (same layers, schedule and batch size) with

* an output layer as wide as its group (2 values per keypoint),
* its own flip pairs: the global ``FLIP_INDICES`` restricted to its columns, renumbered,
* optionally every layer but the output loaded from a pretrained full net (where shapes match),
* an epoch budget scaled inversely with its rows (see :func:`specialist_epochs`).

:class:`SpecialistEnsemble` stacks the members into one (n, 30) prediction in
``KEYPOINT_COLUMNS`` order, and saves/loads as a directory: one safe model file per member plus
``ensemble.json``. The CLI's ``evaluate`` and ``predict`` accept such a directory.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._safe_io import write_json
from .data import FLIP_INDICES, IMAGE_SIDE, KEYPOINT_COLUMNS, ParsedCSV
from .metrics import rmse_px, squared_errors_px
from .reports import keypoint_errors

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Mapping, Sequence

    import pandas as pd
    from numpy.typing import ArrayLike

    from .net import NeuralNet

__all__ = ["SpecialistGroup", "DEFAULT_GROUPS", "GROUPS_BY_NAME", "get_groups",
           "local_flip_indices", "specialist_epochs", "load_pretrained", "make_specialist",
           "fit_specialists", "SpecialistEnsemble", "is_ensemble_dir", "load_ensemble",
           "report_table", "ENSEMBLE_FILE", "ENSEMBLE_FORMAT", "ENSEMBLE_VERSION"]

#: The file that marks a specialist ensemble directory and lists its members.
ENSEMBLE_FILE = "ensemble.json"
#: The ``format`` entry of ``ensemble.json``.
ENSEMBLE_FORMAT = "facekeypoints-ensemble"
#: The ``version`` entry of ``ensemble.json``.
ENSEMBLE_VERSION = 1


def _xy(*names):
    return tuple(f"{n}_{c}" for n in names for c in ("x", "y"))


def local_flip_indices(columns: Sequence[str],
                       flip_indices: Iterable[tuple[int, int]] = FLIP_INDICES
                       ) -> tuple[tuple[int, int], ...]:
    """The global flip pairs restricted to ``columns``, renumbered to positions in ``columns``.

    Parameters
    ----------
    columns : sequence of str
        Keypoint column names (``KEYPOINT_COLUMNS`` names), in the order a net predicts them.
    flip_indices : iterable of (int, int), default FLIP_INDICES
        Pairs of positions in ``KEYPOINT_COLUMNS`` that swap when a face is mirrored.

    Returns
    -------
    tuple of (int, int)
        The pairs with both columns in ``columns``, as sorted positions in ``columns``.

    Raises
    ------
    ValueError
        When a pair has only one side in ``columns``: mirroring would then need a column the
        net does not predict.

    Examples
    --------
    >>> local_flip_indices(["right_eye_center_x", "right_eye_center_y",
    ...                     "left_eye_center_x", "left_eye_center_y"])
    ((0, 2), (1, 3))
    >>> local_flip_indices(["nose_tip_x", "nose_tip_y"])
    ()
    """
    columns = list(columns)
    pairs = []
    for a, b in flip_indices:
        ca, cb = KEYPOINT_COLUMNS[a], KEYPOINT_COLUMNS[b]
        if ca in columns and cb in columns:
            pairs.append(tuple(sorted((columns.index(ca), columns.index(cb)))))
        elif ca in columns or cb in columns:
            raise ValueError(f"columns hold {ca if ca in columns else cb!r} but not its mirror "
                             f"image {cb if ca in columns else ca!r}")
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class SpecialistGroup:
    """A keypoint group: a name and its columns, the outputs of one specialist net.

    Parameters
    ----------
    name : str
        The group's name (it names the member's model file in an ensemble directory).
    columns : sequence of str
        Its columns, x, y pairs in ``KEYPOINT_COLUMNS`` names; stored as a tuple.

    Attributes
    ----------
    flip_indices : tuple of (int, int)
        The group's own flip pairs (:func:`local_flip_indices` of ``columns``).
    n_outputs : int
        Outputs of the group's net, ``len(columns)``.

    Raises
    ------
    ValueError
        For a column that is not in ``KEYPOINT_COLUMNS``, or a column whose mirror image is
        missing from ``columns``.

    Examples
    --------
    >>> eyes = SpecialistGroup("eyes", ("left_eye_center_x", "left_eye_center_y",
    ...                                 "right_eye_center_x", "right_eye_center_y"))
    >>> eyes.n_outputs, eyes.flip_indices
    (4, ((0, 2), (1, 3)))
    """

    name: str
    columns: tuple[str, ...]
    flip_indices: tuple[tuple[int, int], ...] = field(init=False)

    def __post_init__(self):
        unknown = [c for c in self.columns if c not in KEYPOINT_COLUMNS]
        if unknown:
            raise ValueError(f"group {self.name!r}: unknown keypoint column {unknown[0]!r}")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "flip_indices", local_flip_indices(self.columns))

    @property
    def n_outputs(self) -> int:
        """Outputs of the group's net: two per keypoint."""
        return len(self.columns)


#: The recipe's six groups (Daniel Nouri's SPECIALIST_SETTINGS), in its order.
DEFAULT_GROUPS = (
    SpecialistGroup("eye_centers", _xy("left_eye_center", "right_eye_center")),
    SpecialistGroup("nose_tip", _xy("nose_tip")),
    SpecialistGroup("mouth", _xy("mouth_left_corner", "mouth_right_corner",
                                 "mouth_center_top_lip")),
    SpecialistGroup("bottom_lip", _xy("mouth_center_bottom_lip")),
    SpecialistGroup("eye_corners", _xy("left_eye_inner_corner", "right_eye_inner_corner",
                                       "left_eye_outer_corner", "right_eye_outer_corner")),
    SpecialistGroup("eyebrows", _xy("left_eyebrow_inner_end", "right_eyebrow_inner_end",
                                    "left_eyebrow_outer_end", "right_eyebrow_outer_end")),
)
#: The default groups by name.
GROUPS_BY_NAME = {g.name: g for g in DEFAULT_GROUPS}


def get_groups(names: Iterable[str | SpecialistGroup] | None = None
               ) -> tuple[SpecialistGroup, ...]:
    """Specialist groups by name.

    Parameters
    ----------
    names : iterable of str or SpecialistGroup, optional
        Names of default groups (see ``GROUPS_BY_NAME``) or groups of one's own; by default
        all six of ``DEFAULT_GROUPS``.

    Returns
    -------
    tuple of SpecialistGroup
        The groups, in the order given.

    Raises
    ------
    ValueError
        For a name that is not a default group's.

    Examples
    --------
    >>> [g.name for g in get_groups()]
    ['eye_centers', 'nose_tip', 'mouth', 'bottom_lip', 'eye_corners', 'eyebrows']
    >>> get_groups(["nose_tip"])
    (SpecialistGroup(name='nose_tip', columns=('nose_tip_x', 'nose_tip_y'), flip_indices=()),)
    """
    if names is None:
        return DEFAULT_GROUPS
    out = []
    for n in names:
        if isinstance(n, SpecialistGroup):
            out.append(n)
        elif n in GROUPS_BY_NAME:
            out.append(GROUPS_BY_NAME[n])
        else:
            raise ValueError(f"unknown specialist group {n!r}; choose from "
                             f"{', '.join(GROUPS_BY_NAME)}")
    return tuple(out)


def specialist_epochs(base_epochs: int, n_rows: int, reference_rows: int) -> int:
    """The epoch budget for a specialist with ``n_rows`` training rows.

    The number of weight updates stays that of ``base_epochs`` epochs on ``reference_rows``
    rows: more rows, fewer epochs. This is the recipe's ``int(1e7 / y.shape[0])`` with the
    constant tied to the base net's budget.

    Parameters
    ----------
    base_epochs : int
        The base net's epoch budget.
    n_rows : int
        Training rows of the specialist (rows where its keypoints are present).
    reference_rows : int
        Rows the base budget is meant for; :func:`fit_specialists` uses the rows with all 30
        keypoints, i.e. what the base net trains on.

    Returns
    -------
    int
        ``base_epochs * reference_rows / n_rows``, rounded, at least 1.

    Examples
    --------
    >>> specialist_epochs(1000, n_rows=7033, reference_rows=2140)
    304
    """
    return max(1, int(round(base_epochs * reference_rows / max(1, n_rows))))


# -- building one specialist -----------------------------------------------------------------

def _output_layer(net):
    return net.layers[-1][0]


def _flat_input(net):
    shape = net.layer_params().get("input_shape")
    return shape is not None and len(shape) == 2


def _pretrained_state(pretrained):
    """A state dict from a fitted net, a model file or a run directory."""
    if pretrained is None:
        return None
    if hasattr(pretrained, "module_"):
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

    The clone gets an output layer as wide as the group (``output_num_units``), its own flip
    pairs (when the base net trains with a ``FlipBatchIterator``) and ``columns_``; sklearn's
    ``clone`` is used, or a deep copy when a callback cannot be cloned.

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
    from sklearn.base import clone

    from .iterators import FlipBatchIterator

    try:
        net = clone(base_net)
    except RuntimeError:        # a callback sklearn cannot clone: copy the whole net instead
        import copy

        net = copy.deepcopy(base_net)
    params = {"output_num_units": group.n_outputs}
    if max_epochs is not None:
        params["max_epochs"] = int(max_epochs)
    it = net.batch_iterator_train
    if isinstance(it, FlipBatchIterator):
        params["batch_iterator_train"] = FlipBatchIterator(
            batch_size=it.batch_size, flip_indices=group.flip_indices, shuffle=it.shuffle,
            random_state=it.random_state)
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


def _group_data(data, group, flat):
    """``(X, y)`` of the rows where every column of ``group`` is present.

    ``data``: what :func:`_read_data` returns, or what it takes. From a file the rows are
    exactly ``load(path, cols=group.columns)``'s (``load2d``'s unless ``flat``)."""
    from .data import select_rows

    data = _read_data(data)
    if isinstance(data, _TrainingFile):
        X, y = select_rows(data.parsed, list(group.columns), data.name)
        return (X if flat else X.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)), y
    X, y = data
    y = np.asarray(y)
    idx = [KEYPOINT_COLUMNS.index(c) for c in group.columns]
    if y.shape[1] != len(KEYPOINT_COLUMNS):
        raise ValueError("in-memory data must be (X, y) with y of 30 columns (NaN where missing)")
    rows = np.isfinite(y[:, idx]).all(axis=1)
    X = np.asarray(X)[rows]
    X = X.reshape(len(X), -1) if flat else X.reshape(len(X), 1, IMAGE_SIDE, IMAGE_SIDE)
    return X, y[rows][:, idx].astype(np.float32)


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
    valid = [h["valid_loss"] for h in net.history if h.get("valid_loss") is not None]
    return rmse_px(min(valid)) if valid else float("nan")


def fit_specialists(base_net: NeuralNet,
                    X_or_path: str | Path | tuple[ArrayLike, ArrayLike] | None = None,
                    groups: Iterable[str | SpecialistGroup] | None = DEFAULT_GROUPS,
                    pretrained: NeuralNet | str | os.PathLike | None = None,
                    base_epochs: int | None = None, reference_rows: int | None = None,
                    epochs: int | Mapping[str, int] | None = None,
                    on_specialist: Callable[[dict[str, Any]], object] | None = None
                    ) -> SpecialistEnsemble:
    """Train one specialist per keypoint group (the recipe's last step).

    Each specialist is made by :func:`make_specialist` and trained on every row where its
    group's keypoints are present.

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
        ``rows``, ``epochs``, ``best_valid_rmse_px``, ``loaded``, ``mismatched``,
        ``seconds``).

    Returns
    -------
    SpecialistEnsemble
        The fitted specialists; ``report_`` holds one report dict per member.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> ensemble = fit_specialists(fk.presets.net5(max_epochs=100), "training.csv",
    ...                            pretrained="runs/net5")            # doctest: +SKIP
    >>> print(report_table(ensemble.report_))                        # doctest: +SKIP
    """
    groups = get_groups(groups)
    flat = _flat_input(base_net)
    state = _pretrained_state(pretrained)
    base_epochs = base_net.max_epochs if base_epochs is None else base_epochs
    members, report = [], []
    ref = None
    data = _read_data(X_or_path) if groups else X_or_path     # a file: parsed once
    for i, group in enumerate(groups, start=1):
        X, y = _group_data(data, group, flat)
        if isinstance(epochs, dict):
            n_epochs = epochs.get(group.name)
        else:
            n_epochs = epochs
        if n_epochs is None:
            if ref is None:
                ref = reference_rows or _complete_rows(data) or len(X)
            n_epochs = specialist_epochs(base_epochs, len(X), ref)
        net, loaded, mismatched = make_specialist(base_net, group, state, max_epochs=n_epochs)
        start = time.perf_counter()
        net.partial_fit(X, y)       # initialize() already ran: keeps the pretrained weights
        info = {"group": group.name, "index": i, "of": len(groups), "rows": len(X),
                "epochs": len(net.history), "best_valid_rmse_px": _best_valid_px(net),
                "loaded": loaded, "mismatched": mismatched,
                "seconds": time.perf_counter() - start}
        members.append((group, net))
        report.append(info)
        if on_specialist is not None:
            on_specialist(info)
    ensemble = SpecialistEnsemble(members)
    ensemble.report_ = report
    return ensemble


# -- the ensemble ------------------------------------------------------------------------------

class SpecialistEnsemble:
    """Specialists stacked into one predictor of all 30 columns in KEYPOINT_COLUMNS order.

    Parameters
    ----------
    members : iterable of (SpecialistGroup, NeuralNet)
        Each group with its fitted net; where groups overlap, the later member wins.

    Attributes
    ----------
    members : list of (SpecialistGroup, NeuralNet)
        The members.
    columns_ : list of str
        ``KEYPOINT_COLUMNS``, the columns of :meth:`predict`'s output.
    report_ : list of dict
        One entry per member from :func:`fit_specialists` or :func:`load_ensemble`
        (rows, epochs, best valid RMSE in pixels, ...); empty when built directly.

    See Also
    --------
    fit_specialists : Train an ensemble.
    load_ensemble : Read one that :meth:`save` wrote.
    """

    def __init__(self, members: Iterable[tuple[SpecialistGroup, NeuralNet]]):
        self.members = [(g, net) for g, net in members]
        self.columns_ = list(KEYPOINT_COLUMNS)
        self.report_ = []

    @property
    def covered_columns(self) -> list[str]:
        """The columns some member predicts, in KEYPOINT_COLUMNS order."""
        covered = {c for g, _ in self.members for c in g.columns}
        return [c for c in KEYPOINT_COLUMNS if c in covered]

    def predict(self, X: np.ndarray, tta: bool = False) -> np.ndarray | None:
        """Predict all 30 keypoint columns, each member its own.

        Parameters
        ----------
        X : numpy.ndarray
            Faces, (n, 9216) or (n, 1, 96, 96); reshaped for each member's input.
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
        out = None
        for group, net in self.members:
            Xm = X.reshape(len(X), -1) if _flat_input(net) else X.reshape(len(X), 1, 96, 96)
            pred = np.asarray(net.predict(Xm, tta=True) if tta else net.predict(Xm))
            if out is None:
                out = np.full((len(pred), len(KEYPOINT_COLUMNS)), np.nan, dtype=pred.dtype)
            out[:, [KEYPOINT_COLUMNS.index(c) for c in group.columns]] = pred
        return out

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

        tables, sq, n_values = [], 0.0, 0
        data = _read_data(data) if self.members else data       # a file: parsed once
        for group, net in self.members:
            X, y = _group_data(data, group, _flat_input(net))
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
        """Write the ensemble to a directory: one safe model file per member plus ``ensemble.json``.

        Parameters
        ----------
        directory : str or path-like
            The directory (created if needed); the CLI's ``evaluate`` and ``predict`` accept
            it, and :func:`load_ensemble` reads it back.

        Returns
        -------
        pathlib.Path
            The directory.
        """
        from .persist import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for group, net in self.members:
            net.columns_ = list(group.columns)
            file = f"{group.name}.pt"
            save_model(net, directory / file)
            entry = {"name": group.name, "columns": list(group.columns),
                     "flip_indices": [list(p) for p in group.flip_indices], "file": file}
            info = next((r for r in self.report_ if r.get("group") == group.name), None)
            if info:
                entry.update({k: info[k] for k in ("rows", "epochs", "best_valid_rmse_px",
                                                   "loaded") if k in info})
            entries.append(entry)
        write_json(directory / ENSEMBLE_FILE, {"format": ENSEMBLE_FORMAT,
                                               "version": ENSEMBLE_VERSION,
                                               "members": entries}, default=float)
        return directory


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

    directory = Path(directory)
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
        report.append({k: v for k, v in entry.items() if k not in ("columns", "file")}
                      | {"group": entry["name"]})
    ensemble = SpecialistEnsemble(members)
    ensemble.report_ = report
    return ensemble


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
        A tabulate table, one line per specialist.

    Examples
    --------
    >>> print(report_table([{"group": "eye_centers", "rows": 7033, "epochs": 304,
    ...                      "best_valid_rmse_px": 1.2345}]))
    group          rows    epochs    best valid RMSE px
    -----------  ------  --------  --------------------
    eye_centers    7033       304                  1.23
    """
    from tabulate import tabulate

    rows = [(r["group"], r["rows"], r["epochs"], r["best_valid_rmse_px"]) for r in report]
    return tabulate(rows, headers=["group", "rows", "epochs", "best valid RMSE px"],
                    floatfmt=".2f")
