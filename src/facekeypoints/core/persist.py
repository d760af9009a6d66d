"""Save and load trained nets without pickle: weights plus a JSON config.

A model file is a torch archive holding only tensors and strings, read back with
``torch.load(weights_only=True)``, which refuses anything that could run code. The net is
rebuilt from the JSON config (layer list, layer keywords, update rule, hyperparameters, the
batch iterators and the criterion as their registered kind plus constructor parameters, the
keypoint layout) and the weights are loaded into it. Only kinds registered in the reading
process can be named (:mod:`facekeypoints.registry`: the built-in ones and any a user
decorated), and each is rebuilt through its constructor, which checks the values. Writes are
atomic: a crash never leaves half a model where a good one was.

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
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import augment  # noqa: F401 - registers the built-in iterators (augment imports iterators)
from ._json import jsonable
from ._safe_io import atomic_torch_save, load_archive, seal
from .layers import (LAYER_TYPES, NONLINEARITIES, InputLayer, build_stack, layer_class,
                     nonlinearity_name, split_layer_params)
from .layout import KeypointLayout
from .losses import MaskedMSELoss, get_criterion
from .precision import PRECISIONS
from .progress import EpochProgress
from .registry import CRITERIA_REGISTRY, ITERATORS, parameter_names
from .schedules import Schedule
from .updates import UPDATES

if TYPE_CHECKING:
    import os

    from .net import NeuralNet

__all__ = ["FORMAT", "VERSION", "ModelFileError", "build_net", "history_records", "load_model",
           "net_config", "read_model_file", "save_model"]

#: The ``format`` field of every model file.
FORMAT = "facekeypoints-model"
#: The model file format version this release writes (and the newest it reads). Version 2
#: added the ``checksum``; version 1 files (without one) are still read.
VERSION = 2
_SEALED_SINCE = 2

# The keys of a model file's config: exactly what :func:`net_config` writes without
# ``training``. A model file whose config has any other key is refused.
_MODEL_CONFIG_KEYS = ("batch_iterators", "layers", "layer_kwargs", "update", "hyperparameters",
                      "regression", "max_epochs", "eval_size", "columns", "precision",
                      "criterion", "tta", "layout")
_LAYER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_HYPERPARAMETER = re.compile(r"update_[A-Za-z][A-Za-z0-9_]*\Z")
_MAX_SIZE = 2**31 - 1       # the largest layer size, stride or batch size a config may name


class ModelFileError(ValueError):
    """Raised for a file that is not a facekeypoints model, or one this version cannot build.

    That covers damaged files (unreadable, or contents that do not match their checksum),
    files holding anything but tensors and plain data (never unpickled), a newer format
    version or PyTorch archive version, a config with keys or values :func:`net_config`
    does not write (unknown layer types, update rules or batch iterators, other NeuralNet
    keywords), and weights that do not fit the config. The message names the file. A
    subclass of ``ValueError``.
    """


def net_config(net: NeuralNet, training: bool = False) -> dict[str, Any]:
    """Describe a net as JSON-safe data: what model files and ``config.json`` hold.

    One format for both: the model part (layers, layer keywords, update rule, hyperparameters
    as they are now, batch iterators, regression, max_epochs, eval_size, columns, precision,
    and the criterion as ``{'name': ..., 'params': {...}}``) is what
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
        ``module=`` net, a custom update rule or criterion, a layer keyword JSON cannot
        hold).

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
        # what the net trained with ('32' or 'bf16'); predict and evaluate use it by default
        "precision": getattr(net, "precision_", None) or getattr(net, "precision", "32"),
        "criterion": _criterion_config(net),
        # predict's default: flip test-time augmentation or not
        "tta": bool(getattr(net, "tta", False)),
        **_layout_config(net),
    }


