"""The ledger target as the conformance kit sees it (needs ``pleo_export.testing``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread

from pleo_export.testing import ConnectorTarget, TargetEntry, TargetPosting
from pleo_export_broken.ledger import read_lines
from pleo_export_sandbox import Chart


def chart_settings(chart: Chart) -> dict[str, Any]:
    """Ledger settings that know every account, vendor and tax code of ``chart``."""
    vendors: dict[str, str] = {}
    for vendor in chart.vendors:
        account = f"liability:payable:{vendor.code}"
        for key in (vendor.code, vendor.external_id, vendor.tax_registration_number):
            vendors[key] = account
    return {
        "accounts": {a.code: f"{a.category}:{a.code}" for a in chart.ledger_accounts()},
        "vendors": vendors,
        "tax_codes": [tax.code for tax in chart.tax_codes],
    }


def read_ledger(path: Path) -> list[TargetEntry]:
    """One :class:`TargetEntry` per ledger line, with all postings of its entries."""
    entries: list[TargetEntry] = []
    for number, row in enumerate(read_lines(path), start=1):
        postings = tuple(
            TargetPosting(p["account"], p["amount"], p["currency"])
            for entry in row["entries"]
            for p in entry["postings"]
        )
        entries.append(
            TargetEntry(
                reference=row["reference"],
                external_id=f"{path.name}:{number}",
                postings=postings,
                draft=bool(row.get("draft")),
            )
        )
    return entries


def ledger_target(directory: Path, chart: Chart) -> ConnectorTarget:
    """A fresh, empty ledger in ``directory`` that knows ``chart``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ledger.jsonl"
    settings: dict[str, Any] = {"path": str(path), **chart_settings(chart)}

    async def read() -> list[TargetEntry]:
        return await anyio.to_thread.run_sync(read_ledger, path)

    async def close_period(first_open_day: Any) -> None:
        settings["closed_before"] = first_open_day

    return ConnectorTarget(
        settings=settings,
        read_entries=read,
        close_period=close_period,
        # A ledger on a share that is not mounted: the folder does not exist.
        unreachable_settings={**settings, "path": str(directory / "not-mounted" / "ledger.jsonl")},
    )
