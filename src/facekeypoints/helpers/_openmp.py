"""Let torch's OpenMP threads sleep instead of spinning while they wait (shared CPUs).

torch's CPU kernels run in an OpenMP team of one thread per core. GNU OpenMP (what the pip
wheels ship) lets a thread that waits for the next parallel region, or for the others at a
barrier, spin on its core for a while first. Where the cores are shared with other jobs, the
spinning threads take the core from the thread everyone is waiting for, and a training step
becomes several times slower: net4 epochs at batch 16 on a 2-core AMD EPYC with two other
trainings running took 17 s with spinning waits against 5 s with sleeping ones. The same
thread count and the same kernels run either way, so the numbers computed do not change.

The wait policy is read once, when the OpenMP runtime loads with torch, so this can only
choose it for a process that imports ``facekeypoints`` before ``torch``; it keeps a policy
the user set (``OMP_WAIT_POLICY=ACTIVE`` restores spinning) and keeps the runtime's own
default when ``GOMP_SPINCOUNT`` is set.
"""
from __future__ import annotations

import os
import sys

_SETTING = "OMP_WAIT_POLICY"


def prefer_passive_waits(environ=os.environ, modules=sys.modules) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless torch is loaded or the user chose a policy.

    Returns True when the setting was made.
    """
    if "torch" in modules or _SETTING in environ or "GOMP_SPINCOUNT" in environ:
        return False
    environ[_SETTING] = "PASSIVE"
    return True