def _layout_config(net):
    """``{'layout': ...}`` for a net with a keypoint layout; nothing for one without (as
    files written before layouts were saved)."""
    layout = getattr(net, "layout", None)
    if layout is None:
        return {}
    if not isinstance(layout, KeypointLayout):
        raise ValueError(f"the net's layout {layout!r} is not a facekeypoints.layout."
                         "KeypointLayout, so it cannot be saved")
    return {"layout": layout.to_dict()}


def _criteria():
    """The criteria a model file may name: the registered ones (a whitelist: a file never
    names code to run)."""
    import torch  # noqa: F401 - losses registers torch's own losses when it is imported

    return CRITERIA_REGISTRY


def _criterion_config(net):
    """``{'name': class name, 'params': {...}}`` of the net's criterion (ValueError if it is
    not one a model file can name)."""
    import torch

    known = _criteria()
    criterion = getattr(net, "criterion_", None) if getattr(net, "initialized_", False) \
        else None
    if criterion is None:
        spec = net.criterion
        if spec is None:
            spec = MaskedMSELoss if net.regression else torch.nn.CrossEntropyLoss
        elif isinstance(spec, str):
            spec = get_criterion(spec)
        if isinstance(spec, type) and known.get(spec.__name__) is spec:
            try:
                criterion = spec(**net.get_params_for("criterion"))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"criterion {spec.__name__} cannot be built with "
                                 f"{net.get_params_for('criterion')}: {exc}") from None
        else:
            criterion = spec
    criterion = getattr(criterion, "_orig_mod", criterion)       # under torch.compile
    name = known.name_of(criterion)
    shown = criterion.__name__ if isinstance(criterion, type) else type(criterion).__name__
    advice = (f"use one of {', '.join(sorted(known))}, or register yours with "
              "facekeypoints.registry.register_criterion")
    if name is None or isinstance(criterion, type):
        raise ValueError(f"criterion {shown} cannot be saved in a safe model file; {advice}")
    try:
        described = known.describe(criterion)
    except ValueError as exc:
        raise ValueError(f"criterion {exc.args[0].split(' cannot be described')[0]} cannot be "
                         f"saved in a safe model file; {advice} (default settings)") from None
    params = {k: v for k, v in described.items() if k != "kind"}
    try:
        params = {k: float(v) if isinstance(v, float) else jsonable(v) for k, v in params.items()}
    except TypeError:
        raise ValueError(f"criterion {name}'s parameters {params} cannot be written to a JSON "
                         "config") from None
    return {"name": name, "params": params}


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
    """A registered iterator as ``{'kind': name, **parameters}`` (parameters at their
    constructor's defaults left out); an unregistered one falls back to the default (None)."""
    if iterator is None or ITERATORS.name_of(iterator) is None:
        return None
    config = ITERATORS.describe(iterator)
    defaults = _defaults(type(iterator))
    out = {"kind": config.pop("kind")}
    for key, value in config.items():
        if key in defaults and _same(value, defaults[key]):
            continue
        try:
            out[key] = _encode(value)
        except TypeError:
            raise ValueError(f"the batch iterator {out['kind']}'s {key}={value!r} cannot be "
                             "written to a JSON config") from None
    return out


def _defaults(cls):
    import inspect

    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in signature.parameters.items()
            if k in parameter_names(cls) and p.default is not p.empty}


def _same(a, b):
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - values without a plain ==
        return False


def _encode(value):
    """JSON for a parameter value; a keypoint layout as ``{'layout': layout.to_dict()}``."""
    if isinstance(value, KeypointLayout):
        return {"layout": value.to_dict()}
    return jsonable(value)


def _decode(value):
    if isinstance(value, dict) and set(value) == {"layout"}:
        return KeypointLayout.from_dict(value["layout"])
    return value


def _iterator_from_config(config):
    if not config:
        return None
    return ITERATORS.build({k: _decode(v) for k, v in config.items()})


# -------------------------------------------------------------------------------------------
# Checking a config (from a file: trusted no further than these checks) before building


def _is_int(value, low=1, high=_MAX_SIZE):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_pair(value, low=1):
    """An int, or a list of two, each at least ``low``: a filter, pool, stride or pad size."""
    if isinstance(value, (list, tuple)):
        return len(value) == 2 and all(_is_int(v, low) for v in value)
    return _is_int(value, low)


