"""Fixtures for the backend-agnostic state store suite.

Every test in ``test_contract.py`` and ``test_leases_tokens.py`` runs once per backend in
:data:`BACKENDS`. A backend is a function that, given the pytest request and ``tmp_path``,
returns the URL of a fresh, empty database for one test; tests open stores through
:func:`pleo_export.state.open_store`, so a second instance (or a child process) can open the
same database.

PostgreSQL: one throwaway database per session (``tests/support/postgres.py``), and a fresh
schema in it per test (``?schema=t_<random>``). Without a reachable server the PostgreSQL
cases skip (fail under ``CI``).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pleo_export.state import StateStore, open_store
from tests.support.postgres import fresh_database


def _sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path.resolve() / 'state' / 'pleo-export.db'}"


def _postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    database: str = request.getfixturevalue("postgres_state_database")
    return f"{database}?schema=t_{secrets.token_hex(6)}"


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "sqlite": _sqlite_url,
    "postgresql": _postgres_url,
}


@pytest.fixture(scope="session")
def postgres_state_database() -> Iterator[str]:
    """One PostgreSQL database for the state suite; each test gets its own schema in it."""
    with fresh_database("state") as url:
        yield url


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
    return Backend(name=name, url=BACKENDS[name](request, tmp_path))


@pytest.fixture
async def store(backend: Backend, anyio_backend: str) -> AsyncIterator[StateStore]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
