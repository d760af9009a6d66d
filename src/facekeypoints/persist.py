"""Save and load trained nets without pickle: weights plus a JSON config.

A model file is a torch archive holding only tensors and strings, read back with
``torch.load(weights_only=True)``, which refuses anything that could run code. The net is
rebuilt from the JSON config (layer list, layer keywords, update rule, hyperparameters) and
the weights are loaded into it. Writes are atomic: a crash never leaves half a model where a
good one was.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> from facekeypoints import NeuralNet
>>> from facekeypoints.layers import DenseLayer, InputLayer
>>> from facekeypoints.persist import load_model, save_model
>>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
...                 input_shape=(None, 4), output_num_units=2, output_nonlinearity=None,
...                 max_epochs=2, random_state=0, device='cpu')
>>> X = np.random.default_rng(0).random((10, 4), dtype=np.float32)
>>> y = X[:, :2] - 0.5
>>> _ = net.fit(X, y)
>>> with tempfile.TemporaryDirectory() as folder:
...     path = save_model(net, Path(folder) / 'model.pt')
...     loaded = load_model(path)
>>> np.array_equal(loaded.predict(X), net.predict(X))
True
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._json import jsonable
from ._safe_io import atomic_torch_save, load_archive
from .iterators import BatchIterator, FlipBatchIterator
from .layers import LAYER_TYPES, layer_class, nonlinearity_name
from .progress import EpochProgress
from .schedules import Schedule
from .updates import UPDATES

if TYPE_CHECKING:
    import os

    from .net import NeuralNet

__all__ = ["FORMAT", "VERSION", "ModelFileError", "build_net", "history_records", "load_model",
           "net_config", "read_model_file", "save_model"]

#: The ``format`` field of every model file.
FORMAT = "facekeypoints-model"
#: The model file format version this release writes (and the newest it reads).
VERSION = 1


class ModelFileError(ValueError):
    """Raised for a file that is not a facekeypoints model, or one this version cannot build.

    That covers files holding anything but tensors and plain data (never unpickled), a
    damaged config, a newer format version, unknown layer types, update rules or batch
    iterators, and weights that do not fit the config. A subclass of ``ValueError``.
    """


def net_config(net: NeuralNet, training: bool = False) -> dict[str, Any]:
    """Describe a net as JSON-safe data: what model files and ``config.json`` hold.

    One format for both: the model part (layers, layer keywords, update rule, hyperparameters
    as they are now, batch iterators, regression, max_epochs, eval_size, columns) is what
    :func:`build_net` rebuilds a net from; ``training=True`` adds the training plumbing a
    model file does not need (callbacks with their parameters, nolearn handlers, the batch
    iterators' reprs, random state, device).

    Parameters
    ----------
    net : NeuralNet
        A fitted or unfitted net. Call this before ``fit`` to record a schedule's starting
        values.
    training : bool, default False
        Add the training plumbing. ``module=`` nets have no model part; with ``training=True``
        their description holds a ``note`` saying so instead of raising.

    Returns
    -------
    dict
        Plain JSON data.

    Raises
    ------
    ValueError
        Without ``training``, for a net that cannot be saved as a safe model file (a
        ``module=`` net, a custom update rule, a layer keyword JSON cannot hold).

    Examples
    --------
    >>> from facekeypoints import NeuralNet
    >>> from facekeypoints.layers import DenseLayer, InputLayer
    >>> from facekeypoints.persist import net_config
    >>> config = net_config(NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
    ...                               input_shape=(None, 4), output_num_units=2))
    >>> config['layers']
    [['input', 'InputLayer'], ['output', 'DenseLayer']]
    >>> config['update'], config['hyperparameters']
    ('nesterov_momentum', {'update_learning_rate': 0.01})
    """
    try:
        config = _model_config(net)
    except ValueError as exc:
        if not training:
            raise
        config = {"note": str(exc)}
    if training:
        config.update(_training_config(net))
    return config


def _model_config(net):
    if net.layers is None:
        raise ValueError("only nets defined by layers=[...] can be saved as a safe model file; "
                         "for module= nets use pickle or torch.save(net.module_.state_dict())")
    layer_kwargs = {}
    for key, value in net.layer_params().items():
        if key.endswith("_nonlinearity"):
            name = nonlinearity_name(value)
            if not isinstance(name, str):
                raise ValueError(f"{key}={value!r} cannot be saved; use a name such as 'relu'")
            value = name
        try:
            layer_kwargs[key] = jsonable(value)
        except TypeError:
            raise ValueError(f"{key}={value!r} cannot be written to a JSON config") from None
    update_name = getattr(net.update, "__name__", None)
    if UPDATES.get(update_name) is not net.update:
        raise ValueError(f"update rule {net.update!r} cannot be saved; "
                         f"use one of {sorted(UPDATES)}")
    return {
        "batch_iterators": {"train": _iterator_config(net.batch_iterator_train),
                            "test": _iterator_config(net.batch_iterator_test)},
        "layers": [[name, layer_class(spec).__name__] for name, spec in net.layers],
        "layer_kwargs": layer_kwargs,
        "update": update_name,
        "hyperparameters": net.hyperparameter_values(),
        "regression": bool(net.regression),
        "max_epochs": int(net.max_epochs),
        "eval_size": net.eval_size,
        "columns": list(getattr(net, "columns_", []) or []),
    }


def _training_config(net):
    try:                  # set_params(callbacks__adjust_lr=...) replaces a callback here only
        params = net.get_params()
    except Exception:
        params = {}
    items = []
    for item in net.callbacks or []:
        if isinstance(item, (tuple, list)):
            item = (item[0], params.get(f"callbacks__{item[0]}", item[1]))
        if not isinstance(item[1] if isinstance(item, tuple) else item, EpochProgress):
            items.append(item)     # a progress bar is display, not part of the training
    config = {"callbacks": [_describe_callback(item) for item in items]}
    for key in ("on_epoch_finished", "on_training_finished"):
        handlers = getattr(net, key, None) or []
        if handlers:
            config[key] = [_describe_callback(h) for h in handlers]
    for key in ("batch_iterator_train", "batch_iterator_test"):
        it = getattr(net, key, None)
        config[key] = None if it is None else repr(it)
    config["random_state"] = getattr(net, "random_state", None)
    config["device"] = str(getattr(net, "device", ""))
    return jsonable(config, fallback=str)


def _describe_callback(item):
    name, cb = item if isinstance(item, (tuple, list)) else (None, item)
    entry = {"name": name, "class": type(cb).__name__}
    get_params = getattr(cb, "get_params", None)
    if callable(get_params):
        try:
            entry["params"] = {k: repr(v) if isinstance(v, Schedule) else v
                               for k, v in get_params().items()
                               if isinstance(v, (bool, int, float, str, type(None), Schedule))}
        except Exception:          # a third-party callback with odd params: name it only
            pass
    return entry


def _iterator_config(iterator):
    """Built-in iterators by kind and batch size; anything else falls back to the default."""
    if type(iterator) not in (BatchIterator, FlipBatchIterator):
        return None
    config = {"kind": type(iterator).__name__, "batch_size": int(iterator.batch_size)}
    if isinstance(iterator, FlipBatchIterator):
        config["flip_indices"] = [list(map(int, pair)) for pair in iterator.flip_indices]
    return config


def _iterator_from_config(config):
    if not config:
        return None
    kinds = {"BatchIterator": BatchIterator, "FlipBatchIterator": FlipBatchIterator}
    if config.get("kind") not in kinds:
        raise ModelFileError(f"the model config names an unknown batch iterator "
                             f"{config.get('kind')!r}; known: {', '.join(kinds)}")
    kwargs = {"batch_size": int(config["batch_size"])}
    if "flip_indices" in config:
        kwargs["flip_indices"] = [tuple(pair) for pair in config["flip_indices"]]
    return kinds[config["kind"]](**kwargs)


def build_net(config: dict[str, Any], **overrides: Any) -> NeuralNet:
    """Build a fresh, unfitted NeuralNet from a config written by :func:`net_config`.

    Only the model part is used: layers and their keywords, the update rule and
    hyperparameters, batch iterators, ``regression``, ``max_epochs`` and ``eval_size``.
    Callbacks are not rebuilt, and the net is quiet (``verbose=0``).

    Parameters
    ----------
    config : dict
        The net's description, as :func:`net_config` (or a model file) holds it.
    **overrides
        NeuralNet keywords that replace the config's or add to them, e.g. ``device='cpu'``
        or ``max_epochs=50``.

    Returns
    -------
    NeuralNet
        Configured but not initialized.

    Raises
    ------
    ModelFileError
        If the config names a layer type, update rule or batch iterator this version does
        not know, or its ``layers`` is malformed.

    Examples
    --------
    >>> from facekeypoints import NeuralNet
    >>> from facekeypoints.layers import DenseLayer, InputLayer
    >>> from facekeypoints.persist import build_net, net_config
    >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
    ...                 input_shape=(None, 4), output_num_units=2, max_epochs=5)
    >>> copy = build_net(net_config(net), max_epochs=7)
    >>> copy.output_num_units, copy.max_epochs
    (2, 7)
    """
    from .net import NeuralNet

    try:
        layers = [(str(name), LAYER_TYPES[kind]) for name, kind in config["layers"]]
    except KeyError as exc:
        raise ModelFileError(f"the model config names an unknown layer type {exc}; known: "
                             f"{', '.join(sorted(LAYER_TYPES))}") from None
    except (TypeError, ValueError):
        raise ModelFileError("the model config's 'layers' is not a list of [name, type]") from None
    update = config.get("update", "nesterov_momentum")
    if update not in UPDATES:
        raise ModelFileError(f"the model config names an unknown update rule {update!r}; "
                             f"known: {', '.join(sorted(UPDATES))}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v
              for k, v in config.get("layer_kwargs", {}).items()}
    iterators = config.get("batch_iterators") or {}
    params = dict(layers=layers, update=UPDATES[update], regression=config.get("regression", True),
                  batch_iterator_train=_iterator_from_config(iterators.get("train")),
                  batch_iterator_test=_iterator_from_config(iterators.get("test")),
                  max_epochs=config.get("max_epochs", 100), eval_size=config.get("eval_size", 0.2),
                  verbose=0, **kwargs, **config.get("hyperparameters", {}))
    params.update(overrides)
    return NeuralNet(**params)


def save_model(net: NeuralNet, path: str | os.PathLike[str], history: bool = True) -> Path:
    """Write ``net``'s weights and config to ``path`` atomically.

    The file is a torch archive of tensors and strings only: the weights (on the CPU), the
    JSON config from :func:`net_config` and, optionally, the training history. It is written
    to a temporary file and renamed into place; missing folders are created.

    Parameters
    ----------
    net : NeuralNet
        An initialized or fitted ``layers=`` net with a built-in update rule.
    path : str or path-like
        The file to write, conventionally ``model.pt``.
    history : bool, default True
        Store the per-epoch history (without per-batch entries); :func:`load_model` puts it
        in ``saved_history_``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For a net that cannot be saved safely (see :func:`net_config`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from facekeypoints import NeuralNet
    >>> from facekeypoints.layers import DenseLayer, InputLayer
    >>> from facekeypoints.persist import save_model
    >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
    ...                 input_shape=(None, 4), output_num_units=2, device='cpu').initialize()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(save_model(net, Path(folder) / 'model.pt').name)
    model.pt
    """
    path = Path(path)
    config = net_config(net)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config),
        "history": json.dumps(history_records(net)) if history else "[]",
        "state_dict": {k: v.detach().cpu().contiguous()
                       for k, v in net.module_.state_dict().items()},
    }
    return atomic_torch_save(payload, path)


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a model file's contents without building a net; never unpickles.

    Parameters
    ----------
    path : str or path-like
        A model file, or a folder (such as a run directory) holding ``model.pt``.

    Returns
    -------
    dict
        ``format``, ``version``, ``config`` (the dict from :func:`net_config`), ``history``
        (a list of per-epoch dicts) and ``state_dict`` (CPU tensors).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        If the file is not a facekeypoints model, comes from a newer format version, or
        has a damaged config.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    payload = load_archive(path, FORMAT, ModelFileError, "model file")
    if payload.get("version", 0) > VERSION:
        raise ModelFileError(f"{path} was written by a newer facekeypoints (format version "
                             f"{payload['version']}); upgrade to load it")
    try:
        payload["config"] = json.loads(payload["config"])
        payload["history"] = json.loads(payload.get("history", "[]"))
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ModelFileError(f"{path} has a damaged config") from None
    return payload


def load_model(path: str | os.PathLike[str], device: str = "cpu") -> NeuralNet:
    """Rebuild a saved net from a model file (or a run directory holding ``model.pt``).

    The net is built from the file's JSON config with :func:`build_net`, initialized, and
    given the saved weights; the file is read with ``torch.load(weights_only=True)``, so
    loading cannot run code.

    Parameters
    ----------
    path : str or path-like
        A model file written by :func:`save_model`, or a folder holding ``model.pt``.
    device : str, default 'cpu'
        The device to place the net on (``'auto'``, ``'cpu'``, ``'cuda'``, ...).

    Returns
    -------
    NeuralNet
        Initialized with the saved weights, ready to ``predict`` (or train on). Its
        ``columns_`` holds the saved keypoint column names (None if none were saved) and
        ``saved_history_`` the saved per-epoch history (a list of dicts).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        If the file is not a valid model file or its weights do not fit its config.

    See Also
    --------
    save_model : Write a model file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from facekeypoints import NeuralNet
    >>> from facekeypoints.layers import DenseLayer, InputLayer
    >>> from facekeypoints.persist import load_model, save_model
    >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
    ...                 input_shape=(None, 4), output_num_units=2, output_nonlinearity=None,
    ...                 max_epochs=2, random_state=0, device='cpu')
    >>> X = np.random.default_rng(0).random((10, 4), dtype=np.float32)
    >>> _ = net.fit(X, X[:, :2])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     loaded = load_model(save_model(net, Path(folder) / 'model.pt'))
    >>> np.array_equal(loaded.predict(X), net.predict(X)), len(loaded.saved_history_)
    (True, 2)
    """
    payload = read_model_file(path)
    net = build_net(payload["config"], device=device).initialize()
    try:
        net.module_.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: the weights do not fit the config ({exc})") from None
    net.columns_ = payload["config"].get("columns") or None
    net.saved_history_ = payload["history"]
    return net


def history_records(net: NeuralNet) -> list[dict[str, Any]]:
    """Return the per-epoch history as plain JSON-safe dicts (batches left out).

    Parameters
    ----------
    net : NeuralNet
        A net; one that has not trained gives an empty list.

    Returns
    -------
    list of dict
        One dict per epoch, numbers as Python floats (or ints and bools as recorded).
    """
    records = []
    for entry in (net.history_ or []):
        records.append({k: (v if isinstance(v, (bool, int, float, str)) or v is None else float(v))
                        for k, v in entry.items() if k != "batches"})
    return records
