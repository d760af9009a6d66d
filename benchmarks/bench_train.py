"""net4 epochs: facekeypoints vs stock skorch vs plain PyTorch loops, in one process.

Each round trains one epoch of each contender in turn (interleaved, so machine noise hits all
alike) on the recipe's sizes: 2,140 samples, 1,712 train + 428 valid, batch 128. Contenders:

- ``facekeypoints``: ``presets.net4`` at each ``--precision`` asked for ('auto' resolves to
  bf16 only where the hardware has it natively; see ``facekeypoints.precision``);
- ``skorch``: stock ``NeuralNetRegressor`` with its DataLoader, float32 (what users have);
- ``plain torch``: the loop a tutorial writes (float32, NCHW, default allocator);
- ``expert``: what a skilled user writes in an afternoon: data as tensors, channels_last,
  fused Nesterov SGD, glibc's mmap threshold raised during the epoch, and at 'bf16' the forward
  pass under ``torch.autocast`` with the loss in float32.

Prints the median epoch seconds, each contender's speed-up over stock skorch and over the
expert loop at the same precision, the per-round ratios (their spread shows the noise), and the
share of this machine's float32 GEMM throughput reached (an epoch of net4 is ~487 GFLOP).

    python benchmarks/bench_train.py [--rounds 5] [--samples 2140] [--precision 32 auto]
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
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

    def __init__(self, X, y, device, precision="32"):
        super().__init__(fk.presets.net4(max_epochs=1000, verbose=0, device=device,
                                         random_state=0, precision=precision), X, y)
        self.precision = self.net.precision_


class StockSkorch(_SkorchContender):
    name = "skorch"
    precision = "32"

    def __init__(self, X, y, device):
        super().__init__(NeuralNetRegressor(
            recipe_module, optimizer=torch.optim.SGD, lr=0.03, optimizer__momentum=0.9,
            optimizer__nesterov=True, batch_size=128, max_epochs=1, train_split=ValidSplit(5),
            verbose=0, device=device), X, y)


class PlainTorch:
    name = "plain torch"
    precision = "32"

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


def _libc_mallopt():
    """glibc's ``mallopt``, or None where there is none (not Linux/glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return getattr(libc, "mallopt", None)


@contextlib.contextmanager
def large_buffers_in_heap(mallopt=_libc_mallopt()):
    """Keep 100+ MB activations in glibc's heap (no mmap/munmap per step), then restore."""
    if mallopt is None:
        yield
        return
    mallopt(-3, 1 << 30)        # M_MMAP_THRESHOLD
    mallopt(-1, 2 << 30)        # M_TRIM_THRESHOLD
    try:
        yield
    finally:
        mallopt(-3, 128 * 1024)
        mallopt(-1, 128 * 1024)


