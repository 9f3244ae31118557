"""The StateStore contract, run against every backend in ``conftest.BACKENDS``.

Nothing here may depend on a particular backend: stores are reached through the ``store``
fixture or ``backend.open()`` (a second instance on the same database).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from pleo_export.pleo.models import ExportJobItemFailureReasonType
from pleo_export.state import ItemOutcome, ItemPhase, JobCounts, StateStore
from tests.state.conftest import Backend

pytestmark = pytest.mark.anyio

JOB = "job-1"
CHILD = Path(__file__).with_name("_crash_child.py")


def _assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


async def _phases(store: StateStore, job_id: str = JOB) -> dict[str, ItemPhase]:
    return {item.accounting_entry_id: item.phase for item in await store.items(job_id)}


async def _job_with_items(store: StateStore, *entries: tuple[str, str]) -> None:
    await store.upsert_job(JOB, "company-1")
    await store.add_items(JOB, entries)


# ----------------------------------------------------------------------------- schema / open


async def test_open_is_idempotent_and_keeps_data(store: StateStore, backend: Backend) -> None:
    await store.upsert_job(JOB, "company-1")
    await store.open()  # again, on an open store
    second = await backend.open()  # schema already present
    try:
        await second.open()
        job = await second.get_job(JOB)
        assert job is not None
        assert job.company_id == "company-1"
    finally:
        await second.close()
    await store.close()
    await store.close()  # closing twice is harmless
    third = await backend.open()
    try:
        assert [job.job_id for job in await third.recent_jobs()] == [JOB]
    finally:
        await third.close()


# ----------------------------------------------------------------------------- jobs


async def test_upsert_job_creates_once(store: StateStore) -> None:
    assert await store.get_job(JOB) is None
    created = await store.upsert_job(JOB, "company-1")
    assert created.job_id == JOB
    assert created.company_id == "company-1"
    assert created.started_by_us is False
    assert created.final_event is None
    assert created.final_reason is None
    _assert_utc(created.created_at)
    _assert_utc(created.updated_at)
    assert abs(datetime.now(UTC) - created.created_at) < timedelta(minutes=1)

    again = await store.upsert_job(JOB, "other-company")
    assert again == created
    assert await store.get_job(JOB) == created


async def test_mark_started_and_finish_job(store: StateStore) -> None:
    created = await store.upsert_job(JOB, "company-1")
    await store.mark_started(JOB)
    started = await store.get_job(JOB)
    assert started is not None
    assert started.started_by_us is True
    assert started.final_event is None
    assert started.updated_at >= created.updated_at

    await store.finish_job(JOB, "completed_with_errors", reason="2 items failed")
    finished = await store.get_job(JOB)
    assert finished is not None
    assert finished.final_event == "completed_with_errors"
    assert finished.final_reason == "2 items failed"
    assert finished.started_by_us is True
    assert finished.created_at == created.created_at
    _assert_utc(finished.updated_at)

    # upsert after finishing does not reset anything
    assert await store.upsert_job(JOB, "company-1") == finished


async def test_finish_job_without_reason(store: StateStore) -> None:
    await store.upsert_job(JOB, "company-1")
    await store.finish_job(JOB, "completed")
    job = await store.get_job(JOB)
    assert job is not None
    assert (job.final_event, job.final_reason, job.started_by_us) == ("completed", None, False)


async def test_unknown_job_updates_raise_key_error(store: StateStore) -> None:
    with pytest.raises(KeyError, match="nope"):
        await store.mark_started("nope")
    with pytest.raises(KeyError, match="nope"):
        await store.finish_job("nope", "failed")
    assert await store.get_job("nope") is None
    assert await store.recent_jobs() == []


async def test_recent_jobs_newest_first_with_limit(store: StateStore) -> None:
    ids = [f"job-{n}" for n in range(5)]
    for job_id in ids:
        await store.upsert_job(job_id, "company-1")
    await store.upsert_job("job-0", "company-1")  # re-upsert does not make it newer
    await store.finish_job("job-1", "completed")  # nor does updating it

    assert [job.job_id for job in await store.recent_jobs()] == ids[::-1]
    assert [job.job_id for job in await store.recent_jobs(limit=2)] == ["job-4", "job-3"]


# ----------------------------------------------------------------------------- add_items


async def test_add_items_initial_phases_and_order(store: StateStore) -> None:
    entries = [
        ("zeta", "pending"),
        ("alpha", "successful"),
        ("mid", "in_progress"),
        ("beta", "failed"),
        ("aaa", "abandoned"),
        ("omega", "pending"),
    ]
    await _job_with_items(store, *entries)

    items = await store.items(JOB)
    assert [(i.accounting_entry_id, i.pleo_status) for i in items] == entries
    assert [i.phase for i in items] == [
        ItemPhase.QUEUED,
        ItemPhase.SKIPPED,
        ItemPhase.QUEUED,
        ItemPhase.SKIPPED,
        ItemPhase.SKIPPED,
        ItemPhase.QUEUED,
    ]
    for item in items:
        assert item.job_id == JOB
        assert item.attempts == 0
        assert item.outcome is None
        assert item.reported is False
        _assert_utc(item.updated_at)
    assert await store.get_item(JOB, "mid") == items[2]
    assert await store.get_item(JOB, "missing") is None
    assert await store.get_item("other-job", "mid") is None


async def test_add_items_accepts_a_generator_and_empty_input(store: StateStore) -> None:
    await store.upsert_job(JOB, "company-1")
    await store.add_items(JOB, [])
    await store.add_items(JOB, ((f"e{n}", "pending") for n in range(3)))
    assert [i.accounting_entry_id for i in await store.items(JOB)] == ["e0", "e1", "e2"]


async def test_re_adding_items_keeps_phases_and_outcomes(store: StateStore) -> None:
    await _job_with_items(store, ("a", "pending"), ("b", "pending"), ("c", "pending"))
    await store.record_intent(JOB, "a")  # uncertain
    await store.record_intent(JOB, "b")
    outcome = ItemOutcome(succeeded=True, external_id="X-1")
    await store.record_outcome(JOB, "b", outcome)
    before = {i.accounting_entry_id: i for i in await store.items(JOB)}

    # a resumed job re-reads the control layer: new order, refreshed statuses, a new item
    await store.add_items(JOB, [("d", "pending"), ("c", "in_progress"), ("b", "in_progress")])
    await store.add_items(JOB, [("a", "in_progress")])

    items = await store.items(JOB)
    assert [i.accounting_entry_id for i in items] == ["a", "b", "c", "d"]  # first-add order
    by_id = {i.accounting_entry_id: i for i in items}
    assert by_id["a"].phase is ItemPhase.POSTING
    assert by_id["a"].attempts == 1
    assert by_id["a"].pleo_status == "in_progress"
    assert by_id["b"].phase is ItemPhase.SUCCEEDED
    assert by_id["b"].outcome == outcome
    assert by_id["b"].reported is False
    assert by_id["b"].attempts == 1
    assert by_id["c"].phase is ItemPhase.QUEUED
    assert by_id["c"].pleo_status == "in_progress"
    assert by_id["d"].phase is ItemPhase.QUEUED
    assert [i.accounting_entry_id for i in await store.unreported(JOB)] == ["b"]
    assert before["b"].outcome == by_id["b"].outcome


async def test_re_adding_with_final_status_skips_only_items_without_outcome(
    store: StateStore,
) -> None:
    await _job_with_items(
        store, ("queued", "pending"), ("posting", "pending"), ("done", "pending"), ("bad", "x")
    )
    await store.record_intent(JOB, "posting")
    await store.record_intent(JOB, "done")
    await store.record_outcome(JOB, "done", ItemOutcome(succeeded=True, external_id="1"))
    await store.record_outcome(JOB, "bad", ItemOutcome(succeeded=False, failure_reason="no"))

    await store.add_items(
        JOB,
        [
            ("queued", "successful"),
            ("posting", "abandoned"),
            ("done", "successful"),
            ("bad", "failed"),
        ],
    )
    assert await _phases(store) == {
        "queued": ItemPhase.SKIPPED,
        "posting": ItemPhase.SKIPPED,
        "done": ItemPhase.SUCCEEDED,
        "bad": ItemPhase.FAILED,
    }
    done = await store.get_item(JOB, "done")
    assert done is not None
    assert done.pleo_status == "successful"
    assert done.outcome == ItemOutcome(succeeded=True, external_id="1")
    assert done.attempts == 1


async def test_re_adding_unchanged_items_changes_nothing(store: StateStore) -> None:
    await _job_with_items(store, ("a", "pending"), ("b", "successful"))
    before = await store.items(JOB)
    await store.add_items(JOB, [("a", "pending"), ("b", "successful")])
    assert await store.items(JOB) == before


async def test_add_items_is_atomic_per_call(store: StateStore) -> None:
    await _job_with_items(store, ("kept", "pending"))

    def broken_page() -> Iterator[tuple[str, str]]:
        for n in range(5_000):
            yield (f"e{n}", "pending")
        raise RuntimeError("control layer went away")

    with pytest.raises(RuntimeError, match="went away"):
        await store.add_items(JOB, broken_page())
    assert [i.accounting_entry_id for i in await store.items(JOB)] == ["kept"]
    await store.add_items(JOB, [("next", "pending")])  # the store is still usable
    assert (await store.counts(JOB)).total == 2


async def test_jobs_do_not_share_items(store: StateStore) -> None:
    await store.upsert_job("job-a", "company-1")
    await store.upsert_job("job-b", "company-1")
    await store.add_items("job-a", [("same", "pending")])
    await store.add_items("job-b", [("same", "successful")])
    await store.record_intent("job-a", "same")
    await store.record_outcome("job-a", "same", ItemOutcome(succeeded=True))

    assert await _phases(store, "job-a") == {"same": ItemPhase.SUCCEEDED}
    assert await _phases(store, "job-b") == {"same": ItemPhase.SKIPPED}
    assert await store.unreported("job-b") == []
    await store.mark_reported("job-b", ["same"])
    assert [i.accounting_entry_id for i in await store.unreported("job-a")] == ["same"]


async def test_items_filtered_by_phase(store: StateStore) -> None:
    await _job_with_items(
        store, ("q1", "pending"), ("s", "successful"), ("p", "pending"), ("q2", "pending")
    )
    await store.record_intent(JOB, "p")

    queued = await store.items(JOB, [ItemPhase.QUEUED])
    assert [i.accounting_entry_id for i in queued] == ["q1", "q2"]
    mixed = await store.items(JOB, (ItemPhase.POSTING, ItemPhase.QUEUED))
    assert [i.accounting_entry_id for i in mixed] == ["q1", "p", "q2"]
    assert await store.items(JOB, [ItemPhase.FAILED]) == []
    assert await store.items(JOB, []) == []
    assert len(await store.items(JOB, None)) == 4


# ----------------------------------------------------------------------------- the outbox


async def test_intent_outcome_report_flow(store: StateStore) -> None:
    await _job_with_items(store, ("a", "pending"), ("b", "pending"), ("c", "pending"))

    await store.record_intent(JOB, "a")
    a = await store.get_item(JOB, "a")
    assert a is not None
    assert (a.phase, a.attempts, a.outcome, a.reported) == (ItemPhase.POSTING, 1, None, False)
    assert await store.unreported(JOB) == []

    exported_at = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    ok = ItemOutcome(
        succeeded=True,
        external_id="INV-1",
        external_url="https://ledger.example/INV-1",
        exported_at=exported_at,
    )
    failed = ItemOutcome(
        succeeded=False,
        failure_reason_type=ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN,
        failure_reason="account closed",
    )
    recovered = ItemOutcome(succeeded=True, external_id="INV-0", recovered=True)
    # outcomes recorded in the order c, a, b: unreported follows that, not insertion order
    await store.record_intent(JOB, "c")
    await store.record_outcome(JOB, "c", failed)
    await store.record_outcome(JOB, "a", ok)
    await store.record_intent(JOB, "b")
    await store.record_outcome(JOB, "b", recovered)

    pending = await store.unreported(JOB)
    assert [i.accounting_entry_id for i in pending] == ["c", "a", "b"]
    assert [i.phase for i in pending] == [
        ItemPhase.FAILED,
        ItemPhase.SUCCEEDED,
        ItemPhase.SUCCEEDED,
    ]
    assert [i.outcome for i in pending] == [failed, ok, recovered]
    assert all(i.reported is False for i in pending)
    stored_at = pending[1].outcome.exported_at if pending[1].outcome else None
    assert stored_at == exported_at
    assert stored_at is not None
    _assert_utc(stored_at)
    assert [i.accounting_entry_id for i in await store.unreported(JOB, limit=2)] == ["c", "a"]

    await store.mark_reported(JOB, ["a", "c"])
    assert [i.accounting_entry_id for i in await store.unreported(JOB)] == ["b"]
    a = await store.get_item(JOB, "a")
    assert a is not None
    assert (a.phase, a.reported, a.outcome) == (ItemPhase.SUCCEEDED, True, ok)

    await store.mark_reported(JOB, ["b", "b", "unknown"])  # duplicates/unknown ignored
    await store.mark_reported(JOB, [])
    assert await store.unreported(JOB) == []
    assert (await store.counts(JOB)).unreported == 0


async def test_mark_reported_ignores_items_without_outcome(store: StateStore) -> None:
    await _job_with_items(store, ("queued", "pending"), ("posting", "pending"))
    await store.record_intent(JOB, "posting")
    await store.mark_reported(JOB, ["queued", "posting"])
    for entry_id in ("queued", "posting"):
        item = await store.get_item(JOB, entry_id)
        assert item is not None
        assert item.reported is False
    # an outcome recorded later is still reported
    await store.record_outcome(JOB, "posting", ItemOutcome(succeeded=True))
    assert [i.accounting_entry_id for i in await store.unreported(JOB)] == ["posting"]


async def test_attempts_count_every_intent(store: StateStore) -> None:
    await _job_with_items(store, ("a", "pending"))
    for expected in (1, 2, 3):
        await store.record_intent(JOB, "a")
        item = await store.get_item(JOB, "a")
        assert item is not None
        assert (item.phase, item.attempts) == (ItemPhase.POSTING, expected)

    await store.record_outcome(JOB, "a", ItemOutcome(succeeded=False, failure_reason="x"))
    item = await store.get_item(JOB, "a")
    assert item is not None
    assert (item.phase, item.attempts) == (ItemPhase.FAILED, 3)

    # a retry: the new intent clears the stale outcome so POSTING means "fate unknown"
    await store.record_intent(JOB, "a")
    item = await store.get_item(JOB, "a")
    assert item is not None
    assert (item.phase, item.attempts, item.outcome) == (ItemPhase.POSTING, 4, None)
    assert await store.unreported(JOB) == []
    await store.record_outcome(JOB, "a", ItemOutcome(succeeded=True, external_id="E"))
    [again] = await store.unreported(JOB)
    assert again.outcome == ItemOutcome(succeeded=True, external_id="E")
    assert again.attempts == 4


async def test_recording_for_unknown_items_raises_key_error(store: StateStore) -> None:
    await _job_with_items(store, ("a", "pending"))
    with pytest.raises(KeyError, match="ghost"):
        await store.record_intent(JOB, "ghost")
    with pytest.raises(KeyError, match="ghost"):
        await store.record_outcome(JOB, "ghost", ItemOutcome(succeeded=True))
    with pytest.raises(KeyError, match="a"):
        await store.record_intent("other-job", "a")
    assert (await store.counts(JOB)).unreported == 0


async def test_uncertain_items_survive_reopening(store: StateStore, backend: Backend) -> None:
    await _job_with_items(store, ("a", "pending"), ("b", "pending"), ("c", "pending"))
    await store.record_intent(JOB, "a")
    await store.record_intent(JOB, "a")
    await store.record_intent(JOB, "b")
    await store.record_outcome(JOB, "b", ItemOutcome(succeeded=True, external_id="B"))
    await store.record_intent(JOB, "c")
    await store.close()

    reopened = await backend.open()
    try:
        uncertain = await reopened.items(JOB, [ItemPhase.POSTING])
        assert [(i.accounting_entry_id, i.attempts, i.outcome) for i in uncertain] == [
            ("a", 2, None),
            ("c", 1, None),
        ]
        [b] = await reopened.unreported(JOB)
        assert b.outcome == ItemOutcome(succeeded=True, external_id="B")
        # outcome order keeps counting after a reopen
        await reopened.record_outcome(JOB, "c", ItemOutcome(succeeded=False))
        await reopened.record_outcome(JOB, "a", ItemOutcome(succeeded=True))
        assert [i.accounting_entry_id for i in await reopened.unreported(JOB)] == ["b", "c", "a"]
    finally:
        await reopened.close()


async def test_counts(store: StateStore) -> None:
    assert await store.counts("unknown") == JobCounts(0, 0, 0, 0, 0, 0, 0)
    await _job_with_items(
        store,
        *[(f"q{n}", "pending") for n in range(3)],
        ("p", "pending"),
        ("ok1", "pending"),
        ("ok2", "pending"),
        ("ko", "pending"),
        ("s1", "successful"),
        ("s2", "abandoned"),
    )
    await store.record_intent(JOB, "p")
    for entry_id in ("ok1", "ok2"):
        await store.record_intent(JOB, entry_id)
        await store.record_outcome(JOB, entry_id, ItemOutcome(succeeded=True))
    await store.record_outcome(JOB, "ko", ItemOutcome(succeeded=False))
    await store.mark_reported(JOB, ["ok1"])

    assert await store.counts(JOB) == JobCounts(
        total=9, queued=3, posting=1, succeeded=2, failed=1, skipped=2, unreported=2
    )


async def test_timestamps_are_utc(store: StateStore) -> None:
    await _job_with_items(store, ("a", "pending"))
    naive = datetime(2025, 1, 2, 3, 4, 5)  # treated as UTC
    await store.record_outcome(JOB, "a", ItemOutcome(succeeded=True, exported_at=naive))
    item = await store.get_item(JOB, "a")
    assert item is not None
    _assert_utc(item.updated_at)
    assert item.outcome is not None
    assert item.outcome.exported_at == naive.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- concurrency


async def test_concurrent_tasks_do_not_interleave(store: StateStore) -> None:
    n = 200
    await _job_with_items(store, *[(f"e{i}", "pending") for i in range(n)])

    async def post(entry_id: str) -> None:
        await store.record_intent(JOB, entry_id)
        await anyio.lowlevel.checkpoint()
        await store.record_outcome(JOB, entry_id, ItemOutcome(succeeded=True, external_id=entry_id))

    async def reread() -> None:
        await store.add_items(JOB, ((f"e{i}", "in_progress") for i in range(n)))
        await store.add_items(JOB, ((f"late{i}", "pending") for i in range(5_000)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reread)
        for i in range(n):
            tg.start_soon(post, f"e{i}")

    counts = await store.counts(JOB)
    assert counts == JobCounts(
        total=n + 5_000, queued=5_000, posting=0, succeeded=n, failed=0, skipped=0, unreported=n
    )
    for item in await store.items(JOB, [ItemPhase.SUCCEEDED]):
        assert item.outcome is not None
        assert item.outcome.external_id == item.accounting_entry_id
        assert item.pleo_status == "in_progress"


async def test_second_instance_sees_committed_state(store: StateStore, backend: Backend) -> None:
    other = await backend.open()  # both open at once, like a second process
    try:
        await _job_with_items(store, ("a", "pending"))
        await store.record_intent(JOB, "a")
        item = await other.get_item(JOB, "a")
        assert item is not None
        assert item.phase is ItemPhase.POSTING

        await other.record_outcome(JOB, "a", ItemOutcome(succeeded=True, external_id="1"))
        [seen] = await store.unreported(JOB)
        assert seen.outcome == ItemOutcome(succeeded=True, external_id="1")
    finally:
        await other.close()


# ----------------------------------------------------------------------------- scale


async def test_one_hundred_thousand_items(store: StateStore) -> None:
    n = 100_000
    await store.upsert_job(JOB, "company-1")

    started = time.perf_counter()
    await store.add_items(JOB, ((f"entry-{i:06d}", "pending") for i in range(n)))
    first_add = time.perf_counter() - started
    started = time.perf_counter()
    await store.add_items(JOB, ((f"entry-{i:06d}", "pending") for i in range(n)))  # resume
    re_add = time.perf_counter() - started
    assert first_add < 30, f"adding {n} items took {first_add:.1f}s"
    assert re_add < 30, f"re-adding {n} items took {re_add:.1f}s"

    # outcomes in reverse order for 150 items spread over the job
    posted = [f"entry-{i:06d}" for i in range(n - 1, 0, -(n // 150))][:150]
    for entry_id in posted:
        await store.record_intent(JOB, entry_id)
        await store.record_outcome(JOB, entry_id, ItemOutcome(succeeded=True, external_id="x"))

    tracemalloc.start()
    try:
        page = await store.unreported(JOB, limit=100)
        counts = await store.counts(JOB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [i.accounting_entry_id for i in page] == posted[:100]
    assert counts == JobCounts(
        total=n, queued=n - 150, posting=0, succeeded=150, failed=0, skipped=0, unreported=150
    )
    # neither call may materialise the job: 100k ItemRecords would take tens of MB
    assert peak < 2 * 1024 * 1024, f"unreported+counts peaked at {peak} bytes"

    await store.mark_reported(JOB, [i.accounting_entry_id for i in page])
    assert len(await store.unreported(JOB, limit=100)) == 50
    assert len(await store.items(JOB)) == n


# ----------------------------------------------------------------------------- crash


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
async def test_outcome_survives_sigkill_right_after_record_outcome(
    backend: Backend, anyio_backend: str
) -> None:
    async with await anyio.open_process(
        [sys.executable, str(CHILD), backend.url, JOB],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as child:
        assert child.stdout is not None
        received = b""
        with anyio.fail_after(60):
            while not received.endswith(b"\n"):  # READY is printed once record_outcome returned
                try:
                    received += await child.stdout.receive()
                except anyio.EndOfStream:
                    break
        if received != b"READY\n":
            assert child.stderr is not None
            child.kill()
            errors = b"".join([chunk async for chunk in child.stderr])
            pytest.fail(f"child did not get ready: {received!r}\n{errors.decode()}")
        child.send_signal(signal.SIGKILL)
        with anyio.fail_after(30):
            assert await child.wait() == -signal.SIGKILL

    store = await backend.open()
    try:
        job = await store.get_job(JOB)
        assert job is not None
        assert job.started_by_us is True
        [done] = await store.unreported(JOB)
        assert done.accounting_entry_id == "done"
        assert done.phase is ItemPhase.SUCCEEDED
        assert done.outcome == ItemOutcome(succeeded=True, external_id="INV-42", external_url="u")
        uncertain = await store.get_item(JOB, "uncertain")
        assert uncertain is not None
        assert (uncertain.phase, uncertain.attempts, uncertain.outcome) == (
            ItemPhase.POSTING,
            1,
            None,
        )
    finally:
        await store.close()
