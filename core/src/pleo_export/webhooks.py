"""Webhook detection: Pleo's ``v1.export-job.created`` event wakes a ``run --watch`` worker.

Pleo signs webhook deliveries with three headers, ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,<base64>``, possibly several separated by spaces), and a subscription
secret of the form ``whsec_<base64>``. The signature is an HMAC-SHA256 of
``"{id}.{timestamp}.{raw body}"`` keyed with the decoded secret. That scheme is inferred from
Pleo's documentation (the headers and the secret format are documented, the algorithm is not),
which is why the receiver here is a *wake-up*: it never trusts the payload's job state. A
verified event only tells the worker to list jobs now instead of at the next poll; the engine
then reads the job from the API like any polled job, and polling remains the safety net for
events that never arrive.

The receiver answers quickly (204) and dedupes on ``webhook-id``, because deliveries are
at least once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("pleo_export.webhooks")

EXPORT_JOB_CREATED = "v1.export-job.created"
DEFAULT_TOLERANCE_SECONDS = 300.0
"""Deliveries whose timestamp is further than this from now are refused (replay protection)."""


class WebhookError(Exception):
    """A delivery that must not be acted on; the message says why (never the secret)."""


@dataclass(frozen=True)
class WebhookEvent:
    message_id: str
    event_type: str
    event_id: str | None
    job_id: str | None
    company_id: str | None
    data: Mapping[str, Any]


def decode_secret(secret: SecretStr) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` subscription secret.

    Raises:
        WebhookError: the secret is not of that form.
    """
    raw = secret.get_secret_value().strip()
    body = raw.removeprefix("whsec_")
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError(
            "webhooks.secret is not a Pleo subscription secret: it must look like "
            "'whsec_<base64>' (GET /v1/subscriptions/{id}/secret returns it)"
        ) from None
    if not key:
        raise WebhookError("webhooks.secret is empty: set it to the subscription's whsec_ secret")
    return key


class SignatureVerifier:
    """Checks Pleo's webhook signatures and timestamps."""

    def __init__(
        self,
        secret: SecretStr,
        *,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = decode_secret(secret)
        self.tolerance_seconds = tolerance_seconds
        self._clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Return the event if the delivery is authentic and fresh, else raise WebhookError."""
        message_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not message_id or not timestamp or not signatures:
            raise WebhookError("missing webhook-id, webhook-timestamp or webhook-signature header")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise WebhookError(f"webhook-timestamp {timestamp!r} is not Unix seconds") from None
        if abs(self._clock() - sent_at) > self.tolerance_seconds:
            raise WebhookError(
                f"webhook-timestamp {sent_at} is more than {self.tolerance_seconds:.0f} s away "
                "from this machine's clock (replayed delivery, or a clock to synchronise)"
            )
        signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        for candidate in signatures.split():
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected):
                return parse_event(message_id, body)
        raise WebhookError("no webhook-signature matches: check webhooks.secret")


def parse_event(message_id: str, body: bytes) -> WebhookEvent:
    """Read ``{"data": ..., "eventId": ..., "eventType": ...}``, also wrapped in ``payload``."""
    try:
        document = json.loads(body)
    except ValueError:
        raise WebhookError("the webhook body is not JSON") from None
    if not isinstance(document, dict):
        raise WebhookError("the webhook body is not a JSON object")
    inner = document.get("payload", document)
    if not isinstance(inner, dict):
        raise WebhookError("the webhook body's payload is not a JSON object")
    data = inner.get("data")
    data = data if isinstance(data, dict) else {}
    event_type = inner.get("eventType") or document.get("eventType")
    if not isinstance(event_type, str):
        raise WebhookError("the webhook body has no eventType")
    event_id = inner.get("eventId")
    job_id = data.get("id")
    company_id = data.get("companyId")
    return WebhookEvent(
        message_id=message_id,
        event_type=event_type,
        event_id=event_id if isinstance(event_id, str) else None,
        job_id=job_id if isinstance(job_id, str) else None,
        company_id=company_id if isinstance(company_id, str) else None,
        data=data,
    )


class Wakeups:
    """Lets webhook deliveries cut a ``run --watch`` poll interval short."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.received = 0
        self.url: str | None = None
        """Where the receiver listens, when one is running."""

    def notify(self) -> None:
        self.received += 1
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; ``True`` when a webhook woke us up."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woken = self._event.is_set()
        if woken:
            self._event = anyio.Event()
        return woken


def receiver_app(
    verifier: SignatureVerifier,
    wakeups: Wakeups,
    *,
    path: str = "/pleo/webhooks",
    remember: int = 10_000,
) -> Starlette:
    """An ASGI app that accepts Pleo webhook deliveries at ``path``.

    Answers 204 for a verified delivery (also for a duplicate or an event type it ignores),
    401 for a bad signature or stale timestamp, 400 for an unreadable body.
    """
    seen: OrderedDict[str, None] = OrderedDict()

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            event = verifier.verify(request.headers, body)
        except WebhookError as error:
            status = 400 if "body" in str(error) else 401
            log.warning(
                "webhook delivery refused",
                extra={"event": "webhook.refused", "reason": str(error), "status": status},
            )
            return JSONResponse({"error": str(error)}, status_code=status)
        if event.message_id in seen:
            log.info(
                "duplicate webhook delivery ignored",
                extra={"event": "webhook.duplicate", "webhook_id": event.message_id},
            )
            return Response(status_code=204)
        seen[event.message_id] = None
        while len(seen) > remember:
            seen.popitem(last=False)
        if event.event_type != EXPORT_JOB_CREATED:
            log.info(
                "webhook event type ignored",
                extra={"event": "webhook.ignored", "event_type": event.event_type},
            )
            return Response(status_code=204)
        log.info(
            "export job announced by webhook",
            extra={
                "event": "webhook.job_created",
                "job_id": event.job_id,
                "company_id": event.company_id,
                "webhook_id": event.message_id,
            },
        )
        wakeups.notify()
        return Response(status_code=204)

    return Starlette(routes=[Route(path, receive, methods=["POST"])])


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) from ``webhooks.listen``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(
            f"webhooks.listen {value!r} must be host:port, e.g. 127.0.0.1:8088 (put a TLS "
            "reverse proxy in front of it for Pleo to reach it)"
        )
    return host.strip("[]"), int(port)


@asynccontextmanager
async def receiver(
    listen: str | None, secret: SecretStr | None, path: str = "/pleo/webhooks"
) -> AsyncIterator[Wakeups]:
    """Serve the webhook receiver on ``listen`` while the block runs; yield its wake-ups.

    With ``listen`` unset nothing is served, and the wake-ups never fire (plain polling).
    """
    wakeups = Wakeups()
    if not listen:
        yield wakeups
        return
    if secret is None:
        raise WebhookError("webhooks.secret is required when webhooks.listen is set")
    from pleo_export.httpserver import running_app

    host, port = parse_listen(listen)
    app = receiver_app(SignatureVerifier(secret), wakeups, path=path)
    async with running_app(app, port, host=host) as url:
        wakeups.url = url + path
        log.info(
            "listening for Pleo webhooks",
            extra={"event": "webhook.listening", "url": wakeups.url},
        )
        yield wakeups
