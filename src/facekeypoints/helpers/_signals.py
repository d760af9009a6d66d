"""Stopping on Ctrl-C (SIGINT) and SIGTERM at a safe point: the first signal asks, a second insists.

SLURM, Kubernetes and systemd stop a job with SIGTERM, a user with Ctrl-C; both are handled
alike. While a :class:`StopSignals` is active (a context manager, main thread only), a
*graceful* one records the first signal (the code polls ``received`` at a safe point, such as
the end of an epoch) and raises on the second; a non-graceful one raises at once. SIGINT
raises ``KeyboardInterrupt``, SIGTERM :class:`Terminated`, a subclass of it, so everything
that cleans up after Ctrl-C (``finally`` blocks, atomic writes, skorch's fit loop) cleans up
after SIGTERM too. :func:`deferred` holds both signals back for a few file renames.

Standard library only; importing it is cheap.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["EXIT_STATUS", "StopSignals", "Terminated", "active", "deferred", "exit_status",
           "interruption", "signal_name"]

#: The exit status a command ends with after each signal (128 + the signal number).
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}

_ACTIVE: list[StopSignals] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt`` (exit status 143)."""

    exit_status = 143


def interruption(signum: int) -> KeyboardInterrupt:
    """The exception a signal raises: ``Terminated`` for SIGTERM, else ``KeyboardInterrupt``.

    Parameters
    ----------
    signum : int
        The signal number.

    Returns
    -------
    KeyboardInterrupt
        A new exception instance, not raised.
    """
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def exit_status(exc: BaseException) -> int:
    """The exit status for an interruption: 143 after SIGTERM, 130 after Ctrl-C.

    Parameters
    ----------
    exc : BaseException
        A ``KeyboardInterrupt`` (or :class:`Terminated`).

    Returns
    -------
    int
        143 or 130.
    """
    return getattr(exc, "exit_status", 130)


def signal_name(signum: int) -> str:
    """``'Ctrl-C'`` for SIGINT, else the signal's name (``'SIGTERM'``).

    Parameters
    ----------
    signum : int
        The signal number.

    Returns
    -------
    str
        How messages name the signal.
    """
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def active() -> StopSignals | None:
    """The innermost active :class:`StopSignals` of this process, or None.

    Returns
    -------
    StopSignals or None
        What a callback that wants to stop at a safe point should poll.
    """
    return _ACTIVE[-1] if _ACTIVE else None


class StopSignals:
    """Catch SIGINT and SIGTERM while active (``with StopSignals(...) as stop:``).

    Parameters
    ----------
    signals : tuple of int, default (SIGINT, SIGTERM)
        The signals to catch.
    graceful : bool, default False
        True: the first signal is recorded in ``received`` and ``notice`` printed on stderr;
        the next one raises. False: every signal raises at once. May be changed while active.
    notice : str, default 'finishing, then stopping'
        What the first signal prints (after ``Interrupted:`` or ``Terminated (SIGTERM):``).

    Attributes
    ----------
    received : list of int
        The signals caught so far, first first.
    aborted : bool
        Whether a signal was raised as an exception (the "stop at once" case).

    Examples
    --------
    >>> with StopSignals(graceful=True) as stop:
    ...     stop.received
    []
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
                 graceful: bool = False, notice: str = "finishing, then stopping") -> None:
        self.signals = tuple(signals)
        self.graceful = graceful
        self.notice = notice
        self.received: list[int] = []
        self.aborted = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.signals}
            _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    @property
    def requested(self) -> int | None:
        """The first signal received, or None.

        Returns
        -------
        int or None
            A signal number.
        """
        return self.received[0] if self.received else None

    def _handle(self, signum, frame):
        self.received.append(signum)
        if self.graceful and len(self.received) == 1:
            label = ("Interrupted" if signum == signal.SIGINT
                     else f"Terminated ({signal_name(signum)})")
            again = "press Ctrl-C again" if signum == signal.SIGINT else "signal again"
            _say(f"\n{label}: {self.notice} ({again} to stop at once).\n")
            return
        self.aborted = True
        raise interruption(signum)


def _say(text):
    """Write to stderr from a signal handler: a raw write, never a reentrant buffered one."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(sys.stderr.fileno(), text.encode(errors="replace"))


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back inside the block; they are delivered when it ends.

    For a few renames that must not be cut in half by a signal (SIGKILL cannot be held
    back; the run directory's journal covers it). Inside the block the signals are only
    recorded; at its end the handlers in place before are restored and each recorded
    signal is raised again for them. Outside the main thread the block runs unprotected.

    Yields
    ------
    None
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum, frame):
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending:
            signal.raise_signal(signum)
