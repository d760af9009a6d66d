"""net4 epochs: facekeypoints vs stock skorch vs a plain PyTorch loop, in one process.

Each round trains one epoch of each contender in turn (interleaved, so machine noise hits all
alike) on the recipe's sizes: 2,140 samples, 1,712 train + 428 valid, batch 128. Prints the
median epoch seconds, the ratios, and the share of this machine's measured float32 GEMM
throughput each one reaches (an epoch of net4 is ~487 GFLOP).

    python benchmarks/bench_train.py [--rounds 5] [--samples 2140] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.dataset import ValidSplit

import facekeypoints as fk

FLOP_PER_SAMPLE_FORWARD = 2 * 43.75e6  # multiply-adds of net2..net6, times two


def recipe_module():
    """net2's architecture as a plain torch Sequential (NCHW), Glorot init like the recipe."""
    nn = torch.nn
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(15488, 500), nn.ReLU(), nn.Linear(500, 500), nn.ReLU(),
        nn.Linear(500, 30))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


class _SkorchContender:
    """A skorch-based net trained one epoch at a time with ``partial_fit``."""

    def __init__(self, net, X, y):
        self.net = net.initialize()
        self.X, self.y = X, y

    def epoch(self):
        self.net.partial_fit(self.X, self.y, epochs=1)


class Facekeypoints(_SkorchContender):
    name = "facekeypoints"

    def __init__(self, X, y, device):
        super().__init__(fk.presets.net4(max_epochs=1000, verbose=0, device=device,
                                         random_state=0), X, y)


class StockSkorch(_SkorchContender):
    name = "skorch"

    def __init__(self, X, y, device):
        super().__init__(NeuralNetRegressor(
            recipe_module, optimizer=torch.optim.SGD, lr=0.03, optimizer__momentum=0.9,
            optimizer__nesterov=True, batch_size=128, max_epochs=1, train_split=ValidSplit(5),
            verbose=0, device=device), X, y)


class PlainTorch:
    name = "plain torch"

    def __init__(self, X, y, device):
        self.device = device
        self.module = recipe_module().to(device)
        self.opt = torch.optim.SGD(self.module.parameters(), lr=0.03, momentum=0.9, nesterov=True)
        n_valid = len(X) // 5
        self.Xv, self.yv = torch.as_tensor(X[:n_valid]), torch.as_tensor(y[:n_valid])
        self.Xt, self.yt = torch.as_tensor(X[n_valid:]), torch.as_tensor(y[n_valid:])

    def epoch(self):
        self.module.train()
        for i in range(0, len(self.Xt), 128):
            xb = self.Xt[i:i + 128].to(self.device)
            yb = self.yt[i:i + 128].to(self.device)
            self.opt.zero_grad()
            loss = torch.nn.functional.mse_loss(self.module(xb), yb)
            loss.backward()
            self.opt.step()
        self.module.eval()
        with torch.no_grad():
            for i in range(0, len(self.Xv), 128):
                torch.nn.functional.mse_loss(self.module(self.Xv[i:i + 128].to(self.device)),
                                             self.yv[i:i + 128].to(self.device)).item()


def gemm_flops(device, size=2048, trials=7, repeats=3):
    """This machine's float32 matrix-multiply throughput, FLOP/s: the best of several trials,
    so that a neighbour's burst on a shared machine does not lower the reference."""
    a = torch.rand(size, size, device=device)
    b = torch.rand(size, size, device=device)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(trials):
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = max(best, 2 * size ** 3 * repeats / (time.perf_counter() - start))
    return best


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2140)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", help="contender names to run (default: all)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.random((args.samples, 1, 96, 96), dtype=np.float32)
    y = rng.uniform(-1, 1, (args.samples, 30)).astype(np.float32)
    torch.manual_seed(0)
    contenders = [cls(X, y, args.device) for cls in (Facekeypoints, StockSkorch, PlainTorch)
                  if not args.only or cls.name in args.only]
    times = {c.name: [] for c in contenders}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.samples} samples, {args.rounds} rounds (+1 warm-up)")
    for round_ in range(args.rounds + 1):
        for c in contenders:
            _sync(args.device)
            start = time.perf_counter()
            c.epoch()
            _sync(args.device)
            if round_:  # round 0 warms up allocators and caches
                times[c.name].append(time.perf_counter() - start)
        if round_:
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))

    peak = gemm_flops(args.device)
    n_valid = args.samples // 5 + (1 if args.samples % 5 else 0)
    epoch_flop = FLOP_PER_SAMPLE_FORWARD * (3 * (args.samples - n_valid) + n_valid)
    base = statistics.median(times[contenders[0].name])
    print(f"\nfloat32 GEMM throughput: {peak / 1e9:.1f} GFLOP/s; one epoch = "
          f"{epoch_flop / 1e9:.0f} GFLOP")
    print(f"{'contender':<14}{'median epoch s':>15}{'vs facekeypoints':>18}{'of GEMM peak':>14}"
          f"{'per-round ratio':>19}")
    first = times[contenders[0].name]
    for name, values in times.items():
        med = statistics.median(values)
        # Ratios within each round (same machine state for both): their spread shows the noise.
        ratios = [v / f for v, f in zip(values, first)]
        print(f"{name:<14}{med:>15.2f}{med / base:>17.2f}x{epoch_flop / med / peak:>13.0%}"
              f"{min(ratios):>11.2f}-{max(ratios):.2f}x")


if __name__ == "__main__":
    main()
