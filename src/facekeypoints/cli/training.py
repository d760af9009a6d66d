"""The subcommands that train: ``train``, ``recipe``, ``train-specialists``, and
``make-data`` (the synthetic files they train on)."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..precision import PRECISIONS, resolve_precision
from ._common import (DATA_HELP, DEVICE_HELP, PARTIAL_LABELS_HELP, PRECISION_HELP, PRESET_HELP,
                      PRESETS, CLIError, add_command, data_name, key_value, label_summary,
                      load_model, load_training_data, make_net, one_line, positive_int)

if TYPE_CHECKING:
    import argparse
    import os
    from collections.abc import Iterator

    import numpy as np

    from ..net import NeuralNet

__all__ = ["cmd_train", "cmd_recipe", "cmd_train_specialists", "cmd_make_data", "add_train",
           "add_recipe", "add_train_specialists", "add_make_data", "RECIPE_QUICK_EPOCHS",
           "RECIPE_QUICK_BATCH_SIZE", "with_batch_size",
           "data_digest", "data_label", "run_directory", "train_one"]

#: Epochs per net of a ``recipe`` run without ``--full`` or ``--epochs``.
RECIPE_QUICK_EPOCHS = 20
#: Training batch size of a ``recipe`` run without ``--full`` or ``--batch-size``. With the
#: recipe's SGD schedule a net sits on the mean keypoints for its first few hundred updates;
#: 20 epochs of batch 16 (about 2,100 updates on the embedded faces) take it well past that
#: in a few minutes on a 2-core CPU, where batch 128 (270 updates) does not leave the mean.
RECIPE_QUICK_BATCH_SIZE = 16



@contextlib.contextmanager
def run_directory(out_dir: str | os.PathLike, fresh: bool) -> Iterator[Path]:
    """:func:`facekeypoints.runs.open_run` with its errors as one-line :class:`CLIError` s.

    Create, check and lock a run directory before anything is loaded or trained.

    Parameters
    ----------
    out_dir : str or path-like
        The run directory.
    fresh : bool
        True for a new training, False to resume the one there.

    Yields
    ------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    CLIError
        If the folder cannot be created or written, or another process holds it.
    """
    from ..runs import open_run

    with contextlib.ExitStack() as stack:
        try:
            out = stack.enter_context(open_run(out_dir, fresh=fresh))
        except OSError as exc:
            raise CLIError(one_line(exc)) from None
        yield out


def data_digest(X: np.ndarray, y: np.ndarray | None) -> str:
    """The content hash ``run.json`` records (:func:`facekeypoints.runs.data_digest`).

    Parameters
    ----------
    X, y : numpy.ndarray
        The training arrays, as ``load2d`` returns them.

    Returns
    -------
    str
        ``'sha256:<hex>'`` over the arrays' dtypes, shapes and bytes.
    """
    from ..runs import data_digest as digest

    return digest(X, y)


def data_label(path: str | os.PathLike | None) -> str:
    """How ``run.json`` records a ``--data`` value: the absolute path, or the embedded faces.

    Parameters
    ----------
    path : str or path-like or None
        The ``--data`` value.

    Returns
    -------
    str
        An absolute path, or ``'embedded synthetic faces'``.
    """
    return str(Path(path).resolve()) if path else data_name(None)


def train_one(name: str, X: np.ndarray, y: np.ndarray, args: argparse.Namespace,
              out_dir: str | os.PathLike, max_epochs: int | None,
              sets: dict[str, Any] | None = None, net: NeuralNet | None = None,
              resume: bool = False, new_data_ok: bool = False) -> NeuralNet:
    """Train one net into a run directory with :func:`facekeypoints.runs.train`, and say so.

    Prints the run's header before the first epoch and a summary after it; errors become
    one-line :class:`CLIError` s that say how to continue (the resume command).

    Parameters
    ----------
    name : str
        The preset's name (recorded in ``run.json`` and printed).
    X, y : numpy.ndarray
        The training data.
    args : argparse.Namespace
        The command line (``data``, ``checkpoint_every``, ``partial_labels`` when present;
        ``device``, ``precision`` and ``seed`` when the net is made here).
    out_dir : str or path-like
        The run directory to write.
    max_epochs : int or None
        Epochs for a net made here (None: the preset's).
    sets : dict, optional
        The ``--set`` overrides (applied to a net made here, recorded in ``run.json``).
    net : NeuralNet, optional
        A configured net to train instead of making one from the preset.
    resume : bool, default False
        Continue the run in ``out_dir`` from its checkpoint.
    new_data_ok : bool, default False
        On resume, accept data that differs from the run's (``--data`` was given).

    Returns
    -------
    NeuralNet
        The fitted net.

    Raises
    ------
    CLIError
        For a run directory that cannot be used, too little free space, a full disk, a
        refused resume, or a TypeError while fitting (usually a ``--set`` value of the
        wrong type).
    KeyboardInterrupt
        After Ctrl-C (:class:`facekeypoints._signals.Terminated` after SIGTERM), once the
        finished epochs and the checkpoint are written.
    """
    from .._rundir import DiskFullError
    from .._signals import Terminated, interruption, signal_name
    from ..runs import RunError, checkpoint_path, partial_dir, train

    net = net if net is not None else make_net(name, max_epochs, args, sets)
    out_dir = Path(out_dir)
    hint = " (check the --set values)" if sets else ""
    resume_hint = f"Continue with: facekeypoints train {name} --resume {out_dir}"
    record = {"preset": name, "set": sets or {}, "data": data_label(args.data),
              "partial_labels": bool(getattr(args, "partial_labels", False)),
              **({"init_from": net.init_from_} if getattr(net, "init_from_", None) else {})}
    if getattr(args, "log", None) or resume:     # --log: checked here, before training
        from ..tracking import loggers_for_run

        loggers, tracking = loggers_for_run(getattr(args, "log", None), out_dir,
                                            {**record, "set": str(sets or {})}, resume=resume)
        if tracking:
            net.callbacks = [*(net.callbacks or []), *loggers]
            record["tracking"] = tracking

    def header(info):
        again = (" (resuming)" if resume else
                 " (replacing the run there)" if info["replacing"] else "")
        print(f"\n=== {name}: {net.max_epochs} epochs on {len(X)} faces "
              f"({data_name(args.data)}) -> {out_dir}{again}, precision "
              f"{info['precision']} ===", flush=True)
        if info.get("checkpoint_every"):
            print(f"checkpoints every {info['checkpoint_every']} epochs: "
                  f"{partial_dir(out_dir) / 'checkpoint.pt'} while training, "
                  f"{out_dir / 'checkpoint.pt'} once the run is written", flush=True)
        if info["partial_labels"]:
            print(f"partial labels: {label_summary(y)}; the validation split is over all "
                  "of them", flush=True)

    try:
        result = train(net, X, y, out_dir, resume=resume,
                       checkpoint_every=getattr(args, "checkpoint_every", None),
                       record=record, new_data_ok=new_data_ok, on_start=header)
    except TypeError as exc:       # usually a --set value of the wrong type
        raise CLIError(f"{one_line(exc)}{hint}") from None
    except RunError as exc:
        raise CLIError(one_line(exc)) from None
    except DiskFullError as exc:
        more = f". {resume_hint}" if checkpoint_path(out_dir) is not None else ""
        raise CLIError(f"{exc}{more}") from None
    except OSError as exc:         # the run directory cannot be used, in one line
        raise CLIError(one_line(exc)) from None
    except KeyboardInterrupt as exc:   # a second signal: stopped at once, nothing more written
        kept = (f"; the last checkpoint is in {partial_dir(out_dir)}/. {resume_hint}"
                if (partial_dir(out_dir) / "checkpoint.pt").exists() else "")
        what = signal_name(15 if isinstance(exc, Terminated) else 2)
        print(f"stopped at once after {what}: {out_dir} keeps what it held before{kept}",
              file=sys.stderr, flush=True)
        raise
    history = list(result.net.history)
    print(f"{name}: {len(history)} epochs in {result.seconds:.0f} s{_best(result.net)}")
    print(f"wrote {out_dir}/ (model.pt, history.json/csv, run.json, config.json, "
          "learning_curve.png, keypoints.png, checkpoint.pt)", flush=True)
    if result.interrupted or result.signal:
        what = signal_name(result.signal) if result.signal else "an interrupt"
        if result.interrupted:
            print(f"interrupted after epoch {len(history)} ({what}); the checkpoint is "
                  f"in {out_dir}/. {resume_hint}", file=sys.stderr, flush=True)
        else:
            print(f"{what} while writing the run: all {len(history)} epochs were "
                  f"done and {out_dir} is complete", file=sys.stderr, flush=True)
        raise interruption(result.signal) if result.signal else KeyboardInterrupt
    return result.net


def _best(net):
    """``'; best valid RMSE 2.07 px at epoch 20'`` (measured from the predictions); for a loss
    that is not a mean squared error, the best loss too, named by its criterion."""
    from ..losses import is_mse
    from ..reports import best_valid_px

    best = best_valid_px(net.history, criterion=net.criterion)
    text = "" if best is None else f"; best valid RMSE {best[0]:.2f} px at epoch {best[1]}"
    valid = [(h["valid_loss"], h["epoch"]) for h in net.history if "valid_loss" in h]
    if valid and not is_mse(net.criterion):
        loss, epoch = min(valid)
        text += f"; best valid loss {loss:.6f} ({type(net.criterion_).__name__}) at epoch {epoch}"
    return text


def cmd_recipe(args: argparse.Namespace) -> int:
    """Train net4 and net5 (by default) and compare them as the recipe's tables do.

    Each net's run directory is created, checked and locked before the first epoch; Ctrl-C
    or SIGTERM is handled as by ``train``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_recipe` defines).

    Returns
    -------
    int
        The exit status: 0, or 143 after SIGTERM.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    KeyboardInterrupt
        After Ctrl-C, once the finished epochs are written (exit status 130).
    """
    return _stoppable("recipe", _recipe, args)


def _recipe(args):
    from .._safe_io import save_figure
    from ..metrics import rmse_px
    from ..plots import plot_learning_curves
    from ..reports import mean_baseline_loss, read_history, recipe_table

    epochs = args.epochs or (3000 if args.full else RECIPE_QUICK_EPOCHS)
    batch_size = args.batch_size or (None if args.full else RECIPE_QUICK_BATCH_SIZE)
    nets = {name: make_net(name, epochs, args, None) for name in args.nets}
    if batch_size is not None:
        for net in nets.values():
            net.set_params(batch_iterator_train=with_batch_size(net.batch_iterator_train,
                                                                batch_size))
    out = Path(args.out)
    histories = {}
    with contextlib.ExitStack() as held:     # every net's run directory, before any training
        for name in nets:
            held.enter_context(run_directory(out / name, fresh=True))
        X, y = load_training_data(args.data)
        _check_space(out, nets, len(X))
        sizes = {net.batch_iterator_train.batch_size for net in nets.values()}
        n_train = len(X) - next(iter(nets.values())).validation_size(len(X))
        print(f"recipe: {', '.join(nets)}, {epochs} epochs each on {n_train} training faces, "
              f"training batch {' / '.join(map(str, sorted(sizes)))}"
              + ("" if args.full or args.batch_size else
                 " (the recipe's is 128: --full trains its 3000 epochs of batch 128)"))
        for name, net in nets.items():
            train_one(name, X, y, args, out / name, epochs, net=net)
            histories[name] = read_history(out / name)
    print("\n" + recipe_table(histories))
    (_, y_train), (_, y_valid) = next(iter(nets.values())).train_valid_split(X, y)
    baseline = mean_baseline_loss(y_train, y_valid)
    print(f"predicting the mean keypoints of the training rows: valid RMSE "
          f"{rmse_px(baseline):.2f} px (loss {baseline:.6f})")
    if epochs < 500 and not args.full:
        print(f"(a quick run: {epochs} epochs per net. The recipe trains 3000 epochs of batch "
              "128 (--full): hours here.)")
    ax = plot_learning_curves(histories, title=" vs ".join(args.nets))
    save_figure(ax.figure, out / "learning_curves.png", dpi=100, bbox_inches="tight")
    print(f"\nwrote {out / 'learning_curves.png'}")


def _check_space(out, nets, rows):
    """Before the first net trains: room for every net's run (they share one file system)."""
    from .._rundir import DiskFullError, check_free_space
    from ..runs import space_needed

    try:
        check_free_space(out, sum(space_needed(net, rows=rows) for net in nets.values()),
                         f"a {' + '.join(nets)} recipe")
    except DiskFullError as exc:
        raise CLIError(str(exc)) from None


def cmd_train(args: argparse.Namespace) -> int:
    """Train one preset into a run directory: model.pt (safe weights + JSON config),
    history.json/csv, run.json, config.json, learning_curve.png, keypoints.png and
    checkpoint.pt, put in place together when training ends.

    The epoch table prints live; on a terminal a progress bar below it shows epochs done,
    the ETA, and the current learning rate and momentum. Ctrl-C or SIGTERM lets the running
    epoch finish, then writes the checkpoint and the run with the epochs that finished and
    prints how to resume (exit status 130, or 143 after SIGTERM); a second signal stops at
    once. One training writes a run directory at a time.

    With --partial-labels the net trains on every face that has at least one keypoint, NaN
    marking the missing ones (the default loss leaves them out), and the validation split is
    over all of those faces.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_train` defines).

    Returns
    -------
    int
        The exit status: 0, or 143 after SIGTERM.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value); exit status 2.
    KeyboardInterrupt
        After Ctrl-C, once the finished epochs are written (exit status 130).
    """
    return _stoppable("train", _train, args)


def _stoppable(command, func, args):
    """Run ``func(args)`` with SIGTERM raising :class:`Terminated` (exit status 143)."""
    from .._signals import StopSignals, Terminated, interruption

    try:
        with StopSignals() as stop:
            func(args)
            if stop.received:      # a signal while finishing up: the work is done; say so
                raise interruption(stop.requested)
    except Terminated:
        print(f"facekeypoints {command}: terminated", file=sys.stderr, flush=True)
        return 143
    return 0


def _train(args):
    sets = dict(args.set or ())
    if not args.resume:
        epochs = sets.pop("max_epochs", None) or args.max_epochs  # None: the preset's own
        net = make_net(args.preset, epochs, args, sets)
        if args.init_from:
            from ..finetune import format_init_table, init_from
            print(format_init_table(init_from(net, args.init_from)), flush=True)
        out = Path(args.out or f"runs/{args.preset}")
        with run_directory(out, fresh=True):
            X, y = load_training_data(args.data, dropna=not args.partial_labels)
            train_one(args.preset, X, y, args, out, epochs, sets, net=net)
        return
    out = Path(args.resume)
    if args.out is not None and Path(args.out).resolve() != out.resolve():
        raise CLIError("--resume continues the run in its own directory; leave out --out")
    if not out.is_dir():
        raise CLIError(f"no run directory at {out}")
    with run_directory(out, fresh=False):
        plan = _resume_plan(args, sets, out)
        net = make_net(args.preset, plan["epochs"], args, plan["sets"])
        X, y = load_training_data(args.data, dropna=not args.partial_labels)
        recorded = plan["info"].get("data_sha256")
        if recorded and recorded != data_digest(X, y):
            was = plan["info"].get("data", "?")
            if not plan["explicit_data"]:
                raise CLIError(
                    f"the data of the run in {out} changed since it started ({was}: content "
                    f"{recorded[7:19]} then, {data_digest(X, y)[7:19]} now), so resuming "
                    f"would not continue the same run; pass --data {args.data or 'CSV'} to "
                    "resume on it anyway")
            plan["notes"].append(f"note: --data {args.data} differs from the data the run "
                                 f"started on ({was}); resuming on it as asked")
        for note in plan["notes"]:
            print(note, file=sys.stderr)
        train_one(args.preset, X, y, args, out, plan["epochs"], plan["sets"], net=net,
                  resume=True, new_data_ok=plan["explicit_data"])


#: What ``--resume`` lets a command line change; every other setting is the run's own.
RESUME_CHANGES = ("--max-epochs", "--checkpoint-every", "--device", "--data")


def _resume_plan(args, sets, out):
    """What the run in ``out`` was started with, to continue it exactly: the recorded
    preset, ``--set`` values, seed, precision, device, partial labels and data are restored
    (``args`` is updated); one given again that differs is refused. ``--max-epochs`` sets
    the new total, ``--checkpoint-every`` and ``--device`` may change."""
    from ..checkpoint import read_checkpoint
    from ..runs import RunError, resume_point

    try:
        info, checkpoint = resume_point(out)
    except RunError as exc:
        raise CLIError(one_line(exc)) from None
    partial = checkpoint.parent != out
    if info.get("preset", args.preset) != args.preset:
        raise CLIError(f"{out} is a {info['preset']} run, not {args.preset}")
    done = read_checkpoint(checkpoint)["epoch"]    # a damaged file: one line, exit 2
    notes = []
    planned = info.get("max_epochs")
    asked = sets.pop("max_epochs", None) or args.max_epochs
    recorded_sets = dict(info.get("set") or {})
    recorded_sets.pop("max_epochs", None)
    for key, value in sets.items():
        if key not in recorded_sets or recorded_sets[key] != value:
            was = (f"with {key}={recorded_sets[key]!r}" if key in recorded_sets
                   else f"without --set {key}")
            raise CLIError(f"--set {key}={value!r}: the run in {out} was started {was}, and a "
                           "resumed run keeps its settings (leave out --set; only "
                           f"{', '.join(RESUME_CHANGES)} may change on resume)")
    if asked is not None:
        if asked <= done:
            raise CLIError(f"--max-epochs {asked}: the run in {out} has already trained {done} "
                           f"epochs; --max-epochs counts all of its epochs, so give more than "
                           f"{done} to train it further")
        if planned is not None and asked != planned:
            notes.append(f"note: the run was planned for {planned} epochs; its schedules now "
                         f"follow a {asked}-epoch plan from epoch {done + 1} on, as a run "
                         f"started with --max-epochs {asked} would")
        epochs = asked
    elif planned is not None and done >= planned and not partial or \
            info.get("status") == "finished":
        early = " (it stopped early)" if planned is not None and done < planned else ""
        raise CLIError(f"the run in {out} has finished: {done} of {planned} epochs{early}; "
                       f"pass --max-epochs N with N > {done} to train it further")
    else:
        epochs = planned
    _restore_setting(args, "seed", info, out, "--seed", default=0)
    _restore_precision(args, info, out)
    _restore_device(args, info, notes)
    if args.checkpoint_every is None:
        args.checkpoint_every = info.get("checkpoint_every")
    recorded_partial = bool(info.get("partial_labels"))
    if args.partial_labels and not recorded_partial:
        raise CLIError(f"--partial-labels: the run in {out} trained on complete faces only, "
                       "and a resumed run keeps its data; leave out --partial-labels")
    args.partial_labels = recorded_partial
    explicit = args.data is not None
    recorded_data = info.get("data")
    if not explicit and recorded_data not in (None, data_name(None)):
        path = Path(recorded_data)
        if not path.is_file():
            why = ("" if path.is_absolute() else
                   " (a relative path, from before run.json recorded absolute ones)")
            raise CLIError(f"the run in {out} trained on {recorded_data}{why}, which is not "
                           "there any more; pass --data CSV to resume on a copy of it")
        args.data = str(path)
    return {"sets": recorded_sets, "epochs": epochs, "checkpoint": checkpoint, "info": info,
            "explicit_data": explicit, "notes": notes}


def _restore_setting(args, attr, info, out, option, default=None):
    """``args.<attr>`` from the run's record; a different value given again is refused."""
    recorded = info.get(attr)
    given = getattr(args, attr, None)
    if given is None:
        setattr(args, attr, recorded if recorded is not None else default)
    elif recorded is not None and given != recorded:
        raise CLIError(f"{option} {given}: the run in {out} was started with {option} "
                       f"{recorded}, and a resumed run keeps it (leave out {option})")


