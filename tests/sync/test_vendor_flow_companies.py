"""The vendor flow of a worker serving two companies (one organisation key, a beancount ledger
per company through ``[connector.companies."<id>"]``): a draft vendor created in either company
ends up in that company's ledger only and is activated in Pleo, whether a ``v1.vendor.created``
webhook announces it or polling finds it; a company whose drafts Pleo refuses to list stops the
flow for that company only."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from pleo_export.app import open_session
from pleo_export.cli.run import draft_vendors
from pleo_export.config import load_settings
from pleo_export.pleo.masterdata import PleoMasterData
from pleo_export.sync.drafts import DraftStatus, DraftVendors
from pleo_export_beancount import BeancountConnector
from pleo_export_sandbox import ALL_SCOPES, DEMO_CHART, Sandbox
from pleo_export_sandbox.organisations import add_organisation_key
from tests.sync.support import SECRET, free_port, wait_active, watching

pytestmark = pytest.mark.anyio

NAMES = ("Fresh Paint Ltd", "Quiet Supplies GmbH")


def two_companies(monkeypatch: pytest.MonkeyPatch) -> tuple[Sandbox, list[str]]:
    """Two sandbox companies, and a third the organisation key does not cover."""
    sandbox = Sandbox()
    companies = [sandbox.add_company(name=f"Co {n}", wallet_currency="GBP").id for n in range(3)]
    key = sandbox.add_organisation_key(companies[:2])
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", key.secret)
    return sandbox, companies


def write_config(
    tmp_path: Path, sandbox: Sandbox, companies: list[str], *, poll: float, listen: str | None
) -> Path:
    first, second = companies[:2]
    lines = [
        "[pleo]",
        f'base_url = "{sandbox.base_url}"',
        f'company_ids = ["{first}", "{second}"]',
        "[state]",
        f'url = "sqlite:///{tmp_path / "state.db"}"',
        "[engine]",
        f"poll_interval = {poll}",
        "[connector]",
        'name = "beancount"',
    ]
    for n, company in enumerate((first, second)):
        books = tmp_path / f"books-{n}"
        values = BeancountConnector.scaffold(books, DEMO_CHART, "GBP")
        lines.append(f'[connector.companies."{company}"]')
        lines += [f"{k} = {json.dumps(str(books / v))}" for k, v in values.items()]
    if listen is not None:
        lines += ["[webhooks]", f'listen = "{listen}"', f'secret = "{SECRET}"']
    path = tmp_path / "pleo-export.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ledger(tmp_path: Path, n: int) -> str:
    books = tmp_path / f"books-{n}" / "ledger"
    return "\n".join(p.read_text(encoding="utf-8") for p in books.glob("*.bean*"))


def activated_before_any_search(sandbox: Sandbox, vendor_id: str) -> bool:
    """Whether the vendor was read by id and activated before the round searched for drafts
    (the webhook handled it, not the polling safety net)."""
    paths = [(r.method, r.path) for r in sandbox.requests if r.status < 400]
    read = paths.index(("GET", f"/v1/vendors/{vendor_id}"))
    activate = paths.index(("POST", f"/v1/vendors/{vendor_id}:activate"))
    searches = [i for i, (_, path) in enumerate(paths) if path == "/v1/vendors:search"]
    return read < activate and not any(read < i < activate for i in searches)


async def round_over(sandbox: Sandbox, last_company: str, vendor_id: str | None = None) -> None:
    """Wait until the round (the one that activated ``vendor_id``, else the first) searched the
    last company's drafts, so a draft created next is announced to a round of its own."""
    with anyio.fail_after(30):
        while True:
            paths = [(r.path, r.query) for r in sandbox.requests]
            start = next(
                (i for i, p in enumerate(paths) if p[0].endswith(f"{vendor_id}:activate")), -1
            )
            if (vendor_id is None or start >= 0) and any(
                path == "/v1/vendors:search" and query.get("company_id") == [last_company]
                for path, query in paths[start + 1 :]
            ):
                return
            await anyio.sleep(0.02)


def assert_in_own_ledgers(tmp_path: Path, drafts: list[dict[str, str]]) -> None:
    for n, draft in enumerate(drafts):
        own, other = ledger(tmp_path, n), ledger(tmp_path, 1 - n)
        assert own.count(f'pleo-vendor-id: "{draft["id"]}"') == 1
        assert draft["id"] not in other


