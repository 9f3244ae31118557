"""The conformance scenarios where everything can be booked: every item type, a partial
failure, a crash and retry, rounding residuals and a storm of 429s from Pleo."""

from __future__ import annotations

import uuid

from pleo_export.connector import Capability
from pleo_export.pleo.models import ExportJob
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.testing.checks import Expect
from pleo_export.testing.harness import CrashPlan, World
from pleo_export.testing.items import Line
from pleo_export.testing.kit import Kit, label, precondition, unknown_line, verdict
from pleo_export_sandbox import FaultRule

# --- the scenarios -------------------------------------------------------------------------------


async def happy_journal(kit: Kit) -> None:
    world = kit.world("happy_journal")
    items = world.items.generated(17, seed=101)
    job = world.queue(items)
    run = await world.run()
    precondition(world, run, job)
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
    precondition(world, run, job)
    expect = [Expect(i["accountingEntryId"], label(i), succeed=True) for i in items]
    await verdict(world, job, expect, final="completed")


async def partial_failure(kit: Kit) -> None:
    world = kit.world("partial_failure")
    items = world.items.generated(
        6, seed=301, types=["card_purchase", "out_of_pocket", "card_invoice"], multi_currency_rate=0
    )
    unknown_line(world, items[1], 0)
    # Lines that miss the total by a whole unit: the engine itself fails this one.
    line = items[3]["accountingEntryLines"][0]
    for key in ("lineAmount", "netAmount"):
        line[key]["inWalletCurrency"]["value"] += 100
        line[key]["inSupplierCurrency"]["value"] += 100
    job = world.queue(items)
    run = await world.run()
    precondition(world, run, job)
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
    precondition(world, first, job)
    if not first.crashed:
        raise world.fail(
            f"the kit could not simulate a crash: the connector wrote only {crash.writes} "
            "time(s) in the first run (is every item failing?)"
        )
    second = await world.run()
    precondition(world, second, job)
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
    precondition(world, run, job)
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
    precondition(world, run, job)
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
