"""Webhook detection: Pleo's ``v1.export-job.created`` and ``v1.vendor.created`` events wake a
``run --watch`` worker.

Pleo signs webhook deliveries with three headers, ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,<base64>``, possibly several separated by spaces), and a subscription
secret of the form ``whsec_<base64>``. The signature is an HMAC-SHA256 of
``"{id}.{timestamp}.{raw body}"`` keyed with the decoded secret. That scheme is inferred from
Pleo's documentation (the headers and the secret format are documented, the algorithm is not),
which is why the receiver here is a *wake-up*: it never trusts the payload's job state. A
verified event only tells the worker to list jobs now instead of at the next poll; the engine
then reads the job from the API like any polled job, and polling remains the safety net for
events that never arrive. A verified ``v1.vendor.created`` (a vendor created in Pleo as a draft)
also hands the worker the vendor's id (:meth:`Wakeups.take_vendor_ids`); the worker reads the
vendor from the Vendors API and handles it only while Pleo still holds it as a draft
(:mod:`pleo_export.sync.drafts`).

The receiver answers quickly (204) and dedupes on ``webhook-id``, because deliveries are
at least once.

Anyone who can reach the receiver can send it requests, so it is built to be cheap to refuse:
a delivery without the signature headers or with a stale timestamp is refused (401) on its
headers, before any body is read; a body larger than ``max_body_bytes`` (declared or streamed)
is refused with 413 after at most that many bytes; every connection must deliver its request
within ``read_timeout`` seconds and at most ``max_connections`` are open at once (see
:class:`~pleo_export.httpserver.ServerLimits`). Refusals are logged at most a few times a
minute (with a count of the ones left out), and text taken from a request is cut short.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("pleo_export.webhooks")

EXPORT_JOB_CREATED = "v1.export-job.created"
VENDOR_CREATED = "v1.vendor.created"
DEFAULT_TOLERANCE_SECONDS = 300.0
"""Deliveries whose timestamp is further than this from now are refused (replay protection)."""
DEFAULT_MAX_BODY_BYTES = 64 * 1024
"""Pleo's events are small JSON objects; anything larger is refused with 413."""
_QUOTE_LIMIT = 64
"""Characters of request-supplied text (headers, body excerpts) quoted in errors and logs."""


def _quote(value: str) -> str:
    """``repr(value)`` cut to a few dozen characters: request text is attacker-supplied."""
    if len(value) > _QUOTE_LIMIT:
        return repr(value[:_QUOTE_LIMIT]) + f"... ({len(value)} characters)"
    return repr(value)


class WebhookError(Exception):
    """A delivery that must not be acted on; the message says why (never the secret).

    ``status`` is the HTTP status the receiver answers: 401 here (not authentic or not
    fresh); subclasses answer 400 and 413.
    """

    status: int = 401


class MalformedDelivery(WebhookError):
    """An authentic delivery whose body cannot be read as a Pleo event (answered 400)."""

    status = 400


class DeliveryTooLarge(WebhookError):
    """A body larger than the receiver accepts (answered 413, before it is read further)."""

    status = 413


