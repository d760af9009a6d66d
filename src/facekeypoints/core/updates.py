"""Update rules with the old Lasagne names, each building a torch optimizer.

An update rule is a function ``rule(params, learning_rate=..., **hyper) -> torch.optim.Optimizer``.
Its ``hyperparameters`` attribute maps the recipe's names (``learning_rate``, ``momentum``)
to where each lives in the optimizer's param groups (a key, or a key and an index into a
tuple such as Adam's ``betas``), so the net can change them between epochs without
rebuilding the optimizer (its state, e.g. momentum buffers, survives).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

__all__ = [
    "IMPLEMENTATION_FLAGS", "UPDATES", "adam", "adamw", "build_optimizer", "check_hyperparameter",
    "drop_unavailable_kernels", "fused_kernel_available", "hyperparameter_slots", "momentum",
    "nesterov_momentum", "set_hyperparameter", "sgd",
]

# Group flags that choose an implementation, not the maths: a checkpoint written where one was
# available must not force it onto a machine (or torch) without it.
IMPLEMENTATION_FLAGS = ("fused", "foreach")


def _fast(optimizer_class, params, **kwargs):
    """``optimizer_class`` with torch's fused kernel where this torch and device have it.

    The fused update is one pass over each tensor instead of several (net2's SGD step: 4.5 ms
    instead of 11.5 ms on a 2-core CPU); where it is missing the default implementation runs.
    """
    params = list(params)
    try:
        return optimizer_class(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return optimizer_class(params, **kwargs)


def fused_kernel_available(optimizer_class: type[torch.optim.Optimizer],
                           device: torch.device | str, lr: float = 0.01) -> bool:
    """Tell whether ``optimizer_class(..., fused=True)`` works for parameters on ``device``.

    Parameters
    ----------
    optimizer_class : type of torch.optim.Optimizer
        The optimizer to probe, e.g. ``torch.optim.SGD``.
    device : torch.device or str
        Where the parameters live.
    lr : float, default 0.01
        The learning rate to build the probe with (some optimizers refuse some values).

    Returns
    -------
    bool
        True when this torch builds the fused variant for that device.
    """
    probe = torch.zeros(1, device=device, requires_grad=True)
    try:
        optimizer_class([probe], lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def drop_unavailable_kernels(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Turn off ``fused`` in param groups whose kernel this torch and device lack.

    Needed for an optimizer unpickled from a newer torch or moved to another device; the
    default implementation does the same maths.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Changed in place.

    Returns
    -------
    torch.optim.Optimizer
        The same ``optimizer``.
    """
    for group in optimizer.param_groups:
        if group.get("fused") and group["params"] and not fused_kernel_available(
                type(optimizer), group["params"][0].device, group.get("lr", 0.01)):
            group["fused"] = False
    return optimizer


def _rule(**hyperparameters):
    def decorate(fn):
        fn.hyperparameters = hyperparameters
        return fn
    return decorate


@_rule(learning_rate=("lr",), momentum=("momentum",))
def nesterov_momentum(params: Iterable[torch.Tensor], learning_rate: float = 0.01,
                      momentum: float = 0.9) -> torch.optim.SGD:
    """Build SGD with Nesterov momentum (the recipe's default update).

    Parameters
    ----------
    params : iterable of torch.Tensor
        The parameters to train.
    learning_rate : float, default 0.01
        The step size.
    momentum : float, default 0.9
        The momentum coefficient.

    Returns
    -------
    torch.optim.SGD
        With ``nesterov=True``, and torch's fused kernel where available.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.updates import nesterov_momentum
    >>> w = torch.nn.Parameter(torch.zeros(3))
    >>> group = nesterov_momentum([w], learning_rate=0.05).param_groups[0]
    >>> group["lr"], group["momentum"], group["nesterov"]
    (0.05, 0.9, True)
    """
    return _fast(torch.optim.SGD, params, lr=learning_rate, momentum=momentum, nesterov=True)


@_rule(learning_rate=("lr",), momentum=("momentum",))
def momentum(params: Iterable[torch.Tensor], learning_rate: float = 0.01,
             momentum: float = 0.9) -> torch.optim.SGD:
    """Build SGD with classical momentum.

    Parameters
    ----------
    params : iterable of torch.Tensor
        The parameters to train.
    learning_rate : float, default 0.01
        The step size.
    momentum : float, default 0.9
        The momentum coefficient.

    Returns
    -------
    torch.optim.SGD
        With ``nesterov=False``, and torch's fused kernel where available.
    """
    return _fast(torch.optim.SGD, params, lr=learning_rate, momentum=momentum)


