"""The old recipe's layer vocabulary, turned into torch modules.

Each layer kind registers itself (:func:`facekeypoints.registry.register_layer`), so
layer lists may name it and model files save it; register a :class:`LayerSpec` subclass
of your own the same way.

``layers=[('input', InputLayer), ('conv1', Conv2DLayer), ...]`` plus keywords such as
``conv1_num_filters=32`` describe a stack; :func:`build_stack` turns it into a
:class:`LayerStack` with Lasagne's defaults (ReLU, Glorot-uniform weights, zero biases,
valid convolutions, pooling stride = pool size, inverted dropout, batch norm with
epsilon 1e-4 and running averages weighted 0.1). A convolution without bias or
nonlinearity followed by a :class:`BatchNormLayer` with one is Lasagne's ``batch_norm(conv)``.

Examples
--------
>>> from facekeypoints.layers import (Conv2DLayer, DenseLayer, InputLayer, MaxPool2DLayer,
...                                   build_stack, split_layer_params)
>>> layers = [("input", InputLayer), ("conv1", Conv2DLayer), ("pool1", MaxPool2DLayer),
...           ("output", DenseLayer)]
>>> grouped, rest = split_layer_params(layers, dict(
...     input_shape=(None, 1, 8, 8), conv1_num_filters=4, conv1_filter_size=(3, 3),
...     pool1_pool_size=(2, 2), output_num_units=2, output_nonlinearity=None))
>>> build_stack(layers, grouped).shapes
{'input': (1, 8, 8), 'conv1': (4, 6, 6), 'pool1': (4, 3, 3), 'output': (2,)}
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from .registry import LAYERS, register_layer

__all__ = [
    "BatchNormLayer", "Conv2DLayer", "DenseLayer", "DropoutLayer", "InputLayer", "LAYER_TYPES",
    "LayerSpec",
    "LayerStack", "MaxPool2DLayer", "NONLINEARITIES", "build_stack", "glorot_init",
    "layer_class", "nonlinearity_name", "split_layer_params",
]

NONLINEARITIES = {
    "relu": nn.ReLU, "rectify": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "linear": nn.Identity, "identity": nn.Identity, "softmax": lambda: nn.Softmax(dim=1),
}
_CALLABLE_NAMES = {torch.relu: "relu", torch.tanh: "tanh", torch.sigmoid: "sigmoid",
                   nn.functional.relu: "relu", nn.functional.tanh: "tanh",
                   nn.functional.sigmoid: "sigmoid", torch.softmax: "softmax",
                   nn.functional.softmax: "softmax"}


def nonlinearity_name(
        value: str | Callable[..., torch.Tensor] | type[nn.Module] | None,
) -> str | type[nn.Module]:
    """Normalise a layer's ``nonlinearity`` to a key of ``NONLINEARITIES`` or a module class.

    Parameters
    ----------
    value : str, callable, type of torch.nn.Module or None
        A name from ``NONLINEARITIES`` (any case), one of torch's relu, tanh, sigmoid or
        softmax functions, a ``torch.nn`` activation class, or None (identity).

    Returns
    -------
    str or type of torch.nn.Module
        The lower-case name (``'linear'`` for None), or ``value`` itself when it is a
        ``torch.nn.Module`` subclass.

    Raises
    ------
    ValueError
        If ``value`` is none of the above.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.layers import nonlinearity_name
    >>> nonlinearity_name(None), nonlinearity_name("ReLU"), nonlinearity_name(torch.tanh)
    ('linear', 'relu', 'tanh')
    """
    if value is None:
        return "linear"
    if isinstance(value, str):
        key = value.lower()
        if key not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {value!r}; use one of "
                             f"{sorted(NONLINEARITIES)} or None for identity")
        return key
    if value in _CALLABLE_NAMES:
        return _CALLABLE_NAMES[value]
    if isinstance(value, type) and issubclass(value, nn.Module):
        return value
    raise ValueError(f"unsupported nonlinearity {value!r}; use a name such as 'relu', "
                     "a torch.nn activation class, or None")


def _activation(value):
    name = nonlinearity_name(value)
    return name() if isinstance(name, type) else NONLINEARITIES[name]()


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_gain(layer, W):
    """Lasagne's ``W=GlorotUniform(gain=W)``: a number >= 0; 0 starts the weights at zero."""
    if not _is_number(W) or not math.isfinite(W) or W < 0:
        raise ValueError(f"{layer} W={W!r} is not supported; give the gain of the "
                         "Glorot-uniform initialisation, a number >= 0 (default 1.0; 0 "
                         "starts the weights at zero)")
    return float(W)


