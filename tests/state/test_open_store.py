"""URL parsing of :func:`pleo_export.state.open_store`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pleo_export.state import StateStore, open_store
from pleo_export.state.sqlite import SQLiteStateStore

pytestmark = pytest.mark.anyio


def _sqlite(store: StateStore) -> SQLiteStateStore:
    assert isinstance(store, SQLiteStateStore)
    return store


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relative/path.db", "relative/path.db"),
        ("sqlite:///state.db", "state.db"),
        ("sqlite:////abs/path.db", "/abs/path.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("relative/path.db", "relative/path.db"),
        ("/abs/path.db", "/abs/path.db"),
        ("state.db", "state.db"),
    ],
)
def test_sqlite_forms(url: str, path: str) -> None:
    store = _sqlite(open_store(url))
    assert store.path == path
    assert store.durability == "process"


@pytest.mark.parametrize(
    ("url", "durability"),
    [
        ("sqlite:///s.db?durability=power", "power"),
        ("sqlite:////s.db?durability=process", "process"),
        ("sqlite:///s.db?", "process"),
    ],
)
def test_durability_parameter(url: str, durability: str) -> None:
    store = _sqlite(open_store(url))
    assert store.path == "s.db" or store.path == "/s.db"
    assert store.durability == durability


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/pleo", "unsupported state store URL scheme 'mysql'"),
        ("mysql://user:hunter22@db/pleo", r"'mysql://user:\*\*\*@db/pleo'"),
        ("sqlite+pysqlite:///s.db", "unsupported state store URL scheme"),
        ("sqlite://host/s.db", "has a host part"),
        ("sqlite://", "has a host part"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///?durability=power", "names no database file"),
        ("", "empty state store URL"),
        ("   ", "empty state store URL"),
    ],
)
def test_errors_name_the_supported_forms(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        open_store(url)
    text = str(excinfo.value)
    for form in (
        "sqlite:///relative/path.db",
        "sqlite:////absolute/path.db",
        "bare filesystem",
        "postgresql://user@host:5432/dbname",
    ):
        assert form in text
    assert "hunter22" not in text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///s.db?durability=sometimes", "must be 'process' or 'power', not 'sometimes'"),
        ("sqlite:///s.db?mode=ro", "unknown parameter 'mode'"),
    ],
)
def test_bad_query_parameters(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


async def test_relative_url_opens_relative_to_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/state.db")
    await store.open()
    try:
        await store.upsert_job("j", "c")
    finally:
        await store.close()
    assert (tmp_path / "data" / "state.db").is_file()


async def test_absolute_url_opens_that_file(tmp_path: Path, anyio_backend: str) -> None:
    target = tmp_path / "abs" / "state.db"
    store = open_store(f"sqlite:///{target}")  # target starts with "/": four slashes
    await store.open()
    await store.close()
    assert target.is_file()