def _valid_layer_value(param, value):
    """Whether ``value`` is what :func:`net_config` can write for a layer's ``param``."""
    if param == "shape":
        return (isinstance(value, (list, tuple)) and 2 <= len(value) <= 4
                and (value[0] is None or _is_int(value[0]))
                and all(_is_int(v) for v in value[1:]))
    if param in ("num_units", "num_filters"):
        return _is_int(value)
    if param in ("filter_size", "pool_size"):
        return _is_pair(value)
    if param == "stride":
        return value is None or _is_pair(value)
    if param == "pad":
        return value in ("same", "valid", None) or _is_pair(value, low=0)
    if param == "nonlinearity":
        return value is None or (isinstance(value, str) and value.lower() in NONLINEARITIES)
    if param == "p":
        return _is_number(value) and 0 <= value < 1
    if param == "W":
        return _is_number(value) and value >= 0
    if param == "b":
        return value is None or (_is_number(value) and value == 0)
    if param == "epsilon":
        return _is_number(value) and value > 0
    if param == "alpha":
        return _is_number(value) and 0 < value <= 1
    # a registered layer kind's own parameter: plain JSON, which its build then checks
    return _plain_json(value)


def _reserved_keywords():
    """NeuralNet's own keywords: a layer name must not be a prefix of one (``max`` would make
    ``max_epochs`` a layer keyword)."""
    import inspect

    from skorch import NeuralNet as SkorchNet

    from .net import NeuralNet

    names = set()
    for cls in (NeuralNet, SkorchNet):
        names |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    return names | {"update_"}


def _check_config(config, strict):
    """Raise ModelFileError unless ``config`` holds only what :func:`net_config` writes.

    ``strict`` refuses keys outside the model part (a model file's config); otherwise they
    are ignored (a run's ``config.json`` adds training plumbing).
    """
    if not isinstance(config, dict):
        raise ModelFileError("the model config is not a JSON object")
    if strict:
        unknown = sorted(set(config) - set(_MODEL_CONFIG_KEYS))
        if unknown:
            raise ModelFileError(f"the model config has key(s) {unknown} that facekeypoints "
                                 f"never writes; a model config holds only "
                                 f"{', '.join(_MODEL_CONFIG_KEYS)}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers or not all(
            isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(x, str) for x in e)
            for e in layers):
        raise ModelFileError("the model config's 'layers' is not a list of [name, type]")
    reserved = _reserved_keywords()
    names = []
    for name, kind in layers:
        if kind not in LAYER_TYPES:
            raise ModelFileError(f"the model config names an unknown layer type {kind!r}; "
                                 f"known: {', '.join(sorted(LAYER_TYPES))}")
        if (not _LAYER_NAME.match(name) or name.endswith("_") or name in names
                or any(r == name or r.startswith(name + "_") for r in reserved)):
            raise ModelFileError(f"the model config has an invalid or repeated layer name "
                                 f"{name[:40]!r}")
        names.append(name)
    if LAYER_TYPES[layers[0][1]] is not InputLayer:
        raise ModelFileError("the model config's first layer is not an InputLayer")
    kinds = {name: kind for name, kind in layers}
    by_length = sorted(names, key=len, reverse=True)
    layer_kwargs = config.get("layer_kwargs", {})
    if not isinstance(layer_kwargs, dict):
        raise ModelFileError("the model config's 'layer_kwargs' is not a JSON object")
    for key, value in layer_kwargs.items():
        name = next((n for n in by_length if key.startswith(n + "_")), None)
        param = key[len(name) + 1:] if name else None
        if name is None or param not in LAYER_TYPES[kinds[name]].params:
            raise ModelFileError(f"the model config has a layer keyword {key[:60]!r} that "
                                 "is no parameter of its layers")
        if not _valid_layer_value(param, value):
            raise ModelFileError(f"the model config's {key} is {str(value)[:60]}, not a valid "
                                 f"value for a {kinds[name]}")
    update = config.get("update", "nesterov_momentum")
    if not isinstance(update, str) or update not in UPDATES:
        raise ModelFileError(f"the model config names an unknown update rule "
                             f"{str(update)[:60]!r}; known: {', '.join(sorted(UPDATES))}")
    hyper = config.get("hyperparameters", {})
    if not isinstance(hyper, dict) or not all(
            isinstance(k, str) and _HYPERPARAMETER.match(k) and _is_number(v)
            for k, v in hyper.items()):
        raise ModelFileError("the model config's 'hyperparameters' is not a JSON object of "
                             "update_<name>: finite number")
    checks = {"regression": lambda v: isinstance(v, bool),
              "max_epochs": _is_int,
              "eval_size": lambda v: v is None or (_is_number(v) and 0 <= v < 1),
              "columns": lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
              "precision": lambda v: v in PRECISIONS,
              "tta": lambda v: isinstance(v, bool)}
    for key, ok in checks.items():
        if key in config and not ok(config[key]):
            raise ModelFileError(f"the model config's {key!r} is {str(config[key])[:60]}, "
                                 "which facekeypoints never writes")
    if "criterion" in config:
        _check_criterion_config(config["criterion"])
    if config.get("layout") is not None:
        try:
            KeypointLayout.from_dict(config["layout"])
        except (ValueError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"the model config's 'layout' is not a keypoint layout "
                                 f"({_one_line(exc)})") from None
    iterators = config.get("batch_iterators") or {}
    if not isinstance(iterators, dict) or set(iterators) - {"train", "test"}:
        raise ModelFileError("the model config's 'batch_iterators' is not "
                             "{'train': ..., 'test': ...}")
    for which, it in iterators.items():
        _check_iterator_config(which, it)


