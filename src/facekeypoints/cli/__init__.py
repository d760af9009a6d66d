"""The ``facekeypoints`` command: train, watch, compare, evaluate and submit without writing code.

    facekeypoints train net4 --max-epochs 100 --out runs/net4
    facekeypoints evaluate runs/net4
    facekeypoints predict runs/net4 --test test.csv --lookup IdLookupTable.csv -o submission.csv
    facekeypoints plot runs/net3 runs/net4 -o curves.png
    facekeypoints compare runs/net3 runs/net4 --epochs 10 50 100

Every subcommand has ``--help`` (docs/cli.md is the reference). A bad argument or a problem
the user can fix (missing file, malformed ``--set``, a file that is not a model) gives one
line, ``facekeypoints <command>: error: ...``, on stderr and exit status 2; an unexpected
failure gives one line and status 1 (``facekeypoints --traceback <command> ...`` shows the
traceback). Model files are read with the safe loader only: the CLI never unpickles.
"""
from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

RECIPE_QUICK_EPOCHS = 20
#: presets.NETS, spelled out so that building the parser (and --help) does not import torch.
PRESETS = ("net1", "net2", "net3", "net4", "net5", "net6", "net7")
DEFAULT_PLOT = "learning_curves.png"
MODEL_HELP = "a run directory, a model.pt file, or a specialist ensemble directory"


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``facekeypoints train: error: ... (see --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- argument types --------------------------------------------------------------------------

def _key_value(text):
    from ..sweep import parse_value  # numpy only: cheap at parser build time

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(value.strip())


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# -- shared steps ----------------------------------------------------------------------------

def _load_training_data(path, cols=None):
    from ..data import load2d

    try:
        return load2d(path, cols=cols)
    except FileNotFoundError:
        raise CLIError(f"no such data file: {path}") from None


def _data_name(path):
    return str(path) if path else "embedded synthetic faces"


def _check_device(device):
    if not device or device == "auto":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise CLIError(f"--device: {device!r} is not a device (use cpu, cuda, cuda:1, auto)"
                       ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {device}: CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"--device {device}: this machine has "
                           f"{torch.cuda.device_count()} CUDA device(s)")


def _check_sets(net, name, sets):
    """Name unknown ``--set`` keys before any data is loaded (with a suggestion)."""
    valid = sorted(k for k in net.get_params(deep=False) if not k.startswith("_"))
    callbacks = dict(item for item in (net.callbacks or []) if isinstance(item, (tuple, list)))
    for key in sets:
        head, _, rest = key.partition("__")
        if head == "callbacks" and rest:
            cb_name, _, param = rest.partition("__")
            if cb_name not in callbacks:
                known = ", ".join(callbacks) or "none"
                raise CLIError(f"--set {key}: {name} has no callback {cb_name!r} "
                               f"(its named callbacks: {known})")
            params = sorted(callbacks[cb_name].get_params())
            if param and param.partition("__")[0] not in params:
                raise CLIError(f"--set {key}: callback {cb_name!r} has no parameter {param!r} "
                               f"(it has {', '.join(params)})")
        elif head not in valid:
            close = difflib.get_close_matches(head, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CLIError(f"--set {key}: {name} has no parameter {head!r}{hint} "
                           f"(see 'facekeypoints train --help')")


def _configure(net, args, sets=None, name="the net"):
    """Apply --set, --device, --seed and the live progress display to a preset net."""
    from tqdm.auto import tqdm

    from ..callbacks import EpochTable
    from ..progress import EpochProgress

    params = dict(sets or {})
    _check_sets(net, name, params)
    if getattr(args, "device", None):
        _check_device(args.device)
        params["device"] = args.device
    if getattr(args, "seed", None) is not None:
        params["random_state"] = args.seed
    try:
        net.set_params(**params)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--set: {_one_line(exc)}") from None
    net.set_params(verbose=1, callbacks__print_log=EpochTable(sink=tqdm.write))
    net.callbacks = list(net.callbacks or []) + [("progress", EpochProgress())]
    return net


def _make_net(name, max_epochs, args, sets):
    from .. import presets

    try:
        net = presets.get(name, **({} if max_epochs is None else {"max_epochs": max_epochs}))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return _configure(net, args, sets, name=name)


def _train_one(name, X, y, args, out_dir, max_epochs, sets=None, net=None, resume=None):
    from ..checkpoint import Checkpoint
    from ..runs import Stopwatch, describe_net, rmse_px, validation_split, write_run

    net = net if net is not None else _make_net(name, max_epochs, args, sets)
    out_dir = Path(out_dir)
    # A checkpoint at the end, every --checkpoint-every epochs, and on the first Ctrl-C
    # (which lets the running epoch finish): `train --resume RUN_DIR` continues from it.
    every = getattr(args, "checkpoint_every", None) or 0
    net.callbacks = list(net.callbacks or []) + [
        ("checkpoint", Checkpoint(out_dir / "checkpoint.pt", every=every, handle_sigint=True))]
    again = (" (resuming)" if resume else
             " (replacing the run there)" if (out_dir / "model.pt").exists() else "")
    print(f"\n=== {name}: {net.max_epochs} epochs on {len(X)} faces "
          f"({_data_name(args.data)}) -> {out_dir}{again} ===", flush=True)
    config = describe_net(net)
    with Stopwatch() as clock:
        try:
            net.fit(X, y, resume=resume)
        except TypeError as exc:   # usually a --set value of the wrong type
            hint = " (check the --set values)" if sets else ""
            raise CLIError(f"{_one_line(exc)}{hint}") from None
    # skorch ends fit quietly on Ctrl-C, leaving the unfinished epoch's entry: drop it, write
    # the finished epochs, then report the interrupt (exit 130) instead of going on.
    unfinished = len(net.history) > 0 and "train_loss" not in net.history[-1]
    if unfinished:
        net.history.pop()
    interrupted = getattr(net, "interrupted_", False) or unfinished
    X_valid, y_valid = validation_split(net, X, y)
    info = {"preset": name, "max_epochs": int(net.max_epochs), "set": sets or {},
            "data": _data_name(args.data), "rows": len(X), "device": str(net.device),
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


def _load_model(path, device=None):
    from ..persist import load_model

    _check_device(device)
    path = Path(path)
    if not path.exists():
        raise CLIError(f"no run directory or model file at {path}")
    if path.is_dir() and not (path / "model.pt").exists():
        raise CLIError(f"{path} is a directory without model.pt (not a run directory)")
    # A file that is not ours raises ModelFileError (a ValueError): one line, exit 2.
    return load_model(path, device=device or "auto")


def _model_columns(net):
    from ..data import KEYPOINT_COLUMNS

    columns = list(getattr(net, "columns_", None) or KEYPOINT_COLUMNS)
    shapes = getattr(net.module_, "shapes", None)
    n_out = list(shapes.values())[-1][-1] if shapes else None
    if n_out is not None and n_out != len(columns):
        raise CLIError(f"the model has {n_out} outputs but no keypoint column names for them "
                       "(only nets with 30 outputs or a saved columns_ list can be evaluated)")
    return columns


# -- commands --------------------------------------------------------------------------------

def cmd_recipe(args):
    """Train net4 and net5 (by default) and compare them as the recipe's tables do."""
    from ..plots import plot_learning_curves
    from ..runs import read_history, recipe_table

    epochs = args.epochs or (3000 if args.full else RECIPE_QUICK_EPOCHS)
    nets = {name: _make_net(name, epochs, args, None) for name in args.nets}
    X, y = _load_training_data(args.data)
    out = Path(args.out)
    histories = {}
    for name, net in nets.items():
        _train_one(name, X, y, args, out / name, epochs, net=net)
        histories[name] = read_history(out / name)
    print("\n" + recipe_table(histories))
    from ..runs import rmse_px

    n_valid = next(iter(nets.values()))._n_valid(len(y))
    baseline = float(((y[:n_valid] - y[n_valid:].mean(axis=0)) ** 2).mean())
    print(f"predicting the mean keypoints of the training rows: valid RMSE "
          f"{rmse_px(baseline):.2f} px (loss {baseline:.6f})")
    if epochs < 500:
        print(f"(a quick run: {epochs} epochs per net. The recipe's nets need hundreds of "
              "epochs to pull away from the mean; --full trains 3000.)")
    ax = plot_learning_curves(histories, title=" vs ".join(args.nets))
    ax.figure.savefig(out / "learning_curves.png", dpi=100, bbox_inches="tight")
    print(f"\nwrote {out / 'learning_curves.png'}")
    return 0


def cmd_train(args):
    """Train one preset into a run directory: model.pt (safe weights + JSON config),
    history.json/csv, run.json, config.json, learning_curve.png and keypoints.png.

    The epoch table prints live; on a terminal a progress bar below it shows epochs done,
    the ETA, and the current learning rate and momentum. Ctrl-C stops training and still
    writes the run with the epochs that finished (exit status 130)."""
    sets = dict(args.set or ())
    resume = None
    if args.resume:
        sets, resume = _resume_settings(args, sets)
    epochs = sets.pop("max_epochs", None) or args.max_epochs  # None: the preset's own
    net = _make_net(args.preset, epochs, args, sets)
    X, y = _load_training_data(args.data)
    out = Path(args.resume or args.out or f"runs/{args.preset}")
    _train_one(args.preset, X, y, args, out, epochs, sets, net=net, resume=resume)
    return 0


def _resume_settings(args, sets):
    """Rebuild what the interrupted run was asked for (run.json), to continue it exactly."""
    from ..runs import read_run_info

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
    if args.data is None and info.get("data") not in (None, _data_name(None)):
        args.data = info["data"]
    return merged, checkpoint


def cmd_evaluate(args):
    """RMSE in pixels of a trained net, overall and per keypoint.

    Evaluates every row of the data that has all the model's keypoints (--split valid: only
    the rows the net held out for validation when it was trained on this file; --split
    train: the others)."""
    from ..runs import keypoint_errors

    if _is_ensemble(args.model):
        return _evaluate_ensemble(args)
    net = _load_model(args.model, args.device)
    columns = _model_columns(net)
    X, y = _load_training_data(args.data, cols=None if len(columns) == 30 else columns)
    n_valid = net._n_valid(len(X))
    if args.split == "valid":
        if not n_valid:
            raise CLIError("--split valid: the model was trained with eval_size=0")
        X, y = X[:n_valid], y[:n_valid]
    elif args.split == "train":
        X, y = X[n_valid:], y[n_valid:]
    table = keypoint_errors(y, net.predict(X), columns)
    if args.json:
        print(json.dumps({
            "model": str(args.model), "data": _data_name(args.data), "split": args.split,
            "faces": len(X), "rmse_px": table.loc["overall", "rmse"],
            "keypoints": {k: {c: float(v) for c, v in row.items() if c != "n"}
                          for k, row in table.drop(index="overall").iterrows()},
        }, indent=1))
        return 0
    print(f"model: {args.model}\ndata:  {_data_name(args.data)}, {len(X)} faces with all "
          f"{len(columns) // 2} keypoints (split: {args.split})\n")
    width = max(len(str(k)) for k in table.index)
    header = f"{'keypoint':<{width}}  {'x px':>6}  {'y px':>6}  {'RMSE px':>7}"
    rows = [f"{k:<{width}}  {r.x:6.2f}  {r.y:6.2f}  {r.rmse:7.2f}" for k, r in table.iterrows()]
    print("\n".join([header, "-" * len(header)] + rows[:-1] + ["-" * len(header), rows[-1]]))
    return 0


def cmd_predict(args):
    """Predict the keypoints of a test.csv and write a Kaggle submission (RowId,Location)."""
    import pandas as pd

    from ..data import load2d, read_csv, write_submission

    ensemble = _is_ensemble(args.model)
    if ensemble:
        net = _load_ensemble(args.model, args.device)
        columns = net.covered_columns
    else:
        net = _load_model(args.model, args.device)
        columns = _model_columns(net)
    test, lookup = args.test, args.lookup
    if test is None:
        from ..synthetic import ensure_default_dataset

        paths = ensure_default_dataset()
        test, lookup = paths["test"], lookup or paths["lookup"]
    if lookup is None:
        lookup = Path(test).with_name("IdLookupTable.csv")
        if not lookup.exists():
            raise CLIError(f"no --lookup given and no IdLookupTable.csv next to {test}")
    for what, path in (("test file", test), ("lookup table", lookup)):
        if not Path(path).is_file():
            raise CLIError(f"no such {what}: {path}")
    ids = read_csv(test, test=True).image_ids
    X, _ = load2d(test, test=True)
    y_pred = net.predict(X)
    if ensemble and len(columns) != 30:
        from ..data import KEYPOINT_COLUMNS

        y_pred = y_pred[:, [KEYPOINT_COLUMNS.index(c) for c in columns]]
    predictions = pd.DataFrame(y_pred, columns=columns, index=ids) if len(columns) != 30 else y_pred
    out = write_submission(predictions, lookup, args.output,
                           image_ids=None if len(columns) != 30 else ids)
    with open(out) as f:
        n_rows = sum(1 for _ in f) - 1
    print(f"predicted {len(X)} faces from {test} with {args.model}")
    print(f"wrote {out} ({n_rows} rows of RowId,Location, pixels clipped to [0, 96])")
    return 0


def _is_ensemble(path):
    from ..specialists import is_ensemble_dir

    return is_ensemble_dir(path)


def _load_ensemble(path, device=None):
    from ..specialists import load_ensemble

    _check_device(device)
    return load_ensemble(path, device=device or "auto")  # bad files: ModelFileError, exit 2


def _evaluate_ensemble(args):
    ensemble = _load_ensemble(args.model, args.device)
    try:
        table = ensemble.keypoint_errors(args.data, split=args.split)
    except FileNotFoundError:
        raise CLIError(f"no such data file: {args.data}") from None
    overall = float(table.loc["overall", "rmse"])
    if args.json:
        print(json.dumps({
            "model": str(args.model), "data": _data_name(args.data), "split": args.split,
            "faces": int(table.loc["overall", "n"]), "rmse_px": overall,
            "keypoints": {k: {"group": row["group"], "x": float(row["x"]), "y": float(row["y"]),
                              "rmse": float(row["rmse"]), "n": int(row["n"])}
                          for k, row in table.drop(index="overall").iterrows()},
        }, indent=1))
        return 0
    print(f"model: {args.model} (specialist ensemble, {len(ensemble.members)} members)\n"
          f"data:  {_data_name(args.data)}; each specialist on the faces that have its "
          f"keypoints (split: {args.split})\n")
    width = max(len(str(k)) for k in table.index)
    header = (f"{'keypoint':<{width}}  {'group':<12}  {'faces':>5}  {'x px':>6}  {'y px':>6}  "
              f"{'RMSE px':>7}")
    rows = [f"{k:<{width}}  {r.group:<12}  {int(r.n):>5}  {r.x:6.2f}  {r.y:6.2f}  {r.rmse:7.2f}"
            for k, r in table.drop(index="overall").iterrows()]
    last = f"{'overall':<{width}}  {'':<12}  {'':>5}  {'':>6}  {'':>6}  {overall:7.2f}"
    print("\n".join([header, "-" * len(header)] + rows + ["-" * len(header), last]))
    return 0


def cmd_train_specialists(args):
    """Train one specialist per keypoint group (the recipe's last step) into DIR, a directory
    that evaluate and predict accept like a run directory.

    Each specialist is a clone of PRESET with an output layer as wide as its group, its own
    flip pairs, and every row where its keypoints are present. With --pretrained, every layer
    but the output is loaded from that run's model where shapes match. The epoch budget
    (--max-epochs, default the preset's) is scaled inversely with each group's rows:
    epochs = max_epochs * (rows with all 30 keypoints) / (rows of the group)."""
    from ..specialists import fit_specialists, get_groups, report_table

    try:
        groups = get_groups(args.groups)
    except ValueError as exc:
        raise CLIError(f"--groups: {exc}") from None
    if args.pretrained and not Path(args.pretrained).exists():
        raise CLIError(f"--pretrained: no run directory or model file at {args.pretrained}")
    pretrained = None
    if args.pretrained:
        pretrained = _load_model(args.pretrained, "cpu")
    from .. import presets

    epochs = {"max_epochs": args.max_epochs} if args.max_epochs else {}  # else the preset's
    base = presets.get(args.preset, verbose=0, **epochs)
    if args.device:
        _check_device(args.device)
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


def _histories(paths):
    from ..persist import ModelFileError
    from ..runs import read_history, run_labels

    for p in paths:
        if not Path(p).exists():
            raise CLIError(f"no run directory or model file at {p}")
    histories = {}
    for label, p in zip(run_labels(paths), paths):
        try:
            records = read_history(p)
        except (FileNotFoundError, ModelFileError) as exc:
            raise CLIError(f"{p}: not a run directory or model file ({_one_line(exc)})") from None
        if not records:
            raise CLIError(f"{p}: the run has no finished epochs")
        histories[label] = records
    return histories


def cmd_plot(args):
    """Learning curves of one or several runs on one figure: train (dashed) and valid
    (solid) RMSE in pixels on a log axis, with each run's learning rate and momentum on
    axes to the right."""
    from ..plots import plot_learning_curves

    histories = _histories(args.runs)
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise CLIError(f"-o {out}: use a .png, .pdf, .svg or .jpg file name")
    title = args.title or ("learning curves: " + ", ".join(histories))
    ax = plot_learning_curves(histories, show_schedule=not args.no_schedule, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(out, dpi=args.dpi, bbox_inches="tight")
    print(f"wrote {out} ({len(histories)} run{'s' if len(histories) > 1 else ''}: "
          f"{', '.join(histories)})")
    return 0


def cmd_compare(args):
    """The recipe's table for several runs side by side (epoch | train | valid | train/val
    per run at chosen epochs), then each run's best and last valid RMSE in pixels."""
    from ..runs import read_run_info, recipe_table, run_labels

    histories = _histories(args.runs)
    print(recipe_table(histories, epochs=args.epochs))
    infos = [(label, read_run_info(p)) for label, p in zip(run_labels(args.runs), args.runs)]
    if any(info for _, info in infos):
        print()
        for label, info in infos:
            if info:
                sets = "".join(f" {k}={v}" for k, v in (info.get("set") or {}).items())
                epochs = info.get("epochs_run", info.get("max_epochs", "?"))
                print(f"{label}: {info.get('preset', '?')}{sets}; {epochs} epochs on "
                      f"{info.get('rows', '?')} faces ({info.get('data', '?')}) in "
                      f"{info.get('seconds', '?')} s on {info.get('device', '?')}")
    return 0


def cmd_make_data(args):
    """Write the synthetic Kaggle-format files (training.csv, test.csv, IdLookupTable.csv)."""
    from ..synthetic import summarize, write_dataset

    paths = write_dataset(args.directory, seed=args.seed, n_train=args.train, n_test=args.test)
    for kind, path in paths.items():
        print(f"{kind:>9}: {path}")
    print(summarize(paths["training"]))
    return 0


# -- parser ----------------------------------------------------------------------------------

def _sub(sub, name, func, help, epilog=None):
    import inspect

    p = sub.add_parser(name, help=help, description=inspect.cleandoc(func.__doc__), epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def build_parser():
    from .._version import __version__

    parser = _Parser(
        prog="facekeypoints",
        description="Train, evaluate and compare facial keypoint CNNs (the classic nolearn "
                    "recipe on PyTorch). Every command has --help.",
        epilog="Without --data, commands use the embedded synthetic faces (generated into "
               "the cache on first use).")
    parser.add_argument("--version", action="version", version=f"facekeypoints {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on errors, show the full traceback (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _sub(sub, "train", cmd_train, "train one preset into a run directory",
             epilog="example:\n  facekeypoints train net4 --max-epochs 100 "
                    "--set callbacks__adjust_lr__stop=1e-3 --out runs/net4-stop1e-3")
    p.add_argument("preset", choices=PRESETS, metavar="PRESET", help="net1 .. net7")
    p.add_argument("--max-epochs", type=_positive_int, metavar="N",
                   help="epochs to train (default: the preset's, e.g. 3000 for net4)")
    p.add_argument("--set", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="a set_params override, repeatable: update_learning_rate=0.02, "
                        "eval_size=0.25, callbacks__adjust_lr__stop=1e-3")
    p.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                   help="also write RUN_DIR/checkpoint.pt every N epochs (it is always "
                        "written at the end and on Ctrl-C)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its checkpoint, exactly where it "
                        "stopped (same preset, settings, seed and data)")
    _common_training_flags(p, default_out="runs/PRESET")

    p = _sub(sub, "evaluate", cmd_evaluate, "RMSE in pixels, overall and per keypoint",
             epilog="example:\n  facekeypoints evaluate runs/net4 --data training.csv "
                    "--split valid")
    p.add_argument("model", metavar="RUN_DIR|MODEL", help=MODEL_HELP)
    p.add_argument("--data", metavar="CSV",
                   help="a Kaggle training.csv (default: the embedded synthetic faces)")
    p.add_argument("--split", choices=("all", "valid", "train"), default="all",
                   help="which rows: all (default), or the validation / training fold the "
                        "net used when trained on this file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA when present)")

    p = _sub(sub, "predict", cmd_predict, "predict a test.csv and write a Kaggle submission",
             epilog="example:\n  facekeypoints predict runs/net4 --test test.csv "
                    "--lookup IdLookupTable.csv -o submission.csv")
    p.add_argument("model", metavar="RUN_DIR|MODEL", help=MODEL_HELP)
    p.add_argument("--test", metavar="CSV",
                   help="Kaggle test.csv (ImageId,Image); default: the embedded synthetic one")
    p.add_argument("--lookup", metavar="CSV",
                   help="IdLookupTable.csv (default: the one next to --test)")
    p.add_argument("-o", "--output", default="submission.csv", metavar="CSV",
                   help="submission to write (default: submission.csv)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA when present)")

    p = _sub(sub, "plot", cmd_plot, "learning curves of one or several runs on one figure",
             epilog="example:\n  facekeypoints plot runs/net3 runs/net4 runs/net5 -o curves.png")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or model files")
    p.add_argument("-o", "--output", default=DEFAULT_PLOT, metavar="PNG",
                   help=f"picture to write (default: {DEFAULT_PLOT} in the current directory)")
    p.add_argument("--title", help="figure title")
    p.add_argument("--no-schedule", action="store_true",
                   help="leave out the learning-rate and momentum axes")
    p.add_argument("--dpi", type=_positive_int, default=110, help="resolution (default 110)")

    p = _sub(sub, "compare", cmd_compare, "the recipe's table for several runs side by side",
             epilog="example:\n  facekeypoints compare runs/net4 runs/net5 --epochs 50 100 "
                    "250 500 1000")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or model files")
    p.add_argument("--epochs", nargs="+", type=_positive_int, metavar="E",
                   help="epochs to show (default: about six, evenly spread to the last)")

    p = _sub(sub, "recipe", cmd_recipe, "train net4 and net5 and print the recipe's tables")
    p.add_argument("--full", action="store_true",
                   help="the recipe's budget: 3000 epochs per net (hours on a GPU)")
    p.add_argument("--epochs", type=_positive_int,
                   help=f"epochs per net (default {RECIPE_QUICK_EPOCHS})")
    p.add_argument("--nets", nargs="+", default=["net4", "net5"], choices=PRESETS,
                   metavar="PRESET", help="presets to train (default: net4 net5)")
    _common_training_flags(p, default_out="runs/recipe")

    from ..specialists import GROUPS_BY_NAME

    p = _sub(sub, "train-specialists", cmd_train_specialists,
             "train one specialist net per keypoint group into an ensemble directory",
             epilog="example:\n  facekeypoints train-specialists net5 --pretrained runs/net5 "
                    "--out runs/specialists")
    p.add_argument("preset", choices=PRESETS, metavar="PRESET", help="net1 .. net7")
    p.add_argument("--pretrained", metavar="RUN_DIR",
                   help="load every layer but the output from this run's model.pt")
    p.add_argument("--groups", nargs="+", choices=list(GROUPS_BY_NAME), metavar="GROUP",
                   help=f"groups to train (default: all): {', '.join(GROUPS_BY_NAME)}")
    p.add_argument("--max-epochs", type=_positive_int, metavar="N",
                   help="epoch budget before scaling by rows (default: the preset's)")
    p.add_argument("--data", metavar="CSV",
                   help="a Kaggle training.csv (default: the embedded synthetic faces)")
    p.add_argument("--out", required=True, metavar="DIR", help="ensemble directory to write")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    p.add_argument("--seed", type=int, default=0, help="random_state of the nets (default 0)")

    from ..sweep import register_cli

    register_cli(sub)

    p = _sub(sub, "make-data", cmd_make_data, "write the synthetic Kaggle-format files to DIR")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--train", type=_positive_int, default=7049, help="training rows")
    p.add_argument("--test", type=_positive_int, default=1783, help="test rows")
    return parser


def _common_training_flags(p, default_out):
    p.add_argument("--data", metavar="CSV",
                   help="a Kaggle training.csv (default: the embedded synthetic faces)")
    p.add_argument("--out", default=None if default_out == "runs/PRESET" else default_out,
                   metavar="RUN_DIR", help=f"run directory to write (default: {default_out})")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    p.add_argument("--seed", type=int, default=0, help="random_state of the nets (default 0)")


#: Exceptions that mean "the input is wrong" (exit 2), not "the program is wrong" (exit 1).
_USER_ERRORS = (CLIError, ValueError, OSError, FloatingPointError)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"facekeypoints {args.command}"
    try:
        return args.func(args)
    except BrokenPipeError:        # output piped into head & co.: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        if args.traceback:
            raise
        if isinstance(exc, _USER_ERRORS):
            print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        print(f"{prefix}: error: {type(exc).__name__}: {_one_line(exc)} (rerun as "
              f"'facekeypoints --traceback {args.command} ...' for details)", file=sys.stderr)
        return 1

