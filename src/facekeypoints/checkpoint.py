"""Checkpoints that let a killed run continue exactly where it stopped.

A checkpoint holds the weights, the optimizer state (momentum buffers), the ``update_*``
hyperparameter values, the state of callbacks that keep some (EarlyStopping's best weights),
the history and the random generator states (dropout and batch flips). It is written
atomically (temporary file, then rename), so the previous good checkpoint survives a crash
mid-write, and it is read with ``torch.load(weights_only=True)``, which cannot run code.

On the same machine and seed, ``net.fit(X, y, resume=path)`` after a kill ends with the same
weights, bit for bit, and the same history as an uninterrupted run.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import torch
from skorch.callbacks import Callback
from skorch.history import History

from ._safe_io import atomic_torch_save, load_archive
from .shared import float32, is_shared, read_value
from .updates import IMPLEMENTATION_FLAGS

FORMAT = "facekeypoints-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """The checkpoint file is missing, damaged, or does not belong to this net."""


class Checkpoint(Callback):
    """Write a checkpoint every ``every`` epochs, and when training ends, to ``path``.

    With ``handle_sigint`` the first Ctrl-C lets the running epoch finish, writes a
    checkpoint and stops training (``net.interrupted_`` is then True); a second Ctrl-C
    interrupts at once.
    """

    def __init__(self, path="checkpoint.pt", every=1, handle_sigint=False):
        self.path = path
        self.every = every
        self.handle_sigint = handle_sigint

    def on_train_begin(self, net, **kwargs):
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

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if self.stop_requested_ or (self.every and epoch % int(self.every) == 0):
            save_checkpoint(net, self.path)
        if self.stop_requested_:
            net.interrupted_ = True
            raise KeyboardInterrupt  # skorch ends the fit loop and runs on_train_end

    def on_train_end(self, net, **kwargs):
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


def save_checkpoint(net, path):
    """Write ``net``'s full training state to ``path`` atomically; returns the path."""
    path = Path(path)
    rng = net.rng_state()
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": len(net.history),
        "module": {k: v.detach().cpu() for k, v in net.module_.state_dict().items()},
        "optimizer": _to_cpu(net.optimizer_.state_dict()),
        "hyperparameters": json.dumps({attr: read_value(getattr(net, attr))
                                       for attr in net._update_attrs().values()
                                       if getattr(net, attr) is not None}),
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


def read_checkpoint(path):
    """The checked payload of a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train with a Checkpoint callback "
                              "(CLI: --checkpoint-every N) to be able to resume")
    return load_archive(path, FORMAT, CheckpointError, "checkpoint")


def restore_checkpoint(net, path):
    """Load a checkpoint's state into an initialized ``net`` (called by ``fit(resume=...)``)."""
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
