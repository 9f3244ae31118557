"""Pleo faults, one row each: the defined behaviour, the log line, the fate of every item.

Every run exports a job of 60 sandbox items (pages of 20, outcome PUTs of 20), some of which
carry an account the target does not know, so both outcomes travel through the faults. After
each fault every item must be final in Pleo exactly as predicted (``successful`` with the
target's id, or ``failed`` with ``account_unknown``) and every successful entry must be in the
target exactly once. Faults that outlast the client's retries stop the run with a Pleo API
error (``job.interrupted``); the row then runs the engine a second time, with the faults gone,
on the same state store, as the next scheduled run would.

Time is virtual (trio's ``MockClock``): ``Retry-After`` waits, backoff and timeouts take no
real time, yet happen in the order and length they would in production.

The engine tests (``tests/engine``) hold the happy path, crash recovery and 429/5xx bursts at
scale; this table adds one row per kind of fault with its log event, and the rows those tests
do not have: timeouts, connection resets either side of the server applying the request,
outages that outlast every retry, responses that break the schema, a lost answer to ``started``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from trio.testing import MockClock

from pleo_export.engine import EngineOptions
from pleo_export.ledger import ExternalRecord, PreparedEntry
from pleo_export.pleo.errors import PleoApiError
from pleo_export.pleo.models import ExportJobItemStatus, ExportJobStatus
from pleo_export_sandbox import DEMO_CHART, UNKNOWN_ACCOUNT_CODE, FaultRule, SandboxConfig
from pleo_export_sandbox.schema_faults import BreakRule, break_responses
from tests.faults.conftest import Harness, assert_outcomes, events, final_event, predicted
from tests.support.memory import MemoryConnector, MemorySettings

pytestmark = pytest.mark.anyio

ITEMS = 60
PAGE = 20
KNOWN = MemorySettings(
    known_accounts=[a.code for a in DEMO_CHART.ledger_accounts() if a.code != UNKNOWN_ACCOUNT_CODE]
)


@pytest.fixture
def anyio_backend() -> Any:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


def _options() -> EngineOptions:
    return EngineOptions(report_batch_size=PAGE)


def _events_sent(harness: Harness, job_id: str) -> list[str]:
    """Job events Pleo applied (202), in order."""
    return [
        r.body["event"]
        for r in harness.sandbox.requests
        if r.method == "POST"
        and r.path == "/v3/export-job-events"
        and r.status == 202
        and r.body.get("jobId") == job_id
    ]


@dataclass(frozen=True)
class PleoFault:
    name: str
    behaviour: str
    event: str
    """The ``event=`` of the log line that shows the fault."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Fields that log line carries."""
    faults: tuple[FaultRule, ...] = ()
    breaks: tuple[BreakRule, ...] = ()
    mid_run: bool = False
    """Arm the faults once the first entry has been posted (the job is then half done)."""
    interrupts: bool = False
    """The fault outlasts the retries: the first run raises, a second run finishes the job."""


