"""A vendor created in Pleo as a draft: ``run --watch`` creates it in the ledger and activates it
in Pleo, announced by a ``v1.vendor.created`` webhook over loopback or found by polling; a
redelivered webhook never creates it twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from pleo_export.host import PluginHost
from pleo_export_sandbox import DEMO_CHART, Sandbox
from tests.sync.support import SECRET, free_port, ledger_text, wait_active, watch_config, watching

pytestmark = pytest.mark.anyio


def write_config(
    tmp_path: Path, sandbox: Sandbox, company_id: str, *, poll: float, listen: str | None
) -> Path:
    connector = PluginHost(load_entry_points=False).load_connector("beancount")
    values: dict[str, Any] = connector.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined]
    return watch_config(
        tmp_path, sandbox, company_id, "beancount", values, poll=poll, listen=listen
    )


async def test_a_vendor_announced_by_webhook_is_created_in_the_ledger_and_activated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = Sandbox()
    company = sandbox.add_company(wallet_currency="GBP")
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", company.api_key)
    port = free_port()
    # A poll interval no test waits for: only the webhook can start the next round.
    config = write_config(tmp_path, sandbox, company.id, poll=3600, listen=f"127.0.0.1:{port}")

    async with watching(config, sandbox):
        sandbox.webhooks.subscribe(f"http://127.0.0.1:{port}/pleo/webhooks", secret=SECRET)
        draft = sandbox.create_draft_vendor(
            company.id, "Fresh Paint Ltd", country="GB", tax_registration_number="GB 111 2222"
        )
        delivery = sandbox.webhooks.outbox[-1]
        assert await sandbox.webhooks.deliver() == 1
        vendor = await wait_active(sandbox, company.id, draft["id"])
        # Redelivered (a new message id, as a sender retrying after a lost answer would).
        sandbox.webhooks.outbox.append(delivery)
        delivery[1].message_id = "msg_redelivered"
        assert await sandbox.webhooks.deliver() == 1
        await anyio.sleep(0.5)

    text = ledger_text(tmp_path)
    assert text.count(f'pleo-vendor-id: "{draft["id"]}"') == 1
    assert f'vendor-code: "{vendor.code}"' in text
    assert vendor.external_id and vendor.external_id in text
    assert vendor.code not in {v.code for v in DEMO_CHART.vendors}


async def test_polling_finds_a_draft_vendor_without_any_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = Sandbox()
    company = sandbox.add_company(wallet_currency="GBP")
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", company.api_key)
    config = write_config(tmp_path, sandbox, company.id, poll=0.2, listen=None)

    async with watching(config, sandbox):
        draft = sandbox.create_draft_vendor(company.id, "Quiet Supplies GmbH", "EUR")
        vendor = await wait_active(sandbox, company.id, draft["id"])

    assert vendor.code
    assert ledger_text(tmp_path).count(f'pleo-vendor-id: "{draft["id"]}"') == 1
