"""The sandbox over real loopback HTTP (uvicorn), admin endpoints and a dropped connection."""

from __future__ import annotations

import httpx
import pytest

from pleo_export_sandbox import Sandbox
from pleo_export_sandbox.server import running_server
from tests.support.openapi import OpenApiContract

pytestmark = pytest.mark.anyio


async def test_export_flow_over_loopback_http(openapi_contract: OpenApiContract) -> None:
    sandbox = Sandbox()
    sandbox.on_exchange = openapi_contract.check_exchange
    async with running_server(sandbox) as base_url, httpx.AsyncClient(base_url=base_url) as admin:
        assert base_url.startswith("http://127.0.0.1:")
        company = (await admin.post("/_sandbox/companies", json={"name": "Wire Ltd"})).json()
        queued = await admin.post(
            f"/_sandbox/companies/{company['id']}/exports", json={"count": 12, "seed": 3}
        )
        assert queued.status_code == 201
        job_id = queued.json()["data"]["id"]

        async with httpx.AsyncClient(base_url=base_url, auth=(company["apiKey"], "")) as client:
            jobs = (await client.get("/v3/export-jobs", params={"statuses": "pending"})).json()
            assert [j["id"] for j in jobs["data"]] == [job_id]

            fault = await admin.post(
                "/_sandbox/faults",
                json={"kind": "drop_after", "method": "POST", "path": "/v3/export-job-events"},
            )
            assert fault.status_code == 201
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(
                    "/v3/export-job-events", json={"jobId": job_id, "event": "started"}
                )
            # Applied although the client never saw the answer.
            assert sandbox.get_job(job_id).status == "in_progress"

            items = (await client.get("/v3/export-items", params={"job_id": job_id})).json()["data"]
            file = next(f for item in items for f in item["files"])
            assert file["url"].startswith(f"{base_url}/_sandbox/files/")
            download = await client.get(file["url"])
            assert len(download.content) == file["size"]

            assert (await admin.delete("/_sandbox/faults")).status_code == 204
            updates = [
                {"accountingEntryId": i["accountingEntryId"], "status": "successful"} for i in items
            ]
            assert (
                await client.put(f"/v3/export-jobs/{job_id}/items", json=updates)
            ).status_code == 200
            done = await client.post(
                "/v3/export-job-events", json={"jobId": job_id, "event": "completed"}
            )
            assert done.status_code == 202

        state = (await admin.get("/_sandbox/state")).json()
    assert state["jobs"][0]["status"] == "completed"
    assert state["jobs"][0]["itemCounts"]["successful"] == 12
    assert state["faults"] == []
    assert sandbox.base_url == "http://sandbox.localhost"


async def test_admin_endpoints_validate_input() -> None:
    sandbox = Sandbox()
    async with running_server(sandbox) as base_url, httpx.AsyncClient(base_url=base_url) as admin:
        bad_fault = await admin.post("/_sandbox/faults", json={"kind": "explode"})
        unknown_field = await admin.post("/_sandbox/companies", json={"colour": "red"})
        no_company = await admin.post(
            "/_sandbox/companies/7f43be48-cd38-4b25-b7f9-bf146cab2ef3/exports", json={}
        )
    assert bad_fault.status_code == 400
    assert unknown_field.status_code == 400
    assert no_company.status_code == 404
