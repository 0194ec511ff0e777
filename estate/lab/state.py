"""The lab's record of what it made: .state/lab/state.json.

Every object is recorded *before* it is made, so an interrupted `up` leaves nothing unrecorded: the
next `up` adopts what exists and makes what is missing, and `down` removes exactly what is recorded
(tolerating what is already gone) and nothing else. An object that exists but is not recorded is
someone else's: `up` refuses to touch it (a name clash).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from estate.atomic import write_atomic
from estate.lab.sh import lab_error

VERSION = 1
KINDS = ("container", "netns", "link", "nft", "sysctl")


class LabState:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path) -> LabState:
        if not path.exists():
            return cls(path, cls.empty())
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise lab_error(f"cannot read the lab's state: {exc}; remove the lab's objects by hand "
                            "(prefix se-) and delete the file", str(path)) from None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("objects"), dict):
            raise lab_error("not a lab state file of this version", str(path))
        for kind in KINDS:
            data["objects"].setdefault(kind, {})
        return cls(path, data)

    @staticmethod
    def empty() -> dict[str, Any]:
        return {"version": VERSION, "objects": {kind: {} for kind in KINDS}, "loaded": {}, "specs": {}}

    @property
    def is_empty(self) -> bool:
        return not any(self.data["objects"][kind] for kind in KINDS)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")

    def has(self, kind: str, name: str) -> bool:
        return name in self.data["objects"][kind]

    def names(self, kind: str) -> list[str]:
        return list(self.data["objects"][kind])

    def get(self, kind: str, name: str) -> Any:
        return self.data["objects"][kind].get(name)

    def record(self, kind: str, name: str, value: Any = True) -> None:
        """Write down an object before making it."""
        if self.data["objects"][kind].get(name) != value:
            self.data["objects"][kind][name] = value
            self.save()

    def forget(self, kind: str, name: str) -> None:
        if name in self.data["objects"][kind]:
            del self.data["objects"][kind][name]
            self.save()

    def spec(self, name: str) -> str | None:
        value = self.data["specs"].get(name)
        return value if isinstance(value, str) else None

    def set_spec(self, name: str, value: str | None) -> None:
        if value is None:
            self.data["specs"].pop(name, None)
        else:
            self.data["specs"][name] = value
        self.save()

    def loaded(self, name: str) -> str | None:
        value = self.data["loaded"].get(name)
        return value if isinstance(value, str) else None

    def set_loaded(self, name: str, digest: str | None) -> None:
        if digest is None:
            self.data["loaded"].pop(name, None)
        else:
            self.data["loaded"][name] = digest
        self.save()

    def remove_file(self) -> None:
        self.path.unlink(missing_ok=True)


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """One `up`/`down` at a time."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise lab_error("another `estate lab` command is running on this lab", str(lock_path)) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
