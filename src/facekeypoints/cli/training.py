"""The subcommands that train: ``train``, ``recipe``, ``train-specialists``, and
``make-data`` (the synthetic files they train on)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import (DATA_HELP, DEVICE_HELP, PRESETS, CLIError, add_command, data_name,
                      key_value, load_model, load_training_data, make_net, one_line,
                      positive_int)

if TYPE_CHECKING:
    import argparse
    import os

    import numpy as np

    from ..net import NeuralNet

__all__ = ["cmd_train", "cmd_recipe", "cmd_train_specialists", "cmd_make_data", "add_train",
           "add_recipe", "add_train_specialists", "add_make_data", "RECIPE_QUICK_EPOCHS"]

#: Epochs per net of a ``recipe`` run without ``--full`` or ``--epochs``.
RECIPE_QUICK_EPOCHS = 20



def train_one(name: str, X: np.ndarray, y: np.ndarray, args: argparse.Namespace,
              out_dir: str | os.PathLike, max_epochs: int | None,
              sets: dict[str, Any] | None = None, net: NeuralNet | None = None,
              resume: str | os.PathLike | None = None) -> NeuralNet:
    """Fit one net with a checkpoint and Ctrl-C handling, then write its run directory.

    Parameters
    ----------
    name : str
        The preset's name (recorded in ``run.json`` and printed).
    X, y : numpy.ndarray
        The training data.
    args : argparse.Namespace
        The command line (``data``, ``checkpoint_every``; ``device`` and ``seed`` when the
        net is made here).
    out_dir : str or path-like
        The run directory to write.
    max_epochs : int or None
        Epochs for a net made here (None: the preset's).
    sets : dict, optional
        The ``--set`` overrides (applied to a net made here, recorded in ``run.json``).
    net : NeuralNet, optional
        A configured net to train instead of making one from the preset.
    resume : str or path-like, optional
        A checkpoint to continue from (``fit(..., resume=...)``).

    Returns
    -------
    NeuralNet
        The fitted net.

    Raises
    ------
    CLIError
        When fitting fails with a TypeError (usually a ``--set`` value of the wrong type).
    KeyboardInterrupt
        After Ctrl-C, once the finished epochs and the checkpoint are written.
    """
    from ..checkpoint import Checkpoint
    from ..metrics import rmse_px
    from ..persist import net_config
    from ..runs import Stopwatch, write_run

    net = net if net is not None else make_net(name, max_epochs, args, sets)
    out_dir = Path(out_dir)
    # A checkpoint at the end, every --checkpoint-every epochs, and on the first Ctrl-C
    # (which lets the running epoch finish): `train --resume RUN_DIR` continues from it.
    every = getattr(args, "checkpoint_every", None) or 0
    net.callbacks = list(net.callbacks or []) + [
        ("checkpoint", Checkpoint(out_dir / "checkpoint.pt", every=every, handle_sigint=True))]
    again = (" (resuming)" if resume else
             " (replacing the run there)" if (out_dir / "model.pt").exists() else "")
    print(f"\n=== {name}: {net.max_epochs} epochs on {len(X)} faces "
          f"({data_name(args.data)}) -> {out_dir}{again} ===", flush=True)
    config = net_config(net, training=True)
    with Stopwatch() as clock:
        try:
            net.fit(X, y, resume=resume)
        except TypeError as exc:   # usually a --set value of the wrong type
            hint = " (check the --set values)" if sets else ""
            raise CLIError(f"{one_line(exc)}{hint}") from None
    # skorch ends fit quietly on Ctrl-C, leaving the unfinished epoch's entry: drop it, write
    # the finished epochs, then report the interrupt (exit 130) instead of going on.
    unfinished = len(net.history) > 0 and "train_loss" not in net.history[-1]
    if unfinished:
        net.history.pop()
    interrupted = getattr(net, "interrupted_", False) or unfinished
    _, (X_valid, y_valid) = net.train_valid_split(X, y)
    info = {"preset": name, "max_epochs": int(net.max_epochs), "set": sets or {},
            "data": data_name(args.data), "rows": len(X), "device": str(net.device_),
            "seed": net.random_state, "seconds": round(clock.seconds, 1),
            "epochs_run": len(net.history)}
    write_run(net, out_dir, info, X_valid, y_valid, config=config)
    valid = [(h["valid_loss"], h["epoch"]) for h in net.history if "valid_loss" in h]
    best = (f"; best valid RMSE {rmse_px(min(valid)[0]):.2f} px at epoch {min(valid)[1]}"
            if valid else "")
    print(f"{name}: {len(net.history)} epochs in {clock.seconds:.0f} s{best}")
    print(f"wrote {out_dir}/ (model.pt, history.json/csv, run.json, config.json, "
          "learning_curve.png, keypoints.png)")
    if interrupted:
        print(f"interrupted after epoch {len(net.history)}; the checkpoint is in {out_dir}/. "
              f"Continue with: facekeypoints train {name} --resume {out_dir}", file=sys.stderr)
        raise KeyboardInterrupt
    return net


def cmd_recipe(args: argparse.Namespace) -> int:
    """Train net4 and net5 (by default) and compare them as the recipe's tables do.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_recipe` defines).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    KeyboardInterrupt
        After Ctrl-C, once the finished epochs are written (exit status 130).
    """
    from .._safe_io import save_figure
    from ..metrics import rmse_px
    from ..plots import plot_learning_curves
    from ..reports import mean_baseline_loss, read_history, recipe_table

    epochs = args.epochs or (3000 if args.full else RECIPE_QUICK_EPOCHS)
    nets = {name: make_net(name, epochs, args, None) for name in args.nets}
    X, y = load_training_data(args.data)
    out = Path(args.out)
    histories = {}
    for name, net in nets.items():
        train_one(name, X, y, args, out / name, epochs, net=net)
        histories[name] = read_history(out / name)
    print("\n" + recipe_table(histories))
    (_, y_train), (_, y_valid) = next(iter(nets.values())).train_valid_split(X, y)
    baseline = mean_baseline_loss(y_train, y_valid)
    print(f"predicting the mean keypoints of the training rows: valid RMSE "
          f"{rmse_px(baseline):.2f} px (loss {baseline:.6f})")
    if epochs < 500:
        print(f"(a quick run: {epochs} epochs per net. The recipe's nets need hundreds of "
              "epochs to pull away from the mean; --full trains 3000.)")
    ax = plot_learning_curves(histories, title=" vs ".join(args.nets))
    save_figure(ax.figure, out / "learning_curves.png", dpi=100, bbox_inches="tight")
    print(f"\nwrote {out / 'learning_curves.png'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one preset into a run directory: model.pt (safe weights + JSON config),
    history.json/csv, run.json, config.json, learning_curve.png and keypoints.png.

    The epoch table prints live; on a terminal a progress bar below it shows epochs done,
    the ETA, and the current learning rate and momentum. Ctrl-C stops training and still
    writes the run with the epochs that finished (exit status 130).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_train` defines).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    KeyboardInterrupt
        After Ctrl-C, once the finished epochs are written (exit status 130).
    """
    sets = dict(args.set or ())
    resume = None
    if args.resume:
        sets, resume = _resume_settings(args, sets)
    epochs = sets.pop("max_epochs", None) or args.max_epochs  # None: the preset's own
    net = make_net(args.preset, epochs, args, sets)
    X, y = load_training_data(args.data)
    out = Path(args.resume or args.out or f"runs/{args.preset}")
    train_one(args.preset, X, y, args, out, epochs, sets, net=net, resume=resume)
    return 0


def _resume_settings(args, sets):
    """Rebuild what the interrupted run was asked for (run.json), to continue it exactly."""
    from ..reports import read_run_info

    run_dir = Path(args.resume)
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.exists():
        raise CLIError(f"{run_dir} has no checkpoint.pt to resume from (train with "
                       "--checkpoint-every N, or stop with Ctrl-C, to get one)")
    info = read_run_info(run_dir)
    if info.get("preset", args.preset) != args.preset:
        raise CLIError(f"{run_dir} is a {info['preset']} run, not {args.preset}")
    merged = {**info.get("set", {}), **sets}
    merged.setdefault("max_epochs", info.get("max_epochs"))
    if merged["max_epochs"] is None:
        merged.pop("max_epochs")
    if args.seed == 0 and info.get("seed") is not None:
        args.seed = info["seed"]
    if args.data is None and info.get("data") not in (None, data_name(None)):
        args.data = info["data"]
    return merged, checkpoint


def cmd_train_specialists(args: argparse.Namespace) -> int:
    """Train one specialist per keypoint group (the recipe's last step) into DIR, a directory
    that evaluate and predict accept like a run directory.

    Each specialist is a clone of PRESET with an output layer as wide as its group, its own
    flip pairs, and every row where its keypoints are present. With --pretrained, every layer
    but the output is loaded from that run's model where shapes match. The epoch budget
    (--max-epochs, default the preset's) is scaled inversely with each group's rows:
    epochs = max_epochs * (rows with all 30 keypoints) / (rows of the group).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_train_specialists` defines).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    """
    from .. import presets
    from ..specialists import fit_specialists, get_groups, report_table
    from ._common import check_device

    try:
        groups = get_groups(args.groups)
    except ValueError as exc:
        raise CLIError(f"--groups: {exc}") from None
    if args.pretrained and not Path(args.pretrained).exists():
        raise CLIError(f"--pretrained: no run directory or model file at {args.pretrained}")
    pretrained = None
    if args.pretrained:
        pretrained = load_model(args.pretrained, "cpu")
    epochs = {"max_epochs": args.max_epochs} if args.max_epochs else {}  # else the preset's
    base = presets.get(args.preset, verbose=0, **epochs)
    if args.device:
        check_device(args.device)
        base.set_params(device=args.device)
    if args.seed is not None:
        base.set_params(random_state=args.seed)
    if args.data is not None and not Path(args.data).is_file():
        raise CLIError(f"no such data file: {args.data}")

    def line(info):
        loaded = ", ".join(info["loaded"]) or "none"
        mism = "".join(f"; not loaded {k} ({v})" for k, v in info["mismatched"].items())
        pre = f"; pretrained layers: {loaded}{mism}" if pretrained is not None else ""
        print(f"[{info['index']}/{info['of']}] {info['group']}: {info['rows']} faces, "
              f"{info['epochs']} epochs, best valid RMSE {info['best_valid_rmse_px']:.2f} px "
              f"in {info['seconds']:.1f} s{pre}", flush=True)

    ensemble = fit_specialists(base, args.data, groups=groups, pretrained=pretrained,
                               on_specialist=line)
    out = Path(args.out)
    ensemble.save(out)
    print("\n" + report_table(ensemble.report_))
    print(f"\nwrote {out}/ (ensemble.json and one model file per specialist); "
          f"evaluate with: facekeypoints evaluate {out}")
    return 0


def cmd_make_data(args: argparse.Namespace) -> int:
    """Write the synthetic Kaggle-format files (training.csv, test.csv, IdLookupTable.csv).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_make_data` defines).

    Returns
    -------
    int
        The exit status, 0.
    """
    from ..synthetic import summarize, write_dataset

    paths = write_dataset(args.directory, seed=args.seed, n_train=args.train, n_test=args.test)
    for kind, path in paths.items():
        print(f"{kind:>9}: {path}")
    print(summarize(paths["training"]))
    return 0


# -- parsers ---------------------------------------------------------------------------------

def _training_flags(p, default_out):
    p.add_argument("--data", metavar="CSV", help=DATA_HELP)
    p.add_argument("--out", default=None if default_out == "runs/PRESET" else default_out,
                   metavar="RUN_DIR", help=f"run directory to write (default: {default_out})")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--seed", type=int, default=0, help="random_state of the nets (default 0)")


def add_train(sub: argparse._SubParsersAction) -> None:
    """Register the ``train`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "train", cmd_train, "train one preset into a run directory",
                    epilog="example:\n  facekeypoints train net4 --max-epochs 100 "
                           "--set callbacks__adjust_lr__stop=1e-3 --out runs/net4-stop1e-3")
    p.add_argument("preset", choices=PRESETS, metavar="PRESET", help="net1 .. net7")
    p.add_argument("--max-epochs", type=positive_int, metavar="N",
                   help="epochs to train (default: the preset's, e.g. 3000 for net4)")
    p.add_argument("--set", action="append", type=key_value, metavar="KEY=VALUE",
                   help="a set_params override, repeatable: update_learning_rate=0.02, "
                        "eval_size=0.25, callbacks__adjust_lr__stop=1e-3")
    p.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                   help="also write RUN_DIR/checkpoint.pt every N epochs (it is always "
                        "written at the end and on Ctrl-C)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its checkpoint, exactly where it "
                        "stopped (same preset, settings, seed and data)")
    _training_flags(p, default_out="runs/PRESET")


def add_recipe(sub: argparse._SubParsersAction) -> None:
    """Register the ``recipe`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "recipe", cmd_recipe,
                    "train net4 and net5 and print the recipe's tables")
    p.add_argument("--full", action="store_true",
                   help="the recipe's budget: 3000 epochs per net (hours on a GPU)")
    p.add_argument("--epochs", type=positive_int,
                   help=f"epochs per net (default {RECIPE_QUICK_EPOCHS})")
    p.add_argument("--nets", nargs="+", default=["net4", "net5"], choices=PRESETS,
                   metavar="PRESET", help="presets to train (default: net4 net5)")
    _training_flags(p, default_out="runs/recipe")


def add_train_specialists(sub: argparse._SubParsersAction) -> None:
    """Register the ``train-specialists`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    from ..specialists import GROUPS_BY_NAME

    p = add_command(sub, "train-specialists", cmd_train_specialists,
                    "train one specialist net per keypoint group into an ensemble directory",
                    epilog="example:\n  facekeypoints train-specialists net5 --pretrained "
                           "runs/net5 --out runs/specialists")
    p.add_argument("preset", choices=PRESETS, metavar="PRESET", help="net1 .. net7")
    p.add_argument("--pretrained", metavar="RUN_DIR",
                   help="load every layer but the output from this run's model.pt")
    p.add_argument("--groups", nargs="+", choices=list(GROUPS_BY_NAME), metavar="GROUP",
                   help=f"groups to train (default: all): {', '.join(GROUPS_BY_NAME)}")
    p.add_argument("--max-epochs", type=positive_int, metavar="N",
                   help="epoch budget before scaling by rows (default: the preset's)")
    p.add_argument("--data", metavar="CSV", help=DATA_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="ensemble directory to write")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--seed", type=int, default=0, help="random_state of the nets (default 0)")


def add_make_data(sub: argparse._SubParsersAction) -> None:
    """Register the ``make-data`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "make-data", cmd_make_data,
                    "write the synthetic Kaggle-format files to DIR")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--train", type=positive_int, default=7049, help="training rows")
    p.add_argument("--test", type=positive_int, default=1783, help="test rows")
