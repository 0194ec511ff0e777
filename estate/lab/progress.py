"""Progress bars for the lab's long steps, on stderr (stdout stays for results)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Step:
    """One step: a bar (total known) or a spinner (total None)."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, note=text[:60])


class Progress:
    """`with Progress(enabled) as p: with p.step("hosts", 12) as s: s.advance()`."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                SpinnerColumn(), TextColumn("{task.description:<22}"), BarColumn(bar_width=24),
                MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("[dim]{task.fields[note]}"),
                console=Console(stderr=True), transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    @contextmanager
    def step(self, description: str, total: int | None = None) -> Iterator[Step]:
        if self._progress is None:
            yield Step(None, None)
            return
        task = self._progress.add_task(description, total=total, note="")
        try:
            yield Step(self._progress, task)
        except BaseException:
            self._progress.update(task, note="failed")
            self._progress.stop_task(task)
            raise
        if total is not None:
            self._progress.update(task, completed=total, note="")
        else:
            self._progress.update(task, total=1, completed=1, note="")
