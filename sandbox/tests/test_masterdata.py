"""The sandbox's Vendors, Tax Code, Tags and Webhook Subscriptions APIs over raw HTTP, every
exchange checked against Pleo's specs; master-data jobs; the vendor webhook."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pleo_export.pleo.models import ExportItem
from pleo_export.webhooks import SignatureVerifier
from pleo_export_sandbox import DEMO_CHART
from sandbox.tests.conftest import Env, fetch_all
from tests.support.openapi import ContractViolation, OpenApiContract

pytestmark = pytest.mark.anyio


async def _search(client: httpx.AsyncClient, company_id: str, **body: Any) -> httpx.Response:
    return await client.post("/v1/vendors:search", params={"company_id": company_id}, json=body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"defaultCurrency": "GBP"}, "name"),
        ({"name": "A"}, "defaultCurrency"),
        ({"name": "A", "defaultCurrency": "pounds"}, "defaultCurrency"),
        ({"name": "A", "defaultCurrency": "GBP", "country": "Britain"}, "country"),
        ({"name": "A", "defaultCurrency": "GBP", "code": 7}, "code"),
    ],
)
async def test_a_bad_vendor_is_refused_naming_the_field(
    env: Env, body: dict[str, Any], field: str
) -> None:
    async with env.client() as client:
        response = await client.post("/v1/vendors", json={"companyId": env.company.id, **body})
    assert response.status_code == 400
    assert response.json()["type"] == "BAD_REQUEST" and field in response.json()["message"]


async def test_vendor_search_filters_and_pages(env: Env) -> None:
    async with env.client() as client:
        missing = await client.post("/v1/vendors:search", json={})
        assert missing.status_code == 400 and "company_id" in missing.json()["message"]

        page = await client.post(
            "/v1/vendors:search", params={"company_id": env.company.id, "limit": 3}, json={}
        )
        body = page.json()
        assert len(body["data"]) == 3 and body["pagination"]["hasNextPage"] is True
        assert body["pagination"]["total"] == len(DEMO_CHART.vendors)
        rest = await client.post(
            "/v1/vendors:search",
            params={"company_id": env.company.id, "after": body["pagination"]["endCursor"]},
            json={},
        )
        assert len(rest.json()["data"]) == len(DEMO_CHART.vendors) - 3

        by_code = await _search(client, env.company.id, codes=["V2003", "nope"])
        assert [v["name"] for v in by_code.json()["data"]] == ["Cloudhost GmbH"]
        by_name = await _search(client, env.company.id, name="google")
        assert [v["code"] for v in by_name.json()["data"]] == ["V1002"]
        too_many = await _search(client, env.company.id, codes=[str(n) for n in range(101)])
        assert too_many.status_code == 400 and "codes" in too_many.json()["message"]
        bad_state = await _search(client, env.company.id, states=["GONE"])
        assert bad_state.status_code == 400


async def test_another_companys_vendors_are_forbidden_and_unknown_ids_404(env: Env) -> None:
    other = env.sandbox.add_company(name="Other Ltd")
    async with env.client() as client:
        forbidden = await _search(client, other.id)
        assert forbidden.status_code == 403
        vendor_id = next(iter(env.sandbox.master_data(other.id).vendors))
        # The demo ids are the same in every company; a credential reaches its own only.
        mine = await client.get(f"/v1/vendors/{vendor_id}")
        assert mine.json()["data"]["companyId"] == env.company.id
        unknown = await client.get("/v1/vendors/7f0e5b9a-2a43-4c38-8d0d-5d0f0e6b1c11")
        assert unknown.status_code == 404 and unknown.json()["type"] == "NOT_FOUND"


async def test_activate_needs_an_external_id(env: Env) -> None:
    draft = env.sandbox.create_draft_vendor(env.company.id, "Corner Shop")
    async with env.client() as client:
        refused = await client.post(f"/v1/vendors/{draft['id']}:activate", json={"code": "C1"})
        assert refused.status_code == 400 and "externalId" in refused.json()["message"]
        clash = await client.post(
            f"/v1/vendors/{draft['id']}:activate", json={"externalId": "AS-1001"}
        )
        assert clash.status_code == 409
        ok = await client.post(
            f"/v1/vendors/{draft['id']}:activate", json={"externalId": "AS-9", "code": "C1"}
        )
        assert ok.status_code == 204
    assert env.sandbox.master_data(env.company.id).vendors[draft["id"]].state == "ACTIVE"


async def test_tax_code_and_tag_validation(env: Env) -> None:
    async with env.client() as client:
        percent = await client.post(
            "/v0/tax-codes",
            json={
                "companyId": env.company.id,
                "name": "25",
                "rate": 25,
                "type": "inclusive",
                "archived": False,
            },
        )
        assert percent.status_code == 400 and "rate" in percent.json()["message"]
        no_flag = await client.post(
            "/v0/tax-codes",
            json={"companyId": env.company.id, "name": "x", "rate": 0.1, "type": "inclusive"},
        )
        assert no_flag.status_code == 400 and "archived" in no_flag.json()["message"]
        groups = (await client.get("/v0/tag-groups")).json()["data"]
        dept = next(g for g in groups if g["code"] == "DEPT")
        tags = await fetch_all(client, f"/v0/tag-groups/{dept['id']}/tags", {"limit": 2})
        assert [t["code"] for t in tags] == ["ENG", "SAL", "OPS", "FIN"]
        dup = await client.post(
            f"/v0/tag-groups/{dept['id']}/tags", json={"code": "ENG", "archived": False}
        )
        assert dup.status_code == 409
        no_code = await client.post(f"/v0/tag-groups/{dept['id']}/tags", json={"archived": False})
        assert no_code.status_code == 400 and "code" in no_code.json()["message"]


async def test_subscription_validation(env: Env) -> None:
    async with env.client() as client:
        bad_url = await client.post(
            "/v1/subscriptions",
            json={"endpointUrl": "hooks", "eventTypes": ["v1.export-job.created"]},
        )
        assert bad_url.status_code == 400 and "endpointUrl" in bad_url.json()["message"]
        unknown = await client.post(
            "/v1/subscriptions",
            json={"endpointUrl": "https://a.test/h", "eventTypes": ["v9.nothing"]},
        )
        assert unknown.status_code == 400 and "v9.nothing" in unknown.json()["message"]
        made = await client.post(
            "/v1/subscriptions",
            json={"endpointUrl": "https://a.test/h", "eventTypes": ["v1.vendor.created"]},
        )
        assert made.status_code == 200
        listed = await client.get("/v1/subscriptions", params={"event_types": "v1.vendor.created"})
        assert [s["id"] for s in listed.json()["data"]] == [made.json()["data"]["id"]]
        none = await client.get("/v1/subscriptions", params={"status": "INACTIVE"})
        assert none.json()["data"] == []


async def test_a_job_from_master_data_refers_only_to_pleos_current_master_data(env: Env) -> None:
    data = env.sandbox.master_data(env.company.id)
    for vendor in data.vendors.values():  # as if a sync archived the demo vendors ...
        vendor.state = "ARCHIVED"
    for tax in data.tax_codes.values():
        tax.archived = tax.code != "S20"
    env.sandbox.masterdata.create_vendor(  # ... and brought the accounting system's one in
        env.company.id,
        {"name": "Tryton Supplies", "default_currency": "GBP", "code": "P-7", "external_id": "7"},
    )
    for group in data.tag_groups.values():
        group.archived = group.code == "PROJ"
    cost_centres = env.sandbox.masterdata.save_group(
        env.company.id, {"code": "CC", "name": "Cost centre", "archived": False}
    )
    env.sandbox.masterdata.save_tag(cost_centres, {"code": "100", "archived": False})
    job = env.sandbox.queue_export(
        env.company.id, count=60, seed=4, vendor_based_bookkeeping=True, from_master_data=True
    )
    items = [env.sandbox.export_item(i.accounting_entry_id) for i in env.sandbox.job_items(job.id)]
    vendors = {(i["vendor"]["code"], i["vendor"]["externalId"]) for i in items if "vendor" in i}
    assert vendors == {("P-7", "7")}
    taxes = {
        (line["tax"]["code"], line["tax"]["rate"])
        for item in items
        for line in item["accountingEntryLines"]
        if "tax" in line
    }
    assert taxes == {("S20", 0.2)}
    tags = {
        (t["groupCode"], t["code"])
        for i in items
        for line in i["accountingEntryLines"]
        for t in line.get("tags", [])
    }
    assert {group for group, _ in tags} == {"DEPT", "CC"}
    assert tags <= {("CC", "100"), *(("DEPT", t.code) for t in DEMO_CHART.tag_groups[0].tags)}
    for item in items:
        ExportItem.model_validate(item)  # still a valid item, tax amounts recomputed
        for line in item["accountingEntryLines"]:
            if "tax" in line:
                gross = line["lineAmount"]["inWalletCurrency"]["value"]
                tax = line["tax"]["amount"]["inWalletCurrency"]["value"]
                assert abs(tax - round(gross * 0.2 / 1.2)) <= 1


async def test_a_master_data_job_over_the_admin_route(
    env: Env, openapi_contract: OpenApiContract
) -> None:
    async with env.client() as client:
        env.sandbox.masterdata.create_vendor(
            env.company.id,
            {"name": "Only One", "default_currency": "GBP", "code": "P-1", "external_id": "1"},
        )
        for vendor in env.sandbox.master_data(env.company.id).vendors.values():
            if vendor.code != "P-1":
                vendor.state = "ARCHIVED"
        made = await client.post(
            f"/_sandbox/companies/{env.company.id}/exports",
            json={"count": 20, "vendor_based_bookkeeping": True, "from_master_data": True},
        )
    assert made.status_code == 201, made.text
    job = made.json()["data"]
    assert openapi_contract.validate("ExportJobV3", job) == []
    items = [
        env.sandbox.export_item(i.accounting_entry_id) for i in env.sandbox.job_items(job["id"])
    ]
    assert {i["vendor"]["code"] for i in items if "vendor" in i} == {"P-1"}


async def test_a_draft_vendor_fires_a_signed_vendor_created_event(env: Env) -> None:
    async with env.client() as client:
        subscribed = await client.post(
            "/v1/subscriptions",
            json={"endpointUrl": "https://erp.test/hook", "eventTypes": ["v1.vendor.created"]},
        )
        sub_id = subscribed.json()["data"]["id"]
        secret = (await client.get(f"/v1/subscriptions/{sub_id}/secret")).json()["data"]
        made = await client.post(
            f"/_sandbox/companies/{env.company.id}/vendors",
            json={"name": "Corner Shop", "country": "GB"},
        )
    assert made.status_code == 201
    env.sandbox.queue_export(env.company.id, count=1, seed=1)  # not subscribed: not delivered
    ((target, delivery),) = env.sandbox.webhooks.outbox
    headers = env.sandbox.webhooks.headers(target, delivery)
    verifier = SignatureVerifier(SecretStr(secret["secretKey"]))
    event = verifier.verify(headers, delivery.body)
    assert event.event_type == "v1.vendor.created"
    assert event.data["state"] == "DRAFT" and "code" not in event.data
    assert event.data["id"] == made.json()["data"]["id"]
    assert event.company_id == env.company.id


def test_the_checker_catches_a_vendor_answer_that_breaks_the_spec(
    openapi_contract: OpenApiContract,
) -> None:
    from pleo_export_sandbox import RequestRecord

    vendor = {
        "id": "7f0e5b9a-2a43-4c38-8d0d-5d0f0e6b1c11",
        "companyId": "7f0e5b9a-2a43-4c38-8d0d-5d0f0e6b1c12",
        "name": "A",
        "defaultCurrency": "GBP",
        "state": "GONE",
    }
    record = RequestRecord(
        method="GET",
        path=f"/v1/vendors/{vendor['id']}",
        query={},
        status=200,
        body=None,
        response_body={"data": vendor},
        credential_id=None,
        at=0,
        response_headers={"content-type": "application/json"},
    )
    with pytest.raises(ContractViolation, match="Vendors API"):
        openapi_contract.check_exchange(record)
    fine = {**vendor, "state": "DRAFT"}
    openapi_contract.check_exchange(
        RequestRecord(**{**record.__dict__, "response_body": {"data": fine}})
    )
    unknown_tax = RequestRecord(
        **{
            **record.__dict__,
            "path": f"/v0/tax-codes/{vendor['id']}",
            "status": 404,
            "response_body": {"type": "NOT_FOUND", "message": "x"},
        }
    )
    openapi_contract.check_exchange(unknown_tax)  # an error under a ``default``-only answer
    rate = json.loads(json.dumps({"rate": float(Decimal("0.2"))}))
    assert rate == {"rate": 0.2}
