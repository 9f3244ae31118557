"""CSV layouts: rows per posting, dialects, formula neutralisation, safe names, hledger rules."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pytest

from connectors.sftp.tests.helpers import (
    Harness,
    card_purchase,
    files_outside,
    hostile_item,
    job,
    leftovers,
    local_settings,
    plans,
    published,
    sandbox_items,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected
from pleo_export.testing import plan_item
from pleo_export_sftp import SftpSettings, hledger_rules, hledger_rules_path
from pleo_export_sftp.layout import (
    COLUMNS,
    LAYOUT_COLUMNS,
    encode,
    is_safe_name,
    neutralise,
    render_csv,
    safe_component,
)
from pleo_export_sftp.reader import read_postings, read_rows

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946 0958", "'+44 20 7946 0958"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("-12.50", "-12.50"),
        ("-12,50", "-12,50"),
        ("12", "12"),
        ("Pret A Manger", "Pret A Manger"),
        ("two\r\nlines", "two lines"),
        ("\n=after break", "' =after break"),
        ("a\x00b", "a b"),
    ],
)
def test_neutralise(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("../../etc/passwd", "etc-passwd"),
        ("..", "x"),
        ("/abs/path", "abs-path"),
        ("a b\\c:d", "a-b-c-d"),
        ("da3c5fe6-1491-4b8d-ae6d-821d6af02fb5", "da3c5fe6-1491-4b8d-ae6d-821d6af02fb5"),
        ("ÆØÅ", "x"),
    ],
)
def test_safe_component(text: str, expected: str) -> None:
    assert safe_component(text) == expected


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "-rf", "", "a\\b", "x" * 201])
def test_unsafe_names_are_refused(name: str) -> None:
    assert not is_safe_name(name)


def test_layouts_only_name_known_columns() -> None:
    for columns in LAYOUT_COLUMNS.values():
        assert set(columns) <= set(COLUMNS)
        assert "entry_id" in columns


def test_shipped_hledger_rules_match_the_default_settings(tmp_path: Path) -> None:
    for layout in LAYOUT_COLUMNS:
        settings = SftpSettings(local_dir=tmp_path, layout=layout)
        shipped = hledger_rules_path(layout).read_text(encoding="utf-8")
        assert shipped == hledger_rules(settings), (
            f"{hledger_rules_path(layout)} is stale: regenerate it with hledger_rules()"
        )


async def test_rows_of_a_taxed_foreign_currency_item(tmp_path: Path) -> None:
    items = sandbox_items(120, seed=3, multi_currency_rate=1.0)
    item = next(
        i
        for i in items
        if i.type == "card_purchase"
        and i.amount.in_supplier_currency.currency != "GBP"
        and any(line.tax for line in i.accounting_entry_lines)
    )
    harness = Harness(local_settings(tmp_path / "out"), tmp_path)
    connector = harness.connector()
    prepared = await connector.prepare(plan_item(item, job()))
    rows = read_rows(prepared.rendered.encode(), harness.settings)
    assert {r["entry_id"] for r in rows} == {item.accounting_entry_id}
    assert [r["line"] for r in rows] == [str(n) for n in range(1, len(rows) + 1)]
    postings = read_postings(prepared.rendered.encode(), harness.settings)
    assert sum(p.amount_minor for p in postings) == 0
    wallet = [r for r in rows if r["role"] == "wallet"]
    assert len(wallet) == 1 and wallet[0]["account"] == "1990"
    assert wallet[0]["supplier_currency"] == item.amount.in_supplier_currency.currency
    assert wallet[0]["amount"] == f"-{item.amount.in_wallet_currency.value / 100:.2f}"
    taxed = [r for r in rows if r["role"] == "expense" and r["tax_amount"]]
    vat = [r for r in rows if r["role"] == "tax_input"]
    assert taxed and vat
    assert sorted(r["tax_amount"] for r in taxed) == sorted(r["amount"] for r in vat)
    assert all(r["tax_code"] for r in taxed + vat)
    expense_tags = [r["dimensions"] for r in rows if r["role"] == "expense"]
    line_tags = [
        "|".join(f"{t.group_code}:{t.code}" for t in line.tags)
        for line in item.accounting_entry_lines
    ]
    assert sorted(expense_tags) == sorted(line_tags)
    files = [r["attachments"] for r in rows]
    assert len(set(files)) == 1
    names = files[0].split("|") if files[0] else []
    assert len(names) == len(item.files or [])
    assert all(is_safe_name(n) for n in names)


async def test_european_dialect_reads_back_to_the_same_postings(tmp_path: Path) -> None:
    the_plans = plans(sandbox_items(60, seed=5, multi_currency_rate=0.5))
    default = local_settings(tmp_path / "a")
    european = local_settings(
        tmp_path / "b",
        layout="debit-credit",
        delimiter=";",
        decimal_separator=",",
        date_format="%d.%m.%Y",
        encoding="cp1252",
        line_terminator="lf",
        sign_convention="credit_positive",
    )
    results = {}
    for name, settings in (("default", default), ("european", european)):
        connector = Harness(settings, tmp_path).connector()
        rows = [row for p in the_plans for row in (await connector.prepare(p)).payload.rows]
        text = encode(render_csv(rows, settings, header=True), settings)
        results[name] = [
            (p.entry_id, p.account, p.amount_minor, p.currency)
            for p in read_postings(text, settings)
        ]
        if name == "european":
            assert b";" in text and b"\r\n" not in text
            sample = text.decode("cp1252").splitlines()[1]
            assert sample.split(";")[0].count(".") == 2  # 17.03.2025
    assert results["default"] == results["european"]


async def test_headers_tag_columns_and_no_header_row(tmp_path: Path) -> None:
    settings = local_settings(
        tmp_path / "out",
        columns=["entry_id", "date", "account", "amount", "currency", "tag:DEPT", "tag:PROJ"],
        headers={"entry_id": "Reference", "tag:DEPT": "Department"},
    )
    connector = Harness(settings, tmp_path).connector()
    item = card_purchase()
    prepared = await connector.prepare(plan_item(item, job()))
    lines = list(csv.reader(io.StringIO(prepared.rendered)))
    assert lines[0] == [
        "Reference",
        "date",
        "account",
        "amount",
        "currency",
        "Department",
        "tag:PROJ",
    ]
    dept = [t.code for t in item.accounting_entry_lines[0].tags if t.group_code == "DEPT"]
    assert lines[1][5] == "|".join(dept)
    headless = local_settings(tmp_path / "out2", header_row=False)
    connector = Harness(headless, tmp_path).connector()
    prepared = await connector.prepare(plan_item(item, job()))
    assert not prepared.rendered.startswith("date,")


async def test_unencodable_text_fails_the_item_or_is_replaced(tmp_path: Path) -> None:
    item = card_purchase(note="Taxi 出租车")
    strict = Harness(local_settings(tmp_path / "a", encoding="cp1252", columns=None), tmp_path)
    settings = strict.settings.model_copy(
        update={"columns": [*strict.settings.column_list, "note"]}
    )
    with pytest.raises(ItemRejected) as caught:
        await Harness(settings, tmp_path).connector().prepare(plan_item(item, job()))
    assert caught.value.reason_type is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
    assert "note" in caught.value.message and "cp1252" in caught.value.message
    lenient = settings.model_copy(update={"unencodable": "replace"})
    prepared = await Harness(lenient, tmp_path).connector().prepare(plan_item(item, job()))
    assert "Taxi 出租车" in (prepared.rendered or "")  # the text; encoding happens on publish


async def test_hostile_item_is_neutralised_and_stays_in_the_directory(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    settings = local_settings(outbox, columns=[*LAYOUT_COLUMNS["journal-lines"], "note"])
    item = hostile_item()
    hostile_job = job(job_id="../../job/..")
    harness = Harness(settings, tmp_path)
    async with harness.opened(hostile_job) as connector:
        prepared = await connector.prepare(plan_item(item, hostile_job))
        (record,) = await connector.post_batch([prepared])
    assert not isinstance(record, ItemRejected)
    files = published(outbox)
    assert all(is_safe_name(name) for name in files)
    assert files_outside(tmp_path, outbox) == []
    receipts = sorted(n for n in files if not n.endswith((".csv", ".json")))
    assert receipts == [
        "pleo-etc-cron-d-evil-1.bin",
        "pleo-etc-cron-d-evil-2.png",
    ]
    (csv_name,) = [n for n in files if n.endswith(".csv")]
    assert csv_name.startswith("pleo-job-")
    rows = read_rows(files[csv_name], settings)
    cells = [cell for row in rows for cell in row.values()]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or "\n" in c]
    assert dangerous == []
    negative = [c for c in cells if c.startswith("-")]
    assert negative and all(c[1:].replace(".", "").isdigit() for c in negative)
    assert rows[0]["note"] == '\'=HYPERLINK("http://evil.invalid","click")'
    assert rows[0]["narration"].startswith("'@SUM(1+1)")
    assert rows[0]["account_name"] == "'-2+3"
    assert rows[0]["dimensions"] == "DEPT:=1+1"  # not at the start of the cell: harmless
    assert leftovers(outbox) == []


async def test_every_item_type_balances_in_its_rows(tmp_path: Path) -> None:
    items = sandbox_items(300, seed=11) + sandbox_items(200, seed=12, vendor_based=True)
    settings = local_settings(tmp_path / "out")
    connector = Harness(settings, tmp_path).connector()
    kinds: Counter[str] = Counter()
    for plan in plans(items[:300]) + plans(items[300:], job(vendor_based=True)):
        prepared = await connector.prepare(plan)
        postings = read_postings((prepared.rendered or "").encode(), settings)
        by_transaction: dict[str | None, int] = {}
        for p in postings:
            by_transaction[p.transaction] = by_transaction.get(p.transaction, 0) + p.amount_minor
        assert set(by_transaction.values()) == {0}, plan.item.type
        kinds.update({plan.item.type})
    assert len(kinds) == 17
