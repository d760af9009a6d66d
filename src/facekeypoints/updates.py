"""Update rules with the old Lasagne names, each building a torch optimizer.

An update rule is a function ``rule(params, learning_rate=..., **hyper) -> torch.optim.Optimizer``.
Its ``hyperparameters`` attribute maps the recipe's names (``learning_rate``, ``momentum``)
onto the optimizer's param-group keys, so the net can change them between epochs without
rebuilding the optimizer (its state, e.g. momentum buffers, survives).
"""
from __future__ import annotations

import math

import torch


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


def fused_kernel_available(optimizer_class, device, lr=0.01):
    """Whether ``optimizer_class(..., fused=True)`` works for parameters on ``device`` here."""
    probe = torch.zeros(1, device=device, requires_grad=True)
    try:
        optimizer_class([probe], lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def drop_unavailable_kernels(optimizer):
    """Turn off ``fused`` in groups whose kernel this torch/device lacks (an unpickled net from
    a newer torch or another device); the default implementation does the same maths."""
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
def nesterov_momentum(params, learning_rate=0.01, momentum=0.9):
    """SGD with Nesterov momentum (Lasagne's default in the recipe)."""
    return _fast(torch.optim.SGD, params, lr=learning_rate, momentum=momentum, nesterov=True)


@_rule(learning_rate=("lr",), momentum=("momentum",))
def momentum(params, learning_rate=0.01, momentum=0.9):  # noqa: F811 - Lasagne's name
    """SGD with classical momentum."""
    return _fast(torch.optim.SGD, params, lr=learning_rate, momentum=momentum)


@_rule(learning_rate=("lr",))
def sgd(params, learning_rate=0.01):
    """Plain stochastic gradient descent."""
    return _fast(torch.optim.SGD, params, lr=learning_rate)


@_rule(learning_rate=("lr",), momentum=("betas", 0), beta1=("betas", 0), beta2=("betas", 1),
       epsilon=("eps",))
def adam(params, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, momentum=None):
    """Adam; ``momentum`` is accepted as another name for ``beta1`` so momentum schedules apply."""
    if momentum is not None:
        beta1 = momentum
    return _fast(torch.optim.Adam, params, lr=learning_rate, betas=(beta1, beta2), eps=epsilon)


UPDATES = {"nesterov_momentum": nesterov_momentum, "momentum": momentum, "sgd": sgd, "adam": adam}


def hyperparameter_slots(update):
    """Names the rule understands -> where each lives in a param group."""
    slots = getattr(update, "hyperparameters", None)
    if slots is None:  # a torch optimizer class or a user's rule: names are the group keys
        slots = {"learning_rate": ("lr",)}
    return slots


def set_hyperparameter(optimizer, update, name, value):
    """Write one hyperparameter into every param group of ``optimizer``."""
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


def build_optimizer(update, params, hyper):
    """Create the optimizer for ``params`` from an update rule or a torch optimizer class."""
    if isinstance(update, type) and issubclass(update, torch.optim.Optimizer):
        kwargs = dict(hyper)
        if "learning_rate" in kwargs:
            kwargs["lr"] = kwargs.pop("learning_rate")
        return update(params, **kwargs)
    return update(params, **hyper)


def check_hyperparameter(attr, value):
    """Refuse values no run should start with: lr <= 0, momentum outside [0, 1), NaN."""
    if not math.isfinite(value):
        raise ValueError(f"{attr} is {value}; it must be a finite number")
    if attr.endswith("learning_rate") and value <= 0:
        raise ValueError(f"{attr} must be > 0, got {value}")
    if attr.endswith("momentum") and not 0 <= value < 1:
        raise ValueError(f"{attr} must be in [0, 1), got {value}")
    return value
