"""The Tryton connector against the conformance kit (``pleo_export.testing``).

Each scenario gets a fresh clone of the template database (the sandbox chart, taxes, vendors
and fiscal years) served by its own trytond. ``read_entries`` reads what Tryton holds over
JSON-RPC: every move and supplier invoice whose description carries a pleo-export marker,
grouped by accounting entry id, with the lines of their moves.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.tryton.tests.tryton_server import (
    TrytonServer,
    free_port,
    running_clone,
    unique_database_name,
)
from connectors.tryton.tests.tryton_support import CURRENCY
from pleo_export import decimals
from pleo_export.testing import ConformanceSuite, ConnectorTarget, TargetEntry, TargetPosting
from pleo_export_sandbox import Chart
from pleo_export_tryton.rpc import TrytonClient
from pleo_export_tryton.specs import parse_marker

pytest_plugins = ["pleo_export.testing.plugin"]


def _minor(amount: Decimal) -> int:
    scaled = amount.scaleb(decimals(CURRENCY))
    if scaled != scaled.to_integral_value():
        raise AssertionError(f"{amount} {CURRENCY} is not a whole number of minor units")
    return int(scaled)


async def _client(url: str, database: str, server: TrytonServer) -> TrytonClient:
    client = TrytonClient(url, database, server.user, SecretStr(server.password), timeout=120)
    await client.login()
    preferences = await client.call("model.res.user.get_preferences", True, {})
    client.context = {"company": preferences["company"], "companies": [preferences["company"]]}
    return client


async def read_entries(url: str, database: str, server: TrytonServer) -> list[TargetEntry]:
    """Everything pleo-export wrote into ``database``, one entry per accounting entry id."""
    client = await _client(url, database, server)
    try:
        moves = await client.search_read(
            "account.move",
            [("description", "like", "pleo:%"), ("origin", "=", None)],
            ["description", "state"],
        )
        invoices = await client.search_read(
            "account.invoice",
            [("description", "like", "pleo:%"), ("type", "=", "in")],
            ["description", "state", "move", "account.code", "total_amount"],
        )
        parts: dict[str, list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
        move_ids: list[int] = []
        for model, rows in (("account.move", moves), ("account.invoice", invoices)):
            for row in rows:
                parsed = parse_marker(row["description"])
                if parsed is None:
                    continue
                parts[parsed[0]].append((parsed[1], model, row))
                move_id = row["id"] if model == "account.move" else row.get("move")
                if move_id:
                    move_ids.append(move_id)
        lines = await client.search_read(
            "account.move.line",
            [("move", "in", move_ids)],
            ["move", "account.code", "debit", "credit"],
        )
        by_move: dict[int, list[TargetPosting]] = defaultdict(list)
        for line in lines:
            amount = _minor(line["debit"] - line["credit"])
            by_move[line["move"]].append(TargetPosting(line["account."]["code"], amount, CURRENCY))
        draft_invoices = [
            row["id"]
            for found in parts.values()
            for _, model, row in found
            if model == "account.invoice" and not row.get("move")
        ]
        drafts: dict[int, list[TargetPosting]] = defaultdict(list)
        if draft_invoices:  # no move yet: read the invoice's own lines and taxes
            for model in ("account.invoice.line", "account.invoice.tax"):
                rows = await client.search_read(
                    model,
                    [("invoice", "in", draft_invoices)],
                    ["invoice", "account.code", "amount"],
                )
                for row in rows:
                    drafts[row["invoice"]].append(
                        TargetPosting(row["account."]["code"], _minor(row["amount"]), CURRENCY)
                    )
        entries: list[TargetEntry] = []
        for reference, found in parts.items():
            found.sort(key=lambda f: (f[0], f[2]["id"]))
            postings: list[TargetPosting] = []
            draft = False
            for _, model, row in found:
                if model == "account.move" or row.get("move"):
                    postings += by_move[row["id"] if model == "account.move" else row["move"]]
                else:
                    postings += drafts[row["id"]]
                    postings.append(
                        TargetPosting(
                            row["account."]["code"], -_minor(row["total_amount"]), CURRENCY
                        )
                    )
                draft = draft or row["state"] == "draft"
            first = found[0]
            entries.append(
                TargetEntry(
                    reference=reference,
                    external_id=f"{first[1]},{first[2]['id']}",
                    postings=tuple(postings),
                    draft=draft,
                    details={"records": ", ".join(f"{m},{r['id']}" for _, m, r in found)},
                )
            )
        return entries
    finally:
        await client.close()


async def close_books(
    url: str, database: str, server: TrytonServer, first_open_day: dt.date
) -> None:
    """Close every standard period that ends before ``first_open_day``."""
    client = await _client(url, database, server)
    try:
        periods = await client.search_read(
            "account.period",
            [("end_date", "<", first_open_day), ("state", "=", "open"), ("type", "=", "standard")],
            ["name"],
        )
        if periods:
            await client.model("account.period", "close", [p["id"] for p in periods], write=True)
    finally:
        await client.close()


class TestConformance(ConformanceSuite):
    connector_id = "tryton"
    exempt: dict[str, str] = {}

    @pytest.fixture
    def connector_target(
        self,
        tryton_template: str,
        conformance_chart: Chart,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[ConnectorTarget]:
        # A fresh clone and its own trytond: trytond only sees databases created after it
        # started once its database list cache expires.
        database = unique_database_name("conformance")
        work = tmp_path_factory.mktemp("tryton-conformance")
        with running_clone(tryton_template, database, work) as tryton:
            url = tryton.url
            settings: dict[str, Any] = {
                "url": url,
                "database": database,
                "user": tryton.user,
                "password": tryton.password,
                "out_of_pocket_account": "2250",
                "contra_account": "1299",
                "rounding_account": "7990",
                "timeout": 120,
            }

            async def read() -> list[TargetEntry]:
                return await read_entries(url, database, tryton)

            async def close_period(first_open_day: dt.date) -> None:
                await close_books(url, database, tryton, first_open_day)

            yield ConnectorTarget(
                settings=settings,
                read_entries=read,
                close_period=close_period,
                unreachable_settings={
                    **settings,
                    "url": f"http://127.0.0.1:{free_port()}",
                    "timeout": 5,
                },
            )
