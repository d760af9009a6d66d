"""Numeric precision of the forward pass: float32, or bfloat16 mixed precision.

``'bf16'`` runs the forward pass under ``torch.autocast`` with bfloat16 and casts the outputs
back to float32, so weights, optimizer state, the loss and the history stay float32.
``'auto'`` picks bf16 only where the hardware runs it natively: a CUDA device that supports
bfloat16, or a CPU with AMX-BF16 or AVX512-BF16 (read from the CPU's feature flags, never
assumed); float32 elsewhere. On other CPUs bf16 works but is emulated and slower.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

PRECISIONS = ("32", "bf16", "auto")

__all__ = ["PRECISIONS", "cpu_bf16_flags", "cpu_model", "native_bf16", "resolve_precision",
           "autocast"]

_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's native bfloat16 features, as Linux reports them in ``/proc/cpuinfo``.

    Returns
    -------
    tuple of str
        The subset of ``('amx_bf16', 'avx512_bf16')`` the CPU has; empty where it has none or
        where the flags cannot be read (other operating systems).
    """
    if not sys.platform.startswith("linux"):
        return ()
    try:
        return _bf16_flags_in(Path("/proc/cpuinfo").read_text())
    except OSError:
        return ()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name, as benchmarks print it beside every figure.

    Returns
    -------
    str
        ``model name`` from ``/proc/cpuinfo`` on Linux (e.g. ``'AMD EPYC'``), else what
        :func:`platform.processor` says, else ``'unknown CPU'``.
    """
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _bf16_flags_in(cpuinfo: str) -> tuple[str, ...]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return tuple(f for f in _BF16_FLAGS if f in flags)
    return ()


def native_bf16(device) -> bool:
    """Whether ``device`` computes bfloat16 natively.

    Parameters
    ----------
    device : str or torch.device
        ``'cpu'``, ``'cuda'``, ``'cuda:1'`` ...

    Returns
    -------
    bool
        For CUDA, ``torch.cuda.is_bf16_supported()``; for the CPU, whether it has AMX-BF16 or
        AVX512-BF16 (:func:`cpu_bf16_flags`); False for anything else.
    """
    kind = str(device).split(":")[0]
    if kind == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return bool(cpu_bf16_flags())
    return False


def resolve_precision(precision, device) -> str:
    """The precision a net uses on ``device``: ``'32'`` or ``'bf16'``.

    Parameters
    ----------
    precision : {'32', 'bf16', 'auto'}
        What was asked for (32 and 'fp32' are accepted for '32').
    device : str or torch.device
        Where the net runs.

    Returns
    -------
    str
        ``'bf16'`` for 'bf16', and for 'auto' where :func:`native_bf16` holds; else ``'32'``.

    Raises
    ------
    ValueError
        For anything but the three names.

    Examples
    --------
    >>> resolve_precision("32", "cpu")
    '32'
    >>> resolve_precision("bf16", "cpu")
    'bf16'
    """
    text = str(precision).lower()
    if text in ("32", "fp32", "float32"):
        return "32"
    if text in ("bf16", "bfloat16"):
        return "bf16"
    if text == "auto":
        return "bf16" if native_bf16(device) else "32"
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def autocast(precision: str, device):
    """A context that runs the forward pass in ``precision`` on ``device``.

    Parameters
    ----------
    precision : {'32', 'bf16'}
        A resolved precision (see :func:`resolve_precision`).
    device : str or torch.device
        The device the tensors are on.

    Returns
    -------
    contextlib.AbstractContextManager
        ``torch.autocast(device_type, dtype=torch.bfloat16)`` for 'bf16', else a context that
        does nothing.
    """
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(str(device).split(":")[0], dtype=torch.bfloat16)