class Expert:
    """The plain loop a skilled user writes: channels_last, fused SGD, tuned malloc, autocast."""

    name = "expert"

    def __init__(self, X, y, device, precision="32"):
        self.device, self.precision = device, fk.precision.resolve_precision(precision, device)
        cl = torch.channels_last
        self.module = recipe_module().to(device, memory_format=cl)
        params = list(self.module.parameters())
        try:                          # torch's fused kernel, where this build has it
            self.opt = torch.optim.SGD(params, lr=0.03, momentum=0.9, nesterov=True, fused=True)
        except (RuntimeError, TypeError):
            self.opt = torch.optim.SGD(params, lr=0.03, momentum=0.9, nesterov=True)
        n_valid = len(X) // 5
        to = dict(device=device)
        self.Xv = torch.as_tensor(X[:n_valid]).to(**to).contiguous(memory_format=cl)
        self.Xt = torch.as_tensor(X[n_valid:]).to(**to).contiguous(memory_format=cl)
        self.yv = torch.as_tensor(y[:n_valid]).to(**to)
        self.yt = torch.as_tensor(y[n_valid:]).to(**to)
        kind = str(device).split(":")[0]
        self.autocast = (lambda: torch.autocast(kind, dtype=torch.bfloat16)) \
            if self.precision == "bf16" else contextlib.nullcontext

    def epoch(self):
        mse = torch.nn.functional.mse_loss
        with large_buffers_in_heap():
            self.module.train()
            for i in range(0, len(self.Xt), 128):
                self.opt.zero_grad(set_to_none=True)
                with self.autocast():
                    out = self.module(self.Xt[i:i + 128])
                mse(out.float(), self.yt[i:i + 128]).backward()
                self.opt.step()
            self.module.eval()
            with torch.no_grad(), self.autocast():
                for i in range(0, len(self.Xv), 128):
                    mse(self.module(self.Xv[i:i + 128]).float(), self.yv[i:i + 128]).item()


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux) and its native bf16 flags."""
    name = fk.precision.cpu_model()
    flags = fk.precision.cpu_bf16_flags()
    return f"{name} ({', '.join(flags) if flags else 'no native bf16'})"


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
    parser.add_argument("--precision", nargs="+", default=["32", "auto"],
                        help="precisions for facekeypoints and the expert loop: 32, bf16, "
                             "auto (resolved on this machine; duplicates are run once)")
    parser.add_argument("--only", nargs="*",
                        help="contender names to run: facekeypoints, skorch, 'plain torch', "
                             "expert (default: all)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.random((args.samples, 1, 96, 96), dtype=np.float32)
    y = rng.uniform(-1, 1, (args.samples, 30)).astype(np.float32)
    torch.manual_seed(0)
    precisions = list(dict.fromkeys(fk.precision.resolve_precision(p, args.device)
                                    for p in args.precision))
    factories = [(Facekeypoints, p) for p in precisions] + [(StockSkorch, None),
                 (PlainTorch, None)] + [(Expert, p) for p in precisions]
    contenders = [cls(X, y, args.device) if p is None else cls(X, y, args.device, p)
                  for cls, p in factories if not args.only or cls.name in args.only]
    label = {id(c): f"{c.name} {c.precision}" for c in contenders}
    times = {label[id(c)]: [] for c in contenders}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.samples} samples, {args.rounds} rounds (+1 warm-up)")
    print(f"CPU: {cpu_model()}; precision 'auto' here = "
          f"{fk.precision.resolve_precision('auto', args.device)}")
    for round_ in range(args.rounds + 1):
        for c in contenders:
            _sync(args.device)
            start = time.perf_counter()
            c.epoch()
            _sync(args.device)
            if round_:  # round 0 warms up allocators and caches
                times[label[id(c)]].append(time.perf_counter() - start)
        if round_:
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
    report(times, args)


def report(times, args):
    """Print the table: median epoch, speed-ups over stock skorch and the expert loop."""
    peak = gemm_flops(args.device)
    n_valid = args.samples // 5 + (1 if args.samples % 5 else 0)
    epoch_flop = FLOP_PER_SAMPLE_FORWARD * (3 * (args.samples - n_valid) + n_valid)
    print(f"\nfloat32 GEMM throughput: {peak / 1e9:.1f} GFLOP/s; one epoch = "
          f"{epoch_flop / 1e9:.0f} GFLOP")
    print(f"{'contender':<20}{'median epoch s':>15}{'x stock skorch':>16}{'x expert':>10}"
          f"{'of fp32 GEMM peak':>19}{'per-round x skorch':>20}")
    skorch = times.get("skorch 32")
    for name, values in times.items():
        med = statistics.median(values)
        expert = times.get(f"expert {name.rsplit(' ', 1)[1]}")
        # Ratios within each round (same machine state for both): their spread shows the noise.
        over_skorch = sorted(s / v for s, v in zip(skorch, values)) if skorch else None
        col_skorch = f"{statistics.median(skorch) / med:>15.2f}x" if skorch else f"{'-':>16}"
        col_expert = f"{statistics.median(expert) / med:>9.2f}x" if expert else f"{'-':>10}"
        spread = (f"{over_skorch[0]:>13.2f}-{over_skorch[-1]:.2f}x" if over_skorch
                  else f"{'-':>20}")
        print(f"{name:<20}{med:>15.2f}{col_skorch}{col_expert}{epoch_flop / med / peak:>18.0%}"
              f"{spread}")


if __name__ == "__main__":
    main()
