"""``get_items``: one page of items read at once, on every backend."""

from __future__ import annotations

import pytest

from pleo_export.state import ItemOutcome, ItemPhase, StateStore

pytestmark = pytest.mark.anyio


async def test_get_items_returns_known_items_by_id_with_their_phase(store: StateStore) -> None:
    await store.upsert_job("job-1", "company-1")
    await store.upsert_job("job-2", "company-1")
    await store.add_items("job-1", [("a", "pending"), ("b", "pending"), ("c", "successful")])
    await store.add_items("job-2", [("d", "pending")])
    await store.record_intent("job-1", "b")
    await store.record_outcome("job-1", "a", ItemOutcome(succeeded=True, external_id="X-1"))

    found = await store.get_items("job-1", ["a", "b", "c", "d", "missing"])

    assert set(found) == {"a", "b", "c"}  # d belongs to another job
    assert found["a"].phase is ItemPhase.SUCCEEDED
    assert found["a"].outcome is not None and found["a"].outcome.external_id == "X-1"
    assert found["b"].phase is ItemPhase.POSTING
    assert found["c"].phase is ItemPhase.SKIPPED
    assert await store.get_items("job-1", []) == {}


async def test_get_items_reads_pages_larger_than_one_chunk(store: StateStore) -> None:
    await store.upsert_job("job-big", "company-1")
    ids = [f"entry-{n:05d}" for n in range(4_500)]
    await store.add_items("job-big", [(i, "pending") for i in ids])
    found = await store.get_items("job-big", ids)
    assert len(found) == len(ids)
    assert all(record.phase is ItemPhase.QUEUED for record in found.values())
