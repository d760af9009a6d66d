"""The modern preset against net5 at equal wall-clock time, with each of its parts removed.

Every contender trains for about ``--budget`` seconds on the embedded faces and is scored on
the same held-out faces: the first 425 complete faces of ``load2d(dropna=False)`` (20% of
the complete ones), which no contender trains on. "Complete" contenders train on the other
1,700 complete faces; "partial" ones on every other face that has any keypoint (6,624
faces, NaN = unlabelled, masked loss). Each contender's epoch count is planned from the
second epoch of a two-epoch timing run, so that its schedule (the recipe's linear ramps;
modern's warm-up + cosine) spans the whole budget. After each epoch the held-out RMSE
(pixels) is recorded; at the end it is measured again with flip test-time augmentation.

Contenders: net5 as the quick ``recipe`` trains it (batch 16, flips) on complete faces and
with partial labels; ``modern`` with partial labels and AffineBatchIterator (rotation,
scale, shift and flips), then without partial labels, without geometric augmentation
(flips only), without both, without BatchNorm, and with the Wing and L1 losses instead of
MSE. Every modern row is scored with and without flip TTA.

    python benchmarks/modern_ablation.py [--budget 240] [--only modern net5] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from skorch.callbacks import Callback

import facekeypoints as fk
from facekeypoints.metrics import keypoint_rmse_px, rmse_px
from facekeypoints.reports import mean_baseline_loss


class HeldOut(Callback):
    """Record the held-out RMSE in pixels after every epoch (``heldout_px``)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def on_epoch_end(self, net, **kwargs):
        net.history.record("heldout_px", score_px(net.predict(self.X, tta=False), self.y))


def score_px(prediction, y):
    """RMSE in pixels over every labelled value."""
    return keypoint_rmse_px(y, prediction)


def split(seed):
    """Held-out complete faces, and the complete / partial training sets."""
    X, y = fk.load2d(dropna=False)
    complete = np.flatnonzero(~np.isnan(y).any(axis=1))
    n_held = len(complete) // 5
    held = complete[:n_held]
    rest = np.setdiff1d(np.arange(len(X)), held)
    rng = np.random.default_rng(seed)
    partial = rng.permutation(rest)
    full = rng.permutation(complete[n_held:])
    return (X[held], y[held]), (X[full], y[full]), (X[partial], y[partial])


def net5(epochs, seed):
    return fk.presets.net5(max_epochs=epochs, verbose=0, random_state=seed, eval_size=None,
                           batch_iterator_train=fk.FlipBatchIterator(16))


def modern(epochs, seed, geometric=True, batchnorm=True, criterion=None):
    net = fk.presets.modern(max_epochs=epochs, verbose=0, random_state=seed, eval_size=None)
    if geometric:
        net.set_params(batch_iterator_train=fk.AffineBatchIterator(64, shuffle=True))
    if criterion is not None:
        net.set_params(criterion=criterion)
    if not batchnorm:                 # conv + bias + ReLU, no BatchNormLayer
        params = net.get_params(deep=False)
        layers = [(n, c) for n, c in net.layers if not n.startswith("bn")]
        extra = {k: v for k, v in params.items() if k not in ("layers",)
                 and not k.startswith("bn")}
        for name, _ in layers:
            if name.startswith("conv"):
                extra[f"{name}_b"] = 0
                extra[f"{name}_nonlinearity"] = "relu"
        net = fk.NeuralNet(layers=layers, **extra)
    return net


CONTENDERS = {
    "net5, complete faces": (lambda e, s: net5(e, s), "complete"),
    "net5, partial labels": (lambda e, s: net5(e, s), "partial"),
    "modern": (lambda e, s: modern(e, s), "partial"),
    "modern - partial labels": (lambda e, s: modern(e, s), "complete"),
    "modern - partial labels - geometric aug": (lambda e, s: modern(e, s, geometric=False),
                                                "complete"),
    "modern - geometric aug": (lambda e, s: modern(e, s, geometric=False), "partial"),
    "modern - BatchNorm": (lambda e, s: modern(e, s, batchnorm=False), "partial"),
    "modern, Wing loss": (lambda e, s: modern(e, s, criterion="wing"), "partial"),
    "modern, L1 loss": (lambda e, s: modern(e, s, criterion="l1"), "partial"),
    "net5 specialists": (None, "partial"),
}


