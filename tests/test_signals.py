"""All or nothing under any signal: SIGTERM (CI cancelling a job) and SIGHUP (a closed SSH session) get
Ctrl-C's clean-up in onboard and check (estate.signals), then one line and exit 128 + the signal.

The subprocess tests run the real `estate` entry point with one os function wrapped to stop at a
chosen step (it drops a marker file and sleeps); the test then sends the signal from outside, so the
timing is exact and nothing is timed."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from estate.signals import Interrupted, exit_code, handling_signals

REPO = Path(__file__).resolve().parent.parent
# The repo's files an estate command reads.
COPY = ("framework.yaml", "inventories", "Pulumi.yaml")
WAIT = 120.0  # seconds a child may take to reach its pause: a guard against a hang, not a measurement

# Runs `estate ARGS...` with os.NAME stopping at its first call whose arguments contain NEEDLE (once:
# the clean-up may call it again).
PAUSER = """
import os, pathlib, sys, time
name, needle, marker = sys.argv[1:4]
real = getattr(os, name)
done = []
def paused(*args, **kwargs):
    if not done and any(needle in str(a) for a in args):
        done.append(1)
        pathlib.Path(marker).write_text("paused")
        time.sleep(600)
    return real(*args, **kwargs)
setattr(os, name, paused)
sys.argv = ["estate", *sys.argv[4:]]
from estate.cli import main
main()
"""


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under root (files by content, folders and links by kind): 'the tree is unchanged'."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if "__pycache__" in p.parts:
            continue
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "repo"
    root.mkdir()
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name)
        else:
            shutil.copy(src, root / name)
    for stack in REPO.glob("Pulumi.*.yaml"):
        shutil.copy(stack, root / stack.name)
    yield root


def env(root: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "ESTATE_ROOT"}
    out["PYTHONPATH"] = str(REPO)
    out["COLUMNS"] = "200"
    return out


def run_estate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from estate.cli import main; main()", *args], cwd=root,
                          env=env(root), capture_output=True, text=True, timeout=600)


def interrupt_at(root: Path, os_function: str, needle: str, signum: int, *args: str) -> tuple[int, str]:
    """Start `estate ARGS`, wait until it calls os.OS_FUNCTION with NEEDLE in an argument, send `signum`;
    its exit code and stderr."""
    marker = root.parent / "paused"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", PAUSER, os_function, needle, str(marker), *args], cwd=root,
                            env=env(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"never reached os.{os_function}({needle}...): exit {proc.returncode}\n{err}")
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    marker.unlink(missing_ok=True)
    return proc.returncode, err


# --------------------------------------------------------------------------- in-process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_runs_the_clean_up_then_exits_128_plus_its_number(
        signum: int, capsys: pytest.CaptureFixture[str]) -> None:
    cleaned: list[str] = []
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as done, handling_signals():
        try:
            os.kill(os.getpid(), signum)
            time.sleep(600)  # the handler raises here
        finally:
            cleaned.append("finally")
    assert cleaned == ["finally"]
    assert done.value.code == exit_code(signum) == 128 + signum
    assert capsys.readouterr().err == f"estate: interrupted by {signal.Signals(signum).name}\n"
    assert signal.getsignal(signal.SIGTERM) is previous  # the handlers are put back


def test_the_signal_is_a_keyboard_interrupt_so_existing_clean_up_catches_it() -> None:
    assert issubclass(Interrupted, KeyboardInterrupt)


def test_a_command_that_swallows_the_interrupt_still_exits_with_the_signal() -> None:
    """Typer turns a KeyboardInterrupt into exit 130; the signal's own code wins."""
    with pytest.raises(SystemExit) as done, handling_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(600)
        except KeyboardInterrupt:
            raise SystemExit(130) from None
    assert done.value.code == 143


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_that_lands_in_a_weakref_callback_still_runs_the_clean_up(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A signal during garbage collection (a weakref callback, a finaliser) raises where Python can only print
    "Exception ignored" and go on: the interrupt is raised again in ordinary code, with no traceback printed."""
    import gc
    import weakref

    class Thing:
        pass

    cleaned = []
    body_finished = []

    def callback(_: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises here, inside the callback
        time.sleep(0.5)

    with pytest.raises(SystemExit) as done, handling_signals():
        try:
            thing = Thing()
            ref = weakref.ref(thing, callback)
            del thing
            gc.collect()
            time.sleep(5)  # without the retry nothing interrupts this
            body_finished.append(True)
        finally:
            cleaned.append(True)
    assert ref() is None
    assert done.value.code == 143
    assert cleaned == [True]
    assert body_finished == []
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert err.strip().splitlines() == ["estate: interrupted by SIGTERM"]


def test_an_interrupt_that_library_code_swallows_is_raised_again() -> None:
    """Code that catches BaseException and carries on (seen in Pulumi's event loop under SIGINT) must not leave
    the command hanging: the interrupt is raised again while the command still runs."""
    swallowed = []
    with pytest.raises(SystemExit) as done, handling_signals():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except BaseException:  # the library code's mistake this test plays
            swallowed.append(True)
        time.sleep(30)  # waits on nothing: only the raised-again interrupt ends it
        swallowed.append(False)
    assert swallowed == [True]
    assert done.value.code == 130


def test_a_forked_child_gets_the_default_handlers(tmp_path: Path) -> None:
    """The offline plan's workers are forked: SIGTERM from the parent must end them, not raise in them."""
    with handling_signals():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, b"dfl" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else b"raise")
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        assert os.read(read, 10) == b"dfl"
        os.close(read)


def test_without_a_signal_the_exit_code_is_the_commands() -> None:
    with pytest.raises(SystemExit) as done, handling_signals():
        raise SystemExit(1)
    assert done.value.code == 1


# --------------------------------------------------------------------------- a real process, a real signal


ONBOARD = ("onboard", "redbridge", "--code", "E09000026", "--users", "10", "--today", "2026-11-22")


@pytest.mark.parametrize(("os_function", "step"), [
    ("rename", "redbridge"),  # the files are staged; the council's folder is about to appear
    ("link", ".estate-onboard."),  # the council's folder is in place; its stack config is about to be linked
    ("rmdir", ".estate-onboard."),  # the council's folder is in place; the staging folder goes, then the check
])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signalled_onboard_leaves_the_tree_byte_identical(repo: Path, os_function: str, step: str,
                                                            signum: int) -> None:
    before = snapshot(repo)
    code, err = interrupt_at(repo, os_function, step, signum, *ONBOARD)
    assert code == 128 + signum
    assert err.splitlines() == [f"estate: interrupted by {signal.Signals(signum).name}"]
    assert snapshot(repo) == before
    validate = run_estate(repo, "validate")
    assert validate.returncode == 0, validate.stderr


def test_a_signalled_check_keeps_its_old_report_and_history(repo: Path) -> None:
    first = run_estate(repo, "check", "--today", "2026-11-01", "-f", "json", "-o", "report.json",
                       "--history", "history.jsonl")
    assert first.returncode in (0, 1), first.stderr
    before = snapshot(repo)
    code, err = interrupt_at(repo, "replace", "report.json", signal.SIGTERM,
                             "check", "--today", "2026-11-22", "-f", "json", "-o", "report.json",
                             "--history", "history.jsonl")
    assert code == 143
    assert err.splitlines() == ["estate: interrupted by SIGTERM"]
    assert snapshot(repo) == before  # the old report, the old history, no temp file


@pytest.mark.parametrize("path", ["/dev/fd/1", "/proc/self/fd/1"])
def test_check_output_to_a_descriptor_is_written_in_place(repo: Path, path: str) -> None:
    """`-o /dev/stdout` style outputs: the pipe gets the report; nothing is renamed over the descriptor."""
    done = run_estate(repo, "check", "--today", "2026-11-22", "-f", "json", "-o", path)
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.startswith("{") and f"wrote {path}" in done.stdout


def test_a_signalled_plan_ends_its_workers_and_writes_nothing(repo: Path) -> None:
    """The offline plan forks workers; SIGTERM while the parent waits for them ends them too (they get the
    default handlers back), and no output or temp file is left."""
    for name in ("stacks",):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    before = snapshot(repo)
    code, err = interrupt_at(repo, "waitpid", "", signal.SIGTERM, "plan", "--workers", "2", "-o", "plan.txt")
    assert code == 143
    assert err.splitlines() == ["estate: interrupted by SIGTERM"]
    assert snapshot(repo) == before


def test_a_process_ending_on_a_signal_says_one_line_and_nothing_after() -> None:
    """On its way out after an interrupted Pulumi run the interpreter warns of coroutines never awaited and
    tasks whose interrupt nobody retrieved: the process says its one line and nothing else."""
    script = (
        "import os, signal, time\n"
        "from estate.signals import handling_signals\n"
        "async def never() -> None: ...\n"
        "with handling_signals(last=True):\n"
        "    pending = never()  # collected on the way out: 'coroutine ... was never awaited'\n"
        "    os.kill(os.getpid(), signal.SIGHUP)\n"
        "    time.sleep(30)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 129
    assert run.stderr.splitlines() == ["estate: interrupted by SIGHUP"]
