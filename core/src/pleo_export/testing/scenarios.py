"""The conformance scenarios: each builds a job in the sandbox, runs the real engine with the
connector under test and judges every item in Pleo and in the target.

:data:`SCENARIOS` maps each stable scenario id to its :class:`Scenario`. Which scenarios apply
follows from the connector's manifest (:func:`not_applicable`); a connector may exempt an
applicable scenario only with a written reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pleo_export.connector import Capability, ConnectorManifest
from pleo_export.pleo.models import ExportJob, ExportJobStatus
from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.testing.checks import MIN_MESSAGE_LENGTH, Expect, judge
from pleo_export.testing.harness import CallCounter, CrashPlan, EngineRun, World, maybe_await
from pleo_export.testing.items import UNKNOWN_TAX_CODE, UNKNOWN_VENDOR, Line
from pleo_export.testing.target import ConnectorTarget
from pleo_export_sandbox import Chart, FaultRule

FIRST_OPEN_DAY = date(2025, 3, 1)
"""``closed_period`` closes the books for every day before this one."""


@dataclass
class Kit:
    """What a scenario gets: the connector under test, its target and where to keep files."""

    connector_id: str
    target: ConnectorTarget
    chart: Chart
    currency: str
    work_dir: Path

    def world(self, scenario: str) -> World:
        return World(
            scenario=scenario,
            connector_id=self.connector_id,
            target=self.target,
            chart=self.chart,
            currency=self.currency,
            work_dir=self.work_dir,
        )


ScenarioRun = Callable[[Kit], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    requires: frozenset[Capability] = frozenset()
    needs_attachment_limit: bool = False
    run: ScenarioRun | None = field(default=None, compare=False)


# --- shared judgement ----------------------------------------------------------------------------


def label(item: dict[str, Any]) -> str:
    """``card_purchase, accounts_payable, paid in EUR, 2 lines``: an item as messages name it."""
    parts = [str(item.get("type"))]
    method = (item.get("bookkeeping") or {}).get("method")
    if method == "accounts_payable":
        parts.append("accounts_payable")
    amount = item.get("amount") or {}
    supplier = (amount.get("inSupplierCurrency") or {}).get("currency")
    wallet = (amount.get("inWalletCurrency") or {}).get("currency")
    if supplier and supplier != wallet:
        parts.append(f"paid in {supplier}")
    lines = item.get("accountingEntryLines") or []
    if len(lines) > 1:
        parts.append(f"{len(lines)} lines")
    return ", ".join(parts)


def _precondition(world: World, run: EngineRun, job: ExportJob) -> None:
    """Stop early, with one clear problem, when the run could not book anything at all."""
    if run.unavailable is not None:
        raise world.fail(
            f"the connector could not open against connector_target.settings "
            f"({run.unavailable.reason_type.value}: {run.unavailable.message}); the fixture "
            "must yield a target the connector can use"
        )
    current = world.job(job.id)
    if current.status is ExportJobStatus.FAILED and not any(
        item.status.is_final and item.status.value != "abandoned"
        for item in world.sandbox.job_items(job.id)
    ):
        raise world.fail(
            f"the job failed pre-export validation with {current.failure_reason_type}: "
            f"{current.failure_reason}; check(job) must accept a job the target can book "
            "(build the target from conformance_chart in the connector_target fixture)"
        )


async def verdict(
    world: World,
    job: ExportJob,
    expectations: Sequence[Expect],
    *,
    final: str,
    extra: Sequence[str] = (),
    after: Sequence[str] = (),
) -> None:
    """Judge the job's items in Pleo and in the target; fail with every problem found.

    ``extra`` problems are listed first, ``after`` problems last.
    """
    entries = await world.read_entries()
    problems = list(extra)
    problems += judge(
        expectations,
        world.pleo_items(job.id),
        entries,
        world.plans(job.id),
        world.currency,
    )
    current = world.job(job.id)
    if current.status.value != final:
        problems.append(
            f"the job ended {current.status.value}"
            + (
                f" ({current.failure_reason_type}: {current.failure_reason})"
                if current.failure_reason
                else ""
            )
            + f" but must end {final}"
        )
    problems += after
    if problems:
        raise world.fail(*problems)


def _unknown_line(world: World, item: dict[str, Any], index: int) -> None:
    account = world.items.chart.unknown_account
    item["accountingEntryLines"][index]["account"] = {
        "id": account.id,
        "name": account.name,
        "code": account.code,
    }


# --- the scenarios -------------------------------------------------------------------------------


async def happy_journal(kit: Kit) -> None:
    world = kit.world("happy_journal")
    items = world.items.generated(17, seed=101)
    job = world.queue(items)
    run = await world.run()
    _precondition(world, run, job)
    expect = [Expect(i["accountingEntryId"], label(i), succeed=True) for i in items]
    await verdict(world, job, expect, final="completed")


async def happy_accounts_payable(kit: Kit) -> None:
    world = kit.world("happy_accounts_payable")
    items = world.items.generated(17, seed=201, vendor_based=True)
    items += world.items.generated(
        5, seed=202, vendor_based=True, types=["invoice", "invoice_payment", "card_purchase"]
    )
    job = world.queue(items, vendor_based=True)
    run = await world.run()
    _precondition(world, run, job)
    expect = [Expect(i["accountingEntryId"], label(i), succeed=True) for i in items]
    await verdict(world, job, expect, final="completed")


async def partial_failure(kit: Kit) -> None:
    world = kit.world("partial_failure")
    items = world.items.generated(
        6, seed=301, types=["card_purchase", "out_of_pocket", "card_invoice"], multi_currency_rate=0
    )
    _unknown_line(world, items[1], 0)
    # Lines that miss the total by a whole unit: the engine itself fails this one.
    line = items[3]["accountingEntryLines"][0]
    for key in ("lineAmount", "netAmount"):
        line[key]["inWalletCurrency"]["value"] += 100
        line[key]["inSupplierCurrency"]["value"] += 100
    job = world.queue(items)
    run = await world.run()
    _precondition(world, run, job)
    code = world.items.chart.unknown_account_code
    expect = []
    for index, item in enumerate(items):
        ref = item["accountingEntryId"]
        if index == 1:
            expect.append(
                Expect(
                    ref,
                    label(item) + f", account {code} on line 1",
                    succeed=False,
                    reason=ItemReason.ACCOUNT_UNKNOWN.value,
                    why=f"account {code} is not in the target's chart",
                    mentions=(code,),
                    fix="prepare must raise ItemRejected(account_unknown) and the other items "
                    "must go on",
                )
            )
        elif index == 3:
            expect.append(
                Expect(
                    ref,
                    label(item) + ", lines do not add up to the total",
                    succeed=False,
                    reason=ItemReason.VALIDATION_FAILURE.value,
                    why="the engine rejects the item before the connector sees it",
                )
            )
        else:
            expect.append(Expect(ref, label(item), succeed=True))
    await verdict(world, job, expect, final="completed_with_errors")


async def crash_retry_no_duplicates(kit: Kit) -> None:
    world = kit.world("crash_retry_no_duplicates")
    items = world.items.generated(
        6, seed=401, types=["card_purchase", "out_of_pocket", "card_invoice", "fee"]
    )
    job = world.queue(items)
    crash = CrashPlan(uncertain_on=2, crash_on=3)
    first = await world.run(wrap=crash.install)
    _precondition(world, first, job)
    if not first.crashed:
        raise world.fail(
            f"the kit could not simulate a crash: the connector wrote only {crash.writes} "
            "time(s) in the first run (is every item failing?)"
        )
    second = await world.run()
    _precondition(world, second, job)
    lookup = Capability.LOOKUP_BY_REFERENCE in world.capabilities
    expect: list[Expect] = []
    for item in items:
        ref = item["accountingEntryId"]
        if ref in crash.crashed:
            what = "posted, then the process crashed before the outcome was recorded"
            before = "the crash"
        elif ref in crash.uncertain:
            what = "posted, then the answer was lost (OutcomeUncertain)"
            before = "the answer was lost"
        else:
            expect.append(Expect(ref, label(item), succeed=True))
            continue
        duplicate = (
            f"find_existing must return the entry posted before {before}"
            if lookup
            else "an interrupted post must never be repeated without lookup_by_reference"
        )
        if lookup:
            expect.append(Expect(ref, what, succeed=True, in_target=1, duplicate=duplicate))
        else:
            expect.append(
                Expect(
                    ref,
                    what,
                    succeed=False,
                    reason=ItemReason.UNEXPECTED_FAILURE.value,
                    why="the post was interrupted and the connector cannot look entries up "
                    "by reference, so the engine asks for a manual check",
                    mentions=(ref,),
                    in_target=1,
                    duplicate=duplicate,
                )
            )
    await verdict(
        world,
        job,
        expect,
        final="completed" if lookup else "completed_with_errors",
        after=await _lookups(world, job) if lookup else (),
    )


async def _lookups(world: World, job: ExportJob) -> list[str]:
    """``find_existing`` on a fresh instance finds every posted entry and nothing else."""
    pleo = world.pleo_items(job.id)
    posted = [ref for ref, item in pleo.items() if item.external_id]
    never = str(uuid.uuid5(uuid.NAMESPACE_URL, "pleo-export-conformance:never-exported"))
    found = await world.lookup([*posted, never])
    problems: list[str] = []
    missing = [ref for ref in posted if found.get(ref) is None]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        problems.append(
            f"find_existing on a freshly opened connector returned None for {len(missing)} of "
            f"the {len(posted)} posted references ({shown}): look the reference up in the "
            "target itself, not in this process's memory"
        )
    for ref in posted:
        record = found.get(ref)
        if record is not None and record.external_id != pleo[ref].external_id:
            problems.append(
                f"find_existing({ref!r}) returned externalId {record.external_id!r} but Pleo "
                f"was told {pleo[ref].external_id!r}: both must name the same entry"
            )
    if found.get(never) is not None:
        problems.append(
            f"find_existing({never!r}) returned {found[never]!r} for a reference that was "
            "never exported: match the stored reference exactly"
        )
    return problems


async def unknown_account(kit: Kit) -> None:
    world = kit.world("unknown_account")
    f = world.items
    code = f.chart.unknown_account_code
    s20 = f.tax("S20")
    single = f.spend("single", [Line(f.account(code), 12_000, s20)])
    second = f.spend(
        "second-line",
        [Line(f.account("6100"), 8_000, s20), Line(f.account(code), 4_500, s20)],
    )
    known = f.spend("known", [Line(f.account("6100"), 9_900, s20)])
    job = world.queue([single, second, known])
    run = await world.run()
    _precondition(world, run, job)
    fix = (
        f"prepare must raise ItemRejected(account_unknown) naming account {code}, never book "
        "it to another account"
    )
    expect = [
        Expect(
            single["accountingEntryId"],
            f"one line on account {code}",
            succeed=False,
            reason=ItemReason.ACCOUNT_UNKNOWN.value,
            why=f"account {code} is not in the chart the target was built from",
            mentions=(code,),
            fix=fix,
        ),
        Expect(
            second["accountingEntryId"],
            f"line 2 of 2 on account {code}",
            succeed=False,
            reason=ItemReason.ACCOUNT_UNKNOWN.value,
            why=f"account {code} is not in the chart the target was built from",
            mentions=(code,),
            fix=fix,
        ),
        Expect(known["accountingEntryId"], "a known account", succeed=True),
    ]
    await verdict(world, job, expect, final="completed_with_errors")


async def unknown_vendor(kit: Kit) -> None:
    world = kit.world("unknown_vendor")
    f = world.items
    s20 = f.tax("S20")
    vendor = UNKNOWN_VENDOR
    invoice = f.spend(
        "invoice", [Line(f.account("6700"), 50_000, s20)], item_type="invoice", vendor=vendor
    )
    card = f.spend("card", [Line(f.account("6100"), 7_200, s20)], vendor=vendor)
    known = f.spend(
        "known",
        [Line(f.account("6700"), 30_000, s20)],
        item_type="invoice",
        vendor=f.chart.vendors[4],
    )
    job = world.queue([invoice, card, known], vendor_based=True)
    run = await world.run()
    _precondition(world, run, job)
    mentions = (vendor.code, vendor.name, vendor.external_id, vendor.tax_registration_number)
    fix = (
        "prepare must raise ItemRejected(vendor_unknown) for a vendor that matches nothing in "
        "the target (by code, external id or tax number)"
    )
    expect = [
        Expect(
            ref,
            what,
            succeed=False,
            reason=ItemReason.VENDOR_UNKNOWN.value,
            why=f"vendor {vendor.name} ({vendor.code}) is not in the target",
            mentions=mentions,
            fix=fix,
        )
        for ref, what in (
            (invoice["accountingEntryId"], f"invoice from unknown vendor {vendor.code}"),
            (card["accountingEntryId"], f"card purchase from unknown vendor {vendor.code}"),
        )
    ]
    expect.append(Expect(known["accountingEntryId"], "invoice from a known vendor", succeed=True))
    await verdict(world, job, expect, final="completed_with_errors")


async def unknown_tax_code(kit: Kit) -> None:
    world = kit.world("unknown_tax_code")
    f = world.items
    tax = UNKNOWN_TAX_CODE
    unknown = f.spend("unknown", [Line(f.account("6100"), 6_000, tax)])
    known = f.spend("known", [Line(f.account("6100"), 6_000, f.tax("S20"))])
    job = world.queue([unknown, known])
    run = await world.run()
    _precondition(world, run, job)
    expect = [
        Expect(
            unknown["accountingEntryId"],
            f"tax code {tax.code}",
            succeed=False,
            reason=ItemReason.TAX_CODE_UNKNOWN.value,
            why=f"tax code {tax.code} is not in the target",
            mentions=(tax.code,),
            fix=f"prepare must raise ItemRejected(tax_code_unknown) naming tax code {tax.code}",
        ),
        Expect(known["accountingEntryId"], "a known tax code", succeed=True),
    ]
    await verdict(world, job, expect, final="completed_with_errors")


async def attachment_over_limit(kit: Kit) -> None:
    world = kit.world("attachment_over_limit")
    limit = world.manifest.limits.max_attachment_bytes
    if limit is None:  # pragma: no cover - not applicable, filtered before
        raise world.fail("limits.max_attachment_bytes is not set")
    f = world.items
    s20 = f.tax("S20")
    small = min(20_000, limit)
    big = f.spend("big", [Line(f.account("6100"), 15_000, s20)], files=[f.file("big", limit + 1)])
    second = f.spend(
        "second-file",
        [Line(f.account("6100"), 11_000, s20)],
        files=[f.file("second-a", small), f.file("second-b", limit + 1, "png")],
    )
    fine = f.spend("fine", [Line(f.account("6100"), 8_000, s20)], files=[f.file("fine", small)])
    job = world.queue([big, second, fine])
    run = await world.run()
    _precondition(world, run, job)
    too_big = str(limit + 1)
    expect = [
        Expect(
            ref,
            what,
            succeed=False,
            reason=ItemReason.RECEIPT_FILE_SIZE_LIMIT_EXCEEDED.value,
            why=f"a file is {limit + 1} bytes, over limits.max_attachment_bytes = {limit}",
            mentions=(too_big,),
        )
        for ref, what in (
            (big["accountingEntryId"], f"one receipt of {limit + 1} bytes"),
            (second["accountingEntryId"], f"second receipt of {limit + 1} bytes"),
        )
    ]
    expect.append(
        Expect(
            fine["accountingEntryId"],
            f"one receipt of {small} bytes",
            succeed=True,
            fix="a receipt under the declared limit must be accepted",
        )
    )
    await verdict(world, job, expect, final="completed_with_errors")


async def closed_period(kit: Kit) -> None:
    world = kit.world("closed_period")
    if kit.target.close_period is None:
        raise world.fail(
            "connector_target.close_period is None: give the kit a way to close the books "
            "before a date, or exempt 'closed_period' with the reason your target has no "
            "closed periods"
        )
    try:
        await maybe_await(kit.target.close_period(FIRST_OPEN_DAY))
    except Exception as error:
        raise world.fail(
            f"connector_target.close_period({FIRST_OPEN_DAY.isoformat()}) raised "
            f"{type(error).__name__}: {error}"
        ) from error
    f = world.items
    s20 = f.tax("S20")
    dates = {
        "january": "2025-01-15T10:00:00Z",
        "last-closed-day": "2025-02-28T12:00:00Z",
        "open": "2025-03-10T10:00:00Z",
    }
    items = {
        key: f.spend(key, [Line(f.account("6100"), 7_500, s20)], date=stamp)
        for key, stamp in dates.items()
    }
    job = world.queue(list(items.values()))
    run = await world.run()
    _precondition(world, run, job)
    last_closed = date.fromordinal(FIRST_OPEN_DAY.toordinal() - 1).isoformat()
    expect = []
    for key, item in items.items():
        day = datetime.fromisoformat(dates[key].replace("Z", "+00:00")).date().isoformat()
        if key == "open":
            expect.append(
                Expect(
                    item["accountingEntryId"],
                    f"dated {day}, in the open period",
                    succeed=True,
                    fix=f"books are open from {FIRST_OPEN_DAY.isoformat()}",
                )
            )
            continue
        expect.append(
            Expect(
                item["accountingEntryId"],
                f"dated {day}, books closed before {FIRST_OPEN_DAY.isoformat()}",
                succeed=False,
                reason=ItemReason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE.value,
                why=f"{day} is in a closed period",
                mentions=(day, FIRST_OPEN_DAY.isoformat(), last_closed),
                fix="prepare must raise ItemRejected(accounting_system_validation_failure) "
                "naming the date and the closed period",
            )
        )
    await verdict(world, job, expect, final="completed_with_errors")


async def rounding_residual(kit: Kit) -> None:
    world = kit.world("rounding_residual")
    f = world.items
    foreign = f.foreign_currency()
    s20 = f.tax("S20")
    two = f.spend(
        "two-lines",
        [Line(f.account("6100"), 10_001, s20), Line(f.account("6020"), 5_003)],
        supplier_currency=foreign,
        residual=1,
    )
    three = f.spend(
        "three-lines",
        [
            Line(f.account("6000"), 3_333, f.tax("Z0")),
            Line(f.account("6010"), 3_333),
            Line(f.account("6020"), 3_334, s20),
        ],
        item_type="out_of_pocket",
        supplier_currency=foreign,
        residual=-1,
    )
    job = world.queue([two, three])
    run = await world.run()
    _precondition(world, run, job)
    fix = (
        "the lines miss the total by one minor unit (currency conversion) and the engine adds "
        "a rounding posting: book it"
    )
    expect = [
        Expect(
            two["accountingEntryId"], f"paid in {foreign}, lines +1 off the total", True, fix=fix
        ),
        Expect(
            three["accountingEntryId"], f"paid in {foreign}, lines -1 off the total", True, fix=fix
        ),
    ]
    await verdict(world, job, expect, final="completed")


STORM = (
    FaultRule("rate_limit", method="GET", path=r"^/v3/export-jobs$", count=2),
    FaultRule("rate_limit", method="POST", path=r"^/v3/export-job-events$", count=2),
    FaultRule("rate_limit", method="GET", path=r"^/v3/export-jobs/[^/]+/items$", count=2),
    FaultRule("rate_limit", method="GET", path=r"^/v3/export-items$", count=3),
    FaultRule("rate_limit", method="PUT", path=r"/items$", count=3, every=2),
    FaultRule("rate_limit", method="GET", path=r"^/_sandbox/files/", count=3, every=2),
)
"""429 answers (``Retry-After: 1``) on every kind of call the engine makes."""


async def pleo_429_storm(kit: Kit) -> None:
    world = kit.world("pleo_429_storm")
    items = world.items.generated(8, seed=501)
    job = world.queue(items)
    for rule in STORM:
        world.sandbox.add_fault(rule)
    run = await world.run(report_batch_size=3)
    _precondition(world, run, job)
    limited = sum(1 for r in world.sandbox.requests if r.status == 429)
    extra = []
    if limited < 6:  # the kit's own check that the storm happened
        extra.append(f"the kit expected at least 6 answers 429 from the sandbox, saw {limited}")
    expect = [
        Expect(
            i["accountingEntryId"],
            label(i),
            succeed=True,
            fix="Pleo answered 429 to many calls; the engine retries them and the entry "
            "must still be booked once",
        )
        for i in items
    ]
    await verdict(world, job, expect, final="completed", extra=extra)


async def target_unreachable_precheck(kit: Kit) -> None:
    world = kit.world("target_unreachable_precheck")
    unreachable = kit.target.unreachable_settings
    if unreachable is None:
        raise world.fail(
            "connector_target.unreachable_settings is None: give the kit settings under "
            "which the target cannot be reached (e.g. a closed port on 127.0.0.1), or exempt "
            "'target_unreachable_precheck' with the reason your target cannot be unreachable"
        )
    items = world.items.generated(3, seed=601, types=["card_purchase"])
    job = world.queue(items)
    counter = CallCounter()
    await world.run(settings=unreachable, wrap=counter.install)
    problems: list[str] = []
    current = world.job(job.id)
    expected = JobReason.ACCOUNTING_SYSTEM_UNREACHABLE.value
    if current.status is not ExportJobStatus.FAILED:
        problems.append(
            f"with unreachable_settings the job ended {current.status.value}; it must fail "
            f"pre-export validation with {expected}: open() or check(job) must raise "
            "TargetTemporarilyUnavailable when the target cannot be reached"
        )
    elif current.failure_reason_type != expected:
        problems.append(
            f"with unreachable_settings the job failed with {current.failure_reason_type} "
            f"({current.failure_reason}); an unreachable target must give {expected}: raise "
            "TargetTemporarilyUnavailable from open() or check(job) (or classify the "
            "connection error in classify_error)"
        )
    elif len((current.failure_reason or "").strip()) < MIN_MESSAGE_LENGTH:
        problems.append(
            f"the job failed with the message {current.failure_reason!r}: say which target "
            "could not be reached and what to check"
        )
    touched = [
        item.accounting_entry_id
        for item in world.sandbox.job_items(job.id)
        if item.status.value in ("successful", "failed")
    ]
    if touched:
        problems.append(
            f"{len(touched)} item(s) got an outcome although the target was unreachable before "
            "any item was read: the job must fail in pre-export validation"
        )
    for name in ("prepare", "post", "post_batch"):
        if counter.calls.get(name):
            problems.append(
                f"{name} was called {counter.calls[name]} time(s) with the target unreachable"
            )
    entries = await world.read_entries()
    if entries:
        problems.append(
            f"the target holds {len(entries)} entries after a run that could not reach it"
        )
    if problems:
        raise world.fail(*problems)


SCENARIOS: dict[str, Scenario] = {
    s.id: s
    for s in (
        Scenario(
            "happy_journal",
            "every item type as journal entries",
            frozenset({Capability.JOURNAL}),
            run=happy_journal,
        ),
        Scenario(
            "happy_accounts_payable",
            "a vendor-based job: invoices, payments and card purchases against vendors",
            frozenset({Capability.ACCOUNTS_PAYABLE}),
            run=happy_accounts_payable,
        ),
        Scenario(
            "partial_failure",
            "failures in the middle of a job; the other items are booked",
            frozenset({Capability.JOURNAL}),
            run=partial_failure,
        ),
        Scenario(
            "crash_retry_no_duplicates",
            "a crash and a lost answer after writing; the retry posts nothing twice",
            frozenset({Capability.JOURNAL}),
            run=crash_retry_no_duplicates,
        ),
        Scenario(
            "unknown_account",
            "an expense account the target does not know",
            frozenset({Capability.JOURNAL}),
            run=unknown_account,
        ),
        Scenario(
            "unknown_vendor",
            "a vendor the target does not know",
            frozenset({Capability.ACCOUNTS_PAYABLE}),
            run=unknown_vendor,
        ),
        Scenario(
            "unknown_tax_code",
            "a tax code the target does not know",
            frozenset({Capability.JOURNAL}),
            run=unknown_tax_code,
        ),
        Scenario(
            "attachment_over_limit",
            "a receipt over the connector's declared size limit",
            frozenset({Capability.JOURNAL, Capability.ATTACHMENTS}),
            needs_attachment_limit=True,
            run=attachment_over_limit,
        ),
        Scenario(
            "closed_period",
            "items dated in a closed accounting period",
            frozenset({Capability.JOURNAL}),
            run=closed_period,
        ),
        Scenario(
            "rounding_residual",
            "multi-currency items whose lines miss the total by a minor unit",
            frozenset({Capability.JOURNAL}),
            run=rounding_residual,
        ),
        Scenario(
            "pleo_429_storm",
            "Pleo answers 429 to every kind of call",
            frozenset({Capability.JOURNAL}),
            run=pleo_429_storm,
        ),
        Scenario(
            "target_unreachable_precheck",
            "the target cannot be reached during pre-export validation",
            frozenset(),
            run=target_unreachable_precheck,
        ),
    )
}
"""Every scenario by its stable id, in the order the suite runs them."""


def not_applicable(scenario: Scenario, manifest: ConnectorManifest) -> str | None:
    """Why ``scenario`` does not apply to a connector with ``manifest``, or ``None``."""
    missing = sorted(c.value for c in scenario.requires - manifest.capabilities)
    if missing:
        return f"the connector does not declare {', '.join(missing)}"
    if scenario.needs_attachment_limit and manifest.limits.max_attachment_bytes is None:
        return "the connector declares no limits.max_attachment_bytes"
    return None


async def run_scenario(scenario_id: str, kit: Kit) -> None:
    """Run one scenario; raises :class:`~pleo_export.testing.checks.ConformanceFailure`."""
    scenario = SCENARIOS[scenario_id]
    if scenario.run is None:  # pragma: no cover - every scenario has a run
        raise KeyError(scenario_id)
    await scenario.run(kit)


__all__ = ["FIRST_OPEN_DAY", "SCENARIOS", "Kit", "Scenario", "not_applicable", "run_scenario"]