@_rule(learning_rate=("lr",))
def sgd(params: Iterable[torch.Tensor], learning_rate: float = 0.01) -> torch.optim.SGD:
    """Build plain stochastic gradient descent.

    Parameters
    ----------
    params : iterable of torch.Tensor
        The parameters to train.
    learning_rate : float, default 0.01
        The step size.

    Returns
    -------
    torch.optim.SGD
        Without momentum, and with torch's fused kernel where available.
    """
    return _fast(torch.optim.SGD, params, lr=learning_rate)


@_rule(learning_rate=("lr",), momentum=("betas", 0), beta1=("betas", 0), beta2=("betas", 1),
       epsilon=("eps",))
def adam(params: Iterable[torch.Tensor], learning_rate: float = 0.001, beta1: float = 0.9,
         beta2: float = 0.999, epsilon: float = 1e-8,
         momentum: float | None = None) -> torch.optim.Adam:
    """Build Adam; ``momentum`` is another name for ``beta1``, so momentum schedules apply.

    Parameters
    ----------
    params : iterable of torch.Tensor
        The parameters to train.
    learning_rate : float, default 0.001
        The step size.
    beta1 : float, default 0.9
        Decay rate of the first-moment estimate.
    beta2 : float, default 0.999
        Decay rate of the second-moment estimate.
    epsilon : float, default 1e-8
        Added to the denominator for numerical stability.
    momentum : float, optional
        When given, used as ``beta1`` (it wins over ``beta1``).

    Returns
    -------
    torch.optim.Adam
        With torch's fused kernel where available.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.updates import adam
    >>> w = torch.nn.Parameter(torch.zeros(3))
    >>> adam([w], momentum=0.5).param_groups[0]["betas"]
    (0.5, 0.999)
    """
    if momentum is not None:
        beta1 = momentum
    return _fast(torch.optim.Adam, params, lr=learning_rate, betas=(beta1, beta2), eps=epsilon)


@_rule(learning_rate=("lr",), momentum=("betas", 0), beta1=("betas", 0), beta2=("betas", 1),
       epsilon=("eps",), weight_decay=("weight_decay",))
def adamw(params: Iterable[torch.Tensor], learning_rate: float = 0.001, beta1: float = 0.9,
          beta2: float = 0.999, epsilon: float = 1e-8, weight_decay: float = 0.01,
          momentum: float | None = None) -> torch.optim.AdamW:
    """Build AdamW: Adam with decoupled weight decay (Loshchilov & Hutter).

    Each step shrinks every weight by ``learning_rate * weight_decay`` times itself, apart
    from the Adam step, so a learning-rate schedule scales the decay too. ``momentum`` is
    another name for ``beta1``, as for :func:`adam`.

    Parameters
    ----------
    params : iterable of torch.Tensor
        The parameters to train.
    learning_rate : float, default 0.001
        The step size.
    beta1 : float, default 0.9
        Decay rate of the first-moment estimate.
    beta2 : float, default 0.999
        Decay rate of the second-moment estimate.
    epsilon : float, default 1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default 0.01
        The decoupled weight decay coefficient (torch's default); 0 makes this Adam.
    momentum : float, optional
        When given, used as ``beta1`` (it wins over ``beta1``).

    Returns
    -------
    torch.optim.AdamW
        With torch's fused kernel where available.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.updates import adamw
    >>> w = torch.nn.Parameter(torch.zeros(3))
    >>> group = adamw([w], learning_rate=2e-3, weight_decay=1e-4).param_groups[0]
    >>> group["lr"], group["weight_decay"], group["betas"]
    (0.002, 0.0001, (0.9, 0.999))
    """
    if momentum is not None:
        beta1 = momentum
    return _fast(torch.optim.AdamW, params, lr=learning_rate, betas=(beta1, beta2), eps=epsilon,
                 weight_decay=weight_decay)


UPDATES = {"nesterov_momentum": nesterov_momentum, "momentum": momentum, "sgd": sgd, "adam": adam,
           "adamw": adamw}


def hyperparameter_slots(
        update: Callable[..., torch.optim.Optimizer] | type[torch.optim.Optimizer],
) -> dict[str, tuple]:
    """Map the hyperparameter names an update understands to their param-group slots.

    Parameters
    ----------
    update : callable or type of torch.optim.Optimizer
        An update rule of this module, a user's rule, or a torch optimizer class.

    Returns
    -------
    dict of str to tuple
        ``name -> (group_key,)`` or ``name -> (group_key, index)``. A rule without a
        ``hyperparameters`` attribute (a torch optimizer class or a user's rule) maps only
        ``learning_rate`` to ``lr``; :func:`set_hyperparameter` uses other names as group
        keys.

    Examples
    --------
    >>> from facekeypoints.updates import adam, hyperparameter_slots
    >>> hyperparameter_slots(adam)["momentum"]
    ('betas', 0)
    """
    slots = getattr(update, "hyperparameters", None)
    if slots is None:  # a torch optimizer class or a user's rule: names are the group keys
        slots = {"learning_rate": ("lr",)}
    return slots


