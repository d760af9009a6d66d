"""Random-state bookkeeping: seeded blocks, the training batches' generator, and the states a
checkpoint saves so that a resumed run draws exactly the numbers the uninterrupted one would.

torch's global generator is never disturbed: seeded blocks run under ``torch.random.fork_rng``.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch

from .iterators import BatchIterator

__all__: list[str] = []


@contextlib.contextmanager
def seeded(random_state, offset=0, state=None):
    """Run a block under ``random_state + offset`` (or a saved generator ``state``) without
    disturbing torch's global generator; with neither, run it as it is."""
    if random_state is None and state is None:
        yield
        return
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        if state is not None:
            torch.set_rng_state(state["torch"])
            if devices and state.get("cuda") is not None:
                torch.cuda.set_rng_state(state["cuda"])
        else:
            torch.manual_seed(int(random_state) + offset)
        yield


def snapshot(device, generator=None):
    """The generator states at the end of an epoch: torch's, CUDA's (on a CUDA device) and
    the batch generator's."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if str(device).startswith("cuda") else None,
        "batches": generator.get_state() if generator is not None else None,
    }


def batch_generator(device, saved=None, seed=None):
    """The training batches' generator (shuffling, flips) on ``device``: continued from a
    ``saved`` state, else seeded from ``seed`` (+ 1), else from torch's global generator."""
    generator = torch.Generator(device=device)
    if saved is not None:
        generator.set_state(saved)
    else:
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        generator.manual_seed(int(seed) + 1)
    return generator


class RandomStateBookkeeping:
    """The net's part in random-state bookkeeping (a mixin of :class:`NeuralNet`): the states
    at each epoch's end in ``rng_states_``, and the training batches' generator."""

    def rng_state(self) -> dict[str, Any] | None:
        """Return the generator states at the end of the last epoch (``rng_states_``).

        Returns
        -------
        dict or None
            ``{'torch', 'cuda', 'batches'}`` states, which checkpoints save; None before the
            first epoch.
        """
        return getattr(self, "rng_states_", None)

    def set_rng_state(self, state: dict[str, Any] | None) -> None:
        """Continue from generator states saved by :meth:`rng_state` (used to resume).

        Parameters
        ----------
        state : dict or None
            What :meth:`rng_state` returned; None seeds the next ``fit`` from
            ``random_state`` again.
        """
        self.rng_states_ = state

    def on_epoch_end(self, net: Any, dataset_train: Any = None, dataset_valid: Any = None,
                     **kwargs: Any) -> None:
        """Run skorch's epoch-end hook, then record the generator states in ``rng_states_``."""
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                             **kwargs)
        self.rng_states_ = snapshot(self.device_, getattr(self, "batch_generator_", None))

    def get_iterator(self, dataset: Any, training: bool = False) -> BatchIterator:
        """Bind ``batch_iterator_train``/``_test`` (``BatchIterator(128)`` when None) to the data.

        The training batches draw order and flips from a generator held on the net, so that a
        checkpoint keeps its state and a resumed run draws the same flips."""
        iterator = self.batch_iterator_train if training else self.batch_iterator_test
        if iterator is None:
            iterator = BatchIterator(128)
        if not training:
            return iterator(dataset.X, dataset.y)
        # The training batches' generator (shuffling, flips) lives on the net, so that its
        # state can be checkpointed and a resumed run draws exactly the same flips.
        seed = self.random_state if iterator.random_state is None else iterator.random_state
        self.batch_generator_ = batch_generator(
            dataset.X.device, (self.rng_state() or {}).get("batches"), seed)
        return iterator(dataset.X, dataset.y, generator=self.batch_generator_)
