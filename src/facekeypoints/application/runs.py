"""Training runs on disk: everything a net leaves in its run directory, put in place as one unit.

:func:`train` is a training run as one call, for the command line and for Python alike:
``fk.runs.train(net, X, y, "runs/net4", checkpoint_every=10)`` opens, checks and locks the
run directory, records the run, trains with checkpoints and signal handling, and puts the
run in place; ``fk.runs.train(net, X, y, "runs/net4", resume=True)`` continues it exactly.
This module is the one owner of run directories; :mod:`facekeypoints._rundir` holds their
file-system side (the lock, the location check, disk-full errors).

A run directory holds ``model.pt`` (safe weights + JSON config), ``history.json`` and
``history.csv``, ``run.json`` (what was asked for: preset, ``--set`` overrides, the data's
absolute path and content hash, seed, status, wall time), ``config.json`` (the net as
configured before training, in the model file's config format plus callbacks and batch
iterators: see ``persist.net_config``), ``learning_curve.png``, ``keypoints.png``,
``checkpoint.pt`` (to resume or extend the run) and ``manifest.json``, written last: the
files of the run in place, with their sizes and SHA-256. Reading runs back is in
:mod:`facekeypoints.reports`.

One process writes a run directory at a time: it holds ``.lock`` (see
:class:`facekeypoints._rundir.RunLock`), and a second writer is refused with a message
naming the first. A training in progress keeps its state apart, in ``.partial/``: the
``run.json`` written when it starts (:func:`start_run`) and its checkpoints, so the run in
place stays whole while another trains over it, and a run killed at any moment can be
resumed on the right data with the right settings.

A finished (or interrupted) run is put in place as one unit by :func:`write_run`:

1. its files are written into a staging folder ``.staging-<hex>``, and its manifest last
   (a kill here leaves the previous run untouched; the staging folder is removed later);
2. the staging folder is renamed ``.commit``: the commit point;
3. its files are renamed into place, files of the previous run that the new one lacks are
   removed, ``.partial`` is removed, the manifest is put in place and ``.commit`` removed.

A kill during step 3 is rolled forward by :func:`settle`, which every writer runs first
under the lock (and which readers may run): once settled, the folder holds the previous run
or the new one, never a mix, and no temporary files or staging folders of killed writers.
Steps 2 and 3 take milliseconds, with Ctrl-C and SIGTERM held back meanwhile.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._rundir import (DiskFullError, RunInUseError, RunLock, disk_errors, make_location,
                      remove_created)
from ._safe_io import atomic_write, save_figure, write_json
from ._signals import deferred
from .data import KEYPOINT_COLUMNS
from .persist import history_records, net_config, save_model
from .plots import plot_learning_curves, plot_predictions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from numpy.typing import ArrayLike

    from .net import NeuralNet

__all__ = ["MANIFEST", "PARTIAL", "RUN_FILES", "RunError", "RunLock", "RunResult", "Stopwatch",
           "checkpoint_path", "data_digest", "discard_unfinished", "open_run", "partial_dir",
           "pending_commit", "read_manifest", "resume_point", "settle", "space_needed", "staged",
           "start_run", "train", "unfinished_run", "write_run"]

#: The files a run directory may hold (the manifest lists those of the run in place).
RUN_FILES = ("model.pt", "history.json", "history.csv", "run.json", "config.json",
             "learning_curve.png", "keypoints.png", "checkpoint.pt")
#: The manifest: written last, it names the files of the run in place.
MANIFEST = "manifest.json"
#: The folder of the training in progress (its ``run.json`` and checkpoints).
PARTIAL = ".partial"
_COMMIT = ".commit"
_STAGING = ".staging-"
_FORMAT = "facekeypoints-run"


def partial_dir(run_dir: str | os.PathLike) -> Path:
    """The folder where the training in progress keeps its ``run.json`` and checkpoints.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory.

    Returns
    -------
    pathlib.Path
        ``run_dir/.partial``.
    """
    return Path(run_dir) / PARTIAL


def read_manifest(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of the run in place.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory.

    Returns
    -------
    dict or None
        ``format``, ``version``, ``run_id`` and ``files`` (``{name: {'bytes': n,
        'sha256': hex}}``); None when there is none (no run, or one written before
        manifests) or it is unreadable.
    """
    manifest = _read_json(Path(run_dir) / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT or \
            not isinstance(manifest.get("files"), dict):
        return None
    return manifest


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pending_commit(run_dir: str | os.PathLike) -> bool:
    """Whether a writer's commit is under way in ``run_dir``, or was cut short by a kill.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory.

    Returns
    -------
    bool
        True while the folder may hold a mix of two runs: :func:`settle` finishes it.
    """
    return (Path(run_dir) / _COMMIT).exists()


def settle(run_dir: str | os.PathLike, wait: float = 10.0) -> bool:
    """Finish or undo what a killed writer left in a run directory.

    Rolls a run killed after its commit point forward into place, and removes staging
    folders and temporary files of killed writers; the state of a training in progress
    (``.partial``) is kept. Writers do this under the lock before anything else; a reader
    may call it before reading. When another process holds the lock, it is its business:
    this only waits (up to ``wait`` seconds) for a commit it is making to end.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory (anything else is left alone).
    wait : float, default 10.0
        Seconds to wait for another process's commit.

    Returns
    -------
    bool
        True when the folder holds one whole run (or none), False when another process's
        commit was still going on after ``wait``.
    """
    out = Path(run_dir)
    if not out.is_dir():
        return True
    try:
        lock = RunLock(out).acquire()
    except RunInUseError:
        deadline = time.monotonic() + wait
        while (out / _COMMIT).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not (out / _COMMIT).exists()
    except OSError:      # a read-only place: nobody can have left anything to finish there
        return not (out / _COMMIT).exists()
    try:
        _settle(out)
    finally:
        lock.release()
    return True


def _settle(out):
    if (out / _COMMIT).is_dir():
        with deferred():
            _roll_forward(out)
    for path in out.glob(_STAGING + "*"):
        shutil.rmtree(path, ignore_errors=True)
    for folder in (out, out / PARTIAL):
        for path in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()


def _roll_forward(out):
    """Step 3 of a commit; safe to repeat after a kill at any point of it."""
    commit = out / _COMMIT
    manifest = _read_json(commit / MANIFEST)
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
        new = [name for name in manifest["files"] if _plain_name(name)]
        old = (read_manifest(out) or {}).get("files", {})
        for name in new:
            with contextlib.suppress(FileNotFoundError):
                os.replace(commit / name, out / name)
        for name in (set(old) | set(RUN_FILES)) - set(new):
            if _plain_name(name):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (out / name).unlink()
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
        os.replace(commit / MANIFEST, out / MANIFEST)
    # No manifest in .commit: it was already put in place, only the folder is left.
    shutil.rmtree(commit, ignore_errors=True)
    _fsync(out)


def _plain_name(name):
    return (isinstance(name, str) and name not in ("", MANIFEST) and not name.startswith(".")
            and os.sep not in name and "/" not in name)


def _fsync(path):
    """Flush a file's or a folder's entry to disk (best effort: not every system can)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def staged(run_dir: str | os.PathLike, run_id: str | None = None) -> Iterator[Path]:
    """Write a run's files into a staging folder; on leaving the block, put them in place.

    The run directory (and missing parents) is created, its lock taken (re-entrant: a
    process that holds it already goes on) and :func:`settle` d. Files written into the
    yielded folder replace the run in place as one unit when the block ends normally (see
    the module's description); when it raises (Ctrl-C included), the staging folder is
    removed and the previous run stays as it was.

    Parameters
    ----------
    run_dir : str or path-like
        The run directory.
    run_id : str, optional
        Recorded in the manifest.

    Yields
    ------
    pathlib.Path
        The staging folder; write plain files (no subfolders) into it.

    Raises
    ------
    facekeypoints._rundir.RunInUseError
        If another process is writing the run directory.
    """
    out = Path(run_dir)
    make_location(out)
    with RunLock(out):
        _settle(out)
        stage = out / f"{_STAGING}{os.urandom(4).hex()}"
        stage.mkdir()
        try:
            yield stage
            files = {}
            for path in sorted(stage.iterdir()):
                if path.is_file() and _plain_name(path.name):
                    _fsync(path)
                    files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
            manifest = {"format": _FORMAT, "version": 1, "run_id": run_id, "files": files,
                        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            with disk_errors(out / MANIFEST):
                atomic_write(stage / MANIFEST, lambda f: f.write(
                    json.dumps(manifest, indent=1) + "\n"), text=True, fsync=True)
            _fsync(stage)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        with deferred():            # the commit point, then renames: no signal in between
            os.rename(stage, out / _COMMIT)
            _fsync(out)
            _roll_forward(out)


def start_run(run_dir: str | os.PathLike, run_info: dict[str, Any]) -> Path:
    """Record a training as it starts: write ``run_info`` as ``.partial/run.json``.

    So a run killed at any moment can be resumed with its settings and data. The run in
    place (if any) is not touched; :func:`write_run` replaces it when the training ends.

    Parameters
    ----------
    run_dir : str or path-like
        The run directory (it must exist; hold its lock).
    run_info : dict
        What the run was asked to do (JSON-safe; other values are written as strings).

    Returns
    -------
    pathlib.Path
        The ``run.json`` written.
    """
    folder = partial_dir(run_dir)
    folder.mkdir(exist_ok=True)
    with disk_errors(folder / "run.json"):
        return write_json(folder / "run.json", run_info, default=str)


def unfinished_run(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """What a training that started in ``run_dir`` and was never put in place asked for.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory.

    Returns
    -------
    dict or None
        Its ``.partial/run.json`` (see :func:`start_run`); None when there is no such
        training, or its record is unreadable.
    """
    info = _read_json(partial_dir(run_dir) / "run.json")
    return info if isinstance(info, dict) else None


def discard_unfinished(run_dir: str | os.PathLike) -> None:
    """Remove the state of a training that started in ``run_dir`` and was never put in place.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory (hold its lock).
    """
    shutil.rmtree(partial_dir(run_dir), ignore_errors=True)


def write_run(net: NeuralNet, out_dir: str | os.PathLike, run_info: dict[str, Any] | None = None,
              X_valid: ArrayLike | None = None, y_valid: ArrayLike | None = None,
              config: dict[str, Any] | None = None,
              checkpoint: str | os.PathLike | None = None, pictures: bool = True) -> Path:
    """Write every artefact of a fitted net to a run directory, replacing the run there as one unit.

    The files are staged and put in place together (see :func:`staged`): a kill at any
    moment leaves the previous run or the new one, never a mix; a failure (a full disk:
    one :class:`~facekeypoints._rundir.DiskFullError` naming the file) leaves the previous
    run as it was.

    Parameters
    ----------
    net : NeuralNet
        A fitted net.
    out_dir : str or path-like
        The run directory (created if needed).
    run_info : dict, optional
        What the run was asked to do, written as ``run.json``.
    X_valid, y_valid : array-like, optional
        Validation faces for ``keypoints.png``: the net's predictions on the first eight,
        drawn over their true keypoints (``y_valid``) when given. Without ``X_valid`` no
        ``keypoints.png`` is written.
    config : dict, optional
        What ``net_config(net, training=True)`` returned before training (default: the net
        as it is now).
    checkpoint : str or path-like, optional
        A checkpoint file of this run, put in place as ``checkpoint.pt`` (hard-linked where
        possible, else copied). Without it the run has no ``checkpoint.pt``.
    pictures : bool, default True
        Draw ``learning_curve.png`` and ``keypoints.png`` (about a second each on a CPU).

    Returns
    -------
    pathlib.Path
        The run directory.

    Raises
    ------
    facekeypoints._rundir.RunInUseError
        If another process is writing the run directory.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> X, y = fk.load()                                          # doctest: +SKIP
    >>> net = fk.presets.net1(max_epochs=2).fit(X, y)             # doctest: +SKIP
    >>> _, (X_valid, y_valid) = net.train_valid_split(X, y)       # doctest: +SKIP
    >>> write_run(net, "runs/net1", {"preset": "net1"}, X_valid, y_valid)  # doctest: +SKIP
    PosixPath('runs/net1')
    """
    import pandas as pd

    out = Path(out_dir)
    info = run_info or {}
    with staged(out, run_id=info.get("run_id")) as stage:
        with disk_errors(out / "model.pt"):
            save_model(net, stage / "model.pt")
        records = history_records(net)
        with disk_errors(out / "history.json"):
            write_json(stage / "history.json", records)
        frame = pd.DataFrame(records)
        with disk_errors(out / "history.csv"):
            atomic_write(stage / "history.csv", lambda f: frame.to_csv(f, index=False),
                         text=True)
        with disk_errors(out / "run.json"):
            write_json(stage / "run.json", info, default=str)
        with disk_errors(out / "config.json"):
            write_json(stage / "config.json", config if config is not None
                       else net_config(net, training=True), default=str)
        if pictures:
            with disk_errors(out / "learning_curve.png"):
                _write_pictures(net, out, stage, X_valid, y_valid)
        if checkpoint is not None:
            with disk_errors(out / "checkpoint.pt"):
                _link_or_copy(Path(checkpoint), stage / "checkpoint.pt")
    return out


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_pictures(net, out, stage, X_valid, y_valid):
    ax = plot_learning_curves(net, title=f"{out.name}: learning curves")
    save_figure(ax.figure, stage / "learning_curve.png", dpi=100, bbox_inches="tight")
    if X_valid is not None and len(X_valid):
        n = min(8, len(X_valid))
        fig = plot_predictions(X_valid[:n], net.predict(X_valid[:n]),
                               None if y_valid is None else y_valid[:n], ncols=4,
                               columns=getattr(net, "columns_", None) or KEYPOINT_COLUMNS,
                               title=f"{out.name}: validation faces")
        save_figure(fig, stage / "keypoints.png", dpi=90)


class Stopwatch:
    """Wall time of a block, for ``run.json``.

    Attributes
    ----------
    seconds : float
        Seconds the ``with`` block took (set when it ends, also on an exception).

    Examples
    --------
    >>> with Stopwatch() as clock:
    ...     pass
    >>> clock.seconds >= 0
    True
    """

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# -- a training run ------------------------------------------------------------------------------

class RunError(ValueError):
    """A run directory that cannot be trained into or resumed; the message says what to do."""


@contextlib.contextmanager
def open_run(run_dir: str | os.PathLike, fresh: bool = True) -> Iterator[Path]:
    """Create, check and lock a run directory for one training, before anything is trained.

    The folder (and missing parents) is created; a path under a regular file, an
    unwritable folder, or one another training holds are one-line errors. What a killed
    writer left is settled (see :func:`settle`); with ``fresh`` the state of an unfinished
    earlier training there is discarded (with a note on stderr when it could have been
    resumed). On leaving, the lock is released, the record of a training that started here
    and wrote no checkpoint is removed, and folders created here that are still empty are
    removed. Re-entrant within one process (:func:`train` opens it again).

    Parameters
    ----------
    run_dir : str or path-like
        The run directory.
    fresh : bool, default True
        True for a new training, False to resume the one there.

    Yields
    ------
    pathlib.Path
        ``run_dir``.

    Raises
    ------
    OSError
        In one line: the folder cannot be created or written
        (:class:`~facekeypoints._rundir.RunInUseError` when another process holds it).
    """
    import sys

    out = Path(run_dir)
    created = make_location(out)
    lock = RunLock(out)
    try:
        lock.acquire()
    except OSError:
        remove_created(created)
        raise
    try:
        settle(out)
        before = unfinished_run(out)
        if fresh and before is not None:
            if (partial_dir(out) / "checkpoint.pt").exists():
                print(f"note: discarding the unfinished {before.get('preset', '')} training "
                      f"started in {out} at {before.get('started', '?')} (it could have been "
                      "continued with --resume)", file=sys.stderr)
            discard_unfinished(out)
            before = None
        yield out
    finally:
        if not (partial_dir(out) / "checkpoint.pt").exists() and \
                (fresh or unfinished_run(out) != before):
            discard_unfinished(out)   # a training begun here that left nothing to resume from
        lock.release()
        remove_created(created)


def data_digest(X: ArrayLike, y: ArrayLike | None) -> str:
    """The content hash ``run.json`` records for the training data.

    Parameters
    ----------
    X, y : array-like
        The training arrays, as ``load2d`` returns them (``y`` may be None).

    Returns
    -------
    str
        ``'sha256:<hex>'`` over the arrays' dtypes, shapes and bytes.

    Examples
    --------
    >>> import numpy as np
    >>> data_digest(np.zeros((2, 3), np.float32), None)[:7]
    'sha256:'
    """
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


#: Bytes a run directory holds besides weights: pictures, config, run.json, manifest, and
#: the archives' own overhead (measured: learning_curve.png + keypoints.png ~ 0.25 MB).
_FIXED_BYTES = 2**19
#: Bytes of history.json + history.csv per epoch (measured: ~0.4 kB; rounded up).
_HISTORY_BYTES_PER_EPOCH = 1024
#: A checkpoint's history keeps every batch's loss and size (~50 bytes each), its archive
#: a few kB of names and offsets.
_CHECKPOINT_BYTES_PER_BATCH = 64
_CHECKPOINT_OVERHEAD = 2**16


def space_needed(net: NeuralNet, resume_from: str | os.PathLike | None = None,
                 rows: int | None = None) -> int:
    """Free bytes a training of ``net`` into a run directory needs at its busiest moment.

    A checkpoint holds the weights, the update rule's state per weight (none for plain SGD,
    one buffer for momentum, two for Adam/AdamW) and a copy of the weights for each callback
    that keeps one (EarlyStopping's best weights). While a checkpoint is replaced the old
    and the new one exist side by side; when the run is put in place, the checkpoint (hard
    linked), ``model.pt`` (the weights), the history and the pictures. A resume replaces
    the checkpoint it continues from when that is the training's own (in ``.partial``).

    Parameters
    ----------
    net : NeuralNet
        The net to train (configured; it need not be initialized).
    resume_from : str or path-like, optional
        The checkpoint a resume continues from.
    rows : int, optional
        Faces it trains on (for the per-batch history a checkpoint keeps).

    Returns
    -------
    int
        Bytes (an estimate; a little above what the run writes at its busiest).
    """
    weights = 4 * _parameter_count(net)
    copies = 1 + _optimizer_slots(net.update) + sum(
        1 for cb in _callbacks_of(net) if callable(getattr(cb, "state_dict", None)))
    epochs = int(net.max_epochs or 0)
    batch_size = getattr(net.batch_iterator_train, "batch_size", None) or 128
    batches = -(-int(rows or 0) // int(batch_size)) + 1       # training + validation
    checkpoint = copies * weights + _CHECKPOINT_OVERHEAD + \
        epochs * (_HISTORY_BYTES_PER_EPOCH + _CHECKPOINT_BYTES_PER_BATCH * batches)
    rest = weights + _FIXED_BYTES + _HISTORY_BYTES_PER_EPOCH * epochs
    if resume_from is not None and Path(resume_from).parent.name == PARTIAL:
        return max(checkpoint, rest)          # the training's own checkpoint is replaced
    return checkpoint + max(checkpoint, rest)


def _parameter_count(net):
    try:
        return net.n_parameters()           # a layers= net is counted without building it
    except AttributeError:                  # a module= net: build it to count
        return sum(p.numel() for p in net.initialize().module_.parameters())


def _callbacks_of(net):
    for item in [*(net.callbacks or []), *(getattr(net, "on_epoch_finished", None) or []),
                 *(getattr(net, "on_training_finished", None) or [])]:
        yield item[1] if isinstance(item, (tuple, list)) and len(item) == 2 else item


def _optimizer_slots(update):
    """State tensors the update rule keeps per weight, found by one step on a tiny tensor."""
    import torch

    weight = torch.nn.Parameter(torch.zeros(3))
    try:
        optimizer = update([weight]) if not isinstance(update, type) else \
            update([weight], lr=0.01)
        weight.grad = torch.ones(3)
        optimizer.step()
        return sum(1 for v in optimizer.state[weight].values()
                   if isinstance(v, torch.Tensor) and v.numel() == 3)
    except Exception:  # noqa: BLE001 - a user's rule that needs more: assume Adam's two
        return 2


def checkpoint_path(run_dir: str | os.PathLike) -> Path | None:
    """Where the checkpoint a resume of ``run_dir`` continues from is, now.

    While a training runs (and after it was killed) its checkpoints are
    ``RUN_DIR/.partial/checkpoint.pt``; when the run is put in place (it ended, or stopped
    on Ctrl-C or SIGTERM) the last one becomes ``RUN_DIR/checkpoint.pt``.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory.

    Returns
    -------
    pathlib.Path or None
        The training's own checkpoint when there is one, else the run's in place; None when
        there is neither.

    Examples
    --------
    >>> checkpoint_path("no/such/run") is None
    True
    """
    for path in (partial_dir(run_dir) / "checkpoint.pt", Path(run_dir) / "checkpoint.pt"):
        if path.is_file():
            return path
    return None


def resume_point(run_dir: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """What the run in ``run_dir`` was started with, and the checkpoint to continue it from.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory.

    Returns
    -------
    info : dict
        Its ``run.json``: the training's own (``.partial``) when it was never put in place,
        else the run's in place.
    checkpoint : pathlib.Path
        The checkpoint to resume from (see :func:`checkpoint_path`).

    Raises
    ------
    RunError
        When there is nothing to resume from, saying what happened and what to do: a
        training killed before its first checkpoint, a run directory without a
        checkpoint, or an unreadable ``run.json``.
    """
    out = Path(run_dir)
    partial = unfinished_run(out)
    in_place = out / "checkpoint.pt"
    committed = _read_json(out / "run.json") if (out / "run.json").exists() else {}
    if not isinstance(committed, dict):
        raise RunError(f"{out / 'run.json'} is not a facekeypoints run.json (not a JSON object)")
    if partial is not None:     # a training that never put its run in place (killed)
        checkpoint = partial_dir(out) / "checkpoint.pt"
        if checkpoint.is_file():
            return partial, checkpoint
        same = partial.get("run_id") and partial.get("run_id") == committed.get("run_id")
        if same and in_place.is_file():
            return partial, in_place
        other = (f" (or remove {partial_dir(out)} to resume the run in place from its "
                 "checkpoint.pt)" if in_place.is_file() else "")
        raise RunError(
            f"the training started in {out} at {partial.get('started', '?')} was killed "
            f"before it wrote its first checkpoint, so there is nothing to resume: start "
            f"it again without --resume{other}, and give --checkpoint-every N "
            "(checkpoint_every=N in Python) so that a killed run can be resumed")
    if not in_place.is_file():
        raise RunError(f"{out} has no checkpoint.pt to resume from (train with "
                       "--checkpoint-every N, or stop with Ctrl-C or SIGTERM, to get one)")
    return committed, in_place


class RunResult:
    """What :func:`train` did: the net, where the run is, and how it ended.

    :func:`train` makes it; each parameter is kept as the attribute of that name.

    Parameters
    ----------
    net : NeuralNet
        The fitted net (its history holds finished epochs only).
    run_dir : pathlib.Path
        The run directory.
    info : dict
        What was written as ``run.json``.
    status : str
        ``'finished'``, or ``'interrupted'`` (stopped on Ctrl-C, SIGTERM or an interrupt
        raised in a callback, after the finished epochs were written).
    signal : int or None
        The signal that stopped the run or arrived while it was written.
    checkpoint : pathlib.Path or None
        The run's checkpoint (``RUN_DIR/checkpoint.pt``), to resume or extend it.
    seconds : float
        Wall time of this training (not counting earlier parts of a resumed run).
    """

    def __init__(self, net, run_dir, info, status, signal, checkpoint, seconds):
        self.net, self.run_dir, self.info = net, Path(run_dir), info
        self.status, self.signal, self.checkpoint = status, signal, checkpoint
        self.seconds = seconds

    @property
    def interrupted(self) -> bool:
        """Whether the run stopped before its planned epochs on an interrupt.

        Returns
        -------
        bool
            ``status == 'interrupted'``.
        """
        return self.status == "interrupted"

    def __repr__(self) -> str:
        return (f"RunResult({str(self.run_dir)!r}, status={self.status!r}, "
                f"epochs={len(self.net.history)})")


def train(net: NeuralNet, X: ArrayLike, y: ArrayLike, run_dir: str | os.PathLike, *,
          resume: bool = False, checkpoint_every: int | None = None,
          record: dict[str, Any] | None = None, new_data_ok: bool = False,
          on_start: Callable[[dict[str, Any]], None] | None = None,
          pictures: bool = True) -> RunResult:
    """Fit ``net`` into a run directory, surviving Ctrl-C, SIGTERM, kills and full disks.

    Before the first epoch the run directory is created, checked (writable, not under a
    file, enough free space: :func:`space_needed`) and locked, and the run is recorded in
    ``RUN_DIR/.partial/run.json`` (data hash, settings, seed, precision). While it trains
    its checkpoints are ``RUN_DIR/.partial/checkpoint.pt`` (every ``checkpoint_every``
    epochs, after the last, and on a signal); the run in place, if any, stays whole. The
    first Ctrl-C or SIGTERM lets the running epoch finish; then (and when training ends)
    the model, history, pictures, ``run.json``, ``config.json`` and the checkpoint are put
    in place together (:func:`write_run`). A second signal stops at once: nothing more is
    written and the interrupt is raised. An interrupt raised any other way (a callback,
    a notebook's stop button) keeps the finished epochs, as the first signal does.

    Parameters
    ----------
    net : NeuralNet
        The configured net (a checkpoint callback is added to it).
    X, y : array-like
        The training data.
    run_dir : str or path-like
        The run directory (created if needed).
    resume : bool, default False
        Continue the run in ``run_dir`` from its checkpoint (:func:`resume_point`), exactly
        where it stopped; ``net.max_epochs`` is its total. ``net`` must be configured as the
        run was: a different precision or seed is refused.
    checkpoint_every : int, optional
        Also checkpoint every N epochs (so that even a killed run can be resumed). None:
        the recorded value on resume, else only at the end and on a signal; 0: never.
    record : dict, optional
        More entries for ``run.json`` (the CLI's preset, ``--set`` values, data path). On
        resume, entries the run recorded and ``record`` lacks are kept.
    new_data_ok : bool, default False
        On resume, accept data whose hash differs from the one recorded.
    on_start : callable, optional
        ``on_start(info)`` once the run is recorded, before the first epoch (``info`` is
        what ``run.json`` holds, plus ``'replacing'``: whether a finished run is there).
    pictures : bool, default True
        Draw ``learning_curve.png`` and ``keypoints.png`` into the run (see
        :func:`write_run`).

    Returns
    -------
    RunResult
        The net, the run directory, ``run.json``'s contents and how the run ended.

    Raises
    ------
    RunError
        On resume: nothing to resume from, or a setting that differs from the run's.
    OSError
        In one line: the run directory cannot be used, or too little space
        (:class:`~facekeypoints._rundir.DiskFullError`, also for a disk that fills up: the
        message says what was kept).
    KeyboardInterrupt
        After a second signal (:class:`~facekeypoints._signals.Terminated` for SIGTERM).

    Examples
    --------
    >>> import facekeypoints as fk
    >>> X, y = fk.load2d()                                              # doctest: +SKIP
    >>> result = fk.runs.train(fk.presets.net1(max_epochs=5), X, y, "runs/net1",
    ...                        checkpoint_every=1)                      # doctest: +SKIP
    >>> result = fk.runs.train(fk.presets.net1(max_epochs=10), X, y, "runs/net1",
    ...                        resume=True)                             # doctest: +SKIP
    >>> result.status, len(result.net.history)                          # doctest: +SKIP
    ('finished', 10)
    """
    import time
    import uuid

    from ._rundir import check_free_space
    from ._signals import StopSignals, active, interruption
    from ._version import __version__
    from .checkpoint import Checkpoint, read_checkpoint
    from .precision import resolve_precision

    out = Path(run_dir)
    record = dict(record or {})
    with contextlib.ExitStack() as stack:
        stop = active() or stack.enter_context(StopSignals())
        stack.enter_context(open_run(out, fresh=not resume))
        device = str(net.resolve_device())
        precision = resolve_precision(net.precision, device)
        carried: dict[str, Any] = {}
        resume_from = None
        if resume:
            recorded, resume_from = resume_point(out)
            done = read_checkpoint(resume_from)["epoch"]
            _check_resumable(out, recorded, net, precision, done)
            carried = {k: v for k, v in recorded.items() if k not in _PER_TRAINING}
            carried["resumed"] = int(recorded.get("resumed", 0) or 0) + 1
            carried["seconds"] = float(recorded.get("seconds", 0) or 0) \
                if resume_from.parent != partial_dir(out) else 0.0
            if checkpoint_every is None:
                checkpoint_every = recorded.get("checkpoint_every")
        what = f"a {record['preset']} run" if record.get("preset") else "this run"
        check_free_space(out, space_needed(net, resume_from, rows=len(X)), what)
        digest = data_digest(X, y)
        if resume and carried.get("data_sha256") not in (None, digest) and not new_data_ok:
            raise RunError(f"the data of the run in {out} changed since it started (content "
                           f"{carried['data_sha256'][7:19]} then, {digest[7:19]} now), so "
                           "resuming would not continue the same run")
        every = int(checkpoint_every or 0)
        prior_seconds = float(carried.pop("seconds", 0) or 0)
        info = {"run_id": uuid.uuid4().hex[:12], "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                **carried, **record, "max_epochs": int(net.max_epochs), "rows": len(X),
                "device": device, "precision": precision, "seed": net.random_state,
                "checkpoint_every": every or None, "data_sha256": digest,
                "facekeypoints": __version__, "status": "training"}
        start_run(out, info)
        checkpoint = partial_dir(out) / "checkpoint.pt"
        net.callbacks = [*(net.callbacks or []), ("checkpoint", Checkpoint(
            checkpoint, every=every, handle_sigint=True, handle_sigterm=True))]
        if on_start is not None:
            on_start({**info, "replacing": not resume and (out / "model.pt").exists()})
        config = net_config(net, training=True)
        stop.graceful = True          # the first signal finishes the epoch, a second insists
        stop.notice = "finishing this epoch, then writing a checkpoint"
        with Stopwatch() as clock:
            try:
                net.fit(X, y, resume=resume_from)
            except DiskFullError as exc:
                kept = (f"; the checkpoint of epoch {read_checkpoint(checkpoint)['epoch']} is "
                        f"kept in {checkpoint}: free some space, then resume"
                        if checkpoint.exists() else "")
                raise DiskFullError(errno.ENOSPC, f"{exc}{kept}") from None
        if stop.aborted:              # a second signal: stop at once, write nothing more
            raise interruption(stop.received[-1])
        stop.notice = "finishing writing the run"
        interrupted = bool(getattr(net, "interrupted_", False))
        _, (X_valid, y_valid) = net.train_valid_split(X, y)
        info.update(seconds=round(prior_seconds + clock.seconds, 1),
                    epochs_run=len(net.history),
                    status="interrupted" if interrupted else "finished",
                    ended=time.strftime("%Y-%m-%d %H:%M:%S"))
        try:
            write_run(net, out, info, X_valid, y_valid, config=config,
                      checkpoint=checkpoint if checkpoint.exists() else None,
                      pictures=pictures)
        except DiskFullError as exc:
            kept = (f", and the checkpoint in {checkpoint}: free some space, then resume"
                    if checkpoint.exists() else "")
            raise DiskFullError(errno.ENOSPC, f"{exc}; {out} keeps what it held before"
                                f"{kept}") from None
        placed = out / "checkpoint.pt"
        return RunResult(net, out, info, info["status"], stop.requested,
                         placed if placed.exists() else None, clock.seconds)


#: ``run.json`` entries that describe one training, not the run: not carried over on resume.
_PER_TRAINING = ("status", "ended", "epochs_run", "facekeypoints", "checkpoint_every")


def _check_resumable(out, recorded, net, precision, done):
    """Refuse a resume whose net differs from the run's in what makes it the same run."""
    was = recorded.get("precision")
    if was is not None and str(was) != precision:
        raise RunError(f"the run in {out} was started with precision {was}, and this net "
                       f"trains in {precision}: a resumed run keeps its precision (CLI: "
                       f"leave out --precision; Python: precision={str(was)!r})")
    seed = recorded.get("seed")
    if "seed" in recorded and seed != net.random_state:
        raise RunError(f"the run in {out} was started with seed {seed}, and this net has "
                       f"random_state={net.random_state!r}: a resumed run keeps its seed")
    if net.max_epochs <= done:
        raise RunError(f"the run in {out} has already trained {done} epochs; max_epochs "
                       f"counts all of its epochs, so give more than {done} to train it "
                       "further")
