"""The conformance scenarios where the target must refuse: unknown account, vendor or tax
code, a receipt over the size limit, a closed period, and an unreachable target."""

from __future__ import annotations

from datetime import date, datetime

from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.pleo.models import ExportJobStatus
from pleo_export.testing.checks import MIN_MESSAGE_LENGTH, Expect
from pleo_export.testing.harness import CallCounter, maybe_await
from pleo_export.testing.items import UNKNOWN_TAX_CODE, UNKNOWN_VENDOR, Line
from pleo_export.testing.kit import FIRST_OPEN_DAY, Kit, precondition, verdict


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
    precondition(world, run, job)
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
    precondition(world, run, job)
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
    precondition(world, run, job)
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
    precondition(world, run, job)
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
    precondition(world, run, job)
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