def _check_criterion_config(config):
    known = _criteria()
    if not isinstance(config, dict) or set(config) != {"name", "params"} or not isinstance(
            config["params"], dict):
        raise ModelFileError(f"the model config's 'criterion' is {str(config)[:60]}, which "
                             "facekeypoints never writes (it writes {'name': ..., 'params': "
                             "{...}})")
    name = config["name"]
    if not isinstance(name, str) or name not in known:
        raise ModelFileError(f"the model config names an unknown criterion {str(name)[:60]!r}; "
                             f"known: {', '.join(sorted(known))}")
    params = config["params"]
    problem = None
    if not all(_plain_json(v) for v in params.values()):
        problem = "values that are not plain JSON"
    elif params and name in known.fixed_kinds():
        problem = "no parameters (it is saved with its default settings)"
    else:
        try:
            known[name](**params)              # its constructor checks the values
        except (TypeError, ValueError) as exc:
            problem = _one_line(exc)
    if problem is not None:
        shown = " and ".join(f"a parameter {str(k)[:40]!r} = {str(v)[:40]}"
                             for k, v in params.items())
        raise ModelFileError(f"the model config's criterion {name} has {shown}, which "
                             f"facekeypoints never writes ({problem})")


def _check_iterator_config(which, config):
    """The iterator must be a registered kind its constructor accepts with these values."""
    if config is None:
        return
    kind = config.get("kind") if isinstance(config, dict) else config
    if not isinstance(config, dict) or ITERATORS.get(kind) is None:
        raise ModelFileError(f"the model config names an unknown batch iterator "
                             f"{str(kind)[:60]!r}; known: {', '.join(ITERATORS)}")
    if not all(_plain_json(v) for v in config.values()):
        raise ModelFileError(f"the model config's {which} batch iterator is not "
                             "{'kind': ..., its parameters} as facekeypoints writes it")
    try:
        _iterator_from_config(config)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"the model config's {which} batch iterator is not what "
                             f"facekeypoints writes: {_one_line(exc)}") from None


