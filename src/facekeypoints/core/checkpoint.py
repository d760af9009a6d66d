"""Checkpoints that let a killed run continue exactly where it stopped.

A checkpoint holds the weights, the optimizer state (momentum buffers), the ``update_*``
hyperparameter values, the state of callbacks that keep some (EarlyStopping's best weights),
the history and the random generator states (dropout and batch flips). It is written
atomically (temporary file, then rename), so the previous good checkpoint survives a crash
mid-write, and it is read with ``torch.load(weights_only=True)``, which cannot run code.

On the same machine and seed, ``net.fit(X, y, resume=path)`` after a kill ends with the same
weights, bit for bit, and the same history as an uninterrupted run.

Examples
--------
Train two epochs with a :class:`Checkpoint` (as if the run were killed there), then resume
to four; the result equals an uninterrupted four-epoch run:

>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> from facekeypoints import NeuralNet
>>> from facekeypoints.checkpoint import Checkpoint
>>> from facekeypoints.layers import DenseLayer, InputLayer
>>> def make(max_epochs, **kwargs):
...     return NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
...                      input_shape=(None, 4), output_num_units=2, output_nonlinearity=None,
...                      max_epochs=max_epochs, random_state=0, device='cpu', **kwargs)
>>> X = np.random.default_rng(0).random((10, 4), dtype=np.float32)
>>> y = X[:, :2] - 0.5
>>> with tempfile.TemporaryDirectory() as folder:
...     path = Path(folder) / 'checkpoint.pt'
...     _ = make(2, callbacks=[Checkpoint(path)]).fit(X, y)
...     resumed = make(4).fit(X, y, resume=path)
>>> uninterrupted = make(4).fit(X, y)
>>> len(resumed.history), np.array_equal(resumed.predict(X), uninterrupted.predict(X))
(4, True)
"""
from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from skorch.callbacks import Callback
from skorch.history import History

from ._rundir import disk_errors
from ._safe_io import atomic_torch_save, load_archive, seal
from ._signals import StopSignals
from ._signals import active as active_stop_signals
from .callbacks import ConstructorParams
from .shared import float32, is_shared
from .updates import IMPLEMENTATION_FLAGS

if TYPE_CHECKING:
    import os

    # The net's base class: net imports this module (for fit's resume=), so importing .net
    # here, even for type checking only, would make an import cycle.
    from skorch import NeuralNet

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "drop_unfinished_epoch",
           "read_checkpoint", "restore_checkpoint", "save_checkpoint"]

#: The ``format`` field of every checkpoint file.
FORMAT = "facekeypoints-checkpoint"
#: The checkpoint format version this release writes (and the newest it reads). Version 2
#: added the ``checksum``; version 1 checkpoints (without one) are still read.
VERSION = 2
_SEALED_SINCE = 2


class CheckpointError(ValueError):
    """Raised when a checkpoint file is missing, damaged, or does not belong to this net.

    A subclass of ``ValueError``. Files holding anything but tensors and plain data are
    refused with this error, never unpickled.
    """


