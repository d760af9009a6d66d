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
from typing import NamedTuple

import numpy as np

from .data import FLIP_INDICES, IMAGE_SIDE, KEYPOINT_COLUMNS, PIXELS_PER_UNIT, ParsedCSV

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = "facekeypoints-ensemble"
ENSEMBLE_VERSION = 1


def _xy(*names):
    return tuple(f"{n}_{c}" for n in names for c in ("x", "y"))


def local_flip_indices(columns, flip_indices=FLIP_INDICES):
    """The global flip pairs restricted to ``columns``, renumbered to positions in ``columns``.

    A pair with only one side in ``columns`` is an error: mirroring would then need a column
    the net does not predict."""
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
    """A keypoint group: a name and its columns (x, y pairs, in KEYPOINT_COLUMNS names)."""

    name: str
    columns: tuple
    flip_indices: tuple = field(init=False)

    def __post_init__(self):
        unknown = [c for c in self.columns if c not in KEYPOINT_COLUMNS]
        if unknown:
            raise ValueError(f"group {self.name!r}: unknown keypoint column {unknown[0]!r}")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "flip_indices", local_flip_indices(self.columns))

    @property
    def n_outputs(self):
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
GROUPS_BY_NAME = {g.name: g for g in DEFAULT_GROUPS}


def get_groups(names=None):
    """Groups by name (all six when ``names`` is None)."""
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


def specialist_epochs(base_epochs, n_rows, reference_rows):
    """The epoch budget for a specialist with ``n_rows`` training rows.

    ``base_epochs * reference_rows / n_rows``, rounded, at least 1: the number of weight updates
    stays that of ``base_epochs`` epochs on ``reference_rows`` rows (by default the rows with all
    30 keypoints, i.e. what the base net trains on). More rows -> fewer epochs. This is the
    recipe's ``int(1e7 / y.shape[0])`` with the constant tied to the base net's budget."""
    return max(1, int(round(base_epochs * reference_rows / max(1, n_rows))))


# -- building one specialist -----------------------------------------------------------------

def _output_layer(net):
    return net.layers[-1][0]


def _flat_input(net):
    shape = net._layer_kwargs().get("input_shape")
    return shape is not None and len(shape) == 2


def _pretrained_state(pretrained):
    """A state dict from a fitted net, a model file or a run directory."""
    if pretrained is None:
        return None
    if hasattr(pretrained, "module_"):
        return {k: v.detach().cpu() for k, v in pretrained.module_.state_dict().items()}
    from .persist import read_model_file

    return read_model_file(pretrained)["state_dict"]


def load_pretrained(net, pretrained, skip=None):
    """Copy into an initialized ``net`` every parameter of ``pretrained`` whose name and shape
    match, except the layers in ``skip`` (default: the output layer).

    Returns ``(loaded, mismatched)``: layer names whose parameters were all loaded, and
    ``{layer: reason}`` for those that were not."""
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


def make_specialist(base_net, group, pretrained=None, max_epochs=None):
    """An initialized clone of ``base_net`` for ``group`` (output width, flip pairs), with the
    pretrained layers loaded. Returns ``(net, loaded, mismatched)``."""
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
    from .runs import rmse_px

    valid = [h["valid_loss"] for h in net.history if h.get("valid_loss") is not None]
    return rmse_px(min(valid)) if valid else float("nan")


