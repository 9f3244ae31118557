"""The in-memory test connector (``tests.support.memory``) against the kit: it must pass.

The memory target keeps no vendors, tax codes or periods, so those scenarios are exempt.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pleo_export.testing import ConformanceSuite, ConnectorTarget, TargetEntry, TargetPosting
from pleo_export_sandbox import Chart
from tests.support.memory import MemoryConnector, fresh_target

pytest_plugins = ["pleo_export.testing.plugin"]

NO_VENDORS = "the memory target books every vendor to payable:<code>; it keeps no vendor table"
NO_TAX_CODES = "the memory target keeps no tax-code table"
NO_PERIODS = "the memory target has no accounting periods"
NO_SERVER = "the memory target lives in the test process and cannot be unreachable"


def memory_target(chart: Chart) -> ConnectorTarget:
    target = fresh_target()

    async def read() -> list[TargetEntry]:
        held: list[TargetEntry] = []
        for reference, entries in target.entries.items():
            postings = tuple(
                TargetPosting(p.account, p.amount, p.currency)
                for entry in entries
                for p in entry.postings
            )
            entry = TargetEntry(
                reference=reference,
                external_id=f"MEM-{reference[:8]}",
                postings=postings,
            )
            # The memory target overwrites a second post; it remembers that it happened.
            held += [entry] * (1 + target.posted_twice.count(reference))
        return held

    known = [account.code for account in chart.ledger_accounts()]
    return ConnectorTarget(settings={"known_accounts": known}, read_entries=read)


class TestConformance(ConformanceSuite):
    connector_id = "memory"
    exempt = {
        "unknown_vendor": NO_VENDORS,
        "unknown_tax_code": NO_TAX_CODES,
        "closed_period": NO_PERIODS,
        "target_unreachable_precheck": NO_SERVER,
    }

    @pytest.fixture
    def connector_target(self, conformance_chart: Chart) -> Iterator[ConnectorTarget]:
        yield memory_target(conformance_chart)
        MemoryConnector.target = fresh_target()