def set_hyperparameter(optimizer: torch.optim.Optimizer,
                       update: Callable[..., torch.optim.Optimizer] | type[torch.optim.Optimizer],
                       name: str, value: float) -> None:
    """Write one hyperparameter into every param group of ``optimizer``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Changed in place; its state (e.g. momentum buffers) is kept.
    update : callable or type of torch.optim.Optimizer
        The rule that built ``optimizer``; it says where ``name`` lives
        (see :func:`hyperparameter_slots`).
    name : str
        The recipe's name, e.g. ``'learning_rate'`` or ``'momentum'``.
    value : float
        The new value.

    Raises
    ------
    KeyError
        If a param group has no slot for ``name``.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.updates import adam, set_hyperparameter
    >>> opt = adam([torch.nn.Parameter(torch.zeros(3))])
    >>> set_hyperparameter(opt, adam, "momentum", 0.8)
    >>> opt.param_groups[0]["betas"]
    (0.8, 0.999)
    """
    slot = hyperparameter_slots(update).get(name, (name,))
    for group in optimizer.param_groups:
        if slot[0] not in group:
            raise KeyError(name)
        if len(slot) == 1:
            group[slot[0]] = value
        else:
            current = list(group[slot[0]])
            current[slot[1]] = value
            group[slot[0]] = tuple(current)


def build_optimizer(update: Callable[..., torch.optim.Optimizer] | type[torch.optim.Optimizer],
                    params: Iterable[torch.Tensor],
                    hyper: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Create the optimizer for ``params`` from an update rule or a torch optimizer class.

    Parameters
    ----------
    update : callable or type of torch.optim.Optimizer
        An update rule, called as ``update(params, **hyper)``; or a torch optimizer class,
        called with ``learning_rate`` renamed to ``lr`` and the other keywords as given.
    params : iterable of torch.Tensor
        The parameters to train.
    hyper : mapping of str to object
        Hyperparameters by the recipe's names, e.g. ``{'learning_rate': 0.01}``.

    Returns
    -------
    torch.optim.Optimizer
        The new optimizer.

    Examples
    --------
    >>> import torch
    >>> from facekeypoints.updates import build_optimizer
    >>> w = torch.nn.Parameter(torch.zeros(3))
    >>> opt = build_optimizer(torch.optim.RMSprop, [w], {"learning_rate": 0.1})
    >>> type(opt).__name__, opt.param_groups[0]["lr"]
    ('RMSprop', 0.1)
    """
    if isinstance(update, type) and issubclass(update, torch.optim.Optimizer):
        kwargs = dict(hyper)
        if "learning_rate" in kwargs:
            kwargs["lr"] = kwargs.pop("learning_rate")
        return update(params, **kwargs)
    return update(params, **hyper)


def check_hyperparameter(attr: str, value: float) -> float:
    """Refuse a hyperparameter value that no run should use, naming the attribute.

    Every value must be finite; one whose name ends in ``learning_rate`` must be > 0, in
    ``momentum`` in [0, 1), in ``weight_decay`` >= 0.

    Parameters
    ----------
    attr : str
        The attribute's name; names ending in ``learning_rate``, ``momentum`` or
        ``weight_decay`` get the range checks.
    value : float
        The value to check.

    Returns
    -------
    float
        ``value``, unchanged.

    Raises
    ------
    ValueError
        If ``value`` is out of range; the message names ``attr``.

    Examples
    --------
    >>> from facekeypoints.updates import check_hyperparameter
    >>> check_hyperparameter("update_momentum", 0.9)
    0.9
    >>> check_hyperparameter("update_momentum", 1.0)
    Traceback (most recent call last):
    ...
    ValueError: update_momentum must be in [0, 1), got 1.0
    """
    if not math.isfinite(value):
        raise ValueError(f"{attr} is {value}; it must be a finite number")
    if attr.endswith("learning_rate") and value <= 0:
        raise ValueError(f"{attr} must be > 0, got {value}")
    if attr.endswith("momentum") and not 0 <= value < 1:
        raise ValueError(f"{attr} must be in [0, 1), got {value}")
    if attr.endswith("weight_decay") and value < 0:
        raise ValueError(f"{attr} must be >= 0 (0 turns weight decay off), got {value}")
    return value