class Checkpoint(ConstructorParams, Callback):
    """Write a checkpoint every ``every`` epochs, and when training ends, to ``path``.

    A skorch callback: pass it in the net's ``callbacks``. Each write replaces the previous
    checkpoint atomically; ``net.fit(X, y, resume=path)`` continues from it. An epoch cut
    short by an exception is never checkpointed; a full disk raises one
    ``OSError`` (ENOSPC) naming ``path``, and the previous checkpoint stays.

    With ``handle_sigint`` (Ctrl-C) and ``handle_sigterm`` (what SLURM, Kubernetes and
    systemd send) the first such signal lets the running epoch finish, writes a checkpoint
    and stops training: ``net.interrupted_`` is then True and ``signal_`` the signal. A
    second signal interrupts at once (``KeyboardInterrupt``, which skorch's fit loop
    swallows) and nothing more is written. When the caller already catches the signals
    with an active ``facekeypoints._signals.StopSignals`` (the command line does, to cover
    its own writes too), the callback polls that one instead of installing handlers.

    Parameters
    ----------
    path : str or path-like, default 'checkpoint.pt'
        The checkpoint file to write; missing folders are created.
    every : int, default 1
        Write after every ``every``-th epoch (by the epoch count in the history). 0 or None
        writes only when training ends.
    handle_sigint : bool, default False
        Catch Ctrl-C (SIGINT) while training, as described above; only in the main thread.
        The previous handler is restored when training ends.
    handle_sigterm : bool, default False
        Catch SIGTERM the same way.

    Attributes
    ----------
    signal_ : int or None
        The signal that stopped the last training (``signal.SIGINT`` or ``SIGTERM``).
    saved_epoch_ : int or None
        The epoch count of the last checkpoint this callback wrote.

    See Also
    --------
    facekeypoints.NeuralNet.fit : Continue a run with ``resume=path``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from facekeypoints import NeuralNet
    >>> from facekeypoints.checkpoint import Checkpoint, read_checkpoint
    >>> from facekeypoints.layers import DenseLayer, InputLayer
    >>> X = np.random.default_rng(0).random((10, 4), dtype=np.float32)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / 'checkpoint.pt'
    ...     net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
    ...                     input_shape=(None, 4), output_num_units=2, max_epochs=3,
    ...                     callbacks=[Checkpoint(path, every=2)], random_state=0,
    ...                     device='cpu').fit(X, X[:, :2])
    ...     print(read_checkpoint(path)['epoch'])
    3
    """

    def __init__(self, path: str | os.PathLike[str] = "checkpoint.pt", every: int | None = 1,
                 handle_sigint: bool = False, handle_sigterm: bool = False) -> None:
        self.path = path
        self.every = every
        self.handle_sigint = handle_sigint
        self.handle_sigterm = handle_sigterm

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        """Reset the interruption flags and start catching the signals asked for."""
        net.interrupted_ = False
        self.signal_ = None
        self.saved_epoch_ = None
        self._stop, self._owned = None, False
        wanted = {s for s, on in ((signal.SIGINT, self.handle_sigint),
                                  (signal.SIGTERM, self.handle_sigterm)) if on}
        if not wanted:
            return
        outer = active_stop_signals()
        if outer is not None and wanted <= set(outer.signals):
            self._stop = outer          # the caller's (the CLI's): it stays graceful after fit
            outer.graceful = True
        elif threading.current_thread() is threading.main_thread():
            self._stop = StopSignals(tuple(sorted(wanted)), graceful=True).__enter__()
            self._owned = True
        if self._stop is not None:
            self._stop.notice = "finishing this epoch, then writing a checkpoint"

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Checkpoint every ``every`` epochs, after the last, or after a signal (then stop)."""
        epoch = len(net.history)
        requested = self._stop is not None and bool(self._stop.received)
        if requested or epoch >= net.max_epochs or (self.every and epoch % int(self.every) == 0):
            self._save(net)
        if requested:
            net.interrupted_ = True
            self.signal_ = self._stop.requested
            raise KeyboardInterrupt  # skorch ends the fit loop and runs on_train_end

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Stop catching signals; checkpoint the last complete epoch unless told to stop at once."""
        stop, aborted = self._stop, self._stop is not None and self._stop.aborted
        if self._owned:
            stop.__exit__(None, None, None)
        self._stop, self._owned = None, False
        if aborted:              # a second signal: no more writes
            net.interrupted_ = True
            self.signal_ = stop.requested
            return
        epoch = len(net.history)
        if epoch and epoch != self.saved_epoch_ and _epoch_complete(net.history[-1]):
            self._save(net)

    def _save(self, net):
        with disk_errors(self.path):
            save_checkpoint(net, self.path)
        self.saved_epoch_ = len(net.history)


def _restore_best_scores(net):
    """Scoring callbacks (skorch's ``PassthroughScoring`` behind ``valid_loss_best``) keep the
    best score so far in ``best_score_``; take it up from the restored history, so a resumed
    run marks the same epochs best as an uninterrupted one."""
    for _, cb in getattr(net, "callbacks_", []):
        name = getattr(cb, "name_", None) or getattr(cb, "name", None)
        lower = getattr(cb, "lower_is_better", None)
        if not hasattr(cb, "best_score_") or not isinstance(name, str) or lower is None:
            continue
        scores = [h[name] for h in net.history if h.get(name) is not None]
        if scores:
            cb.best_score_ = min(scores) if lower else max(scores)


