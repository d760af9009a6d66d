"""Epoch times under process-wide settings (environment variables), A/B in alternating processes.

Settings read once per process, such as OpenMP's wait policy, cannot be compared inside one
process as ``bench_ab.py`` does; here every round starts one child process per setting, in
alternating order, and each child trains a warm-up epoch and then ``--epochs`` timed epochs of
a preset on random data. Prints every round and the median epoch and ratio per setting.

    python benchmarks/bench_env.py --env OMP_WAIT_POLICY=ACTIVE OMP_WAIT_POLICY=PASSIVE \\
        [--net net4] [--batch 16] [--samples 800] [--rounds 4]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, sys, time
import facekeypoints as fk
import numpy as np
import torch
from facekeypoints.cli.training import with_batch_size
net_name, batch, samples, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
X = rng.random((samples, 1, 96, 96), dtype=np.float32)
y = rng.uniform(-1, 1, (samples, 30)).astype(np.float32)
net = getattr(fk.presets, net_name)(max_epochs=1000, verbose=0, device="cpu", random_state=0)
if batch:
    net.set_params(batch_iterator_train=with_batch_size(net.batch_iterator_train, batch))
net.partial_fit(X, y, epochs=1)
times = []
for _ in range(epochs):
    start = time.perf_counter()
    net.partial_fit(X, y, epochs=1)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def run_child(setting, args):
    """One child process's timed epochs under ``setting`` ('NAME=VALUE' or 'default')."""
    env = dict(os.environ)
    if setting != "default":
        name, value = setting.split("=", 1)
        env[name] = value
    out = subprocess.run([sys.executable, "-c", CHILD, args.net, str(args.batch),
                          str(args.samples), str(args.epochs)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", required=True,
                        help="settings to compare: NAME=VALUE (or 'default' for none)")
    parser.add_argument("--net", default="net4")
    parser.add_argument("--batch", type=int, default=0, help="training batch (0: preset's)")
    parser.add_argument("--samples", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per child")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    times = {s: [] for s in args.env}
    print(f"{args.net}, batch {args.batch or 'preset'}, {args.samples} samples, "
          f"{args.rounds} rounds of one process per setting ({args.epochs} epochs each)")
    for round_ in range(args.rounds):
        order = args.env if round_ % 2 == 0 else args.env[::-1]
        for setting in order:
            times[setting].append(statistics.median(run_child(setting, args)))
        print(f"round {round_ + 1}: " + ", ".join(f"{s} {times[s][-1]:.2f}s" for s in args.env),
              flush=True)
    first = args.env[0]
    for setting in args.env:
        ratios = sorted(a / b for a, b in zip(times[setting], times[first]))
        print(f"{setting:<28} median epoch {statistics.median(times[setting]):.2f} s; "
              f"x {first}: {statistics.median(ratios):.3f} (per round {ratios[0]:.2f}-"
              f"{ratios[-1]:.2f})")


if __name__ == "__main__":
    main()
