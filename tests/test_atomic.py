"""estate.atomic.write_atomic, the one way the project writes a file, and the outputs that use it
(`-o`, `--output`, `--history`): whole or not at all over a regular file or a new path, in place on a
FIFO or a descriptor, refused on a directory; modes kept; no temp file left by any failure; every error
one line. And `estate check --history` writes its line only once the report is written."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from estate import cli
from estate.atomic import write_atomic
from estate.errors import EstateError

cli._register_extensions()
runner = CliRunner()
TODAY = "2026-11-22"


def estate_cmd(*args: str) -> Result:
    return runner.invoke(cli.app, list(args))


def leftovers(folder: Path) -> list[str]:
    """Temp files write_atomic would have left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


# --------------------------------------------------------------------------- the helper


def test_a_new_file_gets_the_mode_open_would_give_it(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "report.json"
    write_atomic(path, "{}\n")
    assert path.read_text(encoding="utf-8") == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    write_atomic(tmp_path / "bytes.bin", b"\x00\x01")
    assert (tmp_path / "bytes.bin").read_bytes() == b"\x00\x01"
    assert leftovers(tmp_path) == []


def test_an_existing_file_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "report.html"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o640)
    write_atomic(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_mode_sets_the_mode_of_a_new_and_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    write_atomic(path, "a", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    write_atomic(path, "b", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_to_a_file_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "latest.html"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    link = tmp_path / "report.html"
    link.symlink_to(Path("reports") / "latest.html")
    write_atomic(link, "new")
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == [] and leftovers(target.parent) == []


def test_a_dangling_symlink_creates_the_file_it_names(tmp_path: Path) -> None:
    link = tmp_path / "out.json"
    link.symlink_to("real.json")
    write_atomic(link, "x")
    assert link.is_symlink() and (tmp_path / "real.json").read_text(encoding="utf-8") == "x"


def test_a_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, as `cat pipe` would be
    try:
        write_atomic(fifo, "report\n")
        assert os.read(reader, 100) == b"report\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert leftovers(tmp_path) == []


def test_a_fifo_nobody_reads_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(EstateError) as caught:
        write_atomic(fifo, "report\n")
    assert str(caught.value) == f"{fifo}: cannot write: a FIFO or device with no reader"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_descriptor_under_proc_is_written_in_place(tmp_path: Path) -> None:
    """`-o /dev/stdout` in a pipeline is /proc/self/fd/1: the pipe is written, nothing is renamed."""
    read, write = os.pipe()
    try:
        write_atomic(Path(f"/proc/self/fd/{write}"), "to the pipe\n")
        os.close(write)
        write = -1
        assert os.read(read, 100) == b"to the pipe\n"
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


def test_a_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(EstateError) as caught:
        write_atomic(folder, "x")
    assert str(caught.value) == f"{folder}: cannot write: is a directory"
    assert folder.is_dir() and list(folder.iterdir()) == []
    link = tmp_path / "link"
    link.symlink_to("out")
    with pytest.raises(EstateError, match="cannot write: is a directory"):
        write_atomic(link, "x")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("make", "reason"), [
    ("missing-parent", "No such file or directory"),
    ("parent-is-a-file", "Not a directory"),
    ("symlink-loop", "Too many levels of symbolic links"),
])
def test_an_unwritable_path_is_one_line(tmp_path: Path, make: str, reason: str) -> None:
    if make == "missing-parent":
        path = tmp_path / "no" / "such" / "report.json"
    elif make == "parent-is-a-file":
        (tmp_path / "file").write_text("", encoding="utf-8")
        path = tmp_path / "file" / "report.json"
    else:
        (tmp_path / "a").symlink_to("b")
        (tmp_path / "b").symlink_to("a")
        path = tmp_path / "a"
    with pytest.raises(EstateError) as caught:
        write_atomic(path, "x")
    assert str(caught.value) == f"{path}: cannot write: {reason}"


def _fail_on_write(monkeypatch: pytest.MonkeyPatch, exc: BaseException, after: int = 0) -> list[int]:
    """os.write in estate.atomic raises `exc` once `after` bytes were written (a disk filling up)."""
    real = os.write
    written = [0]

    def write(fd: int, data: Any) -> int:
        if written[0] >= after:
            raise exc
        n = real(fd, bytes(data)[: max(1, after - written[0])])
        written[0] += n
        return n

    monkeypatch.setattr("estate.atomic.os.write", write)
    return written


def test_a_full_disk_leaves_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.html"
    path.write_text("the old report\n", encoding="utf-8")
    written = _fail_on_write(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), after=4096)
    with pytest.raises(EstateError) as caught:
        write_atomic(path, "x" * 100_000)
    assert str(caught.value) == f"{path}: cannot write: No space left on device"
    assert written[0] == 4096  # it failed part-way, not before writing
    assert path.read_text(encoding="utf-8") == "the old report\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
def test_an_interrupt_at_any_step_leaves_the_old_file_and_no_temp_file(tmp_path: Path, step: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.json"
    path.write_text("old", encoding="utf-8")

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # what Ctrl-C, SIGTERM and SIGHUP raise (estate.signals)

    monkeypatch.setattr(f"estate.atomic.os.{step}", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new")
    assert path.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- the commands' outputs


@pytest.fixture
def repo(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    return repo_copy


def test_check_output_into_a_directory_is_one_line_exit_2(repo: Path) -> None:
    (repo / "out").mkdir()
    result = estate_cmd("check", "--today", TODAY, "--format", "json", "-o", "out")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["out: cannot write: is a directory"]


def test_check_output_makes_missing_folders_and_refuses_a_file_on_the_way(repo: Path) -> None:
    made = estate_cmd("check", "--today", TODAY, "--format", "json", "-o", "reports/ci/report.json")
    assert made.exit_code in (0, 1), made.output
    assert json.loads((repo / "reports" / "ci" / "report.json").read_text(encoding="utf-8"))["councils"]
    (repo / "notes").write_text("", encoding="utf-8")
    refused = estate_cmd("check", "--today", TODAY, "--format", "json", "-o", "notes/ci/report.json")
    assert refused.exit_code == 2
    assert refused.stderr.splitlines() == ["notes/ci/report.json: cannot write: Not a directory"]


def test_folders_made_for_a_write_that_fails_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_on_write(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(EstateError, match="No space left on device"):
        write_atomic(tmp_path / "a" / "b" / "report.json", "x", parents=True)
    assert list(tmp_path.iterdir()) == []


def test_check_output_keeps_the_mode_of_the_file_it_replaces(repo: Path, umask_022: None) -> None:
    out = repo / "report.json"
    out.write_text("{}", encoding="utf-8")
    out.chmod(0o600)
    result = estate_cmd("check", "--today", TODAY, "--format", "json", "-o", "report.json")
    assert result.exit_code in (0, 1), result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text(encoding="utf-8"))["councils"]


def test_roadmap_output_on_a_full_disk_is_one_line_and_keeps_the_old_file(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = repo / "roadmap.json"
    out.write_text("old", encoding="utf-8")
    _fail_on_write(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    result = estate_cmd("roadmap", "--today", TODAY, "--format", "json", "-o", "roadmap.json")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["roadmap.json: cannot write: No space left on device"]
    assert out.read_text(encoding="utf-8") == "old"
    assert leftovers(repo) == []


def test_the_history_line_is_written_only_after_the_report(repo: Path) -> None:
    history = repo / "history.jsonl"
    first = estate_cmd("check", "--today", "2026-11-01", "--history", "history.jsonl", "-f", "json", "-o", "a.json")
    assert first.exit_code in (0, 1), first.output
    before = history.read_bytes()
    (repo / "out").mkdir()
    failed = estate_cmd("check", "--today", TODAY, "--history", "history.jsonl", "-f", "json", "-o", "out")
    assert failed.exit_code == 2
    assert failed.stderr.splitlines() == ["out: cannot write: is a directory"]
    assert history.read_bytes() == before  # no line for a run whose report was not written
    done = estate_cmd("check", "--today", TODAY, "--history", "history.jsonl", "-f", "json", "-o", "b.json")
    assert done.exit_code in (0, 1), done.output
    assert [json.loads(line)["date"] for line in history.read_text(encoding="utf-8").splitlines()] == [
        "2026-11-01", TODAY]


def test_an_interrupted_report_adds_no_history_line(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = repo / "history.jsonl"
    assert estate_cmd("check", "--today", "2026-11-01", "--history", "history.jsonl", "-f", "json",
                      "-o", "a.json").exit_code in (0, 1)
    before = history.read_bytes()

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("estate.atomic.os.replace", interrupted)
    result = estate_cmd("check", "--today", TODAY, "--history", "history.jsonl", "-f", "json", "-o", "b.json")
    assert result.exit_code != 0
    assert history.read_bytes() == before
    assert not (repo / "b.json").exists()
    assert leftovers(repo) == []


def test_a_full_disk_while_writing_the_history_leaves_it_whole(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The history is written whole (a new file renamed over it), never appended to in place: a run
    that fails part-way leaves the earlier lines as they were, with no half line after them."""
    history = repo / "history.jsonl"
    assert estate_cmd("check", "--today", "2026-11-01", "--history", "history.jsonl",
                      "-f", "json").exit_code in (0, 1)
    before = history.read_bytes()
    _fail_on_write(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), after=len(before) + 10)
    result = estate_cmd("check", "--today", TODAY, "--history", "history.jsonl", "-f", "json")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "history.jsonl: cannot write: No space left on device"
    assert history.read_bytes() == before
    assert leftovers(repo) == []