def _restore_precision(args, info, out):
    """The run's precision (``run.json`` records the one it trained in: 32 or bf16)."""
    recorded = info.get("precision")
    if recorded is None:
        return
    if args.precision is None:
        args.precision = str(recorded)
        return
    device = args.device or info.get("device") or "cpu"
    try:
        given = resolve_precision(args.precision, device)
    except ValueError:
        given = args.precision
    if given != str(recorded):
        raise CLIError(f"--precision {args.precision}: the run in {out} was started with "
                       f"--precision {recorded}, and a resumed run keeps it (leave out "
                       "--precision)")


def _restore_device(args, info, notes):
    """The run's device when none is given and this machine has it (else the default)."""
    recorded = info.get("device")
    if args.device is not None or recorded is None:
        return
    try:
        from ._common import check_device

        check_device(recorded)
    except CLIError:
        notes.append(f"note: the run trained on {recorded}, which this machine does not "
                     "have; resuming on the default device (the result may differ in the "
                     "last bits from an uninterrupted run)")
        return
    args.device = recorded


def cmd_train_specialists(args: argparse.Namespace) -> int:
    """Train one specialist per keypoint group (the recipe's last step) into DIR, a directory
    that evaluate and predict accept like a run directory.

    Each specialist is a clone of PRESET with an output layer as wide as its group, its own
    keypoint layout and flip pairs, and every row where its keypoints are present. With
    --pretrained, every layer but the output is loaded from that run's model where shapes
    match. The epoch budget (--max-epochs, default the preset's) is scaled inversely with
    each group's rows: epochs = max_epochs * (rows with all 30 keypoints) / (rows of the
    group).

    DIR is created, checked (writable, not a training run's folder, enough free space) and
    locked before the first epoch; the ensemble is written into it as one unit at the end
    (see :meth:`facekeypoints.specialists.SpecialistEnsemble.save`). The first Ctrl-C or
    SIGTERM lets the running epoch finish, then stops without writing anything: DIR keeps
    what it held before. A second one stops at once.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (the options :func:`add_train_specialists` defines).

    Returns
    -------
    int
        The exit status: 0, or 130 after Ctrl-C and 143 after SIGTERM.

    Raises
    ------
    CLIError
        For problems the user can fix (a missing file, a bad value, an unusable DIR);
        exit status 2.
    """
    from .._signals import exit_status

    try:
        return _train_specialists(args)
    except KeyboardInterrupt as exc:      # a second signal, or one outside the training
        what = "terminated" if exit_status(exc) == 143 else "interrupted"
        print(f"facekeypoints train-specialists: {what}; {args.out} keeps what it held "
              "before", file=sys.stderr, flush=True)
        return exit_status(exc)


