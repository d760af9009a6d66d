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
    """Create, check and lock a run directory for one training, before anything is trained.

    The folder (and missing parents) is created; a path under a regular file, an
    unwritable folder, or one another training holds are one-line errors. What a killed
    writer left is settled (see :func:`facekeypoints.runs.settle`); with ``fresh`` the state
    of an unfinished earlier training there is discarded (with a note). On leaving, the lock
    is released, an unfinished training that wrote no checkpoint is removed, and folders
    created here that are still empty are removed. Re-entrant within one process.

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
    from .._rundir import RunInUseError, RunLock, make_location, remove_created
    from ..runs import discard_unfinished, partial_dir, settle, unfinished_run

    out = Path(out_dir)
    try:
        created = make_location(out)
    except OSError as exc:
        raise CLIError(one_line(exc)) from None
    lock = RunLock(out)
    try:
        lock.acquire()
    except (RunInUseError, OSError) as exc:
        remove_created(created)
        raise CLIError(one_line(exc)) from None
    try:
        settle(out)
        old = unfinished_run(out)
        if fresh and old is not None:
            if (partial_dir(out) / "checkpoint.pt").exists():
                print(f"note: discarding the unfinished {old.get('preset', '')} training "
                      f"started in {out} at {old.get('started', '?')} (it could have been "
                      "continued with --resume)", file=sys.stderr)
            discard_unfinished(out)
        yield out
    finally:
        if not (partial_dir(out) / "checkpoint.pt").exists():
            discard_unfinished(out)   # a training that left nothing to resume from
        lock.release()
        remove_created(created)


def data_digest(X: np.ndarray, y: np.ndarray | None) -> str:
    """The content hash ``run.json`` records for the training data.

    Parameters
    ----------
    X, y : numpy.ndarray
        The training arrays, as ``load2d`` returns them.

    Returns
    -------
    str
        ``'sha256:<hex>'`` over the arrays' dtypes, shapes and bytes.
    """
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for a in (X, y):
        if a is None:
            h.update(b"None")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8).data)
    return "sha256:" + h.hexdigest()


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


#: Bytes a run needs per learnable parameter (float32 weights in model.pt, the checkpoint
#: with momentum and early-stopping weights, and a second checkpoint while one is replaced).
_BYTES_PER_PARAMETER = 4 * 8
_PICTURES_BYTES = 16 * 2**20


def train_one(name: str, X: np.ndarray, y: np.ndarray, args: argparse.Namespace,
              out_dir: str | os.PathLike, max_epochs: int | None,
              sets: dict[str, Any] | None = None, net: NeuralNet | None = None,
              resume: str | os.PathLike | None = None,
              run_info: dict[str, Any] | None = None) -> NeuralNet:
    """Fit one net into a run directory, surviving Ctrl-C, SIGTERM, kills and full disks.

    Before the first epoch the run directory is created, checked (writable, not under a
    file, enough free space for the net) and locked, and the run is recorded in
    ``RUN_DIR/.partial/run.json`` (absolute data path, data hash, preset, settings, seed).
    Checkpoints go to ``RUN_DIR/.partial/checkpoint.pt`` (every ``--checkpoint-every``
    epochs, after the last, and on a signal). The first Ctrl-C or SIGTERM lets the running
    epoch finish; the run is then put in place as one unit (see
    :func:`facekeypoints.runs.write_run`), the resume command printed, and the interrupt
    re-raised. A second signal stops at once and writes nothing more.

    Parameters
    ----------
    name : str
        The preset's name (recorded in ``run.json`` and printed).
    X, y : numpy.ndarray
        The training data.
    args : argparse.Namespace
        The command line (``data``, ``checkpoint_every``, ``partial_labels`` when present;
        ``device`` and ``seed`` when the net is made here).
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
    run_info : dict, optional
        Entries for ``run.json`` that a resumed run carries over (``run_id``, ``started``,
        ``data_sha256``, ...).

    Returns
    -------
    NeuralNet
        The fitted net.

    Raises
    ------
    CLIError
        For a run directory that cannot be used, too little free space, a full disk, or a
        TypeError while fitting (usually a ``--set`` value of the wrong type).
    KeyboardInterrupt
        After Ctrl-C (:class:`facekeypoints._signals.Terminated` after SIGTERM), once the
        finished epochs and the checkpoint are written.
    """
    import time
    import uuid

    from .._rundir import DiskFullError, check_free_space
    from .._signals import StopSignals, active, interruption, signal_name
    from .._version import __version__
    from ..checkpoint import Checkpoint
    from ..losses import is_mse
    from ..metrics import rmse_px
    from ..persist import net_config
    from ..runs import Stopwatch, partial_dir, start_run, write_run

    net = net if net is not None else make_net(name, max_epochs, args, sets)
    out_dir = Path(out_dir)
    hint = " (check the --set values)" if sets else ""
    with contextlib.ExitStack() as stack:
        stop = active() or stack.enter_context(StopSignals())
        stack.enter_context(run_directory(out_dir, fresh=resume is None))
        try:
            n_params = net.n_parameters()       # a layers= net is counted without building it
        except AttributeError:                  # a module= net: build it to count
            n_params = sum(p.numel() for p in net.initialize().module_.parameters())
        except (TypeError, ValueError) as exc:  # a --set value the layers cannot take
            raise CLIError(f"{one_line(exc)}{hint}") from None
        try:
            check_free_space(out_dir, _BYTES_PER_PARAMETER * n_params
                             + _PICTURES_BYTES, f"a {name} run")
        except DiskFullError as exc:
            raise CLIError(str(exc)) from None
        every = getattr(args, "checkpoint_every", None) or 0
        carried = dict(run_info or {})
        prior_seconds = float(carried.pop("seconds", 0) or 0)
        info = {"preset": name, "max_epochs": int(net.max_epochs), "set": sets or {},
                "data": data_label(args.data), "rows": len(X), "device": str(net.resolve_device()),
                "precision": resolve_precision(net.precision, net.resolve_device()),
                "seed": net.random_state, "checkpoint_every": every or None,
                "partial_labels": bool(getattr(args, "partial_labels", False)),
                "run_id": uuid.uuid4().hex[:12], "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "facekeypoints": __version__, **carried, "status": "training"}
        info.setdefault("data_sha256", None)
        if info["data_sha256"] is None:
            info["data_sha256"] = data_digest(X, y)
        start_run(out_dir, info)
        checkpoint = partial_dir(out_dir) / "checkpoint.pt"
        net.callbacks = list(net.callbacks or []) + [
            ("checkpoint", Checkpoint(checkpoint, every=every, handle_sigint=True,
                                      handle_sigterm=True))]
        again = (" (resuming)" if resume else
                 " (replacing the run there)" if (out_dir / "model.pt").exists() else "")
        print(f"\n=== {name}: {net.max_epochs} epochs on {len(X)} faces "
              f"({data_name(args.data)}) -> {out_dir}{again}, precision "
              f"{info['precision']} ===", flush=True)
        if info["partial_labels"]:
            print(f"partial labels: {label_summary(y)}; the validation split is over all "
                  "of them", flush=True)
        config = net_config(net, training=True)
        resume_hint = f"Continue with: facekeypoints train {name} --resume {out_dir}"
        stop.graceful = True          # the first signal finishes the epoch, a second insists
        stop.notice = "finishing this epoch, then writing a checkpoint"
        with Stopwatch() as clock:
            try:
                net.fit(X, y, resume=resume)
            except TypeError as exc:   # usually a --set value of the wrong type
                raise CLIError(f"{one_line(exc)}{hint}") from None
            except DiskFullError as exc:
                kept = (f"; the checkpoint of an earlier epoch is kept. Free some space. "
                        f"{resume_hint}" if checkpoint.exists() else "")
                raise CLIError(f"{exc}{kept}") from None
        if stop.aborted:              # a second signal: stop at once, write nothing more
            kept = (f"; the last checkpoint is in {partial_dir(out_dir)}/. {resume_hint}"
                    if checkpoint.exists() else "")
            print(f"stopped at once after {signal_name(stop.received[-1])}: {out_dir} keeps "
                  f"what it held before{kept}", file=sys.stderr, flush=True)
            raise interruption(stop.received[-1])
        stop.notice = "finishing writing the run"
        # skorch ends fit quietly on an interrupt, leaving the unfinished epoch's entry: drop
        # it, write the finished epochs, then report the interrupt instead of going on.
        unfinished = len(net.history) > 0 and "train_loss" not in net.history[-1]
        if unfinished:
            net.history.pop()
        interrupted = getattr(net, "interrupted_", False) or unfinished
        _, (X_valid, y_valid) = net.train_valid_split(X, y)
        info.update(seconds=round(prior_seconds + clock.seconds, 1),
                    epochs_run=len(net.history),
                    status="interrupted" if interrupted else "finished",
                    ended=time.strftime("%Y-%m-%d %H:%M:%S"))
        try:
            write_run(net, out_dir, info, X_valid, y_valid, config=config,
                      checkpoint=checkpoint if checkpoint.exists() else None)
        except DiskFullError as exc:
            raise CLIError(f"{exc}; {out_dir} keeps what it held before"
                           + (f", and the checkpoint. {resume_hint}"
                              if checkpoint.exists() else "")) from None
        valid = [(h["valid_loss"], h["epoch"]) for h in net.history if "valid_loss" in h]
        best = (f"; best valid RMSE {rmse_px(min(valid)[0]):.2f} px at epoch {min(valid)[1]}"
                if valid and is_mse(net.criterion) else
                f"; best valid loss {min(valid)[0]:.6f} ({type(net.criterion_).__name__}) at "
                f"epoch {min(valid)[1]}" if valid else "")
        print(f"{name}: {len(net.history)} epochs in {clock.seconds:.0f} s{best}")
        print(f"wrote {out_dir}/ (model.pt, history.json/csv, run.json, config.json, "
              "learning_curve.png, keypoints.png, checkpoint.pt)", flush=True)
        if interrupted or stop.received:
            signum = stop.requested
            what = signal_name(signum) if signum else "an interrupt"
            if interrupted:
                print(f"interrupted after epoch {len(net.history)} ({what}); the checkpoint is "
                      f"in {out_dir}/. {resume_hint}", file=sys.stderr, flush=True)
            else:
                print(f"{what} while writing the run: all {len(net.history)} epochs were "
                      f"done and {out_dir} is complete", file=sys.stderr, flush=True)
            raise interruption(signum) if signum else KeyboardInterrupt
    return net


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
        recorded_partial = bool(plan["info"].get("partial_labels"))
        if args.partial_labels and not recorded_partial:
            raise CLIError(f"--partial-labels: the run in {out} trained on complete faces only, "
                           "and a resumed run keeps its data; leave out --partial-labels")
        args.partial_labels = recorded_partial
        net = make_net(args.preset, plan["epochs"], args, plan["sets"])
        X, y = load_training_data(args.data, dropna=not args.partial_labels)
        digest = data_digest(X, y)
        recorded = plan["info"].get("data_sha256")
        if recorded and recorded != digest:
            was = plan["info"].get("data", "?")
            if not plan["explicit_data"]:
                raise CLIError(
                    f"the data of the run in {out} changed since it started ({was}: content "
                    f"{recorded[7:19]} then, {digest[7:19]} now), so resuming would not "
                    f"continue the same run; pass --data {args.data or 'CSV'} to resume on it "
                    "anyway")
            plan["notes"].append(f"note: --data {args.data} differs from the data the run "
                                 f"started on ({was}); resuming on it as asked")
        for note in plan["notes"]:
            print(note, file=sys.stderr)
        train_one(args.preset, X, y, args, out, plan["epochs"], plan["sets"], net=net,
                  resume=plan["checkpoint"], run_info={**plan["carried"], "data_sha256": digest})


def _resume_plan(args, sets, out):
    """What the run in ``out`` was asked for, and where its checkpoint is, to continue it
    exactly; ``--max-epochs`` sets the new total."""
    from ..checkpoint import read_checkpoint
    from ..reports import read_run_info
    from ..runs import partial_dir, unfinished_run

    try:
        committed = read_run_info(out)
    except ValueError as exc:
        raise CLIError(one_line(exc)) from None
    partial = unfinished_run(out)
    in_place = out / "checkpoint.pt"
    if partial is not None:      # a training that never put its run in place (killed)
        info, checkpoint = partial, partial_dir(out) / "checkpoint.pt"
        if not checkpoint.exists():
            same = partial.get("run_id") and partial.get("run_id") == committed.get("run_id")
            if not (same and in_place.exists()):
                other = (f", or remove {partial_dir(out)} to resume the run in place"
                         if in_place.exists() else "")
                raise CLIError(
                    f"the training started in {out} at {partial.get('started', '?')} was "
                    "killed before its first checkpoint, so there is nothing to resume (train "
                    f"with --checkpoint-every N to be able to); train again{other}")
            checkpoint = in_place
    else:
        info, checkpoint = committed, in_place
        if not checkpoint.exists():
            raise CLIError(f"{out} has no checkpoint.pt to resume from (train with "
                           "--checkpoint-every N, or stop with Ctrl-C or SIGTERM, to get one)")
    if info.get("preset", args.preset) != args.preset:
        raise CLIError(f"{out} is a {info['preset']} run, not {args.preset}")
    done = read_checkpoint(checkpoint)["epoch"]    # a damaged file: one line, exit 2
    notes = []
    planned = info.get("max_epochs")
    asked = sets.pop("max_epochs", None) or args.max_epochs
    merged = {**info.get("set", {}), **sets}
    merged.pop("max_epochs", None)
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
    elif planned is not None and done >= planned and partial is None or \
            info.get("status") == "finished":
        early = " (it stopped early)" if planned is not None and done < planned else ""
        raise CLIError(f"the run in {out} has finished: {done} of {planned} epochs{early}; "
                       f"pass --max-epochs N with N > {done} to train it further")
    else:
        epochs = planned
    recorded_seed = info.get("seed")
    if args.seed is None:
        args.seed = recorded_seed if recorded_seed is not None else 0
    elif recorded_seed is not None and args.seed != recorded_seed:
        raise CLIError(f"--seed {args.seed}: the run in {out} was started with seed "
                       f"{recorded_seed}, and a resumed run keeps its seed (leave out --seed)")
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
    carried = {k: info[k] for k in ("run_id", "started", "data_sha256") if k in info}
    carried["resumed"] = int(info.get("resumed", 0) or 0) + 1
    if partial is None and info.get("seconds"):
        carried["seconds"] = info["seconds"]
    return {"sets": merged, "epochs": epochs, "checkpoint": checkpoint, "info": info,
            "carried": carried, "explicit_data": explicit, "notes": notes}


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
                        "stopped (same preset, settings, seed and data: a changed data file "
                        "is refused unless --data is given)")
    p.add_argument("--partial-labels", action="store_true",
                   help=PARTIAL_LABELS_HELP + "; the net learns from every labelled keypoint "
                        "(recorded in run.json; --resume keeps it)")
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
    from ..specialists import GROUPS_BY_NAME

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
