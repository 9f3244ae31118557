"""The sandbox's webhook emitter: ``v1.export-job.created`` deliveries, signed like Pleo's.

A subscription holds a URL and a ``whsec_`` secret. Every job the sandbox creates (a queued
export, or an export waiting in Pleo's queue that becomes a job) is put in an outbox;
:meth:`WebhookEmitter.deliver` posts the outbox with ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers and keeps what failed for the next call, as a sender with retries
would. ``duplicate=True`` sends every delivery twice, to exercise the receiver's dedupe.

Pleo does not document its retry schedule or body wrapping; the body here is
``{"data": <ExportJob>, "eventId": ..., "eventType": "v1.export-job.created"}``.

``v1.vendor.created`` (a vendor created in Pleo as a ``DRAFT``) is delivered the same way with
the vendor (``VendorResponse``, ``state: "DRAFT"``, no ``code``) as ``data``. Pleo names the event
and says ``data`` is the resource as it was when the event happened; the envelope and the
signature are inferred from the export event.

Two kinds of subscription receive events: those added here with :meth:`WebhookEmitter.subscribe`
(every event of every company, as configured for a test or the demo), and the ``ACTIVE``
subscriptions made through the Webhook Subscriptions API, which receive the events they name
for their own company only (``api_subscribers`` looks them up).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pleo_export.pleo.models import to_wire
from pleo_export_sandbox.records import JobState


@dataclass
class Subscription:
    url: str
    secret: str = field(
        default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )
    duplicate: bool = False


@dataclass
class Delivery:
    message_id: str
    body: bytes
    attempts: int = 0


class WebhookEmitter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.subscriptions: list[Subscription] = []
        self.outbox: list[tuple[Subscription, Delivery]] = []
        self.delivered: list[str] = []
        self._clock = clock
        self.api_subscribers: Callable[[str, str], Iterable[Subscription]] = lambda c, e: ()
        """The Webhook Subscriptions API's active subscriptions of a company to an event."""

    def subscribe(
        self, url: str, *, secret: str | None = None, duplicate: bool = False
    ) -> Subscription:
        subscription = Subscription(url, duplicate=duplicate)
        if secret is not None:
            subscription.secret = secret
        self.subscriptions.append(subscription)
        return subscription

    def job_created(self, job: JobState) -> None:
        self.emit(job.company_id, "v1.export-job.created", to_wire(job.to_model()))

    def vendor_created(self, company_id: str, vendor: dict[str, Any]) -> None:
        self.emit(company_id, "v1.vendor.created", vendor)

    def emit(self, company_id: str, event_type: str, data: dict[str, Any]) -> None:
        """Queue ``event_type`` for every subscription that receives it."""
        body = {"data": data, "eventId": str(uuid.uuid4()), "eventType": event_type}
        raw = json.dumps(body, separators=(",", ":")).encode()
        receivers = [*self.subscriptions, *self.api_subscribers(company_id, event_type)]
        for subscription in receivers:
            self.outbox.append((subscription, Delivery("msg_" + uuid.uuid4().hex, raw)))

    def forget(self, subscription: Subscription) -> None:
        """Drop the waiting deliveries of a deleted subscription."""
        self.outbox = [(s, d) for s, d in self.outbox if s is not subscription]

    def headers(self, subscription: Subscription, delivery: Delivery) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        key = base64.b64decode(subscription.secret.removeprefix("whsec_"))
        content = f"{delivery.message_id}.{timestamp}.".encode() + delivery.body
        signature = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        return {
            "content-type": "application/json",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": f"v1,{signature}",
        }

    async def deliver(self, client: httpx.AsyncClient | None = None) -> int:
        """Post every waiting delivery; return how many were accepted (2xx)."""
        own = client is None
        http = client or httpx.AsyncClient(timeout=10)
        accepted = 0
        waiting, self.outbox = self.outbox, []
        try:
            for subscription, delivery in waiting:
                delivery.attempts += 1
                copies = 2 if subscription.duplicate else 1
                ok = False
                for _ in range(copies):
                    try:
                        response = await http.post(
                            subscription.url,
                            content=delivery.body,
                            headers=self.headers(subscription, delivery),
                        )
                        ok = response.is_success
                    except httpx.HTTPError:
                        ok = False
                if ok:
                    accepted += 1
                    self.delivered.append(delivery.message_id)
                else:
                    self.outbox.append((subscription, delivery))
        finally:
            if own:
                await http.aclose()
        return accepted
