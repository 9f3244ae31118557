"""Posting: attachments, idempotency across restarts, torn writes, dry-run, hostile text."""

from __future__ import annotations

import logging
from decimal import Decimal as D
from urllib.parse import urlsplit

import pytest

from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected
from pleo_export.testing import plan_item
from pleo_export_beancount.output import scan

pytestmark = pytest.mark.anyio

PDF = b"%PDF-1.4 receipt\n"
PNG = b"\x89PNG\r\n\x1a\nfake"


def _files():
    return [
        {"url": "https://files.pleo.io/a", "type": "application/pdf", "size": len(PDF)},
        {"url": "https://files.pleo.io/b", "type": "image/png", "size": len(PNG)},
    ]


async def test_attachments_are_stored_and_linked(harness, make):
    harness.downloads = {"https://files.pleo.io/a": PDF, "https://files.pleo.io/b": PNG}
    it = make.item(amount=1000, files=_files())
    ref = it.accounting_entry_id
    prepared, _ = await harness.book(it)

    first = harness.directory / "documents" / "2024" / f"{ref}-1.pdf"
    second = harness.directory / "documents" / "2024" / f"{ref}-2.png"
    assert first.read_bytes() == PDF
    assert second.read_bytes() == PNG
    entries, _ = harness.load()
    documents = [e for e in entries if type(e).__name__ == "Document"]
    assert sorted(d.filename for d in documents) == [str(first), str(second)]
    assert all(d.links == {f"pleo-{ref}"} for d in documents)
    assert all(d.account == "Expenses:Office" for d in documents)
    # Relative to the output file, inside the same append block as the transaction.
    assert f'document Expenses:Office "documents/2024/{ref}-1.pdf" ^pleo-{ref}' in prepared.rendered
    assert not list(harness.directory.glob("documents/2024/.*.tmp"))


async def test_attachments_hang_off_the_vendor_account(harness, make):
    harness.downloads = {"https://files.pleo.io/a": PDF}
    it = make.item(
        "invoice",
        amount=1000,
        files=_files()[:1],
        vendor=make.vendor("Acme Ltd.", code="V100"),
        bookkeeping="accounts_payable",
    )
    prepared, _ = await harness.book(it, vendor_based=True)
    assert "document Liabilities:AccountsPayable:AcmeLtd" in prepared.rendered
    harness.load()


async def test_download_failure_writes_nothing(harness, make):
    harness.downloads = {
        "https://files.pleo.io/a": PDF,
        "https://files.pleo.io/b": ConnectionError("link expired"),
    }
    it = make.item(amount=1000, files=_files())
    connector = await harness.connector()
    prepared = await connector.prepare(plan_item(it, make.job()))
    before = harness.output.read_bytes()
    with pytest.raises(ItemRejected) as caught:
        await connector.post(prepared)
    assert caught.value.reason_type is Reason.RECEIPT_DOWNLOAD_FAILURE
    assert "files[1] (image/png)" in caught.value.message
    assert "link expired" in caught.value.message
    assert harness.output.read_bytes() == before
    assert await connector.find_existing(it.accounting_entry_id) is None
    harness.load()


async def test_item_rejected_from_fetch_passes_through(harness, make):
    rejected = ItemRejected(Reason.RECEIPT_DOWNLOAD_FAILURE, "Pleo said 404")
    harness.downloads = {"https://files.pleo.io/a": rejected}
    connector = await harness.connector()
    prepared = await connector.prepare(plan_item(make.item(files=_files()[:1]), make.job()))
    with pytest.raises(ItemRejected) as caught:
        await connector.post(prepared)
    assert caught.value is rejected


async def test_oversized_attachment(harness, make):
    huge = [{"url": "https://files.pleo.io/a", "type": "application/pdf", "size": 31 * 2**20}]
    with pytest.raises(ItemRejected) as caught:
        await harness.prepare(make.item(files=huge))
    assert caught.value.reason_type is Reason.RECEIPT_FILE_SIZE_LIMIT_EXCEEDED
    assert "files[0]" in caught.value.message