async def test_a_webhook_vendor_of_either_company_lands_in_that_companys_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, companies = two_companies(monkeypatch)
    port = free_port()
    # A poll interval no test waits for: only the webhooks start the next rounds.
    config = write_config(tmp_path, sandbox, companies, poll=3600, listen=f"127.0.0.1:{port}")

    async with watching(config, sandbox):
        sandbox.webhooks.subscribe(f"http://127.0.0.1:{port}/pleo/webhooks", secret=SECRET)
        await round_over(sandbox, companies[1])
        drafts = []
        for company, name in zip(companies[:2], NAMES, strict=True):
            drafts.append(sandbox.create_draft_vendor(company, name, "GBP"))
            assert await sandbox.webhooks.deliver() == 1
            await wait_active(sandbox, company, drafts[-1]["id"])
            await round_over(sandbox, companies[1], drafts[-1]["id"])

    assert_in_own_ledgers(tmp_path, drafts)
    for company, draft in zip(companies[:2], drafts, strict=True):
        vendor = sandbox.master_data(company).vendors[draft["id"]]
        assert vendor.code and vendor.external_id
        assert activated_before_any_search(sandbox, draft["id"])


async def test_polling_finds_the_drafts_of_every_company(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, companies = two_companies(monkeypatch)
    config = write_config(tmp_path, sandbox, companies, poll=0.2, listen=None)

    async with watching(config, sandbox):
        served = zip(companies[:2], NAMES, strict=True)
        drafts = [sandbox.create_draft_vendor(company, name, "GBP") for company, name in served]
        for company, draft in zip(companies[:2], drafts, strict=True):
            await wait_active(sandbox, company, draft["id"])

    assert_in_own_ledgers(tmp_path, drafts)
    searched = {
        r.query["company_id"][0] for r in sandbox.requests if r.path == "/v1/vendors:search"
    }
    assert searched == set(companies[:2])


async def test_a_company_refused_the_vendors_api_stops_only_its_own_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, companies = two_companies(monkeypatch)
    config = write_config(tmp_path, sandbox, companies, poll=3600, listen=None)
    settings = load_settings(config)
    draft = sandbox.create_draft_vendor(companies[1], "Quiet Supplies GmbH", "EUR")
    stray = sandbox.create_draft_vendor(companies[2], "Elsewhere Ltd", "GBP")

    async with open_session(settings, transport=sandbox.transport()) as session:
        flow = draft_vendors(session)
        assert flow is not None
        assert list(flow.companies) == companies[:2]
        # The third company is not covered by the key: Pleo answers 403 to its search.
        uncovered = DraftVendors(session.connector, PleoMasterData(session.client, companies[2]))
        flow.companies = {companies[2]: uncovered, **flow.companies}
        outcomes = await flow.poll()
        again = await flow.poll()
        announced = await flow.handle_ids([stray["id"]])

    assert uncovered.disabled is not None and "403" in uncovered.disabled
    assert [flow.companies[c].disabled for c in companies[:2]] == [None, None]
    (outcome,) = outcomes
    assert (outcome.vendor_id, outcome.company_id) == (draft["id"], companies[1])
    assert outcome.status is DraftStatus.ACTIVATED
    assert again == [] and announced == []
    assert sandbox.master_data(companies[1]).vendors[draft["id"]].state == "ACTIVE"
    assert sandbox.master_data(companies[2]).vendors[stray["id"]].state == "DRAFT"
    assert f'pleo-vendor-id: "{draft["id"]}"' in ledger(tmp_path, 1)
    assert draft["id"] not in ledger(tmp_path, 0)


async def test_a_webhook_vendor_pleo_refuses_to_show_is_logged_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, companies = two_companies(monkeypatch)
    no_vendors = ALL_SCOPES - {"vendors:read", "vendors:write"}
    key = add_organisation_key(sandbox, companies[:2], "org-key-no-vendors", scopes=no_vendors)
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", key.secret)
    config = write_config(tmp_path, sandbox, companies, poll=3600, listen=None)
    draft = sandbox.create_draft_vendor(companies[0], "Fresh Paint Ltd", "GBP")

    async with open_session(load_settings(config), transport=sandbox.transport()) as session:
        flow = draft_vendors(session)
        assert flow is not None
        announced = await flow.handle_ids([draft["id"]])
        polled = await flow.poll()

    assert announced == [] and polled == []
    unreadable = [r for r in caplog.records if getattr(r, "event", "") == "vendor.unreadable"]
    assert [getattr(r, "vendor_id", None) for r in unreadable] == [draft["id"]]
    assert all(d.disabled is not None for d in flow.companies.values())
    assert sandbox.master_data(companies[0]).vendors[draft["id"]].state == "DRAFT"
