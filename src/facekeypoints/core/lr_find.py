"""The learning-rate range test: train briefly with an exponentially growing learning rate.

Leslie Smith's range test ("Cyclical Learning Rates for Training Neural Networks", 2017), as
fastai's ``lr_find`` and Lightning's ``LearningRateFinder`` run it: from a tiny learning rate,
multiply it by the same factor after every training step, record the loss, and stop once the
loss has blown up. The curve shows where training starts to learn (the loss begins to fall)
and where it breaks (the loss shoots up); a good rate sits on the steep part before the
minimum. The net, its optimizer and the random generators are put back exactly as they were,
so the test can run before ``fit`` (or between fits) without changing what ``fit`` does.

The suggestion is the geometric middle of the stretch over which the smoothed loss fell the
most without rising: the steep part of the curve, in the spirit of fastai's default ``valley``
rule. fastai's ``minimum`` rule (a tenth of the rate at the minimum of the smoothed loss) and the
steepest point are reported too. The rules disagree most where a net first learns the mean
keypoints at almost any rate (as the recipe's nets do): there the curve ends on a plateau
instead of blowing up, and ``minimum`` points far too high.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["LRFindResult", "LRFinder", "lr_find"]

#: How the suggestion is made, in words (printed with it).
SUGGESTION_RULE = ("the geometric middle of the stretch where the smoothed loss fell the most "
                   "without rising")


@dataclass
class LRFindResult:
    """What a learning-rate range test measured (the fields are its attributes).

    Parameters
    ----------
    learning_rates : numpy.ndarray
        The learning rate of each step.
    losses : numpy.ndarray
        The training loss of each step (NaN where it was not finite).
    smoothed : numpy.ndarray
        The losses smoothed exponentially (bias-corrected), as the suggestion reads them.
    suggestion : float or None
        The suggested learning rate (see ``rule``); None when the loss never fell.
    steepest : float or None
        The learning rate where the smoothed loss fell fastest per decade (the first tenth of
        the steps, where the smoothing has not settled, left out).
    minimum : float or None
        fastai's ``minimum`` rule: a tenth of the learning rate at the smoothed loss's minimum.
    rule : str
        How ``suggestion`` was chosen.
    stopped : str
        Why the test ended: ``'stop'`` (reached the last learning rate), ``'diverged'`` (the
        smoothed loss passed ``diverge`` times its minimum) or ``'not finite'``.
    settings : dict
        The test's settings: ``start``, ``stop``, ``steps``, ``smooth``, ``diverge``.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None
    steepest: float | None
    minimum: float | None = None
    rule: str = SUGGESTION_RULE
    stopped: str = "stop"
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self):
        """The curve as a pandas DataFrame.

        Returns
        -------
        pandas.DataFrame
            Columns ``step``, ``learning_rate``, ``loss``, ``smoothed_loss``.
        """
        import pandas as pd

        return pd.DataFrame({"step": np.arange(1, len(self.losses) + 1),
                             "learning_rate": self.learning_rates, "loss": self.losses,
                             "smoothed_loss": self.smoothed})

    def summary(self) -> str:
        """One line: the suggestion, the rule and why the test stopped.

        Returns
        -------
        str
            E.g. ``'suggested learning rate 0.0123 (a tenth of ...); steepest 0.0041;
            200 steps, stopped: diverged'``.
        """
        def fmt(v):
            return "none (the loss never fell)" if v is None else f"{v:.3g}"
        return (f"suggested learning rate {fmt(self.suggestion)} ({self.rule}); steepest "
                f"{fmt(self.steepest)}; minimum/10 {fmt(self.minimum)}; {len(self.losses)} "
                f"steps, stopped: {self.stopped}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (NaN as None).

        Returns
        -------
        dict
            The settings, the suggestion, the rule and the curve.
        """
        def clean(a):
            return [None if not math.isfinite(v) else float(v) for v in a]
        return {"suggestion": self.suggestion, "steepest": self.steepest,
                "minimum": self.minimum, "rule": self.rule,
                "stopped": self.stopped, "settings": dict(self.settings),
                "learning_rate": clean(self.learning_rates), "loss": clean(self.losses),
                "smoothed_loss": clean(self.smoothed)}


def _snapshot(net):
    return {
        "module": copy.deepcopy(net.module_.state_dict()),
        "optimizer": copy.deepcopy(net.optimizer_.state_dict()),
        "training": net.module_.training,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "net_rng": copy.deepcopy(net.rng_state()),
    }


def _restore(net, snap):
    net.module_.load_state_dict(snap["module"])
    net.optimizer_.load_state_dict(snap["optimizer"])
    net.module_.train(snap["training"])
    torch.set_rng_state(snap["torch_rng"])
    if snap["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(snap["cuda_rng"])
    net.set_rng_state(snap["net_rng"])


def _suggest(lrs, smoothed):
    """(valley, steepest, minimum / 10) of a smoothed curve; None where there is no descent."""
    finite = np.isfinite(smoothed)
    n = int(finite.sum())
    if n < 3:
        return None, None, None
    lrs, smoothed = lrs[:n], smoothed[:n]          # a curve ends at its first non-finite loss
    i_min = int(np.argmin(smoothed))
    minimum = float(lrs[i_min] / 10) if i_min > 0 else None
    best, start, valley = 0.0, 0, None
    for i in range(1, n):                           # the fall without a rise that drops most
        if not smoothed[i] < smoothed[i - 1]:
            start = i
        elif smoothed[start] - smoothed[i] > best:
            best, valley = smoothed[start] - smoothed[i], (start, i)
    suggestion = None if valley is None else float(np.sqrt(lrs[valley[0]] * lrs[valley[1]]))
    skip = max(1, n // 10)
    steepest = None
    if i_min - skip >= 2:
        slope = np.gradient(smoothed[skip:i_min + 1], np.log10(lrs[skip:i_min + 1]))
        steepest = float(lrs[skip + int(np.argmin(slope))])
    return suggestion, steepest, minimum


def lr_find(net, X, y, start: float = 1e-7, stop: float = 10.0, steps: int = 200,
            smooth: float = 0.98, diverge: float = 4.0) -> LRFindResult:
    """Run the learning-rate range test on a net, then put the net back as it was.

    Parameters
    ----------
    net : facekeypoints.NeuralNet
        The net (initialized here if it is not); its update rule and momentum are used as
        configured (SGD with Nesterov momentum for the recipe, AdamW for ``modern``).
    X, y : array-like
        Training faces and scaled targets (NaN: unlabelled, where the criterion allows it).
        Batches come from ``batch_iterator_train``, over the data as often as needed.
    start, stop : float, default 1e-7, 10
        The first and the last learning rate; > 0, ``start < stop``.
    steps : int, default 200
        Training steps; the rate grows by ``(stop / start) ** (1 / (steps - 1))`` each step.
    smooth : float, default 0.98
        Weight of the past in the exponential smoothing of the loss, in [0, 1).
    diverge : float, default 4.0
        Stop once the smoothed loss exceeds this many times its minimum (> 1).

    Returns
    -------
    LRFindResult
        The curve, the suggestion and the rule.

    Raises
    ------
    ValueError
        For settings outside their ranges.

    Examples
    --------
    >>> import numpy as np, torch, facekeypoints as fk
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((64, 8), dtype=np.float32)
    >>> y = (X[:, :2] - 0.5).astype(np.float32)
    >>> net = fk.NeuralNet(module=torch.nn.Linear(8, 2), max_epochs=1, verbose=0,
    ...                    update_learning_rate=0.01, update_momentum=0.9, random_state=0)
    >>> result = lr_find(net.initialize(), X, y, steps=60)
    >>> len(result.losses) <= 60 and result.suggestion is not None
    True
    """
    for name, value, ok in (("start", start, start > 0), ("stop", stop, stop > start),
                            ("smooth", smooth, 0 <= smooth < 1), ("diverge", diverge, diverge > 1),
                            ("steps", steps, isinstance(steps, int) and steps >= 3)):
        if not ok:
            raise ValueError(f"lr_find: {name}={value!r} is out of range (start > 0, "
                             "stop > start, steps >= 3, 0 <= smooth < 1, diverge > 1)")
    if not getattr(net, "initialized_", False):
        net.initialize()
    factor = (stop / start) ** (1.0 / (steps - 1))
    lrs, losses, smoothed = [], [], []
    snap = _snapshot(net)
    avg, best, stopped = 0.0, math.inf, "stop"
    try:
        dataset = net.get_dataset(X, y)
        net.module_.train(True)
        lr = start
        while len(lrs) < steps and stopped == "stop":
            before = len(lrs)
            for batch in net.get_iterator(dataset, training=True):
                for group in net.optimizer_.param_groups:
                    group["lr"] = lr
                try:
                    loss = float(net.train_step(batch)["loss"].detach())
                except FloatingPointError:      # the net's DivergenceError: the loss blew up
                    loss = math.nan
                lrs.append(lr)
                losses.append(loss)
                if not math.isfinite(loss):
                    smoothed.append(math.nan)
                    stopped = "not finite"
                    break
                avg = smooth * avg + (1 - smooth) * loss
                value = avg / (1 - smooth ** len(lrs))
                smoothed.append(value)
                best = min(best, value)
                if value > diverge * best:
                    stopped = "diverged"
                    break
                lr *= factor
                if len(lrs) >= steps:
                    break
            if len(lrs) == before:          # no batch at all: it would loop for ever
                raise ValueError(f"lr_find: the training data gave no batch ({len(dataset)} "
                                 "faces); pass faces to train on")
    finally:
        _restore(net, snap)
    lrs, losses, smoothed = (np.asarray(a, dtype=float) for a in (lrs, losses, smoothed))
    suggestion, steepest, minimum = _suggest(lrs, smoothed)
    return LRFindResult(lrs, losses, smoothed, suggestion, steepest, minimum, stopped=stopped,
                        settings={"start": start, "stop": stop, "steps": steps,
                                  "smooth": smooth, "diverge": diverge})


class LRFinder:
    """Mixin that gives a net ``net.lr_find(X, y)``: the range test of :func:`lr_find`."""

    def lr_find(self, X: Any, y: Any, **settings: Any) -> LRFindResult:
        """Run the learning-rate range test on this net, then put it back as it was.

        Parameters
        ----------
        X, y : array-like
            Training faces and scaled targets.
        **settings
            ``start``, ``stop``, ``steps``, ``smooth``, ``diverge``: see :func:`lr_find`.

        Returns
        -------
        LRFindResult
            The curve, the suggested learning rate and the rule that chose it; draw it with
            :func:`facekeypoints.plots.plot_lr_find`.
        """
        return lr_find(self, X, y, **settings)
