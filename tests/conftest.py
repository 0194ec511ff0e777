"""Shared fixtures: the repo's estate, and a throwaway copy of it to break."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from estate.loader import Estate, load_estate

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def estate() -> Estate:
    return load_estate(REPO)


@pytest.fixture
def repo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of framework.yaml and inventories/ in a temp folder, which is also the cwd."""
    shutil.copy(REPO / "framework.yaml", tmp_path / "framework.yaml")
    shutil.copytree(REPO / "inventories", tmp_path / "inventories")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESTATE_ROOT", raising=False)
    yield tmp_path
