"""PleoMasterData against the sandbox: every request and answer checked against Pleo's specs."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from pleo_export.pleo.errors import BadRequest, NotFound, PermissionDenied
from pleo_export.pleo.masterdata import (
    EXPORT_JOB_CREATED,
    VENDOR_CREATED,
    AlreadyExists,
    PleoMasterData,
    SubscriptionStatus,
    VendorState,
)
from pleo_export.pleo.models import TaxType
from pleo_export_sandbox import DEMO_CHART, SandboxConfig
from pleo_export_sandbox.faults import FaultRule
from tests.masterdata.conftest import START, MasterDataEnv

pytestmark = pytest.mark.anyio


async def test_the_demo_charts_master_data_is_seeded(md_env: MasterDataEnv) -> None:
    vendors = await md_env.pleo.list_vendors()
    assert {v.code for v in vendors} == {v.code for v in DEMO_CHART.vendors}
    assert {v.state for v in vendors} == {VendorState.ACTIVE}
    amazon = next(v for v in vendors if v.code == "V1001")
    assert amazon.id == DEMO_CHART.vendor("V1001").id  # the id generated items carry
    assert amazon.external_id == "AS-1001" and amazon.company_id == md_env.company.id

    taxes = await md_env.pleo.list_tax_codes()
    assert {t.code: t.rate for t in taxes} == {t.code: t.rate for t in DEMO_CHART.tax_codes}
    assert next(t for t in taxes if t.code == "RC20").outgoing_tax_account == "2202"

    groups = await md_env.pleo.list_tag_groups()
    assert sorted(g.code for g in groups) == ["DEPT", "PROJ"]
    dept = next(g for g in groups if g.code == "DEPT")
    tags = await md_env.pleo.list_tags(dept.id)
    assert [t.code for t in tags] == ["ENG", "SAL", "OPS", "FIN"]
    assert tags[0].id == DEMO_CHART.tag_groups[0].tags[0].id


async def test_every_page_of_a_search_is_followed(make_md_env: Callable[..., Any]) -> None:
    async with make_md_env(page_size=3) as env:
        vendors = await env.pleo.list_vendors()
        taxes = await env.pleo.list_tax_codes()
        searches = [r for r in env.sandbox.requests if r.path == "/v1/vendors:search"]
    assert len(vendors) == 8 and len({v.id for v in vendors}) == 8
    assert len(taxes) == 5
    assert len(searches) == 3  # 3 + 3 + 2
    assert searches[1].query["after"] == [searches[0].response_body["pagination"]["endCursor"]]
    assert all(r.body == {} for r in searches)


async def test_vendor_lifecycle_create_update_archive_activate(md_env: MasterDataEnv) -> None:
    pleo = md_env.pleo
    created = await pleo.create_vendor(
        name="Tryton Supplies Ltd",
        default_currency="GBP",
        code="V3001",
        external_id="party-17",
        country="GB",
        tax_registration_number="GB111222333",
    )
    assert created.state is VendorState.ACTIVE and created.code == "V3001"
    assert (await pleo.get_vendor(created.id)) == created

    with pytest.raises(AlreadyExists, match="V3001"):
        await pleo.create_vendor(name="Copy", default_currency="GBP", code="V3001")

    updated = await pleo.update_vendor(
        created.id,
        name="Tryton Supplies Limited",
        default_currency="EUR",
        external_id="party-17",
        code="V3001",
    )
    assert (updated.name, updated.default_currency, updated.country) == (
        "Tryton Supplies Limited",
        "EUR",
        None,  # PUT replaces: a field left out is cleared
    )

    await pleo.archive_vendor(created.id)
    assert (await pleo.get_vendor(created.id)).state is VendorState.ARCHIVED
    archived = await pleo.list_vendors([VendorState.ARCHIVED])
    assert [v.id for v in archived] == [created.id]

    await pleo.activate_vendor(created.id, "V3001", "party-17")
    assert (await pleo.get_vendor(created.id)).state is VendorState.ACTIVE


async def test_a_draft_vendor_is_activated_with_its_code_and_external_id(
    md_env: MasterDataEnv,
) -> None:
    draft = md_env.sandbox.create_draft_vendor(md_env.company.id, "Corner Shop", "GBP")
    found = await md_env.pleo.list_vendors([VendorState.DRAFT])
    assert [(v.id, v.code, v.external_id) for v in found] == [(draft["id"], None, None)]

    await md_env.pleo.activate_vendor(draft["id"], "V9001", "party-99")

    vendor = await md_env.pleo.get_vendor(draft["id"])
    assert (vendor.state, vendor.code, vendor.external_id) == (
        VendorState.ACTIVE,
        "V9001",
        "party-99",
    )
    assert await md_env.pleo.list_vendors([VendorState.DRAFT]) == []


async def test_search_by_code_goes_100_codes_at_a_time(md_env: MasterDataEnv) -> None:
    codes = [f"X{n}" for n in range(150)] + ["V1002"]
    found = await md_env.pleo.list_vendors(codes=codes)
    assert [v.code for v in found] == ["V1002"]
    bodies = [r.body for r in md_env.sandbox.requests if r.path == "/v1/vendors:search"]
    assert [len(b["codes"]) for b in bodies] == [100, 51]


async def test_unknown_vendor_is_not_found_and_a_bad_body_is_a_typed_error(
    md_env: MasterDataEnv,
) -> None:
    with pytest.raises(NotFound):
        await md_env.pleo.get_vendor("7f0e5b9a-2a43-4c38-8d0d-5d0f0e6b1c11")
    with pytest.raises(BadRequest, match="defaultCurrency"):
        await md_env.pleo.create_vendor(name="Lower", default_currency="gbp")


async def test_tax_codes_are_created_updated_and_archived_never_deleted(
    md_env: MasterDataEnv,
) -> None:
    pleo = md_env.pleo
    created = await pleo.create_tax_code(
        name="Standard 25%", rate=Decimal("0.25"), type=TaxType.INCLUSIVE, code="S25"
    )
    assert created.rate == Decimal("0.25") and not created.archived
    with pytest.raises(AlreadyExists):
        await pleo.create_tax_code(name="Again", rate=Decimal("0.25"), type="inclusive", code="S25")

    renamed = await pleo.update_tax_code(
        created.id,
        name="Standard rate 25 %",
        rate=Decimal("0.25"),
        type=TaxType.INCLUSIVE,
        code="S25",
        ingoing_tax_account="2201",
    )
    assert renamed.ingoing_tax_account == "2201"
    archived = await pleo.archive_tax_code(renamed)
    assert archived.archived and archived.name == "Standard rate 25 %"

    assert created.id not in {t.id for t in await pleo.list_tax_codes(include_archived=False)}
    assert created.id in {t.id for t in await pleo.list_tax_codes()}
    assert not any(r.method == "DELETE" for r in md_env.sandbox.requests)

    with pytest.raises(ValueError, match="fraction"):
        await pleo.create_tax_code(name="Percent", rate=Decimal(25), type=TaxType.INCLUSIVE)


async def test_dimensions_become_tag_groups_and_values_tags(md_env: MasterDataEnv) -> None:
    pleo = md_env.pleo
    group = await pleo.create_tag_group(code="CC", name="Cost centre", metadata={"source": "as"})
    first = await pleo.create_tag(group.id, code="100", name="Head office")
    second = await pleo.create_tag(group.id, code="200", name="Warehouse")
    assert [t.code for t in await pleo.list_tags(group.id)] == ["100", "200"]

    with pytest.raises(AlreadyExists):
        await pleo.create_tag(group.id, code="100")

    await pleo.update_tag(second.id, code="200", name="Warehouse", archived=True)
    assert [t.code for t in await pleo.list_tags(group.id, include_archived=False)] == ["100"]
    assert len(await pleo.list_tags(group.id)) == 2

    renamed = await pleo.update_tag_group(group.id, code="CC", name="Cost centres", archived=True)
    assert renamed.archived and renamed.metadata == {}
    assert "CC" not in {g.code for g in await pleo.list_tag_groups(include_archived=False)}
    assert first.group_id == group.id


async def test_subscriptions_round_trip_and_the_secret_signs_deliveries(
    md_env: MasterDataEnv,
) -> None:
    pleo = md_env.pleo
    created = await pleo.create_subscription("https://hooks.example.test/pleo")
    assert set(created.event_types) == {EXPORT_JOB_CREATED, VENDOR_CREATED}
    assert created.status is SubscriptionStatus.ACTIVE
    secret = await pleo.get_subscription_secret(created.id)
    assert secret.get_secret_value().startswith("whsec_")
    assert "whsec_" not in repr(secret)
    assert [s.id for s in await pleo.list_subscriptions()] == [created.id]

    md_env.sandbox.queue_export(md_env.company.id, count=2, seed=1)
    ((target, delivery),) = md_env.sandbox.webhooks.outbox
    assert target.url == "https://hooks.example.test/pleo"
    assert target.secret == secret.get_secret_value()
    assert b'"v1.export-job.created"' in delivery.body

    await pleo.delete_subscription(created.id)
    assert await pleo.list_subscriptions() == []
    assert md_env.sandbox.webhooks.outbox == []  # waiting deliveries go with it
    with pytest.raises(NotFound):
        await pleo.get_subscription(created.id)


async def test_master_data_calls_share_the_clients_budget_and_retries(
    md_env: MasterDataEnv,
) -> None:
    md_env.sandbox.add_fault(FaultRule(kind="rate_limit", path="/v1/vendors:search", count=1))
    vendors = await md_env.pleo.list_vendors()
    assert len(vendors) == 8
    stats = md_env.client.stats
    assert stats.rate_limited == 1 and stats.retries == 1
    assert stats.requests_by_endpoint["POST /v1/vendors:search"] == 2
    assert stats.requests == len(md_env.sandbox.requests)  # each one went through the budget


async def test_a_credential_without_the_scope_is_refused(md_env: MasterDataEnv) -> None:
    from pydantic import SecretStr

    from pleo_export.pleo.auth import ApiKeyAuth
    from pleo_export.pleo.client import PleoClient

    md_env.sandbox.add_api_key(md_env.company.id, "export-only", ["export-jobs:read"])
    async with PleoClient(
        md_env.sandbox.base_url,
        ApiKeyAuth(SecretStr("export-only")),
        transport=md_env.sandbox.transport(),
    ) as client:
        with pytest.raises(PermissionDenied, match="vendors:read"):
            await PleoMasterData(client, md_env.company.id).list_vendors()


async def test_companies_do_not_see_each_others_master_data(
    make_md_env: Callable[..., Any],
) -> None:
    async with make_md_env(SandboxConfig(start_time=START, seed_master_data=False)) as env:
        assert await env.pleo.list_vendors() == []
        await env.pleo.create_vendor(name="Mine", default_currency="GBP", external_id="e1")
        other = env.sandbox.add_company(name="Other Ltd")
        with pytest.raises(PermissionDenied):
            await PleoMasterData(env.client, other.id).list_vendors()
        assert [v.name for v in env.sandbox.master_data(env.company.id).vendors.values()] == [
            "Mine"
        ]
        assert env.sandbox.master_data(other.id).vendors == {}


def test_the_python_example_in_docs_webhooks_md_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    exec(compile(example, "docs/webhooks.md", "exec"), {"__name__": "docs_example"})  # noqa: S102
    assert capsys.readouterr().out.splitlines() == [
        "['v1.export-job.created', 'v1.vendor.created'] True",
        "['Corner Shop'] 1",
    ]
