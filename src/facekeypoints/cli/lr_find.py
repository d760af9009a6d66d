"""``facekeypoints lr-find``: the learning-rate range test for a preset, with its curve."""
from __future__ import annotations

import argparse
import sys

from ._common import (DATA_HELP, PARTIAL_LABELS_HELP, PRESET_HELP, PRESETS, CLIError,
                      add_command, data_name, key_value, load_training_data, make_net,
                      output_path, positive_int)

__all__ = ["add_lr_find", "cmd_lr_find"]


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def add_lr_find(sub: argparse._SubParsersAction) -> None:
    """Register the ``lr-find`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "lr-find", cmd_lr_find,
                    "learning-rate range test: the loss as the learning rate grows",
                    epilog="example:\n  facekeypoints lr-find net4 -o lr_find.png")
    p.add_argument("preset", choices=PRESETS, metavar="PRESET", help=PRESET_HELP)
    p.add_argument("--data", metavar="CSV", help=DATA_HELP)
    p.add_argument("--partial-labels", action="store_true", help=PARTIAL_LABELS_HELP)
    p.add_argument("--set", action="append", type=key_value, metavar="KEY=VALUE",
                   help="a set_params override, repeatable (as in train)")
    p.add_argument("--start", type=_positive_float, default=1e-7,
                   help="first learning rate (default 1e-7)")
    p.add_argument("--stop", type=_positive_float, default=10.0,
                   help="last learning rate (default 10)")
    p.add_argument("--steps", type=positive_int, default=200,
                   help="training steps (default 200); it stops early once the loss blows up")
    p.add_argument("--seed", type=int, default=0, help="random_state of the net (default 0)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA when present)")
    p.add_argument("-o", "--out", metavar="PLOT", help="write the curve to this picture")
    p.add_argument("--csv", metavar="FILE", help="write the curve as a CSV table")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_lr_find(args: argparse.Namespace) -> int:
    """Run the learning-rate range test on a preset and suggest a learning rate.

    Trains the preset for ``--steps`` steps on the training part of the data (its validation
    part is left out, as ``train`` leaves it out), the learning rate growing by the same
    factor each step from ``--start`` to ``--stop``, and stops once the smoothed loss is four
    times its minimum. The net is thrown away afterwards: nothing is trained or saved.
    Prints the suggestion, the rule that chose it, and a short table of the curve.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        0.
    """
    from .._json import dumps
    from ..lr_find import lr_find

    if args.stop <= args.start:
        raise CLIError(f"--stop ({args.stop:g}) must be larger than --start ({args.start:g})")
    if args.steps < 3:
        raise CLIError("--steps must be at least 3")
    plot = output_path(args.out) if args.out else None
    table_path = output_path(args.csv, option="--csv") if args.csv else None
    args.precision = None
    net = make_net(args.preset, None, args, dict(args.set or []))
    X, y = load_training_data(args.data, dropna=not args.partial_labels)
    (X_train, y_train), _ = net.train_valid_split(X, y)
    note = (f"lr-find: {args.preset} on {len(X_train)} training faces of "
            f"{data_name(args.data)}, learning rate {args.start:g} -> {args.stop:g} over at "
            f"most {args.steps} steps")
    print(note, file=sys.stderr if args.json else sys.stdout, flush=True)
    result = lr_find(net.initialize(), X_train, y_train, start=args.start, stop=args.stop,
                     steps=args.steps)
    if plot is not None:
        from ..plots import plot_lr_find
        from .._safe_io import save_figure

        ax = plot_lr_find(result, title=f"{args.preset}: learning-rate range test")
        save_figure(ax.figure, plot, dpi=110, bbox_inches="tight")
    if table_path is not None:
        from .._safe_io import write_text

        write_text(table_path, result.table().to_csv(index=False))
    if args.json:
        print(dumps({"preset": args.preset, **result.to_dict()}))   # null for NaN
        return 0
    table = result.table()
    picks = sorted(set(list(range(0, len(table), max(1, len(table) // 8))) + [len(table) - 1]))
    print(table.iloc[picks].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(result.summary())
    if plot is not None:
        print(f"wrote {plot}")
    if table_path is not None:
        print(f"wrote {table_path}")
    return 0
