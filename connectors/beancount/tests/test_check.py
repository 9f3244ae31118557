"""open() and check(): the ledger, the include of the output file and the role accounts."""

from __future__ import annotations

import pytest

from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import JobRejected

pytestmark = pytest.mark.anyio


async def test_check_passes_on_a_starter_ledger(harness, make):
    connector = await harness.connector()
    await connector.check(make.job(vendor_based=True))
    await connector.check(make.job(vendor_based=False))


async def test_missing_ledger(harness):
    harness.ledger.unlink()
    with pytest.raises(JobRejected) as caught:
        await harness.connector()
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert "setting ledger" in caught.value.message


async def test_ledger_that_is_a_directory_says_so(harness):
    harness.ledger.unlink()
    harness.ledger.mkdir()
    with pytest.raises(JobRejected) as caught:
        await harness.connector()
    assert caught.value.reason_type is JobReason.INVALID_CONFIGURATION
    assert "is a directory, not a file" in caught.value.message
    assert "setting ledger" in caught.value.message
    assert "does not exist" not in caught.value.message


async def test_missing_output_file_is_created_empty(harness, make):
    harness.output.unlink()
    connector = await harness.connector()
    assert harness.output.read_bytes() == b""
    await connector.check(make.job())


async def test_ledger_with_errors_is_rejected_listing_them(harness):
    with harness.ledger.open("a") as handle:
        handle.write(
            '2024-01-01 * "unbalanced"\n  Expenses:Office  10 DKK\n  Assets:Pleo:Wallet  -9 DKK\n'
        )
    with pytest.raises(JobRejected) as caught:
        await harness.connector()
    assert caught.value.reason_type is JobReason.INVALID_CONFIGURATION
    assert f"{harness.ledger}:" in caught.value.message
    assert "does not load cleanly (1 errors)" in caught.value.message


async def test_output_not_included(harness, make):
    text = harness.ledger.read_text().replace('include "pleo-export.beancount"\n', "")
    harness.ledger.write_text(text)
    connector = await harness.connector()
    with pytest.raises(JobRejected) as caught:
        await connector.check(make.job())
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert 'add the line `include "pleo-export.beancount"`' in caught.value.message


async def test_output_in_a_subdirectory_names_the_relative_include(harness, make):
    harness.overrides = {"output": harness.directory / "pleo" / "out.beancount"}
    connector = await harness.connector()
    with pytest.raises(JobRejected) as caught:
        await connector.check(make.job())
    assert '`include "pleo/out.beancount"`' in caught.value.message


async def test_role_account_not_open(harness, make):
    harness.overrides = {"contra_account": "Assets:Bank:Other"}
    connector = await harness.connector()
    with pytest.raises(JobRejected) as caught:
        await connector.check(make.job())
    assert caught.value.reason_type is JobReason.MISSING_CONFIGURATION
    assert "contra_account = Assets:Bank:Other is not opened" in caught.value.message
    assert "open Assets:Bank:Other" in caught.value.message


async def test_role_account_closed(harness, make):
    with harness.ledger.open("a") as handle:
        handle.write("2020-01-01 close Expenses:Rounding\n")
    connector = await harness.connector()
    with pytest.raises(JobRejected) as caught:
        await connector.check(make.job())
    assert "rounding_account = Expenses:Rounding (rounding) was closed on 2020-01-01" in (
        caught.value.message
    )


async def test_an_exchange_account_that_is_set_must_be_open(harness, make):
    harness.overrides = {"exchange_loss_account": "Expenses:ExchangeLosses"}
    connector = await harness.connector()
    with pytest.raises(JobRejected) as caught:
        await connector.check(make.job())
    assert "exchange_loss_account = Expenses:ExchangeLosses is not opened" in caught.value.message
    harness.overrides = {}  # unset: no account needed until a payment needs one
    connector = await harness.connector()
    await connector.check(make.job())