def _plain_json(value, depth=0):
    if depth > 4:
        return False
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, (int, float)):
        return _is_number(value)
    if isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def _one_line(exc):
    return " ".join(str(exc).split())[:300]


def _layer_list(config):
    return [(name, LAYER_TYPES[kind]) for name, kind in config["layers"]]


def _layer_kwargs(config):
    return {k: tuple(v) if isinstance(v, list) else v
            for k, v in config.get("layer_kwargs", {}).items()}


def _expected_weights(config):
    """``{name: shape}`` of the weights the config's net has, from a net built on the meta
    device: shapes without memory, so a forged layer size allocates nothing."""
    import torch

    layers = _layer_list(config)
    grouped, rest = split_layer_params(layers, _layer_kwargs(config))
    if rest:           # _check_config has matched every keyword to a layer
        raise ModelFileError(f"the model config has keywords {sorted(rest)} of no layer")
    try:
        with torch.device("meta"):
            stack = build_stack(layers, grouped)
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        raise ModelFileError(f"the model config does not describe a net that can be built "
                             f"({exc})") from None
    return {k: tuple(v.shape) for k, v in stack.state_dict().items()}


def _check_weights(config, state_dict):
    """Raise ModelFileError unless ``state_dict`` is exactly the weights the config's net has."""
    import torch

    if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) and v.is_floating_point()
            for k, v in state_dict.items()):
        raise ModelFileError("its weights are not a dict of floating-point tensors")
    expected = _expected_weights(config)
    missing = sorted(set(expected) - set(state_dict))
    extra = sorted(set(state_dict) - set(expected))
    if missing or extra:
        raise ModelFileError(f"the weights do not fit the config (missing: {missing[:5]}, "
                             f"unexpected: {extra[:5]})")
    for key, shape in expected.items():
        if tuple(state_dict[key].shape) != shape:
            raise ModelFileError(f"the weights do not fit the config: {key} is "
                                 f"{tuple(state_dict[key].shape)}, the config says {shape}")


