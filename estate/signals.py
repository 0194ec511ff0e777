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

import logging
import os
import signal
import sys
import threading
import warnings
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
    _attempts[:] = []
    # unwinding Pulumi's event loop leaves tasks holding the interrupt; asyncio would log each as "Task
    # exception was never retrieved" with a traceback when it is collected: the process is ending, say nothing
    logging.getLogger("asyncio").disabled = True
    signal.setitimer(signal.ITIMER_REAL, _WATCHDOG_SECONDS)
    raise Interrupted(signum)


# The interrupt can be lost where it lands:
# - in a finaliser or a weakref callback (garbage collection inside Pulumi's or gRPC's objects), where Python
#   can only print "Exception ignored in ..." and carry on (docs.python.org/3/library/sys.html#sys.unraisablehook);
#   the hook below swallows that one and has the timer raise it again at once, by then in ordinary code;
# - in library code that catches BaseException and carries on (seen once in twenty runs of `plan` under SIGINT:
#   Pulumi's event loop went back to waiting on a future nobody would complete).
# So a one-shot SIGALRM timer (signal.setitimer) raises the interrupt again while the command is still running
# after a signal: after _WATCHDOG_SECONDS (clean-up takes far less), up to _RETRIES times; then the process
# ends with the signal's exit code rather than hang.
_WATCHDOG_SECONDS = 3.0
_RETRY_SECONDS = 0.01
_RETRIES = 3
_attempts: list[int] = []


def _again(signum: int, frame: FrameType | None) -> None:
    if _finishing or not _received:
        return
    code = exit_code(_received[0])
    if len(_attempts) >= _RETRIES:
        name = signal.Signals(_received[0]).name
        os.write(2, f"estate: interrupted by {name}; the clean-up did not finish\n".encode())
        os._exit(code)
    _attempts.append(code)
    signal.setitimer(signal.ITIMER_REAL, _WATCHDOG_SECONDS)
    raise Interrupted(_received[0])


def _unraisable(previous: object) -> object:
    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)
            return
        if _received:  # unwinding after a signal: a coroutine or finaliser closed half-way is expected
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
    signal.signal(signal.SIGALRM, _again)
    previous_hook = sys.unraisablehook
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log_disabled = asyncio_log.disabled
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
        _attempts.clear()
        if not (last and _received):  # a process ending on a signal keeps both quiet to its end
            sys.unraisablehook = previous_hook
            asyncio_log.disabled = asyncio_log_disabled
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
        if last:
            # The one line is said. What the interpreter prints on its way out after an interrupted Pulumi run
            # (a coroutine never awaited, a task's interrupt never retrieved) is noise, not news: it goes nowhere.
            warnings.simplefilter("ignore")
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        sys.exit(exit_code(_received[0]))