def run_specialists(name, data, held, args):
    """The recipe's six specialists (net5 at batch 16, no pretraining) in the same budget.

    Each specialist gets as many weight updates as a base net of ``E`` epochs on the
    complete faces (``fit_specialists``' rule), so the six together cost about six such
    nets: ``E`` is planned from a net5 timing run on the complete faces.
    """
    X, y = data["partial"]
    complete = data["complete"]
    timing = net5(2, args.seed).fit(*complete)
    epochs = max(1, int(round(args.budget / (6 * timing.history[-1, "dur"]))))
    start = time.perf_counter()
    ensemble = fk.specialists.fit_specialists(net5(epochs, args.seed), (X, y),
                                              base_epochs=epochs,
                                              reference_rows=len(complete[0]))
    seconds = time.perf_counter() - start
    plain = score_px(ensemble.predict(held[0]), held[1])
    tta = score_px(ensemble.predict(held[0], tta=True), held[1])
    return dict(name=name, faces=len(X), epochs=epochs, seconds=seconds, plain=plain, tta=tta,
                curve=[])


def run(name, data, held, args):
    make, which = CONTENDERS[name]
    if make is None:
        return run_specialists(name, data, held, args)
    X, y = data[which]
    timing = make(2, args.seed).fit(X, y)       # timing run: the second epoch (warmed up)
    per_epoch = timing.history[-1, "dur"]
    epochs = max(1, int(round(args.budget / per_epoch)))
    net = make(epochs, args.seed)
    net.set_params(callbacks=list(net.callbacks or []) + [("heldout", HeldOut(*held))])
    start = time.perf_counter()
    net.fit(X, y)
    seconds = time.perf_counter() - start
    curve = [h["heldout_px"] for h in net.history]
    plain = curve[-1]
    tta = score_px(net.predict(held[0], tta=True), held[1])
    return dict(name=name, faces=len(X), epochs=epochs, seconds=seconds, plain=plain, tta=tta,
                curve=curve)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240.0, help="seconds per contender")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="contender names containing these words")
    args = parser.parse_args(argv)

    held, complete, partial = split(args.seed)
    data = {"complete": complete, "partial": partial}
    baseline = rmse_px(mean_baseline_loss(complete[1], held[1]))
    print(f"held out: {len(held[0])} complete faces; mean-keypoint baseline {baseline:.2f} px; "
          f"budget {args.budget:.0f} s per contender; CPU bf16: "
          f"{', '.join(fk.precision.cpu_bf16_flags()) or 'none'}", flush=True)
    names = [n for n in CONTENDERS if not args.only or any(w in n for w in args.only)]
    rows = []
    for name in names:
        r = run(name, data, held, args)
        rows.append(r)
        leave = next((i + 1 for i, v in enumerate(r["curve"]) if v < 0.8 * baseline), None)
        print(f"{name}: {r['faces']} faces, {r['epochs']} epochs in {r['seconds']:.0f} s, "
              f"held-out {r['plain']:.3f} px (TTA {r['tta']:.3f}), below 80% of the mean "
              f"from epoch {leave}; per epoch: "
              + " ".join(f"{v:.2f}" for v in r["curve"]), flush=True)
    reference = next((r for r in rows if r["name"] == "net5, complete faces"), rows[0])
    print(f"\n| contender | faces | epochs | seconds | held-out px | with flip TTA | "
          f"vs {reference['name']} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['faces']:,} | {r['epochs']} | {r['seconds']:.0f} | "
              f"{r['plain']:.2f} | {r['tta']:.2f} | {r['plain'] / reference['plain'] - 1:+.0%} |")


if __name__ == "__main__":
    main()