#: Bytes an ensemble's member file needs beyond its float32 weights (config, history).
_MEMBER_OVERHEAD_BYTES = 256 * 1024


def _train_specialists(args):
    from .. import presets
    from .._rundir import (DiskFullError, RunInUseError, RunLock, check_free_space,
                           make_location, remove_created)
    from .._signals import EXIT_STATUS, StopSignals, signal_name
    from ..specialists import (SpecialistsInterrupted, check_ensemble_target, fit_specialists,
                               get_groups, report_table)
    from ._common import check_device, check_file

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
    if args.data is not None:
        check_file(args.data, "data file")

    out = Path(args.out)
    try:
        created = make_location(out)
    except OSError as exc:
        raise CLIError(f"--out: {one_line(exc)}") from None
    with contextlib.ExitStack() as stack:
        stack.callback(remove_created, created)      # runs last: folders still empty go
        lock = RunLock(out)
        try:
            lock.acquire()
        except (RunInUseError, OSError) as exc:
            raise CLIError(f"--out: {one_line(exc)}") from None
        stack.callback(lock.release)
        try:
            check_ensemble_target(out)
            n_params = base.n_parameters()
            check_free_space(out, len(groups) * (4 * n_params + _MEMBER_OVERHEAD_BYTES),
                             f"{len(groups)} {args.preset} specialists")
        except (ValueError, DiskFullError) as exc:
            raise CLIError(f"--out: {exc}") from None
        ended = {"status": "KILLED"}
        if args.log:                  # checked before training; a record per specialist
            from ..tracking import SpecialistLabel, finish_tracking, run_loggers

            loggers, tracking = run_loggers(
                args.log, out.name, settings={"preset": args.preset, "data": data_label(
                    args.data), "groups": " ".join(g.name for g in groups)},
                label=SpecialistLabel())
            base.set_params(callbacks=[*(base.callbacks or []), *loggers])
            stack.callback(lambda: finish_tracking(tracking, status=ended["status"]))
        stop = stack.enter_context(StopSignals(graceful=True))

        def line(info):
            loaded = ", ".join(info["loaded"]) or "none"
            mism = "".join(f"; not loaded {k} ({v})" for k, v in info["mismatched"].items())
            pre = f"; pretrained layers: {loaded}{mism}" if pretrained is not None else ""
            px = info["best_valid_rmse_px"]
            best = (f"best valid RMSE {px:.2f} px" if px is not None else
                    "no valid RMSE in px (no validation faces)")
            print(f"[{info['index']}/{info['of']}] {info['group']}: {info['rows']} faces, "
                  f"{info['epochs']} epochs, {best} in {info['seconds']:.1f} s{pre}",
                  flush=True)

        try:
            ensemble = fit_specialists(base, args.data, groups=groups, pretrained=pretrained,
                                       on_specialist=line)
        except SpecialistsInterrupted as exc:
            print(f"facekeypoints train-specialists: stopped: {exc}; {out} keeps what it "
                  "held before", file=sys.stderr, flush=True)
            return exc.exit_status
        stop.notice = "finishing writing the ensemble"
        try:
            ensemble.save(out)
        except DiskFullError as exc:
            raise CLIError(f"{exc}; {out} keeps what it held before") from None
        ended["status"] = "FINISHED"
        print("\n" + report_table(ensemble.report_))
        print(f"\nwrote {out}/ (ensemble.json and one model file per specialist); "
              f"evaluate with: facekeypoints evaluate {out}", flush=True)
        if stop.received:
            print(f"{signal_name(stop.requested)} while writing the ensemble: all "
                  f"{len(groups)} specialists were done and {out} is complete",
                  file=sys.stderr, flush=True)
            return EXIT_STATUS.get(stop.requested, 130)
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
    from .._cache import write_problem
    from ..synthetic import summarize, write_dataset

    try:
        paths = write_dataset(args.directory, seed=args.seed, n_train=args.train,
                              n_test=args.test)
    except OSError as exc:      # a full disk, a read-only folder: say where and how much
        size = (args.train + args.test) * 33_500 / 1e6      # ~33.5 kB per face of text
        raise CLIError(f"cannot write the data set into {args.directory}: "
                       f"{write_problem(exc)} (the files need about {size:,.1f} MB); free "
                       "some space there or choose another DIR") from None
    for kind, path in paths.items():
        print(f"{kind:>9}: {path}")
    print(summarize(paths["training"]))
    return 0


