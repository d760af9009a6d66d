"""float32 vs bf16 at equal epochs: final valid RMSE of net4 and net5 on the embedded faces.

Trains each net at each precision for each seed on the same split (the 2,140 complete
embedded faces, 80/20) at the budget of the quick ``recipe`` run (20 epochs of batch 16, where
both nets leave the mean keypoints), then prints one row per net and seed with the valid RMSE
in pixels at both precisions, bf16's relative difference, and the seconds per epoch. The
README's rule: ``'auto'`` becomes the default only if bf16 is within 1% of float32 (or better).

On a CPU without AMX-BF16/AVX512-BF16 bf16 is emulated and about ten times slower than
float32: run this where bf16 is native.

    python benchmarks/precision_table.py [--nets net4 net5] [--seeds 0 1] [--epochs 20]
"""
from __future__ import annotations

import argparse
import time

import facekeypoints as fk
from facekeypoints.metrics import rmse_px


def train(name, precision, seed, X, y, args):
    """Final valid RMSE (px) and seconds per epoch of one run."""
    net = fk.presets.get(name, max_epochs=args.epochs, verbose=0, precision=precision,
                         random_state=seed, device=args.device)
    kind = type(net.batch_iterator_train or fk.BatchIterator())
    iterator = kind(batch_size=args.batch_size)   # net5 keeps its flips
    net.set_params(batch_iterator_train=iterator)
    start = time.perf_counter()
    net.fit(X, y)
    return rmse_px(net.history[-1, "valid_loss"]), (time.perf_counter() - start) / args.epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["net4", "net5"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--faces", type=int, default=None, help="first N faces (default all)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    X, y = fk.load2d()
    if args.faces:
        X, y = X[:args.faces], y[:args.faces]
    flags = fk.precision.cpu_bf16_flags()
    print(f"{len(X)} faces, {args.epochs} epochs of batch {args.batch_size}, device "
          f"{args.device} (CPU bf16: {', '.join(flags) or 'emulated'})")
    print(f"{'net':<6}{'seed':>5}{'fp32 px':>9}{'bf16 px':>9}{'bf16 vs fp32':>14}"
          f"{'fp32 s/ep':>11}{'bf16 s/ep':>11}")
    rows = []
    for name in args.nets:
        for seed in args.seeds:
            fp32, fp32_s = train(name, "32", seed, X, y, args)
            bf16, bf16_s = train(name, "bf16", seed, X, y, args)
            rows.append(bf16 / fp32 - 1)
            print(f"{name:<6}{seed:>5}{fp32:>9.3f}{bf16:>9.3f}{bf16 / fp32 - 1:>+13.1%}"
                  f"{fp32_s:>11.2f}{bf16_s:>11.2f}", flush=True)
    worst = max(rows)
    print(f"worst bf16 vs fp32: {worst:+.1%} -> "
          + ("within 1%: 'auto' may be the default" if worst <= 0.01 else "keep '32'"))


if __name__ == "__main__":
    main()