def _has_bias(layer, b):
    """Lasagne's ``b``: a zero-initialised bias (0, the default) or none at all (None)."""
    if b is None:
        return False
    if _is_number(b) and b == 0:
        return True
    raise ValueError(f"{layer} b={b!r} is not supported; give b=0 (a bias, initialised to "
                     "zero) or b=None (no bias, e.g. before a BatchNormLayer)")


class LayerSpec:
    """Base of the layer markers used in ``layers=[(name, LayerClass), ...]``.

    A subclass lists its keywords and their defaults in ``params`` and the ones that must be
    given in ``required``. Every subclass but :class:`InputLayer` also defines a static
    ``build(kw, in_shape)``: given all its keywords and the per-sample input shape, it returns
    ``(module, out_shape)``. :func:`build_stack` reads the shape from the InputLayer itself.

    Parameters
    ----------
    **params
        Keyword values for this layer; a layer list may hold such an instance in place of
        the class. ``<layer>_<param>`` keywords given to the net take precedence.

    Raises
    ------
    TypeError
        If a keyword is not one of the class's ``params``.

    Examples
    --------
    >>> from facekeypoints.layers import DenseLayer
    >>> DenseLayer(num_units=30, nonlinearity=None).kwargs
    {'num_units': 30, 'nonlinearity': None, 'W': 1.0, 'b': 0}
    """

    params: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.params)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown parameter(s) {sorted(unknown)}; "
                            f"it takes {sorted(self.params)}")
        self.kwargs = {**self.params, **params}

    @classmethod
    def check(cls, layer_name: str, kwargs: Mapping[str, Any]) -> None:
        """Raise a clear error for a missing or unknown ``<layer>_<param>`` keyword.

        Parameters
        ----------
        layer_name : str
            The layer's name in the layer list (used in the message).
        kwargs : mapping of str to object
            The keywords given for this layer, without the ``<layer>_`` prefix.

        Raises
        ------
        ValueError
            If a keyword is unknown or a required one is missing or None.
        """
        unknown = set(kwargs) - set(cls.params)
        if unknown:
            raise ValueError(
                f"layer {layer_name!r} ({cls.__name__}) has no parameter(s) "
                f"{', '.join(f'{layer_name}_{k}' for k in sorted(unknown))}; it takes "
                f"{', '.join(f'{layer_name}_{k}' for k in sorted(cls.params))}")
        missing = [k for k in cls.required if kwargs.get(k) is None]
        if missing:
            raise ValueError(f"layer {layer_name!r} ({cls.__name__}) needs "
                             f"{', '.join(f'{layer_name}_{k}=...' for k in missing)}")


@register_layer
class InputLayer(LayerSpec):
    """Declare the input shape, e.g. ``input_shape=(None, 1, 96, 96)``.

    The first entry (the batch size) is ignored; the net reshapes each batch to the rest, so
    flat ``(n, 9216)`` rows can feed a ``(None, 1, 96, 96)`` input.

    Parameters
    ----------
    **params
        ``shape`` : sequence of int or None. Required by the time the stack is built.
    """

    params = {"shape": None}