TABLE = [
    PleoFault(
        "429-storm",
        "every other request answered 429 with Retry-After: 5, thirty times: each is retried "
        "after at least 5 s and the request budget pauses; the job completes",
        "pleo.retry",
        {"reason": "status 429", "retry_after": 5.0},
        faults=(FaultRule(kind="rate_limit", count=30, every=2, retry_after=5),),
    ),
    PleoFault(
        "5xx",
        "503 and 500 answers on reads, writes and events: retried with backoff; the job completes",
        "pleo.retry",
        {"reason": "status 503"},
        faults=(
            FaultRule(kind="server_error", status=503, count=12, every=3),
            FaultRule(kind="server_error", status=500, method="PUT", count=2),
        ),
    ),
    PleoFault(
        "timeout",
        "no answer within the client timeout (30 s): the request is abandoned and retried",
        "pleo.retry",
        {"reason": "ReadTimeout"},
        faults=(FaultRule(kind="slow", delay=120, count=4, every=5),),
    ),
    PleoFault(
        "reset-before-applied",
        "the connection drops before Pleo applied the request: retried",
        "pleo.retry",
        {"reason": "RemoteProtocolError"},
        faults=(FaultRule(kind="drop_before", count=6, every=4),),
    ),
    PleoFault(
        "reset-after-applied",
        "Pleo applied the outcome PUT or the final event, then the connection dropped: the "
        "retry sends the same outcomes again (idempotent) and a refused repeat of the final "
        "event is reconciled by reading the job",
        "pleo.retry",
        {"reason": "ReadError"},
        faults=(
            FaultRule(kind="drop_after", method="PUT", count=2),
            FaultRule(kind="drop_after", method="POST", path="/export-job-events$", count=1),
        ),
        mid_run=True,
    ),
    PleoFault(
        "outage-outlasting-retries",
        "every outcome PUT fails with 503: after 8 attempts the run stops with a Pleo API "
        "error; outcomes stay in the outbox and the next run reports them without posting "
        "anything again",
        "job.interrupted",
        {"error_type": "ServerError"},
        faults=(FaultRule(kind="server_error", method="PUT", count=None),),
        mid_run=True,
        interrupts=True,
    ),
    PleoFault(
        "unreachable",
        "connections to the export-items endpoint drop, every time: the run stops "
        "(PleoUnavailable) and the next run resumes the job",
        "job.interrupted",
        {"error_type": "PleoUnavailable"},
        faults=(FaultRule(kind="drop_before", path="/v3/export-items$", count=None),),
        mid_run=True,
        interrupts=True,
    ),
    PleoFault(
        "schema-control-layer",
        "job items come back without their required status: the client refuses the page "
        "(ResponseSchemaError) before anything is posted; the next run starts over",
        "job.interrupted",
        {"error_type": "ResponseSchemaError"},
        breaks=(BreakRule(kind="drop", method="GET", path=r"/items$", field="data.*.status"),),
        interrupts=True,
    ),
    PleoFault(
        "schema-data-pagination",
        "an export-items page arrives without pagination, mid-job: the run stops; the next run "
        "skips every item that already has an outcome",
        "job.interrupted",
        {"error_type": "ResponseSchemaError"},
        breaks=(BreakRule(kind="drop", path="/v3/export-items$", field="pagination"),),
        mid_run=True,
        interrupts=True,
    ),
    PleoFault(
        "schema-put-answer",
        "Pleo applied an outcome PUT but its answer is not JSON: the outcomes are not marked "
        "acknowledged; the next run sends them again",
        "job.interrupted",
        {"error_type": "ResponseSchemaError"},
        breaks=(BreakRule(kind="not_json", method="PUT"),),
        mid_run=True,
        interrupts=True,
    ),
    PleoFault(
        "schema-job-list",
        "the list of jobs is cut off halfway: nothing is started; the next run proceeds",
        "jobs.detect_failed",
        {"error_type": "ResponseSchemaError"},
        breaks=(BreakRule(kind="truncate", method="GET", path="/v3/export-jobs$"),),
        interrupts=True,
    ),
]


@pytest.mark.parametrize("fault", TABLE, ids=lambda f: f.name)
async def test_pleo_fault_loses_no_item(
    make_harness: Any, debug_logs: pytest.LogCaptureFixture, fault: PleoFault
) -> None:
    harness: Harness = make_harness(clock=anyio.current_time)
    breaker = break_responses(harness.sandbox)
    job = harness.sandbox.queue_export(
        harness.company_id, count=ITEMS, seed=31, unknown_account_rate=0.2
    )
    expected = predicted(harness, job.id)
    failing = sum(r is not None for r in expected.values())
    assert failing < ITEMS  # the company id is random, so the failing share varies a little

    def arm() -> None:
        armed = [harness.sandbox.add_fault(rule) for rule in fault.faults]
        for rule in fault.breaks:
            breaker.add(rule)
        arms.extend(armed)

    arms: list[Any] = []
    if fault.mid_run:

        def arm_once(prepared: PreparedEntry) -> None:
            if harness.target.post_calls == 1:
                arm()

        harness.target.post_hook = arm_once
    else:
        arm()

    if fault.interrupts:
        with pytest.raises(PleoApiError):
            async with harness.engine(settings=KNOWN, options=_options(), page_size=PAGE) as engine:
                await engine.run_pending()
        assert events(debug_logs.records, fault.event, **fault.fields), fault.behaviour
        harness.sandbox.clear_faults()
        breaker.clear()
        harness.target.post_hook = None

    async with harness.engine(settings=KNOWN, options=_options(), page_size=PAGE) as engine:
        report = await engine.run_pending()

    assert events(debug_logs.records, fault.event, **fault.fields), fault.behaviour
    for retry in events(debug_logs.records, "pleo.retry"):
        assert retry.retry_after is None or retry.wait_seconds >= retry.retry_after
    assert all(a.hits for a in arms), "every fault rule must have hit"
    assert len(breaker.broken) >= len(fault.breaks)
    [job_report] = report.jobs
    assert job_report.final_event == final_event(expected)
    assert harness.sandbox.get_job(job.id).status.value == final_event(expected)
    assert_outcomes(harness, job.id, expected)
    assert harness.target.post_calls == ITEMS - failing  # nothing was posted twice
    assert _events_sent(harness, job.id) == ["started", final_event(expected)]
    if fault.interrupts and fault.event == "job.interrupted":
        assert job_report.resumed