def _epoch_complete(entry):
    """An epoch cut short by an exception lacks its closing entries; never checkpoint that."""
    return "dur" in entry and "train_loss" in entry


def drop_unfinished_epoch(history: list[dict[str, Any]]) -> bool:
    """Remove the last epoch of ``history`` if an interrupt cut it short.

    skorch's ``fit`` ends quietly on ``KeyboardInterrupt`` and leaves the entry of the epoch
    it was in, without its losses; :class:`facekeypoints.NeuralNet` calls this on every
    interrupt (Ctrl-C in a notebook included), so the history, the files written from it
    and a checkpoint taken afterwards hold finished epochs only.

    Parameters
    ----------
    history : skorch.history.History or list of dict
        A net's history, changed in place.

    Returns
    -------
    bool
        Whether an entry was removed.

    Examples
    --------
    >>> history = [{"epoch": 1, "train_loss": 0.1, "dur": 1.0}, {"epoch": 2, "batches": []}]
    >>> drop_unfinished_epoch(history), [h["epoch"] for h in history]
    (True, [1])
    """
    if len(history) and not _epoch_complete(history[-1]):
        history.pop()
        return True
    return False


def _callback_states(net):
    states = {}
    for name, cb in _stateful_callbacks(net):
        states[name] = cb.state_dict()
    return states


def _stateful_callbacks(net):
    for name, cb in getattr(net, "callbacks_", []):
        if callable(getattr(cb, "state_dict", None)):
            yield name, cb
        for i, inner in enumerate(getattr(cb, "callback_objects", lambda: [])()):
            if callable(getattr(inner, "state_dict", None)):
                yield f"{name}.{i}", inner


def _history_json(net):
    return json.dumps(list(net.history), default=float)


