"""SQLite-specific behaviour: pragmas, schema versioning, file handling and errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from pleo_export.state import ItemOutcome, ItemPhase, StateStoreError
from pleo_export.state.sqlite import SCHEMA_VERSION, SQLiteStateStore, migrate

pytestmark = pytest.mark.anyio


def _pragma(store: SQLiteStateStore, name: str) -> object:
    # white-box: the connection's per-connection settings are not part of the public API
    return store._connection().execute(f"PRAGMA {name}").fetchone()[0]


async def test_creates_parent_directories_wal_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    store = SQLiteStateStore(path)
    assert store.path == str(path)
    assert store.durability == "process"
    await store.open()
    try:
        assert path.is_file()
        assert _pragma(store, "journal_mode") == "wal"
        assert _pragma(store, "synchronous") == 1  # NORMAL
        assert _pragma(store, "user_version") == SCHEMA_VERSION
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    raw.close()
    assert {"jobs", "items", "counters", "items_unreported"} <= tables


async def test_power_durability_uses_synchronous_full(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "s.db", durability="power")
    await store.open()
    try:
        assert store.durability == "power"
        assert _pragma(store, "synchronous") == 2  # FULL
        assert _pragma(store, "journal_mode") == "wal"
    finally:
        await store.close()


def test_rejects_unknown_durability(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'process' or 'power'"):
        SQLiteStateStore(tmp_path / "s.db", durability="paranoid")  # type: ignore[arg-type]


def test_migrate_is_idempotent_on_a_raw_connection(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    try:
        assert migrate(conn) == 0
        assert migrate(conn) == SCHEMA_VERSION
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT value FROM counters").fetchall() == [(0,)]
    finally:
        conn.close()


async def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteStateStore(path)
    with pytest.raises(StateStoreError, match="upgrade pleo-export") as excinfo:
        await store.open()
    assert str(path) in str(excinfo.value)


async def test_corrupt_file_raises_state_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(StateStoreError, match="move it aside") as excinfo:
        await SQLiteStateStore(path).open()
    assert str(path) in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, sqlite3.DatabaseError)


async def test_unwritable_location_raises_state_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    path = blocker / "sub" / "state.db"
    with pytest.raises(StateStoreError, match="writable location") as excinfo:
        await SQLiteStateStore(path).open()
    assert str(path) in str(excinfo.value)


async def test_directory_instead_of_file_raises_state_store_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="writable") as excinfo:
        await SQLiteStateStore(tmp_path).open()
    assert str(tmp_path) in str(excinfo.value)


async def test_use_before_open_or_after_close_raises(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "s.db")
    with pytest.raises(StateStoreError, match="not open"):
        await store.get_job("j")
    await store.open()
    await store.close()
    with pytest.raises(StateStoreError, match=r"await store\.open"):
        await store.upsert_job("j", "c")


async def test_in_memory_store(tmp_path: Path) -> None:
    store = SQLiteStateStore(":memory:")
    await store.open()
    try:
        await store.upsert_job("j", "c")
        await store.add_items("j", [("a", "pending")])
        await store.record_intent("j", "a")
        await store.record_outcome("j", "a", ItemOutcome(succeeded=True))
        assert [i.phase for i in await store.unreported("j")] == [ItemPhase.SUCCEEDED]
    finally:
        await store.close()
    assert [entry async for entry in anyio.Path(tmp_path).iterdir()] == []


async def test_writes_are_committed_before_returning(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStateStore(path)
    await store.open()
    try:
        await store.upsert_job("j", "c")
        await store.add_items("j", [("a", "pending")])
        await store.record_intent("j", "a")
        # a plain sqlite3 reader, not the store, sees the intent while the store is open
        raw = sqlite3.connect(path)
        try:
            row = raw.execute(
                "SELECT phase, attempts FROM items WHERE accounting_entry_id = 'a'"
            ).fetchone()
        finally:
            raw.close()
        assert row == ("posting", 1)
    finally:
        await store.close()


async def test_write_errors_are_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStateStore(path)
    await store.open()
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        store._connection().execute("PRAGMA busy_timeout = 50")
        with pytest.raises(StateStoreError, match="only one pleo-export worker") as excinfo:
            await store.upsert_job("j", "c")
        assert str(path) in str(excinfo.value)
        blocker.execute("ROLLBACK")
        await store.upsert_job("j", "c")  # usable again once the lock is gone
    finally:
        blocker.close()
        await store.close()
