"""net5 on the embedded faces on a GPU, in float32 and bf16: speed and a round trip to the CPU.

For each precision this trains ``presets.net5`` (flips, the recipe's linear schedules, batch
128) on the 2,140 complete embedded faces for ``--epochs`` epochs on ``--device``, timing the
fit, and prints epochs per second, the time 1,000 epochs take at that rate, and the final
valid RMSE in pixels. It then checks that the trained net survives

- a pickle round trip on the same device (predictions identical), and
- a safe model file (``save_model``) loaded on the CPU in float32 (predictions equal to the
  GPU's within ``--tolerance-px`` pixels: bf16's rounding shows here),

and exits with status 1 when a check fails. The recipe reported over an hour for net5's
1,000 epochs on a 2014 GPU; the goal on one H100/H200-class GPU is under 60 s.

    python benchmarks/gpu_check.py                     # cuda, 1000 epochs, 32 and bf16
    python benchmarks/gpu_check.py --device cpu --epochs 2 --faces 256   # a smoke test
"""
from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import facekeypoints as fk
from facekeypoints.metrics import PIXELS_PER_UNIT, rmse_px


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def check(precision, X, y, args):
    """Train net5 at ``precision``; return (failures, one report line)."""
    net = fk.presets.net5(max_epochs=args.epochs, verbose=0, device=args.device,
                          precision=precision, random_state=0)
    net.initialize()
    _sync(args.device)
    start = time.perf_counter()
    net.fit(X, y)
    _sync(args.device)
    seconds = time.perf_counter() - start
    valid = rmse_px(net.history[-1, "valid_loss"])
    failures = []

    # A pickle round trip on the same device predicts exactly as the original.
    expected = net.predict(X[:256])
    again = pickle.loads(pickle.dumps(net)).predict(X[:256])
    if not np.array_equal(expected, again):
        failures.append(f"{precision}: pickle round trip changed predictions "
                        f"(max {np.abs(expected - again).max():.2e})")

    # The safe model file, loaded on the CPU in float32, predicts what the GPU did.
    with tempfile.TemporaryDirectory() as tmp:
        path = fk.save_model(net, Path(tmp) / "net5.pt")
        on_cpu = fk.load_model(path, device="cpu", precision="32")
    gap = float(np.abs(on_cpu.predict(X[:256]) - expected).max()) * PIXELS_PER_UNIT
    if gap > args.tolerance_px:
        failures.append(f"{precision}: CPU predictions differ by up to {gap:.3f} px "
                        f"(tolerance {args.tolerance_px} px)")
    line = (f"net5 {precision:>4} on {args.device}: {args.epochs} epochs in {seconds:.1f} s "
            f"({args.epochs / seconds:.1f} epochs/s; 1,000 epochs: "
            f"{1000 * seconds / args.epochs:.0f} s), valid RMSE {valid:.2f} px, "
            f"CPU round trip max gap {gap:.4f} px")
    return failures, line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--faces", type=int, default=None,
                        help="use the first N complete faces (default: all 2,140)")
    parser.add_argument("--precision", nargs="+", default=["32", "bf16"])
    parser.add_argument("--tolerance-px", type=float, default=0.05,
                        help="largest CPU-vs-device prediction gap accepted, in pixels")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: nothing measured", file=sys.stderr)
        return 2

    X, y = fk.load2d()
    if args.faces:
        X, y = X[:args.faces], y[:args.faces]
    name = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
            else "CPU")
    print(f"torch {torch.__version__}, {name}, {len(X)} faces")
    failures = []
    for precision in args.precision:
        found, line = check(precision, X, y, args)
        print(line, flush=True)
        failures += found
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
