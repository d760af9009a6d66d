"""Training runs on disk: everything a net leaves in its run directory, put in place as one unit.

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
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._rundir import RunInUseError, RunLock, disk_errors, make_location
from ._safe_io import atomic_write, save_figure, write_json
from ._signals import deferred
from .data import KEYPOINT_COLUMNS
from .persist import history_records, net_config, save_model
from .plots import plot_learning_curves, plot_predictions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import ArrayLike

    from .net import NeuralNet

__all__ = ["MANIFEST", "PARTIAL", "RUN_FILES", "RunLock", "Stopwatch", "discard_unfinished",
           "partial_dir", "pending_commit", "read_manifest", "settle", "staged", "start_run",
           "unfinished_run", "write_run"]

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
              checkpoint: str | os.PathLike | None = None) -> Path:
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
