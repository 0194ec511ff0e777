"""What every `estate` command module shares: the --root option, one-line failures, the guard that turns bad input
into exit 2, and loading the estate. estate.cli and each estate.cli_* module import it; it imports no command.

Heavy modules (pydantic models, rich) are imported inside the functions that use them, so that `estate --help`
stays fast; each such import points down the layers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from estate.errors import EstateError

if TYPE_CHECKING:
    from estate.loader import Estate

RootOpt = Annotated[
    Path | None,
    typer.Option("--root", help="Repo root (default: $ESTATE_ROOT or the folder holding framework.yaml)."),
]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def guarded(func: F) -> F:
    """Turn bad input (EstateError) into its lines on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EstateError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def load(root: Path | None) -> Estate:
    from estate.loader import load_estate

    return load_estate(root)


def console() -> Any:
    from rich.console import Console

    return Console()
