"""The one way this project writes a file: whole or not at all.

    from estate.atomic import write_atomic
    write_atomic(path, text)               # a report, a plan, a schema, the lab's state
    write_atomic(path, text, mode=0o600)   # a secret
    write_atomic(path, text, parents=True) # a user's `-o reports/x.sarif`: missing folders are made
    write_if_changed(path, text)           # a rendered config: left alone (mtime too) when it holds text

What `path` is decides how it is written:

- a new path or a regular file: a temp file `.<name>.<random>.tmp` in the same folder is written,
  given its mode, fsynced, renamed over the path, and the folder fsynced. A reader sees the old file
  or the new one, never a part. On every failure (an OSError, Ctrl-C, SIGTERM or SIGHUP, which
  `estate.signals` turns into KeyboardInterrupt) the temp file is removed and the old file is unchanged.
- a symlink to a regular file (or a dangling one): written through to the file it names, atomically as
  above; the link stays a link.
- a character device or a FIFO (`-o /dev/null`, `-o /dev/stdout`, a pipe), or any path under /dev or
  /proc: written in place (open, write, no rename), as a shell redirection would. A FIFO nobody reads
  is refused, not waited on.
- a directory, a block device or a socket: refused.

Mode: an existing file keeps its mode (and, where allowed, its owner); a new file gets 0o666 less the
umask, what `open()` or a shell redirection would give it; `mode=` sets the mode either way.

Every refusal and error (a missing or read-only folder, a full disk, a symlink loop) is one line,
`PATH: cannot write: <reason>` (an EstateError: exit 2 in the CLI), never a traceback. A missing
folder is an error unless `parents=True` (the commands' `-o`, as they always have: CI writes
`-o reports/x.sarif` into a fresh checkout); folders made for a write that then fails are removed.
A file with several hard links is replaced by a new one: the other names keep the old text.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from pathlib import Path

from estate.errors import EstateError
from estate.yamlsrc import display

__all__ = ["write_atomic", "write_if_changed"]

# Paths whose files are the process's own descriptors or devices: never replaced, only written.
_IN_PLACE_ROOTS = ("/dev/", "/proc/")
_MAX_LINKS = 40  # as the kernel's own limit on a chain of symlinks


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None, parents: bool = False) -> None:
    """Write `data` (str: UTF-8) to `path` whole or not at all; see the module's docstring."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    made: list[Path] = []
    try:
        try:
            if parents:
                made = _make_parents(Path(path))
            _write(Path(path), payload, mode)
        except BaseException:
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
    except OSError as exc:
        raise EstateError.one(_shown(path), 0, "", f"cannot write: {_reason(exc)}") from None


def _make_parents(path: Path) -> list[Path]:
    """Make the missing folders above `path` (as mkdir -p); the ones made, outermost first."""
    missing: list[Path] = []
    folder = Path(os.path.abspath(path)).parent
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():  # an ancestor that is a file
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    made: list[Path] = []
    try:
        for new in reversed(missing):
            os.mkdir(new)
            made.append(new)
    except BaseException:
        for new in reversed(made):
            with contextlib.suppress(OSError):
                new.rmdir()
        raise
    return made


def write_if_changed(path: Path, text: str) -> None:
    """Write `text` to `path` with write_atomic, unless the file already holds exactly that (its mtime stays:
    a rendered config that did not change is not rewritten)."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    write_atomic(path, text)


def _shown(path: Path) -> str:
    try:
        return display(Path(path))
    except (OSError, RuntimeError):  # a symlink loop cannot be resolved to show
        return str(path)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _write(path: Path, payload: bytes, mode: int | None) -> None:
    try:
        st: os.stat_result | None = os.stat(path)  # through symlinks
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    if _in_place(path) or (st is not None and not stat.S_ISREG(st.st_mode)):
        if st is not None and not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise OSError(errno.EINVAL, "not a regular file, a character device or a FIFO")
        _write_in_place(path, payload)
        return
    target = Path(os.path.realpath(path))  # a symlink's own file: the link is kept
    _replace(target, payload, mode, st)


def _in_place(path: Path) -> bool:
    """Whether `path`, or a link on the way to its file, lies under /dev or /proc (`/dev/stdout`,
    `/dev/fd/1`, `/proc/self/fd/1`): those name an open descriptor, not a file to replace."""
    current = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        if current.startswith(_IN_PLACE_ROOTS):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))


def _write_in_place(path: Path, payload: bytes) -> None:
    try:
        # O_NONBLOCK: a FIFO with no reader fails at once (ENXIO) instead of waiting for one.
        # O_APPEND: /dev/stdout redirected to a file (`>` or `>>`) is written after what is already there.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "a FIFO or device with no reader") from None
        raise
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        _write_all(fd, payload)
    finally:
        os.close(fd)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _new_file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _replace(target: Path, payload: bytes, mode: int | None, old: os.stat_result | None) -> None:
    folder = target.parent
    # the temp file's name: the loader and every glob in the project skip `.<name>.*.tmp`
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name[:200]}.", suffix=".tmp")
    replaced = False
    try:
        try:
            _write_all(fd, payload)
            if old is not None:
                with contextlib.suppress(OSError):  # keep the owner where allowed (root, or one's own group)
                    os.fchown(fd, old.st_uid, old.st_gid)
            if mode is not None:
                os.fchmod(fd, mode)
            elif old is not None:
                os.fchmod(fd, stat.S_IMODE(old.st_mode))
            else:
                os.fchmod(fd, _new_file_mode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        replaced = True
    finally:
        if not replaced:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable. A file system that cannot fsync a folder (EINVAL) is not an error."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