@dataclass(frozen=True)
class WebhookEvent:
    message_id: str
    event_type: str
    event_id: str | None
    job_id: str | None
    company_id: str | None
    data: Mapping[str, Any]

    @property
    def vendor_id(self) -> str | None:
        """The vendor a ``v1.vendor.created`` event announces (its ``data.id``)."""
        return self.job_id if self.event_type == VENDOR_CREATED else None


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
    """Checks Pleo's webhook signatures and timestamps.

    ``secret`` may be several secrets (one per subscription, as ``pleo-export webhooks
    subscribe`` stores them): a delivery signed with any of them is accepted.
    """

    def __init__(
        self,
        secret: SecretStr | Sequence[SecretStr],
        *,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = [secret] if isinstance(secret, SecretStr) else list(secret)
        if not secrets:
            raise WebhookError("no webhook secret: set webhooks.secret")
        self._keys = [decode_secret(s) for s in secrets]
        self.tolerance_seconds = tolerance_seconds
        self._clock = clock

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Refuse (WebhookError, 401) a delivery that lacks the signature headers or whose
        timestamp is not fresh: everything that can be checked before reading the body."""
        message_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not message_id or not timestamp or not signatures:
            raise WebhookError("missing webhook-id, webhook-timestamp or webhook-signature header")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise WebhookError(f"webhook-timestamp {_quote(timestamp)} is not Unix seconds")
        sent_at = int(timestamp)
        if abs(self._clock() - sent_at) > self.tolerance_seconds:
            raise WebhookError(
                f"webhook-timestamp {sent_at} is more than {self.tolerance_seconds:.0f} s away "
                "from this machine's clock (replayed delivery, or a clock to synchronise)"
            )

    def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Return the event if the delivery is authentic and fresh, else raise WebhookError."""
        self.check_headers(headers)
        message_id = headers["webhook-id"]
        timestamp = headers["webhook-timestamp"]
        signatures = headers["webhook-signature"]
        signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
        for key in self._keys:
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
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
        raise MalformedDelivery("the webhook body is not JSON") from None
    except RecursionError:
        raise MalformedDelivery("the webhook body is nested too deeply") from None
    if not isinstance(document, dict):
        raise MalformedDelivery("the webhook body is not a JSON object")
    inner = document.get("payload", document)
    if not isinstance(inner, dict):
        raise MalformedDelivery("the webhook body's payload is not a JSON object")
    data = inner.get("data")
    data = data if isinstance(data, dict) else {}
    event_type = inner.get("eventType") or document.get("eventType")
    if not isinstance(event_type, str):
        raise MalformedDelivery("the webhook body has no eventType")
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
        self._vendor_ids: dict[str, None] = {}

    def notify(self) -> None:
        self.received += 1
        self._event.set()

    def vendor_created(self, vendor_id: str) -> None:
        """A verified ``v1.vendor.created`` for ``vendor_id``: remember it and wake up."""
        self._vendor_ids[vendor_id] = None
        self.notify()

    def take_vendor_ids(self) -> list[str]:
        """The vendors announced since the last call, oldest first (each once)."""
        ids, self._vendor_ids = list(self._vendor_ids), {}
        return ids

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; ``True`` when a webhook woke us up."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woken = self._event.is_set()
        if woken:
            self._event = anyio.Event()
        return woken


class _Throttle:
    """Allows ``burst`` log lines per ``interval`` seconds and counts the ones it holds back."""

    def __init__(
        self, burst: int = 5, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._window = -interval
        self._used = 0
        self._held_back = 0

    def take(self) -> int | None:
        """``None``: do not log this one; else how many were held back since the last line."""
        now = self._clock()
        if now - self._window >= self.interval:
            self._window, self._used = now, 0
        if self._used >= self.burst:
            self._held_back += 1
            return None
        self._used += 1
        held_back, self._held_back = self._held_back, 0
        return held_back


class _ThrottleFilter(logging.Filter):
    """Rate-limits a third-party logger (uvicorn's per-request warnings, asyncio's accept
    errors) so that a flood of bad connections cannot flood the log."""

    def __init__(self, throttle: _Throttle) -> None:
        super().__init__()
        self.throttle = throttle

    def filter(self, record: logging.LogRecord) -> bool:
        held_back = self.throttle.take()
        if held_back is None:
            return False
        if held_back:
            record.msg = f"{record.getMessage()} ({held_back} similar messages not logged)"
            record.args = None
        return True


def receiver_app(
    verifier: SignatureVerifier,
    wakeups: Wakeups,
    *,
    path: str = "/pleo/webhooks",
    remember: int = 10_000,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    throttle: _Throttle | None = None,
) -> Starlette:
    """An ASGI app that accepts Pleo webhook deliveries at ``path``.

    Answers 204 for a verified delivery (also for a duplicate or an event type it ignores),
    401 for missing signature headers, a stale timestamp or a bad signature (decided on the
    headers before the body is read, except the signature itself), 413 for a body over
    ``max_body_bytes`` and 400 for an authentic body that is not a Pleo event.
    """
    seen: OrderedDict[str, None] = OrderedDict()
    refusals = throttle if throttle is not None else _Throttle()

    def refuse(error: WebhookError, request: Request) -> Response:
        held_back = refusals.take()
        if held_back is not None:
            client = request.client
            log.warning(
                "webhook delivery refused",
                extra={
                    "event": "webhook.refused",
                    "reason": str(error)[:300],
                    "status": error.status,
                    "client": f"{client.host}:{client.port}" if client else None,
                    "not_logged": held_back or None,
                },
            )
        return JSONResponse({"error": str(error)[:300]}, status_code=error.status)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body_bytes):
            raise DeliveryTooLarge(
                f"the body declares {_quote(declared)} bytes; at most {max_body_bytes} are "
                "accepted (webhooks.max_body_bytes)"
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                raise DeliveryTooLarge(
                    f"the body is larger than {max_body_bytes} bytes (webhooks.max_body_bytes)"
                )
        return bytes(body)

    async def receive(request: Request) -> Response:
        try:
            verifier.check_headers(request.headers)
            body = await read_body(request)
            event = verifier.verify(request.headers, body)
        except WebhookError as error:
            return refuse(error, request)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        if event.message_id in seen:
            log.info(
                "duplicate webhook delivery ignored",
                extra={"event": "webhook.duplicate", "webhook_id": event.message_id[:200]},
            )
            return Response(status_code=204)
        seen[event.message_id] = None
        while len(seen) > remember:
            seen.popitem(last=False)
        if event.event_type == VENDOR_CREATED and event.vendor_id:
            log.info(
                "vendor created in Pleo announced by webhook",
                extra={
                    "event": "webhook.vendor_created",
                    "vendor_id": event.vendor_id[:200],
                    "company_id": event.company_id,
                    "webhook_id": event.message_id[:200],
                },
            )
            wakeups.vendor_created(event.vendor_id[:200])
            return Response(status_code=204)
        if event.event_type != EXPORT_JOB_CREATED:
            log.info(
                "webhook event type ignored",
                extra={"event": "webhook.ignored", "event_type": event.event_type[:200]},
            )
            return Response(status_code=204)
        log.info(
            "export job announced by webhook",
            extra={
                "event": "webhook.job_created",
                "job_id": event.job_id,
                "company_id": event.company_id,
                "webhook_id": event.message_id[:200],
            },
        )
        wakeups.notify()
        return Response(status_code=204)

    return Starlette(routes=[Route(path, receive, methods=["POST"])])


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) from ``webhooks.listen``.

    Raises:
        ValueError: not of that form; the message names ``webhooks.listen``.
    """
    problem = (
        f"webhooks.listen {_quote(value)} must be host:port with a port from 0 to 65535 (0: "
        "any free port), e.g. 127.0.0.1:8088 or [::1]:8088 (put a TLS reverse proxy in front "
        "of it for Pleo to reach it)"
    )
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not host or len(port) > 5:
        raise ValueError(problem)
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise ValueError(problem)
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(problem) from None
    elif ":" in host or not all(c.isalnum() or c in ".-_" for c in host):
        raise ValueError(problem)
    if not 0 <= int(port) < 65536:
        raise ValueError(problem)
    return host, int(port)


@asynccontextmanager
async def receiver(
    listen: str | None,
    secret: SecretStr | Sequence[SecretStr] | None,
    path: str = "/pleo/webhooks",
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    read_timeout: float = 10.0,
    max_connections: int = 64,
) -> AsyncIterator[Wakeups]:
    """Serve the webhook receiver on ``listen`` while the block runs; yield its wake-ups.

    With ``listen`` unset nothing is served, and the wake-ups never fire (plain polling).
    ``secret`` may be several secrets (those ``pleo-export webhooks subscribe`` stored).

    Raises:
        ConfigError: ``listen``, ``secret`` or ``path`` is unusable, or ``listen`` cannot be
            bound; the message names the setting.
    """
    from pleo_export.config import ConfigError

    wakeups = Wakeups()
    if not listen:
        yield wakeups
        return
    if secret is None or (not isinstance(secret, SecretStr) and not secret):
        raise ConfigError(
            "webhooks.secret is required when webhooks.listen is set: set it to the "
            "subscription's whsec_ secret, or run `pleo-export webhooks subscribe URL`, which "
            "stores the new subscription's secret in the state store"
        )
    if not path.startswith("/"):
        raise ConfigError(f"webhooks.path {_quote(path)} must start with '/'")
    from pleo_export.httpserver import CannotListen, ServerLimits, running_app

    try:
        host, port = parse_listen(listen)
        verifier = SignatureVerifier(secret)
    except (ValueError, WebhookError) as error:
        raise ConfigError(str(error)) from None
    connection_log = _Throttle()

    def connection_refused(kind: str, client: str) -> None:
        held_back = connection_log.take()
        if held_back is not None:
            log.warning(
                "webhook connection closed: "
                + ("too many open connections" if kind == "connection_limit" else "too slow"),
                extra={
                    "event": f"webhook.{kind}",
                    "client": client,
                    "not_logged": held_back or None,
                },
            )

    limits = ServerLimits(
        max_connections=max_connections, read_timeout=read_timeout, on_refused=connection_refused
    )
    app = receiver_app(verifier, wakeups, path=path, max_body_bytes=max_body_bytes)
    quiet = _ThrottleFilter(_Throttle())
    noisy = [logging.getLogger("uvicorn.error"), logging.getLogger("asyncio")]
    for logger in noisy:
        logger.addFilter(quiet)
    try:
        async with AsyncExitStack() as stack:
            try:
                url = await stack.enter_async_context(
                    running_app(app, port, host=host, limits=limits)
                )
            except CannotListen as error:
                raise ConfigError(f"webhooks.listen {listen!r}: {error}") from None
            wakeups.url = url + path
            log.info(
                "listening for Pleo webhooks",
                extra={"event": "webhook.listening", "url": wakeups.url},
            )
            yield wakeups
    finally:
        for logger in noisy:
            logger.removeFilter(quiet)
