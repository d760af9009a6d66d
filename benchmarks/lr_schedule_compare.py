"""Learning-rate range test and one-cycle against the presets' own rates, at equal epochs.

For net4 (the recipe's SGD with Nesterov momentum, batch 16 as in the main job) and the modern
preset (AdamW, warm-up + cosine): runs ``lr_find`` on the training faces, then trains

- the preset as it is,
- the preset with its peak learning rate replaced by the range test's suggestion,
- one-cycle (``schedules.one_cycle`` + ``one_cycle_momentum``) at the preset's peak rate,

for the same number of epochs on the same split, and prints the best validation RMSE in pixels
(measured from predictions on the validation faces) of each. One seed per row.

    python benchmarks/lr_schedule_compare.py                    # embedded faces
    python benchmarks/lr_schedule_compare.py --data MTFL_CSV --net4-epochs 20 --modern-epochs 15
"""
from __future__ import annotations

import argparse
import time

import numpy as np




def valid_px(net, Xv, yv):
    pred = net.predict(Xv)
    return float(np.sqrt(np.nanmean((pred - yv) ** 2)) * 48)


def build(name, epochs, batch, lr=None, one_cycle=False):
    import facekeypoints as fk
    from facekeypoints import presets
    from facekeypoints.schedules import one_cycle as cycle, one_cycle_momentum

    overrides = dict(max_epochs=epochs, verbose=0, random_state=0)
    if batch:
        overrides["batch_iterator_train"] = fk.FlipBatchIterator(batch) if name == "net5" \
            else fk.BatchIterator(batch)
    net = presets.get(name, **overrides)
    peak = lr
    if one_cycle:
        momentum = "update_momentum"     # beta1 for AdamW (updates.adamw's other name)
        rate = peak or (0.03 if name != "modern" else 2e-3)
        callbacks = [("adjust_lr", fk.AdjustVariable("update_learning_rate",
                                                     schedule=cycle(rate))),
                     ("adjust_momentum", fk.AdjustVariable(momentum,
                                                           schedule=one_cycle_momentum()))]
        net.set_params(callbacks=callbacks, update_learning_rate=fk.shared(rate),
                       update_momentum=fk.shared(0.95))
    elif peak is not None:
        if name == "modern":
            from facekeypoints.presets import modern_schedule

            net.set_params(callbacks__adjust_lr__schedule=modern_schedule(peak, epochs),
                           update_learning_rate=peak)
        else:
            net.set_params(callbacks__adjust_lr__start=peak, update_learning_rate=peak)
    return net


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="Kaggle-format CSV (default: the embedded faces)")
    p.add_argument("--net4-epochs", type=int, default=20)
    p.add_argument("--modern-epochs", type=int, default=15)
    p.add_argument("--steps", type=int, default=200, help="lr_find steps")
    p.add_argument("--faces", type=int, default=None, help="use only this many faces")
    p.add_argument("--only", nargs="+", default=["net4", "modern"])
    args = p.parse_args(argv)

    import torch

    import facekeypoints as fk
    from facekeypoints.lr_find import lr_find
    from facekeypoints.precision import cpu_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    X, y = fk.load2d(args.data)
    if args.faces:
        X, y = X[:args.faces], y[:args.faces]
    print(f"# {cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(X)} faces ({args.data or 'embedded synthetic faces'})")
    rows = []
    for name, epochs, batch in (("net4", args.net4_epochs, 16),
                                ("modern", args.modern_epochs, None)):
        if name not in args.only:
            continue
        probe = build(name, epochs, batch)
        (Xt, yt), (Xv, yv) = probe.train_valid_split(X, y)
        t0 = time.perf_counter()
        found = lr_find(probe.initialize(), Xt, yt, steps=args.steps)
        print(f"{name}: {found.summary()} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for label, kwargs in (("preset", {}),
                              ("range-test suggestion", dict(lr=found.suggestion)),
                              ("one-cycle at the preset's peak", dict(one_cycle=True))):
            if label.startswith("range") and found.suggestion is None:
                continue
            net = build(name, epochs, batch, **kwargs)
            t0 = time.perf_counter()
            net.fit(X, y)
            px = valid_px(net, Xv, yv)
            lr0 = net.history[0]["learning_rate"] if "learning_rate" in net.history[0] else None
            peak = max(h.get("learning_rate", 0) for h in net.history)
            rows.append((name, label, epochs, peak, px, time.perf_counter() - t0))
            print(f"  {label:<32} peak lr {peak:.3g} (epoch-1 {lr0:.3g}): {px:.2f} px "
                  f"({rows[-1][-1]:.0f} s)", flush=True)
    print("\n| net | learning rate | epochs | peak lr | valid RMSE px |")
    print("|---|---|---:|---:|---:|")
    for name, label, epochs, peak, px, _ in rows:
        print(f"| {name} | {label} | {epochs} | {peak:.3g} | {px:.2f} |")


if __name__ == "__main__":
    main()
