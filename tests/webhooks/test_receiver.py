"""Webhook signatures, the receiver's answers, and the sandbox's signed deliveries."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from pydantic import SecretStr

from pleo_export.webhooks import (
    EXPORT_JOB_CREATED,
    SignatureVerifier,
    Wakeups,
    WebhookError,
    parse_listen,
    receiver_app,
)
from pleo_export_sandbox import Sandbox

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _delivery(sandbox: Sandbox) -> tuple[dict[str, str], bytes]:
    subscription, delivery = sandbox.webhooks.outbox[-1]
    return sandbox.webhooks.headers(subscription, delivery), delivery.body


@pytest.fixture
def sandbox() -> Sandbox:
    sandbox = Sandbox()
    sandbox.webhooks.subscribe("http://127.0.0.1:9/unused", secret=SECRET)
    return sandbox


def test_a_delivery_signed_by_the_sandbox_verifies(sandbox: Sandbox) -> None:
    company = sandbox.add_company()
    job = sandbox.queue_export(company.id, count=3, seed=1)
    headers, body = _delivery(sandbox)

    event = SignatureVerifier(SecretStr(SECRET)).verify(headers, body)

    assert event.event_type == EXPORT_JOB_CREATED
    assert event.job_id == job.id
    assert event.company_id == company.id
    assert event.message_id == headers["webhook-id"]


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda h, b: (h, b.replace(b'"pending"', b'"failed"')), "no webhook-signature matches"),
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), "no webhook-signature matches"),
        (
            lambda h, b: ({**h, "webhook-timestamp": str(int(time.time()) - 3600)}, b),
            "away from this machine's clock",
        ),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-timestamp": "yesterday"}, b), "not Unix seconds"),
    ],
    ids=["body", "message-id", "stale", "unsigned", "bad-timestamp"],
)
def test_tampered_or_stale_deliveries_are_refused(sandbox: Sandbox, tamper, expected) -> None:  # type: ignore[no-untyped-def]
    company = sandbox.add_company()
    sandbox.queue_export(company.id, count=2, seed=2)
    headers, body = tamper(*_delivery(sandbox))
    with pytest.raises(WebhookError, match=expected):
        SignatureVerifier(SecretStr(SECRET)).verify(headers, body)


def test_another_subscriptions_secret_is_refused(sandbox: Sandbox) -> None:
    company = sandbox.add_company()
    sandbox.queue_export(company.id, count=2, seed=3)
    headers, body = _delivery(sandbox)
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    with pytest.raises(WebhookError, match=r"check webhooks\.secret"):
        SignatureVerifier(SecretStr(other)).verify(headers, body)


def test_one_valid_signature_among_several_is_enough(sandbox: Sandbox) -> None:
    company = sandbox.add_company()
    sandbox.queue_export(company.id, count=2, seed=4)
    headers, body = _delivery(sandbox)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert SignatureVerifier(SecretStr(SECRET)).verify(headers, body).event_type


def test_a_secret_of_the_wrong_form_names_the_setting() -> None:
    with pytest.raises(WebhookError, match=r"webhooks.secret .*whsec_"):
        SignatureVerifier(SecretStr("whsec_not base64!"))


def test_wrapped_payload_form_is_read_too() -> None:
    from pleo_export.webhooks import parse_event

    body = {"payload": {"data": {"id": "j1", "companyId": "c1"}, "eventType": EXPORT_JOB_CREATED}}
    event = parse_event("msg_1", json.dumps(body).encode())
    assert (event.job_id, event.company_id) == ("j1", "c1")


def test_listen_address_errors_say_what_to_write() -> None:
    assert parse_listen("127.0.0.1:8088") == ("127.0.0.1", 8088)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ValueError, match="host:port"):
        parse_listen("8088")


async def test_receiver_wakes_once_per_delivery_and_ignores_duplicates(sandbox: Sandbox) -> None:
    wakeups = Wakeups()
    app = receiver_app(SignatureVerifier(SecretStr(SECRET)), wakeups)
    company = sandbox.add_company()
    sandbox.queue_export(company.id, count=2, seed=5)
    headers, body = _delivery(sandbox)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://receiver"
    ) as client:
        first = await client.post("/pleo/webhooks", content=body, headers=headers)
        again = await client.post("/pleo/webhooks", content=body, headers=headers)
        forged = await client.post(
            "/pleo/webhooks", content=body + b" ", headers={**headers, "webhook-id": "msg_x"}
        )
    assert (first.status_code, again.status_code, forged.status_code) == (204, 204, 401)
    assert wakeups.received == 1
    assert await wakeups.wait(0.01) is True
    assert await wakeups.wait(0.01) is False


async def test_sandbox_delivers_over_http_and_retries_what_failed(sandbox: Sandbox) -> None:
    sandbox.webhooks.subscriptions.clear()
    wakeups = Wakeups()
    app = receiver_app(SignatureVerifier(SecretStr(SECRET)), wakeups)
    from pleo_export.httpserver import running_app

    async with running_app(app) as url:
        sandbox.webhooks.subscribe(url + "/pleo/webhooks", secret=SECRET, duplicate=True)
        sandbox.webhooks.subscribe("http://127.0.0.1:9/nobody-listens", secret=SECRET)
        company = sandbox.add_company()
        sandbox.queue_export(company.id, count=2, seed=6)
        accepted = await sandbox.webhooks.deliver()
    assert accepted == 1
    assert wakeups.received == 1  # the duplicate copy was deduplicated
    assert len(sandbox.webhooks.outbox) == 1  # the unreachable subscriber waits for a retry


async def test_a_vendor_created_delivery_hands_over_the_vendor_once(sandbox: Sandbox) -> None:
    wakeups = Wakeups()
    app = receiver_app(SignatureVerifier(SecretStr(SECRET)), wakeups)
    company = sandbox.add_company()
    vendor = sandbox.create_draft_vendor(company.id, "Fresh Paint Ltd")
    headers, body = _delivery(sandbox)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://receiver"
    ) as client:
        first = await client.post("/pleo/webhooks", content=body, headers=headers)
        again = await client.post("/pleo/webhooks", content=body, headers=headers)
        forged = await client.post(
            "/pleo/webhooks",
            content=body.replace(vendor["id"].encode(), b"someone-else"),
            headers={**headers, "webhook-id": "msg_forged"},
        )

    assert (first.status_code, again.status_code, forged.status_code) == (204, 204, 401)
    assert wakeups.take_vendor_ids() == [vendor["id"]]
    assert wakeups.take_vendor_ids() == []
    assert await wakeups.wait(0.01) is True
