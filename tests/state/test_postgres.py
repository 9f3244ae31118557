"""PostgreSQL-specific behaviour: URLs, schema versioning, concurrent migration, lost
connections, cancellation and secrets in messages. The shared semantics are in
``test_contract.py`` and ``test_leases_tokens.py``."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator

import anyio
import pytest

from pleo_export.state import StateStoreError, open_store, redact_url
from pleo_export.state.postgres import (
    INSTALL_HINT,
    SCHEMA_VERSION,
    PostgresStateStore,
    parse_url,
)
from tests.support.postgres import postgres_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.anyio


def _schema_url(database: str) -> str:
    return f"{database}?schema=st_{secrets.token_hex(5)}"


@pytest.fixture
async def pg(postgres_state_database: str, anyio_backend: str) -> AsyncIterator[PostgresStateStore]:
    store = PostgresStateStore(_schema_url(postgres_state_database))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _scalar(url: str, query: str) -> object:
    import psycopg

    conninfo, schema, _ = parse_url(url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        if schema:
            await conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
        row = await (await conn.execute(query)).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]


# ----------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "conninfo", "schema", "durability"),
    [
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db", None, "server"),
        ("postgres://u@h/db?schema=pleo_x", "postgresql://u@h/db", "pleo_x", "server"),
        (
            "postgresql://u@h/db?sslmode=disable&schema=s1&durability=process&application_name=p",
            "postgresql://u@h/db?sslmode=disable&application_name=p",
            "s1",
            "process",
        ),
        ("postgresql://u@h/db?durability=server", "postgresql://u@h/db", None, "server"),
    ],
)
def test_parse_url(url: str, conninfo: str, schema: str | None, durability: str) -> None:
    assert parse_url(url) == (conninfo, schema, durability)
    store = open_store(url)
    assert isinstance(store, PostgresStateStore)
    assert (store.schema, store.durability) == (schema, durability)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:hunter22@h:5432", "names no database"),
        ("postgresql://u:hunter22@h/", "names no database"),
        ("postgresql://u:hunter22@h/db?schema=Bad-Name", "not a plain identifier"),
        ("postgresql://u:hunter22@h/db?schema=1abc", "not a plain identifier"),
        ("postgresql://u@h/db?schema=x&password=hunter22&schema=", "not a plain identifier"),
        ("postgresql://u:hunter22@h/db?durability=power", "'server' or 'process', not 'power'"),
    ],
)
def test_bad_urls_are_refused_without_showing_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        open_store(url)
    assert "hunter22" not in str(excinfo.value)
    assert "***" in str(excinfo.value)


def test_redact_url() -> None:
    assert (
        redact_url("postgresql://u:p%40ss@h:1/db?schema=s") == "postgresql://u:***@h:1/db?schema=s"
    )
    assert redact_url("postgresql://u@h/db?password=pw&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("sqlite:///state.db") == "sqlite:///state.db"
    assert redact_url("state/pleo.db") == "state/pleo.db"
    assert "pw" not in repr(PostgresStateStore("postgresql://u:pw12@h/db"))


# ----------------------------------------------------------------------------- schema


async def test_default_schema_holds_the_tables(postgres_url: str) -> None:  # noqa: F811
    store = open_store(postgres_url)
    await store.open()
    try:
        await store.upsert_job("j", "c")
    finally:
        await store.close()
    assert await _scalar(postgres_url, "SELECT version FROM public.schema_version") == (
        SCHEMA_VERSION
    )
    assert await _scalar(postgres_url, "SELECT count(*) FROM public.jobs") == 1


async def test_schemas_keep_installations_apart(postgres_state_database: str) -> None:
    first = PostgresStateStore(_schema_url(postgres_state_database))
    second = PostgresStateStore(_schema_url(postgres_state_database))
    await first.open()
    await second.open()
    try:
        await first.upsert_job("job-1", "c")
        assert await second.get_job("job-1") is None
        assert [j.job_id for j in await first.recent_jobs()] == ["job-1"]
    finally:
        await first.close()
        await second.close()


async def test_many_processes_migrating_at_once_do_not_collide(
    postgres_state_database: str,
) -> None:
    url = _schema_url(postgres_state_database)
    stores = [PostgresStateStore(url) for _ in range(8)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.open)
        await stores[0].upsert_job("j", "c")
        assert await stores[7].get_job("j") is not None
    finally:
        for store in stores:
            await store.close()
    assert await _scalar(url, "SELECT count(*) FROM schema_version") == 1
    assert await _scalar(url, "SELECT version FROM schema_version") == SCHEMA_VERSION


async def test_newer_schema_version_is_refused(pg: PostgresStateStore) -> None:
    import psycopg

    conninfo, schema, _ = parse_url(pg.url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
        await conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    newer = PostgresStateStore(pg.url)
    with pytest.raises(StateStoreError, match="upgrade pleo-export") as excinfo:
        await newer.open()
    assert pg.url in str(excinfo.value)


async def test_open_is_idempotent_and_close_twice_is_harmless(pg: PostgresStateStore) -> None:
    await pg.open()
    await pg.upsert_job("j", "c")
    await pg.close()
    await pg.close()
    with pytest.raises(StateStoreError, match=r"await store\.open"):
        await pg.get_job("j")
    await pg.open()
    assert await pg.get_job("j") is not None


# ----------------------------------------------------------------------------- failures


async def test_unreachable_server_names_the_url_but_not_the_password(anyio_backend: str) -> None:
    store = open_store("postgresql://pleo:s3cret-pw@127.0.0.1:1/pleo?connect_timeout=2")
    with pytest.raises(StateStoreError) as excinfo:
        await store.open()
    message = str(excinfo.value)
    assert "s3cret-pw" not in message
    assert "postgresql://pleo:***@127.0.0.1:1/pleo" in message
    assert "running and reachable" in message


async def test_missing_database_says_to_create_it(postgres_state_database: str) -> None:
    base = postgres_state_database.rsplit("/", 1)[0]
    store = open_store(f"{base}/pleo_export_no_such_db_{secrets.token_hex(3)}")
    with pytest.raises(StateStoreError, match="create the database"):
        await store.open()


async def test_missing_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    store = open_store("postgresql://u@127.0.0.1/db")
    with pytest.raises(StateStoreError) as excinfo:
        await store.open()
    assert INSTALL_HINT in str(excinfo.value)
    assert "pip install 'pleo-export[postgresql]'" in str(excinfo.value)


async def test_lost_connection_is_replaced_on_the_next_call(pg: PostgresStateStore) -> None:
    import psycopg

    await pg.upsert_job("j", "c")
    await pg.add_items("j", [("a", "pending")])
    conninfo = parse_url(pg.url).conninfo
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StateStoreError, match="connection"):
        await pg.record_intent("j", "a")
    await pg.record_intent("j", "a")  # a fresh connection
    item = await pg.get_item("j", "a")
    assert item is not None
    assert item.attempts == 1  # the failed call wrote nothing


async def test_cancelled_bulk_write_stores_nothing_and_leaves_the_store_usable(
    pg: PostgresStateStore,
) -> None:
    await pg.upsert_job("j", "c")
    with anyio.move_on_after(0.05) as scope:
        await pg.add_items("j", ((f"e{n}", "pending") for n in range(300_000)))
    assert scope.cancelled_caught
    assert (await pg.counts("j")).total == 0
    await pg.add_items("j", [("after", "pending")])
    assert [i.accounting_entry_id for i in await pg.items("j")] == ["after"]


async def test_process_durability_turns_synchronous_commit_off(
    postgres_state_database: str,
) -> None:
    store = PostgresStateStore(f"{_schema_url(postgres_state_database)}&durability=process")
    await store.open()
    try:
        async with store._session("read a setting", write=False) as conn:  # white-box
            row = await (await conn.execute("SHOW synchronous_commit")).fetchone()
        assert row is not None
        assert row["synchronous_commit"] == "off"
        await store.upsert_job("j", "c")
        assert await store.get_job("j") is not None
    finally:
        await store.close()


async def test_key_errors_do_not_break_the_connection(pg: PostgresStateStore) -> None:
    await pg.upsert_job("j", "c")
    with pytest.raises(KeyError, match="ghost"):
        await pg.record_intent("j", "ghost")
    with pytest.raises(KeyError, match="nope"):
        await pg.finish_job("nope", "completed")
    await pg.add_items("j", [("a", "pending")])
    assert (await pg.counts("j")).total == 1