def save_checkpoint(net: NeuralNet, path: str | os.PathLike[str]) -> Path:
    """Write ``net``'s full training state to ``path`` atomically.

    The state is the weights, the optimizer state, the ``update_*`` values, the state of
    callbacks that keep some (``state_dict``/``load_state_dict``), the history and the
    random generator states; tensors are moved to the CPU. A SHA-256 checksum of all of it
    is stored alongside and verified by :func:`read_checkpoint`. The :class:`Checkpoint`
    callback calls this; call it directly to checkpoint at another time.

    Parameters
    ----------
    net : facekeypoints.NeuralNet
        An initialized net.
    path : str or path-like
        The file to write; missing folders are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    rng = net.rng_state()
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": len(net.history),
        "module": {k: v.detach().cpu() for k, v in net.module_.state_dict().items()},
        "optimizer": _to_cpu(net.optimizer_.state_dict()),
        "hyperparameters": json.dumps(net.hyperparameter_values()),
        "callbacks": _to_cpu(_callback_states(net)),
        "history": _history_json(net),
        "rng": rng,
    }
    return atomic_torch_save(seal(payload), path)


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a checkpoint file's contents; never unpickles.

    Parameters
    ----------
    path : str or path-like
        A checkpoint file, or a folder (such as a run directory) holding ``checkpoint.pt``.

    Returns
    -------
    dict
        ``format``, ``version``, ``epoch`` (epochs finished), ``module`` and ``optimizer``
        (state dicts), ``hyperparameters`` and ``history`` (JSON text), ``callbacks``
        (their state dicts by name) and ``rng`` (generator states).

    Raises
    ------
    CheckpointError
        If there is no checkpoint at ``path``, or the file is not a valid checkpoint: it is
        damaged (unreadable, or its contents do not match the checksum written with it),
        holds anything but tensors and plain data (never unpickled), comes from a newer
        format version or PyTorch, or its fields are not what :func:`save_checkpoint`
        writes. The message names the file. Checkpoints from before checksums (format
        version 1) are read without one, with the other checks.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train with a Checkpoint callback "
                              "(CLI: --checkpoint-every N) to be able to resume")
    payload = load_archive(path, FORMAT, CheckpointError, "checkpoint", newest=VERSION,
                           sealed_since=_SEALED_SINCE)
    problem = _payload_problem(payload)
    if problem:
        raise CheckpointError(f"{path} is not a valid facekeypoints checkpoint: {problem}")
    return payload


def _one_line(exc):
    return " ".join(str(exc).split())


def _payload_problem(payload):
    """What is wrong with a checkpoint's fields (None if nothing): checked before any of
    them reaches the net."""
    def tensors(d):
        return isinstance(d, dict) and all(isinstance(v, torch.Tensor) for v in d.values())

    def byte_state(t):
        return t is None or (isinstance(t, torch.Tensor) and t.dtype == torch.uint8
                             and t.dim() == 1)

    epoch = payload.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        return f"its epoch count is {epoch!r}"
    if not tensors(payload.get("module")):
        return "its weights are not a dict of tensors"
    optimizer = payload.get("optimizer")
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        return "its optimizer state is not an optimizer's state_dict"
    if not isinstance(payload.get("callbacks"), dict):
        return "its callback states are not a dict"
    try:
        hyper = json.loads(payload["hyperparameters"])
        history = json.loads(payload["history"])
    except (KeyError, TypeError, ValueError, RecursionError):
        return "its hyperparameters or history are not JSON text"
    if not isinstance(hyper, dict) or not all(
            isinstance(k, str) and k.startswith("update_") and not k.endswith("_")
            and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in hyper.items()):
        return "its hyperparameters are not update_<name>: number"
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        return "its history is not a list of per-epoch records"
    rng = payload.get("rng")
    if rng is not None and not (
            isinstance(rng, dict) and set(rng) <= {"torch", "cuda", "batches"}
            and all(byte_state(v) for v in rng.values())
            and (rng.get("torch") is None
                 or rng["torch"].numel() == torch.get_rng_state().numel())):
        return "its random generator states are not generator states"
    return None


def restore_checkpoint(net: NeuralNet, path: str | os.PathLike[str]) -> int:
    """Load a checkpoint's state into an initialized ``net`` (called by ``fit(resume=...)``).

    Restores the weights, the optimizer state (keeping this machine's choice of kernels),
    the ``update_*`` values (a shared variable is updated with ``set_value``, a plain value
    replaced), the state of callbacks that keep some, the history and the random generator
    states. It does not train; ``net.partial_fit`` or ``fit(resume=...)`` continues.

    Parameters
    ----------
    net : facekeypoints.NeuralNet
        An initialized net with the checkpoint's architecture and callbacks.
    path : str or path-like
        A checkpoint file, or a folder holding ``checkpoint.pt``.

    Returns
    -------
    int
        The number of epochs the checkpoint had finished.

    Raises
    ------
    CheckpointError
        If the checkpoint is missing or invalid (see :func:`read_checkpoint`), or belongs
        to a different architecture, update rule or set of callbacks.
    """
    payload = read_checkpoint(path)
    try:
        net.module_.load_state_dict(payload["module"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} belongs to a different architecture: "
                              f"{_one_line(exc)}") from None
    chosen = [{flag: group.get(flag) for flag in IMPLEMENTATION_FLAGS}
              for group in net.optimizer_.param_groups]
    try:
        net.optimizer_.load_state_dict(payload["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise CheckpointError(f"{path}: its optimizer state does not fit this net's update "
                              f"rule ({_one_line(exc)})") from None
    for group, flags in zip(net.optimizer_.param_groups, chosen):
        group.update(flags)  # this machine's kernels, not the writer's
    for attr, value in json.loads(payload["hyperparameters"]).items():
        current = getattr(net, attr, None)
        if is_shared(current):
            current.set_value(float32(value))
        else:
            setattr(net, attr, value)
    states = payload["callbacks"]
    for name, cb in _stateful_callbacks(net):
        if name in states:
            try:
                cb.load_state_dict(states[name])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise CheckpointError(f"{path}: the state of callback {name!r} does not fit "
                                      f"it ({_one_line(exc)})") from None
    net.history_ = History(json.loads(payload["history"]))
    _restore_best_scores(net)
    net.set_rng_state(payload["rng"])
    return payload["epoch"]
