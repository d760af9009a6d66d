"""Where one training step of a preset spends its time, layer by layer, at a precision.

Times the forward and the backward pass of every layer of ``presets.<net>`` on one batch
(module hooks; the CPU runs them synchronously, on CUDA each hook synchronises), plus the
loss and the optimizer update, as medians over ``--steps`` steps after two warm-up steps. A
layer's backward time is that of the gradients with respect to its inputs and its weights;
the first layer's (no input gradient) is what remains of the backward pass after the others.

    python benchmarks/profile_step.py [--net net4] [--precision bf16] [--batch 128]
"""
from __future__ import annotations

import argparse
import collections
import statistics
import time
import warnings

import numpy as np
import torch

import facekeypoints as fk


def _now(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def instrument(module, device, laps):
    """Hooks recording each child's forward and backward seconds into ``laps``."""
    started = {}

    def hooks(name, child):
        def before_forward(_m, _inputs):
            started[name, "forward"] = _now(device)

        def after_forward(_m, _inputs, _output):
            laps[name, "forward"].append(_now(device) - started[name, "forward"])

        def before_backward(_m, _grad_output):
            started[name, "backward"] = _now(device)

        def after_backward(_m, _grad_input, _grad_output):
            laps[name, "backward"].append(_now(device) - started[name, "backward"])

        child.register_forward_pre_hook(before_forward)
        child.register_forward_hook(after_forward)
        child.register_full_backward_pre_hook(before_backward)
        child.register_full_backward_hook(after_backward)

    for name, child in layers_of(module):
        hooks(name, child)


def layers_of(module):
    """The net's layers: the children of its (nested) layer container."""
    children = list(module.named_children())
    while len(children) == 1 and isinstance(children[0][1], (torch.nn.ModuleDict,
                                                             torch.nn.Sequential)):
        children = list(children[0][1].named_children())
    return children


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="net4")
    parser.add_argument("--precision", default="bf16", choices=fk.precision.PRECISIONS)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    net = fk.presets.get(args.net, verbose=0, device=args.device, precision=args.precision,
                         random_state=0).initialize()
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.random((args.batch, 1, 96, 96), dtype=np.float32),
                        device=net.device_)
    if any(p.dim() == 4 for p in net.module_.parameters()):
        X = X.contiguous(memory_format=torch.channels_last)
    y = torch.as_tensor(rng.uniform(-1, 1, (args.batch, 30)).astype(np.float32),
                        device=net.device_)
    laps = collections.defaultdict(list)
    instrument(net.module_, args.device, laps)
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    totals = collections.defaultdict(list)
    net.module_.train()
    for step in range(args.steps + 2):
        t0 = _now(args.device)
        net.optimizer_.zero_grad(set_to_none=True)
        y_pred = net.infer(X)
        t1 = _now(args.device)
        loss = net.get_loss(y_pred, y, X=X, training=True)
        t2 = _now(args.device)
        loss.backward()
        t3 = _now(args.device)
        net.optimizer_.step()
        t4 = _now(args.device)
        if step < 2:                       # warm-up: allocator, kernels, caches
            laps.clear()
            continue
        for key, value in zip(("forward", "loss", "backward", "update", "step"),
                              (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            totals[key].append(value)

    step = statistics.median(totals["step"])
    cpu = fk.precision.cpu_bf16_flags()
    print(f"{args.net}, precision {net.precision_}, batch {args.batch}, device {args.device}"
          f" (CPU bf16 flags: {', '.join(cpu) or 'none'}), torch {torch.__version__}")
    print(f"one step: {step * 1e3:.1f} ms (forward {statistics.median(totals['forward']) * 1e3:.1f}"
          f", loss {statistics.median(totals['loss']) * 1e3:.1f}, backward "
          f"{statistics.median(totals['backward']) * 1e3:.1f}, update "
          f"{statistics.median(totals['update']) * 1e3:.1f})")
    print(f"\n{'layer':<12}{'forward ms':>12}{'backward ms':>13}{'share of step':>15}")
    names = [name for name, _ in layers_of(net.module_)]
    median = {key: statistics.median(values) for key, values in laps.items()}
    # The first layer's hooks fire before its weight gradients (its input needs none).
    median[names[0], "backward"] = statistics.median(totals["backward"]) - sum(
        median.get((name, "backward"), 0.0) for name in names[1:])
    for name in names:
        forward = median.get((name, "forward"), 0.0)
        backward = median.get((name, "backward"), 0.0)
        print(f"{name:<12}{forward * 1e3:>12.1f}{backward * 1e3:>13.1f}"
              f"{(forward + backward) / step:>14.0%}")


if __name__ == "__main__":
    main()
