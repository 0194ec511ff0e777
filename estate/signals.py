"""SIGTERM and SIGHUP get the clean-up Ctrl-C gets.

CI cancelling a job sends SIGTERM; a closed SSH session sends SIGHUP. Python's default for both is to
die on the spot, skipping every `finally` and `except BaseException` that removes a temp file or a
half-onboarded council. `handling_signals()` (the CLI's `main()` runs every command inside it) turns
SIGINT, SIGTERM and SIGHUP into `Interrupted`, a KeyboardInterrupt, so the clean-up that already
serves Ctrl-C runs for all three; then the process ends with one line on stderr and exit code
128 + the signal's number (130, 143, 129), as a shell reports a process the signal killed.

A forked child (the offline plan's workers) gets the default handlers back: the parent ends it with
SIGTERM and it must simply go.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when one of SIGNALS arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []
_fork_hook_installed = False


_finishing: list[bool] = []  # set once the body has ended: a signal then is too late to stop anything


def _raise(signum: int, frame: FrameType | None) -> None:
    if _finishing:
        return
    _received.append(signum)
    raise Interrupted(signum)


# A signal can arrive while Python runs a finaliser or a weakref callback (garbage collection inside Pulumi's
# or gRPC's objects). An exception raised there cannot propagate: Python prints "Exception ignored in ..." with
# a traceback and carries on, so the clean-up would never run. The unraisable hook swallows that one
# Interrupted and raises it again a moment later from a one-shot SIGALRM timer, by then in ordinary code
# (docs.python.org/3/library/sys.html#sys.unraisablehook, signal.setitimer).
_RETRY_SECONDS = 0.01
_pending: list[int] = []


def _raise_pending(signum: int, frame: FrameType | None) -> None:
    if _pending:
        raise Interrupted(_pending.pop())


def _unraisable(previous: object) -> object:
    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            _pending[:] = [unraisable.exc_value.signum]
            signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)
            return
        previous(unraisable)  # type: ignore[operator]

    return hook


def _defaults_in_child() -> None:
    for signum in (*SIGNALS, signal.SIGALRM):
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


def exit_code(signum: int) -> int:
    return 128 + signum


@contextmanager
def handling_signals(*, last: bool = False) -> Iterator[None]:
    """Run the body with SIGNALS raising Interrupted; when one arrived, print one line and exit 128+signum
    (whatever the body did with the KeyboardInterrupt: Typer turns it into exit 130)."""
    global _fork_hook_installed
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (*SIGNALS, signal.SIGALRM)}
    for signum in SIGNALS:
        signal.signal(signum, _raise)
    signal.signal(signal.SIGALRM, _raise_pending)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable(previous_hook)  # type: ignore[assignment]
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_defaults_in_child)
        _fork_hook_installed = True
    _received.clear()
    _finishing.clear()
    try:
        yield
    except KeyboardInterrupt:
        _finishing.append(True)
        if not _received:
            _received.append(signal.SIGINT)
    except SystemExit:
        _finishing.append(True)
        if not _received:
            raise
    finally:
        _finishing[:] = [True]
        signal.setitimer(signal.ITIMER_REAL, 0)
        _pending.clear()
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        if last:
            # the process's work is done (or being reported): a signal from here to the end of the interpreter
            # must not turn a finished run into a killed one (exit -15 after "wrote r.html")
            for signum in SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
    if _received:
        name = signal.Signals(_received[0]).name
        print(f"estate: interrupted by {name}", file=sys.stderr, flush=True)
        sys.exit(exit_code(_received[0]))
