"""Pickling a net: ``pickle.dump(net, f, -1)`` round-trips, also from a GPU to a CPU machine.

A mixin of :class:`facekeypoints.NeuralNet`. The live batch generator is not pickled (its
state is in ``rng_states_``); on load, a net saved on a device this machine lacks lands on
the CPU, ``device='auto'`` stays ``'auto'``, and the optimizer drops kernels (fused, foreach)
the new device cannot run.
"""
from __future__ import annotations

import warnings

from .updates import drop_unavailable_kernels

__all__: list[str] = []


class Pickling:
    """``__getstate__`` and ``__setstate__`` of the net (see the module's docstring)."""

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("batch_generator_", None)  # a live torch.Generator; its state is in rng_states_
        return state

    def __setstate__(self, state):
        state = {"layout": None, **state}       # nets pickled before ``layout`` existed
        requested = state.get("device", "cpu")
        placed = state.get("device_") or ("cpu" if requested == "auto" else requested)
        with warnings.catch_warnings():
            # skorch warns when a CUDA net is loaded where CUDA is missing; it then falls back
            # to the CPU, as we want.
            warnings.simplefilter("ignore")
            super().__setstate__({**state, "device": placed})
        landed = str(self.device)  # where skorch mapped the tensors
        if "device_" in state:
            self.device_ = landed
        # 'auto' stays 'auto'; an explicit device that is missing here becomes the CPU (skorch's
        # rule), so that the loaded net can predict and train on.
        self.device = requested if requested == "auto" or landed == str(placed) else landed
        if getattr(self, "optimizer_", None) is not None:
            drop_unavailable_kernels(self.optimizer_)