async def test_a_schema_breaking_export_item_fails_alone(
    make_harness: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    """One export item without ``amount``, one whose lines are not a list: each fails with
    ``validation_failure`` naming the field; the other items of their page go on."""
    harness: Harness = make_harness(clock=anyio.current_time)
    breaker = break_responses(harness.sandbox)
    breaker.add(BreakRule(kind="drop", path="/v3/export-items$", field="data.3.amount"))
    breaker.add(
        BreakRule(kind="retype", path="/v3/export-items$", field="data.7.accountingEntryLines")
    )
    job = harness.sandbox.queue_export(
        harness.company_id, count=ITEMS, seed=31, unknown_account_rate=0.2
    )
    expected = predicted(harness, job.id)
    async with harness.engine(settings=KNOWN, options=_options(), page_size=PAGE) as engine:
        report = await engine.run_pending()

    first_page = json.loads(breaker.broken[0].original)["data"]
    broken = {
        first_page[3]["accountingEntryId"]: "amount",
        first_page[7]["accountingEntryId"]: "accountingEntryLines",
    }
    items = {i.accounting_entry_id: i for i in harness.sandbox.job_items(job.id)}
    for entry_id, field_name in broken.items():
        reason = items[entry_id].failure_reason or ""
        assert field_name in reason and "does not match the Export API schema" in reason
        assert events(
            debug_logs.records,
            "item.outcome",
            accounting_entry_id=entry_id,
            reason_type="validation_failure",
        )
        expected[entry_id] = "validation_failure"
    assert_outcomes(harness, job.id, expected)
    assert report.jobs[0].final_event == "completed_with_errors"


class SlowTarget(MemoryConnector):
    """A target that takes 1.5 s of (virtual) time per entry."""

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        await anyio.sleep(1.5)
        return await super().post(prepared)


async def test_job_expiring_mid_run_abandons_its_items_and_a_new_job_finds_them(
    make_harness: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Pleo expires the job (``job_expired``) while entries are being posted: the engine stops
    working on it (``job.gone``), its unfinished items become ``abandoned`` in Pleo, and when
    the expenses are exported again every entry already posted is found by reference."""
    harness: Harness = make_harness(SandboxConfig(job_expires_in=60), clock=anyio.current_time)
    job = harness.sandbox.queue_export(
        harness.company_id, count=ITEMS, seed=31, unknown_account_rate=0.2
    )
    expected = predicted(harness, job.id)
    options = EngineOptions(report_interval=10_000)
    async with harness.engine(
        settings=KNOWN, options=options, page_size=PAGE, connector_cls=SlowTarget
    ) as engine:
        report = await engine.run_pending()

    [job_report] = report.jobs
    assert job_report.final_event is None
    assert job_report.failure_reason and "expired or been cancelled" in job_report.failure_reason
    [gone] = events(debug_logs.records, "job.gone", job_id=job.id)
    assert "expired" in gone.reason
    pleo_job = harness.sandbox.get_job(job.id)
    assert pleo_job.status is ExportJobStatus.FAILED
    assert pleo_job.failure_reason_type == "job_expired"
    statuses = {i.status for i in harness.sandbox.job_items(job.id)}
    assert statuses == {ExportJobItemStatus.ABANDONED}
    posted = set(harness.target.entries)
    assert posted and len(posted) < ITEMS  # the job died half way
    assert job_report.unacknowledged == job_report.posted + job_report.failed

    ids = [i.accounting_entry_id for i in harness.sandbox.job_items(job.id)]
    again = harness.sandbox.create_job(harness.company_id, ids)
    async with harness.engine(settings=KNOWN, options=_options(), page_size=PAGE) as engine:
        second = await engine.run_pending()
    assert second.jobs[0].recovered == len(posted)
    assert_outcomes(harness, again.id, expected)


async def test_started_refused_because_another_worker_took_the_job(
    harness: Harness, debug_logs: pytest.LogCaptureFixture
) -> None:
    """``started`` answered 422 and the state store never started the job: another worker
    owns it. The engine leaves it alone (``job.claimed_elsewhere``, ``skipped_jobs``) and
    touches none of its items."""
    job = harness.sandbox.queue_export(harness.company_id, count=10, seed=32)
    async with httpx.AsyncClient(
        transport=harness.sandbox.transport(), base_url=harness.sandbox.base_url
    ) as other:
        response = await other.post(
            "/v3/export-job-events",
            json={"jobId": job.id, "event": "started"},
            auth=(harness.api_key, ""),
        )
    assert response.status_code == 202
    async with harness.engine(settings=KNOWN) as engine:
        report = await engine.process(job)  # as listed before the other worker started it
    assert report is None
    assert events(debug_logs.records, "job.claimed_elsewhere", job_id=job.id)
    assert {i.status for i in harness.sandbox.job_items(job.id)} == {ExportJobItemStatus.PENDING}
    assert harness.target.post_calls == 0 and harness.target.lookup_calls == 0
    assert not [r for r in harness.sandbox.requests if r.method == "PUT"]


async def test_lost_answer_to_started_is_resumed_by_the_next_run(
    make_harness: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Pleo applied ``started`` but the answer was lost; the client's retry gets 422. The
    engine cannot tell this from another worker's claim, so it leaves the job for this run
    (``job.claimed_elsewhere``). The job is ``in_progress``, so the next run resumes it
    (``job.resume``) and every item is exported exactly once."""
    harness: Harness = make_harness(clock=anyio.current_time)
    harness.sandbox.add_fault(
        FaultRule(kind="drop_after", method="POST", path="/export-job-events$", count=1)
    )
    job = harness.sandbox.queue_export(
        harness.company_id, count=ITEMS, seed=31, unknown_account_rate=0.2
    )
    expected = predicted(harness, job.id)
    async with harness.engine(settings=KNOWN, options=_options(), page_size=PAGE) as engine:
        first = await engine.run_pending()
    assert first.skipped_jobs == [job.id] and first.jobs == []
    assert events(debug_logs.records, "job.claimed_elsewhere", job_id=job.id)
    assert harness.sandbox.get_job(job.id).status is ExportJobStatus.IN_PROGRESS
    assert harness.target.post_calls == 0

    async with harness.engine(settings=KNOWN, options=_options(), page_size=PAGE) as engine:
        second = await engine.run_pending()
    assert second.jobs[0].resumed
    assert events(debug_logs.records, "job.resume", job_id=job.id)
    assert_outcomes(harness, job.id, expected)
    assert _events_sent(harness, job.id) == ["started", final_event(expected)]


@pytest.mark.parametrize(
    "rule",
    [
        BreakRule(kind="drop", path="/v3/export-jobs$", field="data.*.status"),
        BreakRule(kind="null", path="/v3/export-jobs$", field="data.0.createdAt"),
        BreakRule(kind="retype", path="/v3/export-jobs$", field="pagination.hasNextPage"),
        BreakRule(kind="not_json", path="/v3/export-jobs$"),
        BreakRule(kind="truncate", path="/v3/export-jobs$"),
    ],
    ids=lambda r: r.kind,
)
async def test_each_break_kind_is_refused_by_the_client(harness: Harness, rule: BreakRule) -> None:
    """Every kind of broken body reaches the client and is refused; the sandbox itself still
    answered by the spec (the harness checks every exchange), and the break is listed."""
    from pleo_export.pleo.errors import ResponseSchemaError

    harness.sandbox.queue_export(harness.company_id, count=3, seed=33)
    breaker = break_responses(harness.sandbox)
    breaker.add(rule)
    async with harness.engine() as engine:
        with pytest.raises(ResponseSchemaError):
            await engine.pending_jobs()
        assert len(await engine.pending_jobs()) == 1  # count=1: the next answer is intact
    [broken] = breaker.broken
    assert broken.kind == rule.kind and broken.original != broken.delivered
    assert json.loads(broken.original)["data"][0]["status"] == "pending"