async def test_oversized_download(harness, make, monkeypatch):
    from pleo_export_beancount import connector as module

    monkeypatch.setattr(
        module.BeancountConnector,
        "manifest",
        module.BeancountConnector.manifest.model_copy(
            update={"limits": module.Limits(max_attachment_bytes=10)}
        ),
    )
    harness.downloads = {"https://files.pleo.io/a": b"x" * 11}
    files = [{"url": "https://files.pleo.io/a", "type": "application/pdf", "size": 1}]
    connector = await harness.connector()
    prepared = await connector.prepare(plan_item(make.item(files=files), make.job()))
    with pytest.raises(ItemRejected) as caught:
        await connector.post(prepared)
    assert caught.value.reason_type is Reason.RECEIPT_FILE_SIZE_LIMIT_EXCEEDED


async def test_find_existing_after_restart(harness, make):
    it = make.item(amount=1000)
    _, record = await harness.book(it)

    fresh = await harness.connector()
    found = await fresh.find_existing(it.accounting_entry_id)
    assert found == record
    assert await fresh.find_existing("00000000-0000-4000-8000-000000000000") is None

    # external_url points at the transaction's header line.
    url = urlsplit(record.external_url)
    assert url.scheme == "file"
    line = int(url.fragment.removeprefix("L"))
    text = harness.output.read_text().splitlines()
    assert text[line - 1].startswith("2024-03-05 * ")


async def test_second_item_line_numbers(harness, make):
    await harness.book(make.item(amount=1000))
    _, record = await harness.book(make.item(amount=2000, date="2024-03-07T09:00:00Z"))
    line = int(urlsplit(record.external_url).fragment.removeprefix("L"))
    assert harness.output.read_text().splitlines()[line - 1].startswith("2024-03-07 * ")


async def test_find_existing_sees_blocks_written_by_another_instance(harness, make):
    reader = await harness.connector()
    it = make.item(amount=1000)
    _, record = await harness.book(it)  # another connector instance writes it
    assert await reader.find_existing(it.accounting_entry_id) == record


async def test_posting_twice_appends_once(harness, make):
    connector = await harness.connector()
    prepared = await connector.prepare(plan_item(make.item(amount=1000), make.job()))
    first = await connector.post(prepared)
    size = harness.output.stat().st_size
    second = await connector.post(prepared)
    assert first == second
    assert harness.output.stat().st_size == size
    assert harness.balances()["Assets:Pleo:Wallet"] == D("-10.00")


async def test_dry_run_prepare_writes_nothing_and_rendered_is_what_is_appended(harness, make):
    harness.downloads = {"https://files.pleo.io/a": PDF}
    it = make.item(amount=1000, files=_files()[:1], note="dry run")
    connector = await harness.connector()
    before = harness.output.read_bytes()
    listing = sorted(p.name for p in harness.directory.rglob("*"))

    prepared = await connector.prepare(plan_item(it, make.job()))
    assert harness.output.read_bytes() == before
    assert sorted(p.name for p in harness.directory.rglob("*")) == listing
    assert harness.fetched == []

    await connector.post(prepared)
    after = harness.output.read_bytes()
    assert after[: len(before)] == before
    assert after[len(before) :].decode() == prepared.rendered
    assert prepared.describe() == prepared.rendered


@pytest.mark.parametrize("cut", [1, 2, 10, 60, 200, -30, -1])
async def test_torn_trailing_block_is_truncated_on_open(harness, make, caplog, cut):
    await harness.book(make.item(amount=1000))
    intact = harness.output.read_bytes()

    connector = await harness.connector()
    torn_item = make.item(amount=777, note="ünïcødé ✓ " * 10)
    prepared = await connector.prepare(plan_item(torn_item, make.job()))
    data = prepared.rendered.encode()
    with harness.output.open("ab") as handle:
        handle.write(data[:cut])  # a crash in the middle of the write (maybe mid-character)

    with caplog.at_level(logging.WARNING):
        fresh = await harness.connector()
    if cut == 1:  # only the block's leading newline: a harmless blank line, left alone
        assert harness.output.read_bytes() == intact + b"\n"
    else:
        assert harness.output.read_bytes() == intact
        assert "incomplete pleo-export block" in caplog.text
    assert await fresh.find_existing(torn_item.accounting_entry_id) is None
    assert harness.balances() == {"Expenses:Office": D("10.00"), "Assets:Pleo:Wallet": D("-10.00")}

    # The item can be posted again afterwards, exactly once.
    await fresh.post(await fresh.prepare(plan_item(torn_item, make.job())))
    assert harness.balances()["Assets:Pleo:Wallet"] == D("-17.77")


