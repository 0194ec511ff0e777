"""Running the lab's tools (podman, ip, nft, mmdebstrap): one clear line when one is missing or fails."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from estate.errors import EstateError

# Which Debian package brings each tool (the Makefile's APT_PACKAGES installs them).
PACKAGES = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap", "nft": "nftables", "ip": "iproute2",
            "bridge": "iproute2", "ssh-keygen": "openssh-client", "ssh": "openssh-client"}


def lab_error(message: str, where: str = "lab") -> EstateError:
    """One line, `WHERE: MESSAGE`, exit code 2."""
    return EstateError.one(where, 0, "", message)


def require(*tools: str) -> None:
    """Every tool is on PATH, else one line naming the package that brings it."""
    for tool in tools:
        if shutil.which(tool) is None:
            package = PACKAGES.get(tool, tool)
            raise lab_error(f"{tool} is not installed (apt-get install {package}, or `make apt`)", tool)


class CommandFailed(Exception):
    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
        super().__init__(f"{' '.join(argv[:3])}...: {last}" if len(argv) > 3 else f"{' '.join(argv)}: {last}")

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit code {self.code}"


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, input: str | None = None,
        check: bool = True, timeout: float | None = 300, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; CommandFailed when it exits non-zero and check is set."""
    try:
        proc = subprocess.run(list(argv), env=dict(env) if env is not None else None, input=input,
                              capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    except FileNotFoundError:
        require(argv[0])
        raise
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, -1, f"timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc
