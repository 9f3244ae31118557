"""Target faults: every kind of connector error, one item each, with and without lookup.

One job holds one item per row of :data:`ROWS`; a scripted connector fails each item the way
its row says (per call: ``prepare``, ``find_existing``, each ``post`` attempt). The job runs
twice, on fresh sandboxes: once with ``lookup_by_reference`` and once without. The tests then
assert, per row and mode, how the item ended in Pleo, how often it was posted, whether it is in
the target, and for every item the order of the connector calls: after a post whose outcome is
uncertain, the next call for that entry is always a lookup by reference (with the capability)
or nothing at all (without it); no entry is ever in the target twice.

Classification (see :mod:`pleo_export.engine.classify`): ``TargetTemporarilyUnavailable`` is
retryable, ``ItemRejected``/``JobRejected`` terminal, ``OutcomeUncertain`` and anything nobody
classifies during ``post`` uncertain. A plugin classifier answers before the connector's own;
a plugin classifier that raises is logged by the plugin host (``plugin.hook_failed``) and
skipped; a connector classifier that raises is logged as ``classify.failed`` and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from pleo_export import (
    Capability,
    ConnectorError,
    ExternalRecord,
    ItemRejected,
    JobRejected,
    OutcomeUncertain,
    PostingPlan,
    PreparedEntry,
    TargetTemporarilyUnavailable,
)
from pleo_export.engine import EngineOptions
from pleo_export.engine.report import JobReport
from pleo_export.hookspecs import hookimpl
from pleo_export.host import Origin, PluginHost
from pleo_export.pleo.models import (
    ExportJobFailureReasonType,
    ExportJobItem,
    ExportJobItemFailureReasonType,
    ExportJobItemStatus,
    ExportJobStatus,
)
from pleo_export_sandbox import Sandbox, SandboxConfig
from tests.faults.conftest import ITEM_REASONS, Harness, events
from tests.support.memory import MemoryConnector, MemoryTarget
from tests.support.openapi import OpenApiContract

R = ExportJobItemFailureReasonType
POST_ATTEMPTS = 4


# --- the library errors a connector's client might raise ---------------------------------------


class LedgerTimeoutError(Exception):
    """Nobody classifies it: during post it counts as uncertain."""


class LedgerUnreachableError(Exception):
    """The connector classifies it as retryable."""


class LedgerValidationError(Exception):
    """The connector calls it retryable (wrongly); a plugin overrides that: terminal."""


class LedgerHiccupError(Exception):
    """The plugin classifier raises on it; the connector's classification (retryable) holds."""


class LedgerGlitchError(Exception):
    """The connector's classify_error raises on it: unclassified, so uncertain during post."""


# --- the table -------------------------------------------------------------------------------

UNCERTAIN_STEPS = frozenset({"uncertain_landed", "uncertain_lost", "foreign_landed", "glitch"})
"""Post behaviours whose outcome the engine cannot know."""
LANDS = frozenset({"ok", "uncertain_landed", "foreign_landed"})
"""Post behaviours after which the entry is in the target."""


@dataclass(frozen=True)
class Expect:
    reason: str | None
    """The failure reason type the item ends with; ``None``: successful."""
    posts: int
    in_target: bool
    recovered: bool = False
    message: str | None = None
    """A part of the failure reason."""


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    """retryable, terminal, uncertain or none: how the engine classifies the failure."""
    with_lookup: Expect
    without_lookup: Expect | None = None
    """``None``: as ``with_lookup``."""
    post: tuple[str, ...] = ()
    """Behaviour of each post attempt; ``ok`` after the last one."""
    prepare: tuple[str, ...] = ()
    lookup: tuple[str, ...] = ()
    """Behaviour of each find_existing call (the first is the look-up before prepare)."""
    event: str | None = None
    """A log event the row must produce for its entry."""

    def expect(self, lookup: bool) -> Expect:
        return self.with_lookup if lookup or self.without_lookup is None else self.without_lookup


MAYBE = "may or may not be in the accounting system"
ROWS: tuple[Row, ...] = (
    Row("clean", "none", Expect(None, 1, True)),
    Row(
        "retryable-then-ok",
        "retryable",
        Expect(None, 3, True),
        post=("retryable", "retryable"),
        event="target.retry",
    ),
    Row(
        "retryable-exhausted",
        "retryable",
        Expect("accounting_system_rate_limit", POST_ATTEMPTS, False, message="after 4 attempts"),
        post=("rate_limited",) * POST_ATTEMPTS,
        event="target.retry",
    ),
    Row(
        "terminal-item",
        "terminal",
        Expect("tax_code_unknown", 1, False, message="tax code S20"),
        post=("rejected",),
    ),
    Row(
        "uncertain-landed",
        "uncertain",
        Expect(None, 1, True, recovered=True),
        Expect("unexpected_failure", 1, True, message=MAYBE),
        post=("uncertain_landed",),
        event="target.uncertain",
    ),
    Row(
        "uncertain-lost",
        "uncertain",
        Expect(None, 2, True),
        Expect("unexpected_failure", 1, False, message=MAYBE),
        post=("uncertain_lost",),
        event="target.uncertain",
    ),
    Row(
        "uncertain-twice",
        "uncertain",
        Expect(None, 2, True, recovered=True),
        Expect("unexpected_failure", 1, False, message=MAYBE),
        post=("uncertain_lost", "uncertain_landed"),
        event="target.uncertain",
    ),
    Row(
        "uncertain-forever",
        "uncertain",
        Expect("unexpected_failure", POST_ATTEMPTS, False, message=MAYBE),
        Expect("unexpected_failure", 1, False, message=MAYBE),
        post=("uncertain_lost",) * POST_ATTEMPTS,
        event="target.uncertain",
    ),
    Row(
        "unclassified-landed",
        "uncertain",
        Expect(None, 1, True, recovered=True),
        Expect("unexpected_failure", 1, True, message="LedgerTimeoutError"),
        post=("foreign_landed",),
        event="target.uncertain",
    ),
    Row(
        "connector-classifies-retryable",
        "retryable",
        Expect(None, 2, True),
        post=("unreachable",),
        event="target.retry",
    ),
    Row(
        "plugin-overrides-connector",
        "terminal",
        Expect("accounting_system_validation_failure", 1, False, message="memo is too long"),
        post=("plugin_terminal",),
    ),
    Row(
        "plugin-classifier-raises",
        "retryable",
        Expect(None, 2, True),
        post=("hiccup",),
        event="classify.failed",
    ),
    Row(
        "connector-classifier-raises",
        "uncertain",
        Expect(None, 2, True),
        Expect("unexpected_failure", 1, False, message="LedgerGlitchError"),
        post=("glitch",),
        event="classify.failed",
    ),
    Row(
        "lookup-fails-after-uncertain",
        "uncertain",
        Expect("unexpected_failure", 1, False, message="looking it up by reference failed too"),
        Expect("unexpected_failure", 1, False, message=MAYBE),
        post=("uncertain_lost",),
        lookup=("normal", *("retryable",) * POST_ATTEMPTS),
        event="target.uncertain",
    ),
    Row(
        "lookup-retryable-before-post",
        "retryable",
        Expect(None, 1, True),
        lookup=("retryable",),
    ),
    Row(
        "prepare-retryable-exhausted",
        "retryable",
        Expect("accounting_system_unreachable", 0, False, message="nothing was written"),
        prepare=("retryable",) * POST_ATTEMPTS,
    ),
    Row(
        "prepare-unclassified",
        "terminal",
        Expect("unexpected_failure", 0, False, message="unexpected error during prepare"),
        prepare=("value_error",),
    ),
    # The last two: a JobRejected while posting fails its item and every item after it.
    Row(
        "job-rejected",
        "terminal",
        Expect("accounting_system_authentication_failure", 1, False, message="session revoked"),
        post=("job_rejected",),
    ),
    Row(
        "after-job-rejected",
        "terminal",
        Expect("accounting_system_authentication_failure", 0, False, message="stopped accepting"),
    ),
)


# --- the scripted connector ------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    op: str
    ref: str
    step: str


def _raise_for(step: str) -> None:
    if step == "retryable":
        raise TargetTemporarilyUnavailable("the ledger answered 503", retry_after=0.01)
    if step == "rate_limited":
        raise TargetTemporarilyUnavailable(
            "the ledger answered 429", retry_after=0.01, reason_type=R.ACCOUNTING_SYSTEM_RATE_LIMIT
        )
    if step == "rejected":
        raise ItemRejected(
            R.TAX_CODE_UNKNOWN,
            "tax code S20 is not set up in the ledger: add it or change the tax code in Pleo",
        )
    if step == "job_rejected":
        raise JobRejected(
            ExportJobFailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            "the ledger session revoked: log in again in the connector settings",
        )
    if step in ("uncertain_landed", "uncertain_lost"):
        raise OutcomeUncertain("no answer after the request was sent")
    if step == "foreign_landed":
        raise LedgerTimeoutError("socket timed out reading the answer")
    if step == "unreachable":
        raise LedgerUnreachableError("connection refused")
    if step == "plugin_terminal":
        raise LedgerValidationError("memo is too long")
    if step == "hiccup":
        raise LedgerHiccupError("502 from the ledger's proxy")
    if step == "glitch":
        raise LedgerGlitchError("the ledger client lost track of the request")
    if step == "value_error":
        raise ValueError("cannot render the memo")


def make_connector(rows: dict[str, Row], calls: list[Call], lookup: bool) -> type[MemoryConnector]:
    """A MemoryConnector whose entries fail as their rows say; records every call."""
    capabilities = set(MemoryConnector.manifest.capabilities) - {Capability.LOOKUP_BY_REFERENCE}
    if lookup:
        capabilities.add(Capability.LOOKUP_BY_REFERENCE)

    def step(op: str, ref: str, script: tuple[str, ...], default: str) -> str:
        n = sum(1 for c in calls if c.op == op and c.ref == ref)
        chosen = script[n] if n < len(script) else default
        calls.append(Call(op, ref, chosen))
        return chosen

    class Scripted(MemoryConnector):
        manifest = MemoryConnector.manifest.model_copy(
            update={"capabilities": frozenset(capabilities)}
        )
        target: ClassVar[MemoryTarget] = MemoryTarget()

        async def prepare(self, plan: PostingPlan) -> PreparedEntry:
            row = rows[plan.reference]
            _raise_for(step("prepare", plan.reference, row.prepare, "ok"))
            return await super().prepare(plan)

        async def find_existing(self, reference: str) -> ExternalRecord | None:
            _raise_for(step("lookup", reference, rows[reference].lookup, "normal"))
            return await super().find_existing(reference)

        async def post(self, prepared: PreparedEntry) -> ExternalRecord:
            ref = prepared.plan.reference
            chosen = step("post", ref, rows[ref].post, "ok")
            self.target.post_calls += 1
            if chosen in LANDS:
                if ref in self.target.entries:
                    self.target.posted_twice.append(ref)
                self.target.entries[ref] = list(prepared.entries)
            _raise_for(chosen)
            return ExternalRecord(
                external_id=f"MEM-{ref[:8]}",
                external_url=f"memory://entries/{ref}",
                exported_at=datetime.now(UTC),
            )

        def classify_error(self, error: BaseException) -> ConnectorError | None:
            if isinstance(error, LedgerGlitchError):
                raise RuntimeError("bug in the connector's classifier")
            if isinstance(error, LedgerUnreachableError | LedgerValidationError):
                return TargetTemporarilyUnavailable(f"ledger: {error}")
            if isinstance(error, LedgerHiccupError):
                return TargetTemporarilyUnavailable(f"ledger: {error}")
            return None

    return Scripted


class LedgerPlugin:
    """A plugin classifier that knows the ledger better than the connector, and has a bug."""

    @hookimpl
    def pleo_export_classify_error(
        self, error: BaseException, manifest: Any, during: str
    ) -> ConnectorError | None:
        if isinstance(error, LedgerHiccupError):
            raise KeyError("bug in the plugin's classifier")
        if isinstance(error, LedgerValidationError):
            return ItemRejected(
                R.ACCOUNTING_SYSTEM_VALIDATION_FAILURE, f"the ledger refused the entry: {error}"
            )
        return None


# --- running the job -------------------------------------------------------------------------


@dataclass
class TargetRun:
    lookup: bool
    ids: dict[str, str]
    """Row name -> accounting entry id."""
    items: dict[str, ExportJobItem] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    target: MemoryTarget = field(default_factory=MemoryTarget)
    records: list[logging.LogRecord] = field(default_factory=list)
    report: JobReport | None = None
    job_status: ExportJobStatus | None = None
    violations: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextmanager
def collect_logs(into: list[logging.LogRecord]) -> Iterator[None]:
    logger = logging.getLogger("pleo_export")
    handler = _Collect(into)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def run_table(tmp: Path, contract: OpenApiContract, lookup: bool) -> TargetRun:
    sandbox = Sandbox(SandboxConfig())
    violations: list[str] = []

    def check(record: Any) -> None:
        try:
            contract.check_exchange(record)
        except Exception as error:
            violations.append(str(error))
            raise

    sandbox.on_exchange = check
    company = sandbox.add_company(name="Target Faults Ltd", wallet_currency="GBP")
    job = sandbox.queue_export(company.id, count=len(ROWS), seed=41, attachments=False)
    order = [i.accounting_entry_id for i in sandbox.job_items(job.id)]
    run = TargetRun(
        lookup=lookup, ids={row.name: ref for row, ref in zip(ROWS, order, strict=True)}
    )
    run.violations = violations
    by_ref = {ref: row for row, ref in zip(ROWS, order, strict=True)}
    connector_cls = make_connector(by_ref, run.calls, lookup)
    run.target = connector_cls.target
    harness = Harness(
        sandbox=sandbox,
        company_id=company.id,
        api_key=company.api_key,
        target=run.target,
        state_url=f"sqlite:///{tmp / 'state.db'}",
        tmp_path=tmp,
    )
    host = PluginHost(load_entry_points=False)
    assert host.register(LedgerPlugin(), Origin("ledger-classifier", "tests", "tests", "0"))

    async def main() -> None:
        options = EngineOptions(post_attempts=POST_ATTEMPTS)
        async with harness.engine(options=options, host=host, connector_cls=connector_cls) as eng:
            report = await eng.run_pending()
        [run.report] = report.jobs

    with collect_logs(run.records):
        anyio.run(main)
    run.items = {i.accounting_entry_id: i for i in sandbox.job_items(job.id)}
    run.job_status = sandbox.get_job(job.id).status
    return run


@pytest.fixture(scope="module", params=[True, False], ids=["with-lookup", "without-lookup"])
def table_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    openapi_contract: OpenApiContract,
) -> TargetRun:
    lookup: bool = request.param
    return run_table(tmp_path_factory.mktemp("target-faults"), openapi_contract, lookup)


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_item_ends_as_its_row_defines(table_run: TargetRun, row: Row) -> None:
    expect = row.expect(table_run.lookup)
    ref = table_run.ids[row.name]
    item = table_run.items[ref]
    if expect.reason is None:
        assert item.status is ExportJobItemStatus.SUCCESSFUL, (row.name, item)
        assert item.external_id == f"MEM-{ref[:8]}"
    else:
        assert item.status is ExportJobItemStatus.FAILED, (row.name, item)
        assert item.failure_reason_type == expect.reason, (row.name, item.failure_reason)
        assert item.failure_reason_type in ITEM_REASONS
        assert expect.message is not None and item.failure_reason
        assert expect.message in item.failure_reason, item.failure_reason
    posts = [c for c in table_run.calls if c.op == "post" and c.ref == ref]
    assert len(posts) == expect.posts, (row.name, posts)
    assert (ref in table_run.target.entries) is expect.in_target
    recovered = [
        r for r in events(table_run.records, "item.outcome", accounting_entry_id=ref) if r.recovered
    ]
    assert bool(recovered) is expect.recovered
    if row.event is not None:
        logged = [r for r in table_run.records if getattr(r, "event", None) == row.event]
        if row.event != "classify.failed":  # a classifier failure does not know the entry
            logged = [r for r in logged if getattr(r, "accounting_entry_id", None) == ref]
        assert logged, f"{row.name}: no {row.event} log line"