# -- parsers ---------------------------------------------------------------------------------

#: ``--log``'s help (train, recipe, train-specialists, sweep).
LOG_HELP = ("record each epoch (losses, valid RMSE px, learning rate, momentum, duration), "
            "the settings and the model: tensorboard:DIR, mlflow:URI (a directory, "
            "sqlite:///FILE.db or http://HOST:PORT) or wandb:DIR (W&B, offline); "
            "repeatable; a resumed run keeps its own")


def _training_flags(p, default_out):
    p.add_argument("--data", metavar="CSV", help=DATA_HELP)
    p.add_argument("--log", action="append", metavar="KIND:TARGET", help=LOG_HELP)
    p.add_argument("--out", default=None if default_out == "runs/PRESET" else default_out,
                   metavar="RUN_DIR", help=f"run directory to write (default: {default_out})")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, help=PRECISION_HELP + " (default: 32)")
    p.add_argument("--seed", type=int, default=None,
                   help="random_state of the nets (default 0; a resumed run keeps its own)")


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
    p.add_argument("preset", choices=PRESETS, metavar="PRESET", help=PRESET_HELP)
    p.add_argument("--max-epochs", type=positive_int, metavar="N",
                   help="epochs to train (default: the preset's, e.g. 3000 for net4); with "
                        "--resume, the run's new total (more than the epochs done), its "
                        "schedules re-planned for N")
    p.add_argument("--set", action="append", type=key_value, metavar="KEY=VALUE",
                   help="a set_params override, repeatable: update_learning_rate=0.02, "
                        "eval_size=0.25, callbacks__adjust_lr__stop=1e-3")
    p.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                   help="also checkpoint every N epochs, so that even a killed run can be "
                        "resumed (a checkpoint is always written at the end and on Ctrl-C "
                        "or SIGTERM)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its checkpoint, exactly where it "
                        "stopped, with every setting it started with (preset, --set values, "
                        "seed, precision, partial labels, data: a changed data file is "
                        "refused unless --data is given); only --max-epochs, "
                        "--checkpoint-every, --device and --data may change")
    p.add_argument("--partial-labels", action="store_true",
                   help=PARTIAL_LABELS_HELP + "; the net learns from every labelled keypoint "
                        "(recorded in run.json; --resume keeps it)")
    p.add_argument("--init-from", metavar="MODEL_OR_RUN",
                   help="start from the weights of a model file, a run directory or "
                        "'pretrained' (every layer whose shape matches; a table says which; "
                        "its checksum goes into run.json)")
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
    p.add_argument("--batch-size", type=positive_int, metavar="N",
                   help=f"training batch size (default {RECIPE_QUICK_BATCH_SIZE}; with --full "
                        "the presets' 128)")
    p.add_argument("--nets", nargs="+", default=["net4", "net5"], choices=PRESETS,
                   metavar="PRESET", help="presets to train (default: net4 net5)")
    _training_flags(p, default_out="runs/recipe")


