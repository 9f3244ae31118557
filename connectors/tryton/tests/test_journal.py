"""Journal items booked into a real Tryton: lines, tax lines, counter accounts, drafts."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from connectors.tryton.tests.tryton_items import item, job, line, tax
from connectors.tryton.tests.tryton_support import Harness, record_id
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected, JobRejected, PreparedEntry
from pleo_export.testing import plan_item
from pleo_export_tryton import TrytonConnector

pytestmark = pytest.mark.anyio


async def test_card_purchase_with_vat_is_one_posted_move(harness: Harness) -> None:
    it = item(amount=12000, lines=[line(12000, "6100", tax=tax(2000))])
    prepared, record = await harness.book(it)

    model, move_id = record_id(record.external_id)
    assert model == "account.move"
    assert record.external_url.endswith(f"/#{harness.server.database}/model/account.move/{move_id}")
    assert await harness.move_lines(move_id) == [
        ("1990", D("-120.00"), None),
        ("2201", D("20.00"), None),
        ("6100", D("100.00"), None),
    ]
    move = await harness.read(
        "account.move", move_id, ["state", "description", "date", "journal.code", "number"]
    )
    assert move["state"] == "posted"
    assert move["number"]
    assert move["journal."]["code"] == "MISC"
    assert move["date"].isoformat() == "2025-03-04"
    reconciliation_id = it.additional_information.reconciliation_id
    assert move["description"].startswith(
        f"pleo:{it.accounting_entry_id}#1/1 {reconciliation_id} AMZN Mktp UK"
    )
    async with harness.reader() as client:
        tax_lines = await client.search_read(
            "account.tax.line",
            [("move_line.move", "=", move_id)],
            ["type", "amount", "tax.name", "move_line.account.code"],
        )
    assert sorted(
        (t["type"], t["amount"], t["tax."]["name"], t["move_line."]["account."]["code"])
        for t in tax_lines
    ) == [("base", D("100.00"), "S20", "6100"), ("tax", D("20.00"), "S20", "2201")]
    assert [(e.account, e.amount) for e in prepared.entries[0].postings] == [
        ("6100", 10000),
        ("2201", 2000),
        ("1990", -12000),
    ]


async def test_split_lines_reverse_charge_and_tags(harness: Harness) -> None:
    it = item(
        amount=30000,
        lines=[
            line(10000, "6200", tax=tax(2000, code="RC20", type="reverse", outgoing="2202")),
            line(20000, "6000", tags=[("DEPT", "ENG"), ("PROJ", "ALPHA")]),
        ],
    )
    _, record = await harness.book(it)
    _, move_id = record_id(record.external_id)
    assert await harness.move_lines(move_id) == [
        ("1990", D("-300.00"), None),
        ("2201", D("20.00"), None),
        ("2202", D("-20.00"), None),
        ("6000", D("200.00"), None),
        ("6200", D("100.00"), None),
    ]
    async with harness.reader() as client:
        lines = await client.search_read(
            "account.move.line", [("move", "=", move_id)], ["account.code", "description"]
        )
    descriptions = {row["account."]["code"]: row["description"] for row in lines}
    assert descriptions["6000"] == "Travel; DEPT:ENG; PROJ:ALPHA"
    assert descriptions["6200"] == "Software and Subscriptions; VAT RC20 reverse"


async def test_out_of_pocket_and_transfers_use_the_role_accounts(harness: Harness) -> None:
    spent = item("out_of_pocket", 4200, lines=[line(4200, "6020")], contra=None)
    topup = item("wallet_topup", 500000, bookkeeping="none")
    _, spent_record = await harness.book(spent)
    _, topup_record = await harness.book(topup)
    assert await harness.move_lines(record_id(spent_record.external_id)[1]) == [
        ("2250", D("-42.00"), None),
        ("6020", D("42.00"), None),
    ]
    assert await harness.move_lines(record_id(topup_record.external_id)[1]) == [
        ("1299", D("-5000.00"), None),
        ("1990", D("5000.00"), None),
    ]


async def test_counter_accounts_per_item_type_win(harness: Harness) -> None:
    it = item("mileage", 3150, lines=[line(3150, "7320")], contra=None)
    _, record = await harness.book(it, counter_accounts={"mileage": {"out_of_pocket": "1299"}})
    assert await harness.move_lines(record_id(record.external_id)[1]) == [
        ("1299", D("-31.50"), None),
        ("7320", D("31.50"), None),
    ]


async def test_foreign_currency_lines_keep_the_supplier_amount(harness: Harness) -> None:
    it = item(
        amount=10001,
        supplier_amount=11600,
        supplier_currency="EUR",
        lines=[
            line(5000, "6000", supplier=5800, supplier_currency="EUR"),
            line(5000, "6000", supplier=5800, supplier_currency="EUR"),
        ],
    )
    _, record = await harness.book(it)
    _, move_id = record_id(record.external_id)
    async with harness.reader() as client:
        rows = await client.search_read(
            "account.move.line",
            [("move", "=", move_id)],
            ["account.code", "debit", "credit", "second_currency.code", "amount_second_currency"],
        )
    held = sorted(
        (
            r["account."]["code"],
            r["debit"] - r["credit"],
            (r.get("second_currency.") or {}).get("code"),
            r["amount_second_currency"],
        )
        for r in rows
    )
    assert held == [
        ("1990", D("-100.01"), "EUR", D("-116.00")),
        ("6000", D("50.00"), "EUR", D("58.00")),
        ("6000", D("50.00"), "EUR", D("58.00")),
        ("7990", D("0.01"), None, None),
    ]


async def test_draft_setting_leaves_the_move_in_draft_and_finds_it(harness: Harness) -> None:
    it = item(amount=2500, lines=[line(2500, "6400")])
    _, record = await harness.book(it, state="draft")
    _, move_id = record_id(record.external_id)
    move = await harness.read("account.move", move_id, ["state", "number"])
    assert move == {"id": move_id, "state": "draft", "number": None}
    async with harness.connector(state="draft") as connector:
        found = await connector.find_existing(it.accounting_entry_id)
    assert found is not None and found.external_id == record.external_id
    async with harness.connector() as connector:  # posted is expected: the draft is unfinished
        assert await connector.find_existing(it.accounting_entry_id) is None


async def test_posting_again_finds_the_move_instead_of_writing_twice(harness: Harness) -> None:
    it = item(amount=990, lines=[line(990, "6100")])
    prepared, record = await harness.book(it)
    before = await harness.count("account.move")
    async with harness.connector() as connector:
        found = await connector.find_existing(it.accounting_entry_id)
        assert found is not None
        assert (found.external_id, found.external_url) == (record.external_id, record.external_url)
        assert abs((found.exported_at - record.exported_at).total_seconds()) < 30
        again = await connector.post(prepared)  # e.g. the engine's retry after a lost answer
    assert again.external_id == record.external_id
    assert await harness.count("account.move") == before


async def test_receipts_are_attached_to_the_move(harness: Harness) -> None:
    files = [
        {"url": "https://files.invalid/a", "type": "application/pdf", "size": 9},
        {"url": "https://files.invalid/b", "type": "image/png", "size": 4},
    ]
    harness.downloads.update(
        {"https://files.invalid/a": b"%PDF-1.4\n", "https://files.invalid/b": b"\x89PNG"}
    )
    it = item(amount=1500, lines=[line(1500, "6100")], files=files)
    _, record = await harness.book(it)
    async with harness.reader() as client:
        rows = await client.search_read(
            "ir.attachment",
            [("resource", "=", record.external_id)],
            ["name", "data", "description"],
            order=[("name", "ASC")],
        )
    assert [(r["name"], r["data"]) for r in rows] == [
        (f"pleo-{it.accounting_entry_id}-1.pdf", b"%PDF-1.4\n"),
        (f"pleo-{it.accounting_entry_id}-2.png", b"\x89PNG"),
    ]


@pytest.mark.parametrize(
    ("lines", "reason", "words"),
    [
        ([line(1000, "6999")], Reason.ACCOUNT_UNKNOWN, "accountingEntryLines[0].account.code 6999"),
        (
            [line(1200, "6100", tax=tax(200, code="XX9"))],
            Reason.TAX_CODE_UNKNOWN,
            "accountingEntryLines[0].tax.code 'XX9'",
        ),
        (
            [line(1200, "6100", tax=tax(200, ingoing="2999"))],
            Reason.ACCOUNT_UNKNOWN,
            "accountingEntryLines[0].tax.ingoingTaxAccount 2999",
        ),
    ],
)
async def test_unknown_accounts_and_taxes_fail_before_anything_is_written(
    harness: Harness, lines: list[dict[str, object]], reason: Reason, words: str
) -> None:
    amount = sum(int(ln["lineAmount"]["inWalletCurrency"]["value"]) for ln in lines)  # type: ignore[index]
    before = await harness.count("account.move")
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(item(amount=amount, lines=lines))
    assert caught.value.reason_type is reason
    assert words in caught.value.message
    assert "Tryton" in caught.value.message
    assert await harness.count("account.move") == before


async def test_unknown_wallet_account_names_the_contra_account(harness: Harness) -> None:
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(item(amount=500, contra="1999"))
    assert caught.value.reason_type is Reason.ACCOUNT_UNKNOWN
    assert "contraAccount.code 1999" in caught.value.message


async def test_an_item_in_another_currency_than_the_company_fails(harness: Harness) -> None:
    it = item(amount=500)
    wire = it.model_dump(mode="json", by_alias=True)
    wire["amount"]["inWalletCurrency"]["currency"] = "EUR"
    for ln in wire["accountingEntryLines"]:
        ln["lineAmount"]["inWalletCurrency"]["currency"] = "EUR"
    from pleo_export import ExportItem

    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(ExportItem.model_validate(wire))
    assert caught.value.reason_type is Reason.INVALID_CONFIGURATION
    assert "keeps its books in GBP" in caught.value.message


async def test_verify_reads_a_balanced_trial_balance(harness: Harness) -> None:
    await harness.book(item(amount=700, lines=[line(700, "6500")]))
    async with harness.connector() as connector:
        assert await connector.verify() == []


@pytest.mark.parametrize(
    ("overrides", "vendor_based", "words"),
    [
        ({"journal": "NOPE"}, False, "journal NOPE (setting journal) does not exist"),
        (
            {"invoice_journal": "CASH"},
            True,
            "journal CASH (setting invoice_journal) is of type cash",
        ),
        ({"contra_account": "1298"}, False, "account 1298 (setting contra_account) does not exist"),
        ({"tax_map": {"S20": "VAT 20"}}, False, "tax 'VAT 20' (tax_map['S20']) does not exist"),
        (
            {"counter_accounts": {"fee": {"wallet": "4999"}}},
            False,
            "account 4999 (setting counter_accounts.fee.wallet) does not exist",
        ),
    ],
)
async def test_check_names_the_missing_configuration(
    harness: Harness, overrides: dict[str, object], vendor_based: bool, words: str
) -> None:
    async with harness.connector(**overrides) as connector:
        with pytest.raises(JobRejected) as caught:
            await connector.check(job(vendor_based))
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert words in caught.value.message


async def test_check_passes_on_the_template_books(harness: Harness) -> None:
    async with harness.connector() as connector:
        await connector.check(job(vendor_based=True))


async def test_open_rejects_an_unknown_company(harness: Harness) -> None:
    connector = TrytonConnector(harness.settings(company="Nobody Ltd"), harness.context())
    try:
        with pytest.raises(JobRejected) as caught:
            await connector.open()
    finally:
        await connector.close()
    assert caught.value.reason_type is JobReason.INVALID_CONFIGURATION
    assert "company 'Nobody Ltd' (setting company) does not exist" in caught.value.message


def _unbalanced(prepared: PreparedEntry) -> PreparedEntry:
    """``prepared`` with its first move line off by one penny (Tryton must refuse to post)."""
    payload = prepared.payload
    spec = payload.parts[0]
    first = replace(spec.lines[0], amount=spec.lines[0].amount + D("0.01"))
    parts = (replace(spec, lines=(first, *spec.lines[1:])), *payload.parts[1:])
    return prepared.model_copy(update={"payload": replace(payload, parts=parts)})


async def test_tryton_refuses_an_unbalanced_move_and_the_draft_is_removed(
    harness: Harness,
) -> None:
    it = item(amount=2000, lines=[line(2000, "6100")])
    moves = await harness.count("account.move")
    async with harness.connector() as connector:
        prepared = await connector.prepare(plan_item(it, job()))
        with pytest.raises(ItemRejected) as caught:
            await connector.post(_unbalanced(prepared))
    assert caught.value.reason_type is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
    assert "must balance all its lines" in caught.value.message
    assert "does not balance in Tryton" in caught.value.message
    assert await harness.count("account.move") == moves


async def test_one_refused_item_of_a_batch_fails_alone(harness: Harness) -> None:
    good = [item(amount=1000 + n, lines=[line(1000 + n, "6100")]) for n in range(3)]
    bad = item(amount=3000, lines=[line(3000, "6020")])
    the_job = job()
    async with harness.connector() as connector:
        prepared = [await connector.prepare(plan_item(it, the_job)) for it in good[:2]]
        prepared.append(_unbalanced(await connector.prepare(plan_item(bad, the_job))))
        prepared.append(await connector.prepare(plan_item(good[2], the_job)))
        results = await connector.post_batch(prepared)
        assert isinstance(results[2], ItemRejected)
        assert results[2].reason_type is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
        for it, result in zip([*good[:2], good[2]], [*results[:2], results[3]], strict=True):
            assert not isinstance(result, ItemRejected)
            assert await connector.find_existing(it.accounting_entry_id) == result
        assert await connector.find_existing(bad.accounting_entry_id) is None
