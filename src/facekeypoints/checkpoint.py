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
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from skorch.callbacks import Callback
from skorch.history import History

from ._safe_io import atomic_torch_save, load_archive
from .shared import float32, is_shared
from .updates import IMPLEMENTATION_FLAGS

if TYPE_CHECKING:
    import os

    # The net's base class: net imports this module (for fit's resume=), so importing .net
    # here, even for type checking only, would make an import cycle.
    from skorch import NeuralNet

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "read_checkpoint",
           "restore_checkpoint", "save_checkpoint"]

#: The ``format`` field of every checkpoint file.
FORMAT = "facekeypoints-checkpoint"
#: The checkpoint format version this release writes.
VERSION = 1


class CheckpointError(ValueError):
    """Raised when a checkpoint file is missing, damaged, or does not belong to this net.

    A subclass of ``ValueError``. Files holding anything but tensors and plain data are
    refused with this error, never unpickled.
    """


class Checkpoint(Callback):
    """Write a checkpoint every ``every`` epochs, and when training ends, to ``path``.

    A skorch callback: pass it in the net's ``callbacks``. Each write replaces the previous
    checkpoint atomically; ``net.fit(X, y, resume=path)`` continues from it. An epoch cut
    short by an exception is never checkpointed.

    With ``handle_sigint`` the first Ctrl-C lets the running epoch finish, writes a
    checkpoint and stops training (``net.interrupted_`` is then True); a second Ctrl-C
    interrupts at once.

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
                 handle_sigint: bool = False) -> None:
        self.path = path
        self.every = every
        self.handle_sigint = handle_sigint

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        """Reset the interruption flags and, with ``handle_sigint``, install the Ctrl-C handler."""
        net.interrupted_ = False
        self.stop_requested_ = False
        self.previous_handler_ = None
        if self.handle_sigint and threading.current_thread() is threading.main_thread():
            self.previous_handler_ = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame):
        if self.stop_requested_:
            raise KeyboardInterrupt
        self.stop_requested_ = True
        print("\nInterrupted: finishing this epoch, then writing a checkpoint "
              "(press Ctrl-C again to stop at once).", file=sys.stderr, flush=True)

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Write a checkpoint every ``every`` epochs, or after Ctrl-C, and then stop training."""
        epoch = len(net.history)
        if self.stop_requested_ or (self.every and epoch % int(self.every) == 0):
            save_checkpoint(net, self.path)
        if self.stop_requested_:
            net.interrupted_ = True
            raise KeyboardInterrupt  # skorch ends the fit loop and runs on_train_end

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Restore the previous Ctrl-C handler and checkpoint the last complete epoch."""
        if self.previous_handler_ is not None:
            signal.signal(signal.SIGINT, self.previous_handler_)
            self.previous_handler_ = None
        if len(net.history) and _epoch_complete(net.history[-1]):
            save_checkpoint(net, self.path)


def _epoch_complete(entry):
    """An epoch cut short by an exception lacks its closing entries; never checkpoint that."""
    return "dur" in entry and "train_loss" in entry


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
    random generator states; tensors are moved to the CPU. The :class:`Checkpoint` callback
    calls this; call it directly to checkpoint at another time.

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
    return atomic_torch_save(payload, path)


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
        If there is no checkpoint at ``path`` or the file is not a valid checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train with a Checkpoint callback "
                              "(CLI: --checkpoint-every N) to be able to resume")
    return load_archive(path, FORMAT, CheckpointError, "checkpoint")


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
        If the checkpoint is missing or invalid, or belongs to a different architecture.
    """
    payload = read_checkpoint(path)
    try:
        net.module_.load_state_dict(payload["module"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} belongs to a different architecture: {exc}") from None
    chosen = [{flag: group.get(flag) for flag in IMPLEMENTATION_FLAGS}
              for group in net.optimizer_.param_groups]
    net.optimizer_.load_state_dict(payload["optimizer"])
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
            cb.load_state_dict(states[name])
    net.history_ = History(json.loads(payload["history"]))
    net.set_rng_state(payload["rng"])
    return payload["epoch"]