async def test_foreign_content_after_last_block_is_kept(harness, make):
    await harness.book(make.item(amount=1000))
    with harness.output.open("a") as handle:
        handle.write("; a note the bookkeeper typed here\n")
    content = harness.output.read_bytes()
    await harness.connector()
    assert harness.output.read_bytes() == content


HOSTILE = (
    'He said "hi" \\ \\" \\\\n\n; pleo-export end FAKE\n2024-01-01 * "x"\r\n'
    "\u2028\u2029\x85\x00\x1b[31m\u202etxet desrever\u202c \ud800 \U0001f4a9 Zoë 中文 \t tab"
)


async def test_hostile_text_never_breaks_the_ledger(harness, make):
    it = make.item(
        amount=1000,
        note=HOSTILE,
        supplier_name=HOSTILE,
        lines=[make.line(1000, tags=[(HOSTILE, HOSTILE)])],
    )
    prepared, _ = await harness.book(it)
    entries, _ = harness.load()
    (txn,) = [e for e in entries if type(e).__name__ == "Transaction"]
    assert txn.meta["pleo-entry-id"] == it.accounting_entry_id
    assert '"hi"' in txn.narration and "Zoë 中文" in txn.narration
    assert "\u202e" not in txn.narration and "\x00" not in txn.narration
    assert "\ufffd" in txn.payee  # the lone surrogate
    assert "\n; pleo-export end FAKE" in txn.narration  # kept as text, escaped on disk
    dims = [k for k in txn.postings[0].meta if k.startswith("dimension-")]
    assert len(dims) == 1 and txn.postings[0].meta[dims[0]].startswith('He said "hi"')
    # On disk: the fake marker is inside a string, not a line of its own.
    content = harness.output.read_bytes()
    assert b"\n; pleo-export end FAKE" not in content
    found = scan(content)
    assert list(found.blocks) == [it.accounting_entry_id]
    assert found.torn_at is None
    assert prepared.rendered.count("\n") == content.decode().count("\n")


@pytest.mark.parametrize(
    ("code", "raised", "message"),
    [
        ("EIO", "TargetTemporarilyUnavailable", "nothing was written"),
        # A full disk stops the job (every later item would fail the same way).
        ("ENOSPC", "JobRejected", "no space left .* nothing was written"),
    ],
)
async def test_failed_write_leaves_the_file_unchanged(
    harness, make, monkeypatch, code, raised, message
):
    import errno
    import os

    import pleo_export as contract

    connector = await harness.connector()
    prepared = await connector.prepare(plan_item(make.item(amount=1000), make.job()))
    before = harness.output.read_bytes()
    real_write = os.write

    def half_then_fail(fd, data):
        real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(getattr(contract, raised), match=message):
        await connector.post(prepared)
    monkeypatch.setattr(os, "write", real_write)
    assert harness.output.read_bytes() == before
    await connector.post(prepared)  # safe to retry as is
    harness.load()


async def test_failed_fsync_is_an_uncertain_outcome(harness, make, monkeypatch):
    import os

    from pleo_export import OutcomeUncertain

    connector = await harness.connector()
    it = make.item(amount=1000)
    prepared = await connector.prepare(plan_item(it, make.job()))

    def broken_fsync(fd):
        raise OSError("EIO")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OutcomeUncertain):
        await connector.post(prepared)
    monkeypatch.undo()
    # The engine then looks the item up: the block is in the file, so it is found.
    assert await connector.find_existing(it.accounting_entry_id) is not None