def build_net(config: dict[str, Any], **overrides: Any) -> NeuralNet:
    """Build a fresh, unfitted NeuralNet from a config written by :func:`net_config`.

    Only the model part is used: layers and their keywords, the update rule and
    hyperparameters, batch iterators, ``regression``, ``max_epochs``, ``eval_size``,
    ``precision`` and the criterion (a config without one, as model files written before it
    was recorded, gets the default criterion). Callbacks are not rebuilt, and the net is
    quiet (``verbose=0``).

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
        If the model part holds anything :func:`net_config` does not write: a layer type,
        update rule, criterion or batch iterator this version does not know, a keyword that
        is no parameter of its layers, a value of the wrong kind, or a hyperparameter the
        update rule does not take. Keys outside the model part are ignored.

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

    _check_config(config, strict=False)
    iterators = config.get("batch_iterators") or {}
    update = UPDATES[config.get("update", "nesterov_momentum")]
    params = dict(layers=_layer_list(config), update=update,
                  regression=config.get("regression", True),
                  batch_iterator_train=_iterator_from_config(iterators.get("train")),
                  batch_iterator_test=_iterator_from_config(iterators.get("test")),
                  max_epochs=config.get("max_epochs", 100), eval_size=config.get("eval_size", 0.2),
                  precision=config.get("precision", "32"), tta=config.get("tta", False),
                  verbose=0, **_layer_kwargs(config),
                  **config.get("hyperparameters", {}))
    criterion = config.get("criterion")
    if criterion is not None:
        params["criterion"] = _criteria()[criterion["name"]]
        params.update({f"criterion__{k}": v for k, v in criterion["params"].items()})
    layout = config.get("layout")
    if layout is not None:
        params["layout"] = KeypointLayout.from_dict(layout)
    params.update(overrides)
    net = _make_net(NeuralNet, params)
    try:
        net.update_hyperparameters()
    except ValueError as exc:
        raise ModelFileError(f"the model config's hyperparameters do not fit its update rule "
                             f"({exc})") from None
    return net


def _make_net(cls, params):
    """``cls(**params)``, leaving out a ``layout`` while the class does not take one."""
    import inspect

    if "layout" in params and "layout" not in inspect.signature(cls.__init__).parameters:
        params = {k: v for k, v in params.items() if k != "layout"}
    return cls(**params)


def save_model(net: NeuralNet, path: str | os.PathLike[str], history: bool = True) -> Path:
    """Write ``net``'s weights and config to ``path`` atomically.

    The file is a torch archive of tensors and strings only: the weights (on the CPU), the
    JSON config from :func:`net_config`, optionally the training history, and a SHA-256
    checksum of all of them, which :func:`read_model_file` verifies. It is written to a
    temporary file and renamed into place; missing folders are created.

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
        For a net that cannot be saved safely (see :func:`net_config`): e.g. a ``module=``
        net, or an update rule or criterion outside the built-in ones.

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
    return atomic_torch_save(seal(payload), path)


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a model file's contents without building a net; never unpickles.

    The checks, in order: the file reads as a weights-only torch archive of this format;
    its checksum matches its contents (so a damaged file is refused before anything is
    built from it); its config holds only the keys and kinds of values :func:`net_config`
    writes; and its weights are exactly the tensors, of exactly the shapes, that the
    config's net has (worked out without allocating that net). Files written before model
    files carried a checksum (format version 1) are read without one, with all the other
    checks; saving them again adds one.

    Parameters
    ----------
    path : str or path-like
        A model file, or a folder (such as a run directory) holding ``model.pt``.

    Returns
    -------
    dict
        ``format``, ``version``, ``config`` (the dict from :func:`net_config`), ``history``
        (a list of per-epoch dicts), ``state_dict`` (CPU tensors) and, from version 2 on,
        ``checksum``.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        If the file is damaged, is not a facekeypoints model, comes from a newer format
        version or PyTorch, or its config or weights fail the checks above. The message
        names the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    payload = load_archive(path, FORMAT, ModelFileError, "model file", newest=VERSION,
                           sealed_since=_SEALED_SINCE)
    try:
        payload["config"] = json.loads(payload["config"])
        payload["history"] = json.loads(payload.get("history", "[]"))
    except (KeyError, TypeError, ValueError, RecursionError):
        raise ModelFileError(f"{path} has a damaged config") from None
    history = payload["history"]
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ModelFileError(f"{path} has a damaged history (not a list of per-epoch records)")
    try:
        _check_config(payload["config"], strict=True)
        _check_weights(payload["config"], payload.get("state_dict"))
        build_net(payload["config"])        # hyperparameters the update rule takes
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return payload


def load_model(path: str | os.PathLike[str], device: str = "cpu",
               precision: str | None = None) -> NeuralNet:
    """Rebuild a saved net from a model file (or a run directory holding ``model.pt``).

    The file is read and checked by :func:`read_model_file` (a damaged file, or a config
    that does not match its weights, is refused before anything is built), then the net is
    built from its JSON config with :func:`build_net`, initialized, and given the saved
    weights. The file is read with ``torch.load(weights_only=True)``, so loading cannot
    run code.

    Parameters
    ----------
    path : str or path-like
        A model file written by :func:`save_model`, or a folder holding ``model.pt``.
    device : str, default 'cpu'
        The device to place the net on (``'auto'``, ``'cpu'``, ``'cuda'``, ...).
    precision : {'32', 'bf16', 'auto'}, optional
        The precision to predict in; by default the one the net trained with (files written
        before precision was recorded: ``'32'``).

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
        For every problem with the file (see :func:`read_model_file`); the message names it.

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
    payload = read_model_file(path)      # checked: the build below fits the weights
    try:
        net = build_net(payload["config"], device=device,
                        **({} if precision is None else {"precision": precision}))
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    net.initialize()     # errors here are the device's (e.g. no CUDA), not the file's
    try:
        net.module_.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the weights do not fit the config "
                             f"({' '.join(str(exc).split())})") from None
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