@register_layer
class Conv2DLayer(LayerSpec):
    """2-D convolution followed by its nonlinearity; valid padding and stride 1 by default.

    Parameters
    ----------
    **params
        ``num_filters`` : int, required. ``filter_size`` : int or (int, int), required.
        ``stride`` : int or (int, int), default 1. ``pad`` : int, (int, int), ``'valid'``
        (same as 0) or ``'same'`` (half the filter size, rounded down), default 0.
        ``nonlinearity`` : see :func:`nonlinearity_name`, default ``'relu'``.
        ``W`` : float >= 0, default 1.0: the gain of the Glorot-uniform weights (Lasagne's
        ``W=GlorotUniform(gain=W)``; 0 starts them at zero). ``b`` : 0 or None, default 0:
        a bias initialised to zero, or no bias (Lasagne's ``b=None``, for a convolution
        followed by a :class:`BatchNormLayer`).
    """

    params = {"num_filters": None, "filter_size": None, "stride": 1, "pad": 0,
              "nonlinearity": "relu", "W": 1.0, "b": 0}
    required = ("num_filters", "filter_size")

    @staticmethod
    def build(kw: Mapping[str, Any],
              in_shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
        """Build the convolution for a ``(channels, height, width)`` input.

        Parameters
        ----------
        kw : mapping of str to object
            All of the layer's keywords, defaults filled in.
        in_shape : tuple of int
            The per-sample input shape, ``(channels, height, width)``.

        Returns
        -------
        module : torch.nn.Sequential
            ``Conv2d`` then the activation.
        out_shape : tuple of int
            ``(num_filters, out_height, out_width)``.

        Raises
        ------
        ValueError
            If ``in_shape`` is not 3-D, the filter does not fit, ``W`` is not a number
            >= 0 or ``b`` is neither 0 nor None.
        """
        _check_gain("Conv2DLayer", kw["W"])
        if len(in_shape) != 3:
            raise ValueError(f"Conv2DLayer needs (channels, height, width) input, got {in_shape}")
        pad = kw["pad"]
        if pad == "same":
            pad = tuple(k // 2 for k in _pair(kw["filter_size"]))
        elif pad in ("valid", None):
            pad = 0
        conv = nn.Conv2d(in_shape[0], kw["num_filters"], _pair(kw["filter_size"]),
                         stride=_pair(kw["stride"]), padding=_pair(pad),
                         bias=_has_bias("Conv2DLayer", kw["b"]))
        out = _conv_out(in_shape[1:], _pair(kw["filter_size"]), _pair(kw["stride"]), _pair(pad))
        return nn.Sequential(conv, _activation(kw["nonlinearity"])), (kw["num_filters"], *out)


@register_layer
class MaxPool2DLayer(LayerSpec):
    """Max pooling; the stride defaults to the pool size, partial windows ignored.

    Parameters
    ----------
    **params
        ``pool_size`` : int or (int, int), required. ``stride`` : int or (int, int),
        default None (the pool size).
    """

    params = {"pool_size": None, "stride": None}
    required = ("pool_size",)

    @staticmethod
    def build(kw: Mapping[str, Any],
              in_shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
        """Build the pooling for a ``(channels, height, width)`` input.

        Parameters
        ----------
        kw : mapping of str to object
            All of the layer's keywords, defaults filled in.
        in_shape : tuple of int
            The per-sample input shape, ``(channels, height, width)``.

        Returns
        -------
        module : torch.nn.MaxPool2d
            The pooling module.
        out_shape : tuple of int
            ``(channels, out_height, out_width)``.

        Raises
        ------
        ValueError
            If the pool window does not fit the input.
        """
        size = _pair(kw["pool_size"])
        stride = _pair(kw["stride"]) if kw["stride"] is not None else size
        out = _conv_out(in_shape[1:], size, stride, (0, 0))
        return nn.MaxPool2d(size, stride), (in_shape[0], *out)


@register_layer
class DenseLayer(LayerSpec):
    """Fully connected layer followed by its nonlinearity; flattens a multi-dimensional input.

    Parameters
    ----------
    **params
        ``num_units`` : int, required. ``nonlinearity`` : see :func:`nonlinearity_name`,
        default ``'relu'`` (give None for a regression output). ``W`` : float >= 0,
        default 1.0: the gain of the Glorot-uniform weights (0 starts them at zero; a small
        gain on a regression output starts its predictions near zero). ``b`` : 0 or None,
        default 0: a bias initialised to zero, or no bias (before a :class:`BatchNormLayer`).
    """

    params = {"num_units": None, "nonlinearity": "relu", "W": 1.0, "b": 0}
    required = ("num_units",)

    @staticmethod
    def build(kw: Mapping[str, Any],
              in_shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
        """Build the linear layer for an input of any per-sample shape.

        Parameters
        ----------
        kw : mapping of str to object
            All of the layer's keywords, defaults filled in.
        in_shape : tuple of int
            The per-sample input shape; more than one dimension adds a ``Flatten`` first.

        Returns
        -------
        module : torch.nn.Sequential
            (``Flatten``,) ``Linear`` and the activation.
        out_shape : tuple of int
            ``(num_units,)``.

        Raises
        ------
        ValueError
            If ``W`` is not a number >= 0 or ``b`` is neither 0 nor None.
        """
        _check_gain("DenseLayer", kw["W"])
        n_in = math.prod(in_shape)
        modules = [nn.Flatten()] if len(in_shape) > 1 else []
        modules += [nn.Linear(n_in, kw["num_units"], bias=_has_bias("DenseLayer", kw["b"])),
                    _activation(kw["nonlinearity"])]
        return nn.Sequential(*modules), (kw["num_units"],)


@register_layer
class DropoutLayer(LayerSpec):
    """Inverted dropout with drop probability ``p``; off at evaluation.

    Parameters
    ----------
    **params
        ``p`` : float in [0, 1), default 0.5.
    """

    params = {"p": 0.5}

    @staticmethod
    def build(kw: Mapping[str, Any],
              in_shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
        """Build the dropout module; the shape passes through.

        Parameters
        ----------
        kw : mapping of str to object
            All of the layer's keywords, defaults filled in.
        in_shape : tuple of int
            The per-sample input shape.

        Returns
        -------
        module : torch.nn.Dropout
            The dropout module.
        out_shape : tuple of int
            ``in_shape``, unchanged.

        Raises
        ------
        ValueError
            If ``p`` is outside [0, 1).
        """
        if not 0 <= kw["p"] < 1:
            raise ValueError(f"dropout p must be in [0, 1), got {kw['p']}")
        return nn.Dropout(kw["p"]), in_shape


class _NoCounter:
    """torch's batch norm without its ``num_batches_tracked`` counter, as Lasagne's.

    The counter only matters for ``momentum=None`` (a cumulative average), which
    :class:`BatchNormLayer` never uses; without it every tensor of a net is floating point,
    as safe model files require. A torch state dict that has the counter still loads.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_batches_tracked = None

    def reset_running_stats(self):
        self.running_mean.zero_()
        self.running_var.fill_(1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # torch's version adds a counter to state dicts that lack one; there is none here
        state_dict.pop(prefix + "num_batches_tracked", None)
        nn.Module._load_from_state_dict(self, state_dict, prefix, *args, **kwargs)


class _BatchNorm1d(_NoCounter, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` without the batch counter (see :class:`_NoCounter`)."""


class _BatchNorm2d(_NoCounter, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` without the batch counter (see :class:`_NoCounter`)."""


@register_layer
class BatchNormLayer(LayerSpec):
    """Batch normalisation over every axis but the channels, then its nonlinearity.

    Lasagne's ``BatchNormLayer``: while training, each channel (each unit after a
    :class:`DenseLayer`) is normalised with the batch's mean and variance, then scaled by a
    learned ``gamma`` (starting at 1) and shifted by a learned ``beta`` (starting at 0); at
    evaluation and prediction the running averages are used instead. These averages are
    module buffers, so model files and checkpoints keep them. Lasagne's
    ``batch_norm(conv)`` is written as a convolution without bias or nonlinearity followed
    by this layer with the nonlinearity::

        layers=[..., ('conv1', Conv2DLayer), ('bn1', BatchNormLayer), ...],
        conv1_num_filters=32, conv1_filter_size=3, conv1_pad='same',
        conv1_nonlinearity=None, conv1_b=None, bn1_nonlinearity='relu'

    Parameters
    ----------
    **params
        ``epsilon`` : float, default 1e-4, added to the variance. ``alpha`` : float in
        (0, 1], default 0.1, the weight of each new batch in the running averages (torch's
        ``momentum``). ``nonlinearity`` : see :func:`nonlinearity_name`, default None
        (linear, as Lasagne's layer).

    Examples
    --------
    >>> from facekeypoints.layers import (BatchNormLayer, Conv2DLayer, InputLayer,
    ...                                   build_stack)
    >>> layers = [("input", InputLayer), ("conv1", Conv2DLayer), ("bn1", BatchNormLayer)]
    >>> stack = build_stack(layers, {
    ...     "input": {"shape": (None, 1, 8, 8)},
    ...     "conv1": {"num_filters": 4, "filter_size": 3, "pad": "same",
    ...               "nonlinearity": None, "b": None},
    ...     "bn1": {"nonlinearity": "relu"}})
    >>> stack.shapes["bn1"], sorted(stack.layers["bn1"].state_dict())
    ((4, 8, 8), ['0.bias', '0.running_mean', '0.running_var', '0.weight'])
    """

    params = {"epsilon": 1e-4, "alpha": 0.1, "nonlinearity": None}

    @staticmethod
    def build(kw: Mapping[str, Any],
              in_shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
        """Build the normalisation for a ``(units,)`` or ``(channels, height, width)`` input.

        Parameters
        ----------
        kw : mapping of str to object
            All of the layer's keywords, defaults filled in.
        in_shape : tuple of int
            The per-sample input shape: ``(units,)``, ``(channels, length)`` or
            ``(channels, height, width)``.

        Returns
        -------
        module : torch.nn.Sequential
            The batch norm (torch's ``BatchNorm1d`` or ``BatchNorm2d``) then the activation.
        out_shape : tuple of int
            ``in_shape``, unchanged.

        Raises
        ------
        ValueError
            If ``in_shape`` has more than three dimensions, ``epsilon`` is not > 0 or
            ``alpha`` is outside (0, 1].
        """
        epsilon, alpha = kw["epsilon"], kw["alpha"]
        if not (_is_number(epsilon) and 0 < epsilon < math.inf):
            raise ValueError(f"BatchNormLayer epsilon must be a number > 0, got {epsilon!r}")
        if not (_is_number(alpha) and 0 < alpha <= 1):
            raise ValueError(f"BatchNormLayer alpha must be in (0, 1], got {alpha!r}")
        if not 1 <= len(in_shape) <= 3:
            raise ValueError(f"BatchNormLayer needs a (units,), (channels, length) or "
                             f"(channels, height, width) input, got {in_shape}")
        cls = _BatchNorm2d if len(in_shape) == 3 else _BatchNorm1d
        norm = cls(in_shape[0], eps=float(epsilon), momentum=float(alpha))
        return nn.Sequential(norm, _activation(kw["nonlinearity"])), tuple(in_shape)


#: The layer kinds by name: every class decorated with
#: :func:`~facekeypoints.registry.register_layer` (the built-in ones above, and yours).
LAYER_TYPES = LAYERS


def _conv_out(size, kernel, stride, pad):
    out = tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, pad))
    if min(out) < 1:
        raise ValueError(f"a {kernel} window does not fit a {tuple(size)} input")
    return out


def _pool_before_activation(modules):
    """Move a ReLU from a conv (or batch norm) to the max-pool that directly follows it.

    relu(maxpool(x)) == maxpool(relu(x)) value for value, and so are the gradients, but the
    activation then touches only the pooled elements (a quarter of them for 2x2 pools): on a
    CPU this saves about a fifth of a net2 training step. Parameter names are unchanged.
    """
    names = list(modules)
    for conv_name, pool_name in zip(names, names[1:]):
        conv, pool = modules[conv_name], modules[pool_name]
        if (isinstance(conv, nn.Sequential) and len(conv) == 2
                and isinstance(conv[0], (nn.Conv2d, nn.BatchNorm2d))
                and isinstance(conv[-1], nn.ReLU) and isinstance(pool, nn.MaxPool2d)):
            modules[conv_name] = nn.Sequential(conv[0])
            modules[pool_name] = nn.Sequential(pool, nn.ReLU(inplace=True))


def glorot_init(module: nn.Module) -> None:
    """Apply Lasagne's defaults: Glorot-uniform weights and zero biases.

    Parameters
    ----------
    module : torch.nn.Module
        Every ``Conv2d`` and ``Linear`` inside it is re-initialised in place (batch norms
        keep torch's, which are Lasagne's too: scale 1, shift 0).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class LayerStack(nn.Module):
    """A torch module built from an old-recipe layer list; layer names and shapes are kept.

    Usually made by :func:`build_stack`. The modules are in ``layers`` (a ``ModuleDict``
    keyed by layer name, in order), the per-sample output shape of each layer in ``shapes``.

    Parameters
    ----------
    named_modules : mapping of str to torch.nn.Module
        The layers' modules in order (the input layer has none).
    shapes : mapping of str to tuple of int
        Each layer's per-sample output shape, the input layer's included.
    input_shape : sequence of int
        The per-sample input shape; every batch is reshaped to it.
    """

    def __init__(self, named_modules: Mapping[str, nn.Module],
                 shapes: Mapping[str, tuple[int, ...]], input_shape: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(named_modules)
        self.shapes = dict(shapes)
        self.input_shape = tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape a batch to ``(n, *input_shape)`` and run it through every layer in order.

        Parameters
        ----------
        x : torch.Tensor
            A batch of ``n`` samples, of any shape with ``n * prod(input_shape)`` elements.

        Returns
        -------
        torch.Tensor
            The last layer's output.
        """
        x = x.reshape(x.shape[0], *self.input_shape)
        for layer in self.layers.values():
            x = layer(x)
        return x


def split_layer_params(
        layers: Sequence[tuple[str, Any]], params: Mapping[str, Any],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Group ``<layer>_<param>`` keywords by layer name (the longest matching name wins).

    Parameters
    ----------
    layers : sequence of (str, layer)
        The layer list, ``[(name, LayerClass or instance or class name), ...]``.
    params : mapping of str to object
        Keywords, some of them ``<layer>_<param>``.

    Returns
    -------
    grouped : dict of str to dict
        For every layer name, its keywords without the prefix (possibly empty).
    rest : dict of str to object
        The keywords that name no layer.

    Examples
    --------
    >>> from facekeypoints.layers import DenseLayer, InputLayer, split_layer_params
    >>> layers = [("input", InputLayer), ("hidden", DenseLayer), ("hidden2", DenseLayer)]
    >>> split_layer_params(layers, {"hidden2_num_units": 3, "max_epochs": 5})
    ({'input': {}, 'hidden': {}, 'hidden2': {'num_units': 3}}, {'max_epochs': 5})
    """
    names = sorted((name for name, _ in layers), key=len, reverse=True)
    grouped = {name: {} for name, _ in layers}
    rest = {}
    for key, value in params.items():
        for name in names:
            if key.startswith(name + "_"):
                grouped[name][key[len(name) + 1:]] = value
                break
        else:
            rest[key] = value
    return grouped, rest


def layer_class(spec: str | type[LayerSpec] | LayerSpec) -> type[LayerSpec]:
    """Resolve a layer entry (a class, an instance or a class name) to its class.

    Parameters
    ----------
    spec : str, type of LayerSpec or LayerSpec
        A key of ``LAYER_TYPES`` (e.g. ``'DenseLayer'``), a :class:`LayerSpec` subclass, or
        an instance of one.

    Returns
    -------
    type of LayerSpec
        The layer class.

    Raises
    ------
    ValueError
        If ``spec`` names no known layer or is not a :class:`LayerSpec`.

    Examples
    --------
    >>> from facekeypoints.layers import DenseLayer, layer_class
    >>> layer_class("DenseLayer") is layer_class(DenseLayer(num_units=3)) is DenseLayer
    True
    """
    if isinstance(spec, str):
        if spec not in LAYER_TYPES:
            raise ValueError(f"unknown layer type {spec!r}; known: {sorted(LAYER_TYPES)}")
        return LAYER_TYPES[spec]
    cls = spec if isinstance(spec, type) else type(spec)
    if not issubclass(cls, LayerSpec):
        raise ValueError(f"{spec!r} is not a facekeypoints layer; use one of {sorted(LAYER_TYPES)}")
    return cls


def build_stack(layers: Sequence[tuple[str, str | type[LayerSpec] | LayerSpec]],
                layer_params: Mapping[str, Mapping[str, Any]]) -> LayerStack:
    """Build a :class:`LayerStack` from ``layers`` and the grouped ``<layer>_<param>`` values.

    Each layer's keywords are its class defaults, then an instance's own keywords, then
    ``layer_params[name]``. A ReLU between a conv (or batch norm) and the max-pool right
    after it is applied after the pool instead (same result, less work), and weights are
    Glorot-initialised, scaled by each layer's gain ``W`` where it has one.

    Parameters
    ----------
    layers : sequence of (str, layer)
        ``[(name, LayerClass or instance or class name), ...]``; the first must be an
        :class:`InputLayer`.
    layer_params : mapping of str to mapping
        Keywords per layer name without the prefix, as :func:`split_layer_params` returns.

    Returns
    -------
    LayerStack
        The new, initialised module.

    Raises
    ------
    ValueError
        If the list is empty, does not start with an input layer whose shape is given, or a
        layer's keywords are wrong or do not fit its input.

    Examples
    --------
    >>> from facekeypoints.layers import DenseLayer, InputLayer, build_stack
    >>> layers = [("input", InputLayer), ("output", DenseLayer)]
    >>> stack = build_stack(layers, {"input": {"shape": (None, 9216)},
    ...                              "output": {"num_units": 30, "nonlinearity": None}})
    >>> stack.shapes
    {'input': (9216,), 'output': (30,)}
    """
    if not layers:
        raise ValueError("layers is empty; give at least an input and an output layer")
    first_name, first = layers[0]
    if layer_class(first) is not InputLayer:
        raise ValueError(f"the first layer must be an InputLayer, got {first_name!r}")
    modules, shapes, gains, shape = {}, {}, {}, None
    for name, spec in layers:
        cls = layer_class(spec)
        given = dict(spec.kwargs) if isinstance(spec, LayerSpec) else {}
        given.update(layer_params.get(name, {}))
        cls.check(name, given)
        kw = {**cls.params, **given}
        if cls is InputLayer:
            if kw["shape"] is None:
                raise ValueError(f"give the input shape: {name}_shape=(None, 1, 96, 96)")
            shape = tuple(int(s) for s in kw["shape"][1:])
            input_shape = shape
        else:
            modules[name], shape = cls.build(kw, shape)
            if kw.get("W", 1.0) != 1.0:
                gains[name] = float(kw["W"])
        shapes[name] = shape
    _pool_before_activation(modules)
    stack = LayerStack(modules, shapes, input_shape)
    glorot_init(stack)
    with torch.no_grad():   # GlorotUniform(gain) draws U(-a, a) and scales it by the gain
        for name, gain in gains.items():
            for m in modules[name].modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.weight.mul_(gain)
    return stack
