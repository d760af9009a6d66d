"""How fast does a Kaggle-size training.csv load?

Writes a file shaped like Kaggle's training.csv (7,049 rows by default: 30 keypoint columns
with gaps, then 9,216 random 0..255 pixels) to a temporary folder, then times, interleaved in
one process so that machine noise hits all three alike:

  (a) the old recipe: pandas.read_csv, then np.fromstring per row and np.vstack
  (b) facekeypoints.data.read_csv(path, cache=False)
  (c) facekeypoints.data.read_csv(path) a second time, from the parsed-array cache

and prints the median seconds of each and the speed-ups.

    python benchmarks/bench_parse.py [--rows 7049] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from facekeypoints.data import KEYPOINT_COLUMNS, N_PIXELS, read_csv  # noqa: E402


def write_kaggle_like(path, rows, seed=0):
    """A training.csv lookalike; written in blocks, since this must stay quick for 7k rows."""
    rng = np.random.default_rng(seed)
    # Pixel strings of each value, so a row is one join of a lookup.
    words = np.array([str(v) for v in range(256)], dtype=object)
    with open(path, "w", newline="") as f:
        f.write(",".join(KEYPOINT_COLUMNS) + ",Image\n")
        for _ in range(rows):
            kp = rng.uniform(5, 91, len(KEYPOINT_COLUMNS))
            gaps = rng.random(len(KEYPOINT_COLUMNS)) < 0.3
            keypoints = ",".join("" if g else f"{v:.6f}" for v, g in zip(kp, gaps))
            pixels = " ".join(words[rng.integers(0, 256, N_PIXELS)])
            f.write(f"{keypoints},{pixels}\n")


def old_recipe(path):
    df = pd.read_csv(path)
    with warnings.catch_warnings():          # np.fromstring(sep=) is what the recipe used
        warnings.simplefilter("ignore", DeprecationWarning)
        images = np.vstack(df["Image"].apply(lambda im: np.fromstring(im, sep=" ")).values)
    return images, df.drop(columns="Image").to_numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=7049)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FACEKEYPOINTS_CACHE"] = str(Path(tmp) / "cache")   # leave ~/.cache alone
        path = Path(tmp) / "training.csv"
        t = time.perf_counter()
        write_kaggle_like(path, args.rows)
        print(f"wrote {path.stat().st_size / 1e6:.0f} MB, {args.rows} rows, in "
              f"{time.perf_counter() - t:.1f} s")

        ref, _ = old_recipe(path)
        first = read_csv(path)                    # fills the cache
        assert np.array_equal(first.images, ref), "read_csv disagrees with the old recipe"

        runs = {"old": old_recipe, "new": lambda p: read_csv(p, cache=False), "cached": read_csv}
        times = {k: [] for k in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                t = time.perf_counter()
                fn(path)
                times[name].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"(a) old per-row fromstring + vstack : {med['old']:.3f} s")
    print(f"(b) read_csv(cache=False)            : {med['new']:.3f} s   "
          f"{med['old'] / med['new']:.1f}x faster than (a)")
    print(f"(c) read_csv, cached second load     : {med['cached']:.3f} s   "
          f"{med['old'] / med['cached']:.1f}x faster than (a), "
          f"{med['new'] / med['cached']:.1f}x faster than (b)")
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"median of {args.repeats} interleaved repeats, {os.cpu_count()} CPUs{load}")


if __name__ == "__main__":
    main()
