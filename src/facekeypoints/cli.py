"""The ``facekeypoints`` command: train, compare and inspect keypoint nets without writing code.

Every subcommand has ``--help``. Bad arguments give a one-line error and exit status 2.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

RECIPE_QUICK_EPOCHS = 15


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _parse_value(text):
    """``--set`` values: Python literals (numbers, tuples, None, strings) or bare strings."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_sets(pairs):
    params = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CLIError(f"--set takes key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        params[key.strip()] = _parse_value(value.strip())
    return params


def _load_training_data(path):
    from .data import load2d

    try:
        return load2d(path)
    except FileNotFoundError as exc:
        raise CLIError(f"no such data file: {exc.filename or path}") from None


def _configure(net, args, sets=None):
    """Apply --set, --device, --seed and the live progress display to a preset net."""
    from tqdm.auto import tqdm

    from .callbacks import EpochTable
    from .progress import EpochProgress

    params = dict(sets or {})
    if getattr(args, "device", None):
        params["device"] = args.device
    if getattr(args, "seed", None) is not None:
        params["random_state"] = args.seed
    try:
        net.set_params(**params)
    except ValueError as exc:
        raise CLIError(f"--set: {exc}") from None
    net.set_params(verbose=1, callbacks__print_log=EpochTable(sink=tqdm.write))
    net.callbacks = list(net.callbacks or []) + [("progress", EpochProgress())]
    return net


def _train_one(name, X, y, args, out_dir, max_epochs, sets=None):
    from . import presets
    from .runs import Stopwatch, validation_split, write_run

    print(f"\n=== {name}: {max_epochs} epochs on {len(X)} faces ===", flush=True)
    try:
        net = presets.get(name, max_epochs=max_epochs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    _configure(net, args, sets)
    with Stopwatch() as clock:
        net.fit(X, y)
    X_valid, y_valid = validation_split(net, X, y)
    info = {"preset": name, "max_epochs": max_epochs, "set": sets or {},
            "data": str(args.data or "embedded synthetic faces"), "rows": len(X),
            "device": net.device, "seed": net.random_state, "seconds": round(clock.seconds, 1)}
    write_run(net, out_dir, info, X_valid, y_valid)
    print(f"{name}: {clock.seconds:.0f} s; wrote {out_dir}/ (model.pt, history, plots)")
    return net


def cmd_recipe(args):
    """Train net4 and net5 (by default) and compare them as the recipe's tables do."""
    from .plots import plot_learning_curves
    from .runs import read_history, recipe_table

    epochs = args.epochs or (3000 if args.full else RECIPE_QUICK_EPOCHS)
    X, y = _load_training_data(args.data)
    out = Path(args.out)
    histories = {}
    for name in args.nets:
        _train_one(name, X, y, args, out / name, epochs)
        histories[name] = read_history(out / name)
    print("\n" + recipe_table(histories))
    ax = plot_learning_curves(histories, title="net4 vs net5")
    ax.figure.tight_layout()
    ax.figure.savefig(out / "learning_curves.png", dpi=100)
    print(f"\nwrote {out / 'learning_curves.png'}")
    return 0


def cmd_train(args):
    """Train one preset into a run directory."""
    sets = _parse_sets(args.set)
    X, y = _load_training_data(args.data)
    from . import presets

    epochs = args.max_epochs or presets.get(args.preset).max_epochs
    _train_one(args.preset, X, y, args, Path(args.out or f"runs/{args.preset}"), epochs, sets)
    return 0


def cmd_make_data(args):
    """Write the synthetic Kaggle-format files (training.csv, test.csv, IdLookupTable.csv)."""
    from .synthetic import summarize, write_dataset

    paths = write_dataset(args.directory, seed=args.seed, n_train=args.train, n_test=args.test)
    for kind, path in paths.items():
        print(f"{kind:>9}: {path}")
    print(summarize(paths["training"]))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="facekeypoints",
        description="Train facial keypoint CNNs with the classic nolearn recipe.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("recipe", help="train net4 and net5 and print the recipe's tables",
                       description=cmd_recipe.__doc__)
    p.add_argument("--full", action="store_true",
                   help="the recipe's budget: 3000 epochs per net (hours on a GPU)")
    p.add_argument("--epochs", type=int, help=f"epochs per net (default {RECIPE_QUICK_EPOCHS})")
    p.add_argument("--nets", nargs="+", default=["net4", "net5"], help="presets to train")
    _common_training_flags(p, default_out="runs/recipe")
    p.set_defaults(func=cmd_recipe)

    p = sub.add_parser("train", help="train one preset into a run directory",
                       description=cmd_train.__doc__)
    p.add_argument("preset", help="net1 .. net7")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a set_params override, e.g. callbacks__adjust_lr__stop=1e-3")
    _common_training_flags(p, default_out=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("make-data", help="write the synthetic Kaggle-format files to DIR",
                       description=cmd_make_data.__doc__)
    p.add_argument("directory")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--train", type=int, default=7049, help="training rows")
    p.add_argument("--test", type=int, default=1783, help="test rows")
    p.set_defaults(func=cmd_make_data)
    return parser


def _common_training_flags(p, default_out):
    p.add_argument("--data", help="a Kaggle training.csv (default: the embedded synthetic faces)")
    p.add_argument("--out", default=default_out, help="run directory to write")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    p.add_argument("--seed", type=int, default=0, help="random_state of the nets")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"facekeypoints {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"facekeypoints {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facekeypoints {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
