"""The lease and OAuth-token part of the StateStore contract, on every backend in BACKENDS.

Several store instances on one database stand for several worker processes: every instance
has its own connection, so the atomicity asserted here is the database's, not a Python lock's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from pleo_export.state import Lease, StateStore, StoredToken
from tests.state.conftest import Backend

pytestmark = pytest.mark.anyio

NAME = "company:c-1"


@asynccontextmanager
async def _instances(backend: Backend, n: int) -> AsyncIterator[list[StateStore]]:
    stores: list[StateStore] = []
    try:
        for _ in range(n):
            stores.append(await backend.open())
        yield stores
    finally:
        for store in stores:
            await store.close()


def _near(value: datetime, expected: datetime, slack: timedelta = timedelta(seconds=30)) -> bool:
    return abs(value - expected) < slack


# ----------------------------------------------------------------------------- leases


async def test_acquire_free_lease(store: StateStore) -> None:
    before = datetime.now(UTC)
    lease = await store.acquire_lease(NAME, "worker-a", 60)
    assert lease is not None
    assert (lease.name, lease.holder) == (NAME, "worker-a")
    assert lease.fencing_token >= 1
    assert lease.expires_at.utcoffset() == timedelta(0)
    assert _near(lease.expires_at, before + timedelta(seconds=60))


async def test_held_lease_is_refused_to_others_and_extended_for_its_holder(
    store: StateStore,
) -> None:
    first = await store.acquire_lease(NAME, "worker-a", 60)
    assert first is not None
    assert await store.acquire_lease(NAME, "worker-b", 60) is None

    again = await store.acquire_lease(NAME, "worker-a", 120)
    assert again is not None
    assert again.fencing_token == first.fencing_token  # same hands: same token
    assert again.expires_at > first.expires_at
    assert await store.acquire_lease(NAME, "worker-b", 60) is None


async def test_leases_are_independent_by_name(store: StateStore) -> None:
    a = await store.acquire_lease("company:one", "worker-a", 60)
    b = await store.acquire_lease("company:two", "worker-b", 60)
    assert a is not None and b is not None
    assert await store.acquire_lease("company:one", "worker-b", 60) is None
    assert await store.acquire_lease("company:two", "worker-a", 60) is None


async def test_renew_extends_only_for_the_current_holder(store: StateStore) -> None:
    lease = await store.acquire_lease(NAME, "worker-a", 30)
    assert lease is not None
    renewed = await store.renew_lease(lease, 300)
    assert renewed is not None
    assert (renewed.name, renewed.holder, renewed.fencing_token) == (
        lease.name,
        lease.holder,
        lease.fencing_token,
    )
    assert renewed.expires_at > lease.expires_at
    assert _near(renewed.expires_at, datetime.now(UTC) + timedelta(seconds=300))

    impostor = Lease(NAME, "worker-b", renewed.expires_at, renewed.fencing_token)
    assert await store.renew_lease(impostor, 300) is None
    stale_token = Lease(NAME, "worker-a", renewed.expires_at, renewed.fencing_token + 1)
    assert await store.renew_lease(stale_token, 300) is None
    never_taken = Lease("company:other", "worker-a", renewed.expires_at, 1)
    assert await store.renew_lease(never_taken, 300) is None


async def test_expired_lease_is_taken_over_with_a_higher_token(
    store: StateStore, backend: Backend
) -> None:
    async with _instances(backend, 1) as [other]:
        dead = await store.acquire_lease(NAME, "dead-worker", 0.2)
        assert dead is not None
        assert await other.acquire_lease(NAME, "survivor", 60) is None
        await anyio.sleep(0.4)  # the holder never renews: the lease expires

        taken = await other.acquire_lease(NAME, "survivor", 60)
        assert taken is not None
        assert taken.holder == "survivor"
        assert taken.fencing_token > dead.fencing_token

        # the old holder has lost it for good: no renewal, and its release frees nothing
        assert await store.renew_lease(dead, 60) is None
        await store.release_lease(dead)
        assert await store.acquire_lease(NAME, "third", 60) is None
        assert await store.acquire_lease(NAME, "dead-worker", 60) is None


async def test_expired_lease_cannot_be_renewed_even_if_nobody_took_it(store: StateStore) -> None:
    lease = await store.acquire_lease(NAME, "worker-a", 0.2)
    assert lease is not None
    await anyio.sleep(0.4)
    assert await store.renew_lease(lease, 60) is None
    # but its holder may take it again
    again = await store.acquire_lease(NAME, "worker-a", 60)
    assert again is not None


async def test_release_frees_the_lease(store: StateStore, backend: Backend) -> None:
    async with _instances(backend, 1) as [other]:
        lease = await store.acquire_lease(NAME, "worker-a", 60)
        assert lease is not None
        await store.release_lease(lease)
        await store.release_lease(lease)  # twice is harmless
        taken = await other.acquire_lease(NAME, "worker-b", 60)
        assert taken is not None
        assert taken.holder == "worker-b"
        assert await store.renew_lease(lease, 60) is None  # released means lost


async def test_exactly_one_of_many_concurrent_workers_gets_the_lease(backend: Backend) -> None:
    n = 6
    for round_ in range(3):
        name = f"company:race-{round_}"
        async with _instances(backend, n) as stores:
            won: list[Lease] = []

            async def contend(
                store: StateStore, holder: str, name: str = name, won: list[Lease] = won
            ) -> None:
                lease = await store.acquire_lease(name, holder, 60)
                if lease is not None:
                    won.append(lease)

            async with anyio.create_task_group() as tg:
                for index, store in enumerate(stores):
                    tg.start_soon(contend, store, f"worker-{index}")
            assert len(won) == 1, won
            for index, store in enumerate(stores):
                if f"worker-{index}" != won[0].holder:
                    assert await store.acquire_lease(name, f"worker-{index}", 60) is None


async def test_lease_survives_reopening(store: StateStore, backend: Backend) -> None:
    lease = await store.acquire_lease(NAME, "worker-a", 60)
    assert lease is not None
    await store.close()
    async with _instances(backend, 1) as [reopened]:
        assert await reopened.acquire_lease(NAME, "worker-b", 60) is None
        renewed = await reopened.renew_lease(lease, 60)
        assert renewed is not None
        assert renewed.fencing_token == lease.fencing_token


# ----------------------------------------------------------------------------- tokens


def _token(
    access: str, refresh: str, *, generation: int = 0, scope: str | None = None
) -> StoredToken:
    return StoredToken(
        key="install-1",
        access_token=access,
        refresh_token=refresh,
        expires_at=datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        generation=generation,
        scope=scope,
    )


async def test_first_token_is_stored_once(store: StateStore) -> None:
    assert await store.get_token("install-1") is None
    assert await store.replace_token("install-1", None, _token("a1", "r1", scope="x y")) is True
    stored = await store.get_token("install-1")
    assert stored is not None
    assert (stored.key, stored.access_token, stored.refresh_token, stored.scope) == (
        "install-1",
        "a1",
        "r1",
        "x y",
    )
    assert stored.generation == 1
    assert stored.expires_at == datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert stored.expires_at.utcoffset() == timedelta(0)

    # a second "first" write loses: someone stored tokens already
    assert await store.replace_token("install-1", None, _token("a-other", "r-other")) is False
    assert await store.get_token("install-1") == stored


async def test_replace_compares_the_generation(store: StateStore) -> None:
    await store.replace_token("install-1", None, _token("a1", "r1"))
    assert await store.replace_token("install-1", 1, _token("a2", "r2")) is True
    second = await store.get_token("install-1")
    assert second is not None
    assert (second.access_token, second.refresh_token, second.generation) == ("a2", "r2", 2)
    assert second.scope is None

    # a slower process that read generation 1 must not write its (spent) pair back
    assert await store.replace_token("install-1", 1, _token("a-stale", "r-stale")) is False
    assert await store.replace_token("install-1", 7, _token("a-bad", "r-bad")) is False
    assert await store.get_token("install-1") == second
    # the token's own generation field is ignored: the store counts
    assert await store.replace_token("install-1", 2, _token("a3", "r3", generation=99)) is True
    third = await store.get_token("install-1")
    assert third is not None
    assert third.generation == 3


async def test_replace_of_unknown_key_with_expected_generation_fails(store: StateStore) -> None:
    assert await store.replace_token("nobody", 1, _token("a", "r")) is False
    assert await store.get_token("nobody") is None


async def test_tokens_are_kept_per_key(store: StateStore) -> None:
    await store.replace_token("install-1", None, _token("a1", "r1"))
    await store.replace_token("install-2", None, _token("b1", "s1"))
    one, two = await store.get_token("install-1"), await store.get_token("install-2")
    assert one is not None and two is not None
    assert (one.key, one.access_token) == ("install-1", "a1")
    assert (two.key, two.access_token) == ("install-2", "b1")


async def test_naive_expiry_is_taken_as_utc(store: StateStore) -> None:
    naive = StoredToken("install-1", "a", "r", datetime(2031, 1, 2, 3, 4, 5), 0)
    await store.replace_token("install-1", None, naive)
    stored = await store.get_token("install-1")
    assert stored is not None
    assert stored.expires_at == datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_concurrent_refreshes_have_one_winner(backend: Backend) -> None:
    async with _instances(backend, 4) as stores:
        await stores[0].replace_token("install-1", None, _token("a1", "r1"))
        results: dict[int, bool] = {}
        seen = [await store.get_token("install-1") for store in stores]  # all read generation 1

        async def refresh(index: int, store: StateStore) -> None:
            current = seen[index]
            assert current is not None
            results[index] = await store.replace_token(
                "install-1", current.generation, _token(f"a-{index}", f"r-{index}")
            )

        async with anyio.create_task_group() as tg:
            for index, store in enumerate(stores):
                tg.start_soon(refresh, index, store)
        winners = [index for index, ok in results.items() if ok]
        assert len(results) == 4
        assert len(winners) == 1, results
        stored = await stores[1].get_token("install-1")
        assert stored is not None
        assert stored.generation == 2
        assert stored.access_token == f"a-{winners[0]}"
