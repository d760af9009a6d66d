"""Save and load trained nets without pickle: weights plus a JSON config.

A model file is a torch archive holding only tensors and strings, read back with
``torch.load(weights_only=True)``, which refuses anything that could run code. The net is
rebuilt from the JSON config (layer list, layer keywords, update rule, hyperparameters) and
the weights are loaded into it. Writes are atomic: a crash never leaves half a model where a
good one was.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._safe_io import atomic_torch_save, load_archive
from .layers import LAYER_TYPES, layer_class, nonlinearity_name
from .shared import read_value
from .updates import UPDATES

FORMAT = "facekeypoints-model"
VERSION = 1


class ModelFileError(ValueError):
    """The file is not a facekeypoints model (or names something this version cannot build)."""


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(value)


def net_config(net):
    """The JSON-safe description from which :func:`build_net` rebuilds ``net``."""
    if net.layers is None:
        raise ValueError("only nets defined by layers=[...] can be saved as a safe model file; "
                         "for module= nets use pickle or torch.save(net.module_.state_dict())")
    layer_kwargs = {}
    for key, value in net._layer_kwargs().items():
        if key.endswith("_nonlinearity"):
            name = nonlinearity_name(value)
            if not isinstance(name, str):
                raise ValueError(f"{key}={value!r} cannot be saved; use a name such as 'relu'")
            value = name
        try:
            layer_kwargs[key] = _jsonable(value)
        except TypeError:
            raise ValueError(f"{key}={value!r} cannot be written to a JSON config") from None
    update_name = getattr(net.update, "__name__", None)
    if UPDATES.get(update_name) is not net.update:
        raise ValueError(f"update rule {net.update!r} cannot be saved; "
                         f"use one of {sorted(UPDATES)}")
    hyper = {attr: read_value(getattr(net, attr)) for attr in net._update_attrs().values()
             if getattr(net, attr) is not None}
    return {
        "batch_iterators": {"train": _iterator_config(net.batch_iterator_train),
                            "test": _iterator_config(net.batch_iterator_test)},
        "layers": [[name, layer_class(spec).__name__] for name, spec in net.layers],
        "layer_kwargs": layer_kwargs,
        "update": update_name,
        "hyperparameters": hyper,
        "regression": bool(net.regression),
        "max_epochs": int(net.max_epochs),
        "eval_size": net.eval_size,
        "columns": list(getattr(net, "columns_", []) or []),
    }


def _iterator_config(iterator):
    """Built-in iterators by kind and batch size; anything else falls back to the default."""
    from .iterators import BatchIterator, FlipBatchIterator

    if type(iterator) not in (BatchIterator, FlipBatchIterator):
        return None
    config = {"kind": type(iterator).__name__, "batch_size": int(iterator.batch_size)}
    if isinstance(iterator, FlipBatchIterator):
        config["flip_indices"] = [list(map(int, pair)) for pair in iterator.flip_indices]
    return config


def _iterator_from_config(config):
    from .iterators import BatchIterator, FlipBatchIterator

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


def build_net(config, **overrides):
    """A fresh, unfitted NeuralNet from a config written by :func:`net_config`."""
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


def save_model(net, path, history=True):
    """Write ``net``'s weights and config to ``path`` atomically; returns the path."""
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


def read_model_file(path):
    """The payload of a model file, checked; never unpickles arbitrary objects."""
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


def load_model(path, device="cpu"):
    """Rebuild a saved net from a model file (or a run directory holding ``model.pt``)."""
    payload = read_model_file(path)
    net = build_net(payload["config"], device=device).initialize()
    try:
        net.module_.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: the weights do not fit the config ({exc})") from None
    net.columns_ = payload["config"].get("columns") or None
    net.saved_history_ = payload["history"]
    return net


def history_records(net):
    """The per-epoch history as plain JSON-safe dicts (batches left out)."""
    records = []
    for entry in (net.history_ or []):
        records.append({k: (v if isinstance(v, (bool, int, float, str)) or v is None else float(v))
                        for k, v in entry.items() if k != "batches"})
    return records
