"""Divergence checks: a loss that becomes NaN or infinite stops ``fit`` before its step.

The check runs after the loss of a batch is computed and before the optimizer applies the
step (a callback's ``on_batch_end`` comes after the step, so the net calls this from its
training and validation steps).
"""
from __future__ import annotations

import torch

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """Raised when the loss becomes NaN or infinite during ``fit``.

    It is raised before the optimizer applies the bad step, so the weights are those from
    before it. The message names the epoch, the phase (training or validation) and the
    learning rate and momentum in use. A subclass of ``FloatingPointError``.
    """


def check_finite(history, loss, phase):
    """Raise :class:`DivergenceError` naming the epoch and hyperparameters if ``loss`` is not
    finite (one host sync: skorch reads the loss right after anyway)."""
    if torch.isfinite(loss):
        return
    entry = history[-1] if len(history) else {}
    hyper = ", ".join(f"{k} {entry[k]:g}" for k in ("learning_rate", "momentum") if k in entry)
    raise DivergenceError(
        f"training diverged in epoch {entry.get('epoch', '?')}: the {phase} loss is "
        f"{loss.item()} ({hyper}). The weights are those from before this step. fit "
        "checked that X is finite and y holds no infinity (NaN targets are unlabelled "
        "and left out of the loss), so the steps are too large: lower "
        "update_learning_rate (or scale the targets to about [-1, 1]).")
