"""The beancount connector against the conformance kit (``pleo_export.testing``).

The target is a starter ledger scaffolded from the kit's chart; ``read_entries`` loads the
whole ledger with beancount (it must load without errors) and returns what the output file
holds, one ``TargetEntry`` per appended block.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from pleo_export import decimals
from pleo_export.testing import ConformanceSuite, ConnectorTarget, TargetEntry, TargetPosting
from pleo_export_beancount import BeancountConnector
from pleo_export_beancount.settings import DEFAULT_OUTPUT_NAME
from pleo_export_sandbox import Chart

pytest_plugins = ["pleo_export.testing.plugin"]


def _minor(number: Decimal, currency: str) -> int:
    scaled = number.scaleb(decimals(currency))
    if scaled != scaled.to_integral_value():
        raise AssertionError(f"{number} {currency} is not a whole number of minor units")
    return int(scaled)


def read_ledger(ledger: Path, output: Path) -> list[TargetEntry]:
    """The blocks of ``output`` as beancount loads them from ``ledger``.

    A block starts with the transaction carrying ``pleo-exported-at``; the transactions after
    it with the same ``pleo-entry-id`` (an accounts-payable payment) belong to it.
    """
    from beancount import loader
    from beancount.core import data

    entries, errors, _ = loader.load_file(str(ledger))
    if errors:
        listed = "; ".join(str(getattr(e, "message", e)) for e in errors[:5])
        raise AssertionError(f"the ledger does not load cleanly ({len(errors)} errors): {listed}")
    found = sorted(
        (
            e
            for e in entries
            if isinstance(e, data.Transaction)
            and Path(e.meta["filename"]) == output.resolve()
            and "pleo-entry-id" in e.meta
        ),
        key=lambda e: int(e.meta["lineno"]),
    )
    blocks: list[dict[str, Any]] = []
    for txn in found:
        reference = str(txn.meta["pleo-entry-id"])
        starts = "pleo-exported-at" in txn.meta
        if starts or not blocks or blocks[-1]["reference"] != reference:
            blocks.append(
                {
                    "reference": reference,
                    "links": set(),
                    "postings": [],
                    "draft": False,
                    "line": int(txn.meta["lineno"]),
                }
            )
        block = blocks[-1]
        block["links"] |= set(txn.links or ())
        block["draft"] = block["draft"] or txn.flag == "!"
        for posting in txn.postings:
            currency = posting.units.currency
            block["postings"].append(
                TargetPosting(posting.account, _minor(posting.units.number, currency), currency)
            )
    return [
        TargetEntry(
            reference=b["reference"],
            external_id=next(iter(sorted(b["links"])), ""),
            postings=tuple(b["postings"]),
            draft=b["draft"],
            details={"line": b["line"]},
        )
        for b in blocks
    ]


class TestConformance(ConformanceSuite):
    connector_id = "beancount"
    exempt = {
        "unknown_tax_code": (
            "beancount books tax to accounts, not to tax codes: the connector keeps Pleo's tax "
            "code as posting metadata, so no tax code is unknown to the ledger (the "
            "pleo-tax-code directives are master data for sync only)"
        ),
        "target_unreachable_precheck": (
            "the target is a local ledger file, not a service: there is nothing to be "
            "unreachable, and a missing ledger is a configuration error (missing_configuration)"
        ),
    }

    @pytest.fixture
    def connector_target(
        self, tmp_path: Path, conformance_chart: Chart, conformance_currency: str
    ) -> ConnectorTarget:
        settings = BeancountConnector.scaffold(tmp_path, conformance_chart, conformance_currency)
        ledger = tmp_path / settings["ledger"]
        output = ledger.parent / DEFAULT_OUTPUT_NAME

        async def read() -> list[TargetEntry]:
            return await anyio.to_thread.run_sync(read_ledger, ledger, output)

        async def close_period(first_open_day: date) -> None:
            settings["closed_before"] = first_open_day

        return ConnectorTarget(settings=settings, read_entries=read, close_period=close_period)
