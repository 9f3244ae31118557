"""Fixtures for the backend-agnostic state store suite.

Every test in ``test_contract.py`` runs once per backend in :data:`BACKENDS`. A backend is a
function that, given pytest's ``tmp_path``, returns the URL of a fresh, empty database for one
test; tests open stores through :func:`pleo_export.state.open_store`, so a second instance (or a
child process) can open the same database. To run the suite against PostgreSQL, add a factory
that creates a throwaway database (or schema) and returns its ``postgresql://`` URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pleo_export.state import StateStore, open_store


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path.resolve() / 'state' / 'pleo-export.db'}"


BACKENDS: dict[str, Callable[[Path], str]] = {
    "sqlite": _sqlite_url,
}


@dataclass
class Backend:
    """One backend under test, pointing at a database private to the current test."""

    name: str
    url: str

    async def open(self) -> StateStore:
        """A new, opened store instance on this test's database."""
        store = open_store(self.url)
        await store.open()
        return store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    return Backend(name=name, url=BACKENDS[name](tmp_path))


@pytest.fixture
async def store(backend: Backend, anyio_backend: str) -> AsyncIterator[StateStore]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