def with_batch_size(iterator, batch_size):
    """A copy of a batch iterator (``BatchIterator(128)`` when None) with another batch size.

    Parameters
    ----------
    iterator : facekeypoints.iterators.BatchIterator or None
        A net's ``batch_iterator_train``.
    batch_size : int
        Rows per batch.

    Returns
    -------
    facekeypoints.iterators.BatchIterator
        The copy; the original is unchanged.
    """
    import copy

    from ..iterators import BatchIterator

    copied = copy.deepcopy(iterator) if iterator is not None else BatchIterator(batch_size)
    copied.batch_size = int(batch_size)
    return copied


def add_train_specialists(sub: argparse._SubParsersAction) -> None:
    """Register the ``train-specialists`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    from ..specialist_groups import GROUPS_BY_NAME

    p = add_command(sub, "train-specialists", cmd_train_specialists,
                    "train one specialist net per keypoint group into an ensemble directory",
                    epilog="example:\n  facekeypoints train-specialists net5 --pretrained "
                           "runs/net5 --out runs/specialists")
    p.add_argument("preset", choices=PRESETS, metavar="PRESET", help=PRESET_HELP)
    p.add_argument("--pretrained", metavar="RUN_DIR",
                   help="load every layer but the output from this run's model.pt")
    p.add_argument("--groups", nargs="+", choices=list(GROUPS_BY_NAME), metavar="GROUP",
                   help=f"groups to train (default: all): {', '.join(GROUPS_BY_NAME)}")
    p.add_argument("--max-epochs", type=positive_int, metavar="N",
                   help="epoch budget before scaling by rows (default: the preset's)")
    p.add_argument("--data", metavar="CSV", help=DATA_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="ensemble directory to write")
    p.add_argument("--log", action="append", metavar="KIND:TARGET",
                   help=LOG_HELP.replace("; a resumed run keeps its own", ": one run per "
                                         "specialist, under one parent run"))
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