def fit_specialists(base_net, X_or_path=None, groups=DEFAULT_GROUPS, pretrained=None,
                    base_epochs=None, reference_rows=None, epochs=None, on_specialist=None):
    """Train one specialist per group; returns a :class:`SpecialistEnsemble`.

    ``X_or_path``: a training.csv path (None: the embedded synthetic data), each group loaded
    with ``load(cols=group.columns)``; or ``(X, y)`` with y (n, 30), NaN where missing.
    ``pretrained``: a fitted net, model file or run directory; every layer but the output is
    loaded where shapes match (``ensemble.report_`` says which). Epochs: ``epochs`` (an int,
    or {group name: int}) when given, else :func:`specialist_epochs` of ``base_epochs``
    (default ``base_net.max_epochs``) and ``reference_rows`` (default: rows with all 30
    keypoints). ``on_specialist(info)`` is called after each specialist with its report dict.
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
    """Specialists stacked into one predictor of all 30 columns in KEYPOINT_COLUMNS order."""

    def __init__(self, members):
        self.members = [(g, net) for g, net in members]
        self.columns_ = list(KEYPOINT_COLUMNS)
        self.report_ = []

    @property
    def covered_columns(self):
        """The columns some member predicts, in KEYPOINT_COLUMNS order."""
        covered = {c for g, _ in self.members for c in g.columns}
        return [c for c in KEYPOINT_COLUMNS if c in covered]

    def predict(self, X):
        """(n, 30) scaled predictions in KEYPOINT_COLUMNS order; NaN where no member predicts.
        Where groups overlap, the later member wins."""
        out = None
        for group, net in self.members:
            Xm = X.reshape(len(X), -1) if _flat_input(net) else X.reshape(len(X), 1, 96, 96)
            pred = np.asarray(net.predict(Xm))
            if out is None:
                out = np.full((len(pred), len(KEYPOINT_COLUMNS)), np.nan, dtype=pred.dtype)
            out[:, [KEYPOINT_COLUMNS.index(c) for c in group.columns]] = pred
        return out

    def keypoint_errors(self, data=None, split="all"):
        """Per-keypoint RMSE in pixels, each member on its own rows of ``data`` (its split
        with ``split='valid'``/``'train'``), plus ``overall`` pooled over every value."""
        import pandas as pd

        from .runs import keypoint_errors, validation_split

        tables, sq, n_values = [], 0.0, 0
        data = _read_data(data) if self.members else data       # a file: parsed once
        for group, net in self.members:
            X, y = _group_data(data, group, _flat_input(net))
            if split == "valid":
                X, y = validation_split(net, X, y)
            elif split == "train":
                n_valid = net._n_valid(len(X))
                X, y = X[n_valid:], y[n_valid:]
            if not len(X):
                continue
            pred = net.predict(X)
            t = keypoint_errors(y, pred, group.columns).drop(index="overall")
            t.insert(0, "group", group.name)
            tables.append(t)
            sq += float((((pred - y) * PIXELS_PER_UNIT) ** 2).sum())
            n_values += y.size
        table = pd.concat(tables)
        order = [c[:-2] for c in KEYPOINT_COLUMNS[0::2]]
        table = table.loc[[k for k in order if k in table.index]]   # Kaggle order
        overall = math.sqrt(sq / n_values) if n_values else float("nan")
        table.loc["overall"] = ["all", float("nan"), float("nan"), overall, int(table["n"].max())]
        return table

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory):
        """One safe model file per member plus ``ensemble.json``; returns the directory."""
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
        text = json.dumps({"format": ENSEMBLE_FORMAT, "version": ENSEMBLE_VERSION,
                           "members": entries}, indent=1, default=float)
        (directory / ENSEMBLE_FILE).write_text(text)
        return directory


def is_ensemble_dir(path):
    """True when ``path`` is a directory written by :meth:`SpecialistEnsemble.save`."""
    path = Path(path)
    return path.is_dir() and (path / ENSEMBLE_FILE).is_file()


def load_ensemble(directory, device="cpu"):
    """Load a :class:`SpecialistEnsemble` saved with :meth:`SpecialistEnsemble.save`."""
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


def report_table(report):
    """The final table: group, rows used, epochs, best valid RMSE px."""
    header = f"{'group':<12}  {'rows':>6}  {'epochs':>6}  {'best valid RMSE px':>18}"
    lines = [header, "-" * len(header)]
    for r in report:
        lines.append(f"{r['group']:<12}  {r['rows']:>6}  {r['epochs']:>6}  "
                     f"{r['best_valid_rmse_px']:>18.2f}")
    return "\n".join(lines)