def test_uncertain_posts_are_looked_up_before_anything_else(table_run: TargetRun) -> None:
    """After a post that may have landed, the next call for that entry is a look-up by
    reference; without the capability, there is no next call at all."""
    checked = 0
    for ref in table_run.ids.values():
        calls = [c for c in table_run.calls if c.ref == ref]
        for index, call in enumerate(calls):
            if call.op != "post" or call.step not in UNCERTAIN_STEPS:
                continue
            checked += 1
            following = calls[index + 1 : index + 2]
            if table_run.lookup:
                assert following and following[0].op == "lookup", (ref, calls)
            else:
                assert following == [], (ref, calls)
    assert checked >= 7


def test_no_entry_is_ever_posted_twice(table_run: TargetRun) -> None:
    assert table_run.target.posted_twice == []
    landed = {c.ref for c in table_run.calls if c.op == "post" and c.step in LANDS}
    assert set(table_run.target.entries) == landed


def test_the_job_ends_and_every_item_is_final(table_run: TargetRun) -> None:
    assert table_run.report is not None
    assert table_run.report.final_event == "completed_with_errors"
    assert table_run.job_status is ExportJobStatus.COMPLETED_WITH_ERRORS
    statuses = {i.status for i in table_run.items.values()}
    assert statuses == {ExportJobItemStatus.SUCCESSFUL, ExportJobItemStatus.FAILED}
    assert table_run.report.posted + table_run.report.recovered + table_run.report.failed == len(
        ROWS
    )
    assert table_run.violations == []


def test_a_broken_classifier_is_named_in_the_log(table_run: TargetRun) -> None:
    failed = events(table_run.records, "classify.failed")
    assert {r.classifier for r in failed} == {"connector"}
    assert all(r.during == "post" for r in failed)
    plugin = events(table_run.records, "plugin.hook_failed", hook="pleo_export_classify_error")
    assert plugin
    assert "pleo_export_classify_error" in plugin[0].getMessage()
    assert "KeyError" in plugin[0].getMessage()


@pytest.mark.anyio
async def test_a_target_down_during_pre_export_validation_fails_the_job_unreachable(
    harness: Harness, debug_logs: pytest.LogCaptureFixture
) -> None:
    """``check`` keeps raising a retryable error: it is retried ``post_attempts`` times, then
    the job fails with ``accounting_system_unreachable`` before any item is read; Pleo marks
    its items ``abandoned``, ready to be exported again."""
    job = harness.sandbox.queue_export(harness.company_id, count=5, seed=42)
    harness.target.check_error = TargetTemporarilyUnavailable(
        "the ledger is down for maintenance until 02:00", retry_after=0.01
    )
    async with harness.engine(options=EngineOptions(post_attempts=3)) as engine:
        report = await engine.run_pending()
    pleo_job = harness.sandbox.get_job(job.id)
    assert pleo_job.status is ExportJobStatus.FAILED
    assert pleo_job.failure_reason_type == "accounting_system_unreachable"
    assert "maintenance" in (pleo_job.failure_reason or "")
    assert report.jobs[0].final_event == "failed"
    assert len(events(debug_logs.records, "target.retry")) == 2
    assert events(debug_logs.records, "job.validation_failed", job_id=job.id)
    items = harness.sandbox.job_items(job.id)
    assert {i.status for i in items} == {ExportJobItemStatus.ABANDONED}
    assert harness.target.prepare_calls == 0 and harness.target.post_calls == 0
