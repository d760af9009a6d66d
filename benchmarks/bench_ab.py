"""net4 epochs: this checkout's facekeypoints against the package at another git revision.

Both versions train in one process, epochs interleaved (the order alternates every round), so
machine noise hits both alike; prints the per-round and median ratio after/before. The
revision's package is extracted with ``git archive`` into a temporary folder and imported
under the name ``facekeypoints_before`` (the package uses relative imports only).

    python benchmarks/bench_ab.py [--before 9ce4cdb] [--rounds 8] [--samples 2140]
"""
from __future__ import annotations

import argparse
import importlib
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

import facekeypoints as after

ROOT = Path(__file__).resolve().parents[1]


def import_revision(rev, folder):
    """The package as it was at ``rev``, imported as ``facekeypoints_before``."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src/facekeypoints"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(folder, filter="data")
    shutil.move(Path(folder) / "src" / "facekeypoints", Path(folder) / "facekeypoints_before")
    sys.path.insert(0, str(folder))
    return importlib.import_module("facekeypoints_before")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2140)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        before = import_revision(args.before, folder)
        rng = np.random.default_rng(0)
        X = rng.random((args.samples, 1, 96, 96), dtype=np.float32)
        y = rng.uniform(-1, 1, (args.samples, 30)).astype(np.float32)
        nets = {name: pkg.presets.net4(max_epochs=1000, verbose=0, device="cpu",
                                       random_state=0).initialize()
                for name, pkg in (("before", before), ("after", after))}
        times = {name: [] for name in nets}
        print(f"net4, {args.samples} samples, {args.rounds} rounds (+1 warm-up); "
              f"before = {args.before}")
        for round_ in range(args.rounds + 1):
            for name in (list(nets) if round_ % 2 else list(nets)[::-1]):
                start = time.perf_counter()
                nets[name].partial_fit(X, y, epochs=1)
                if round_:
                    times[name].append(time.perf_counter() - start)
            if round_:
                print(f"round {round_}: before {times['before'][-1]:.2f}s, "
                      f"after {times['after'][-1]:.2f}s", flush=True)
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    ratios = [x / y for x, y in zip(times["after"], times["before"])]
    print(f"median epoch: before {b:.2f} s, after {a:.2f} s; after/before {a / b:.3f} "
          f"(per round {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
