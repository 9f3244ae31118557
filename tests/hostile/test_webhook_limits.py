"""The webhook receiver under hostile clients, on a real uvicorn over loopback.

Anyone who can reach ``webhooks.listen`` can send it requests, signed or not. The receiver
must refuse them cheaply: on the headers before reading a body, after at most
``max_body_bytes`` of a body, and within ``read_timeout`` for a client that sends slowly or
not at all, holding at most ``max_connections`` connections. Its logs must not grow with the
attack, and text from the request is quoted cut short. Each test bounds its own loops and
waits, and stops by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketStream
from pydantic import SecretStr

from pleo_export.webhooks import EXPORT_JOB_CREATED, Wakeups, receiver

pytestmark = pytest.mark.anyio

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
PATH = "/pleo/webhooks"


def signed_headers(body: bytes, message_id: str = "msg_1") -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(KEY, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
        "content-type": "application/json",
    }


def event_body(job_id: str = "job-1") -> bytes:
    return json.dumps(
        {"eventType": EXPORT_JOB_CREATED, "eventId": "ev1", "data": {"id": job_id}}
    ).encode()


@asynccontextmanager
async def serving(**limits: Any) -> AsyncIterator[tuple[Wakeups, str, int]]:
    async with receiver("127.0.0.1:0", SecretStr(SECRET), PATH, **limits) as wakeups:
        assert wakeups.url is not None
        port = int(wakeups.url.split(":")[2].split("/")[0])
        yield wakeups, wakeups.url, port


async def read_answer(stream: SocketStream, seconds: float) -> bytes:
    """What the server sends until it closes, or until ``seconds`` pass."""
    received = b""
    with anyio.move_on_after(seconds):
        try:
            while True:
                received += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            pass
    return received


def status_of(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


async def test_an_unsigned_delivery_is_refused_before_its_body_is_read() -> None:
    async with serving() as (_, _, port), await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(
            f"POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/json\r\n\r\n".encode()
            + b"4000\r\n"
            + b"[" * 0x4000
            + b"\r\n"
        )
        # The body has barely started (and never ends): the answer must not wait for it.
        answer = await read_answer(stream, 3)
    assert status_of(answer) == 401, answer[:200]


async def test_a_streamed_body_over_the_cap_is_refused_after_the_cap() -> None:
    body = event_body()
    headers = signed_headers(body)  # fresh headers; the signature will not match the stream
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    async with (
        serving(max_body_bytes=64 * 1024) as (_, _, port),
        await anyio.connect_tcp("127.0.0.1", port) as stream,
    ):
        await stream.send(
            f"POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode()
        )
        chunk = b"8000\r\n" + b" " * 0x8000 + b"\r\n"
        answer = b""
        for _ in range(8):  # 256 KiB, never terminated: a body that would go on and on
            try:
                await stream.send(chunk)
            except (anyio.BrokenResourceError, ConnectionError):
                break  # the server stopped reading, as it should
            with anyio.move_on_after(0.05):
                try:
                    answer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                    break
        answer += await read_answer(stream, 3)
    assert status_of(answer) == 413, answer[:200]
    assert b"webhooks.max_body_bytes" in answer


async def test_a_declared_length_over_the_cap_is_refused_on_the_headers() -> None:
    body = event_body()
    headers = {**signed_headers(body), "content-length": "10000000000"}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    async with serving() as (_, _, port), await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        answer = await read_answer(stream, 3)
    assert status_of(answer) == 413, answer[:200]


async def test_a_signed_deeply_nested_body_is_a_400_not_a_crash() -> None:
    body = b"[" * 30_000 + b"]" * 30_000
    async with serving() as (wakeups, url, _), httpx.AsyncClient() as http:
        answer = await http.post(url, content=body, headers=signed_headers(body))
        nested_object = b'{"eventType": ' + b'{"a":' * 9_000 + b"1" + b"}" * 9_001
        second = await http.post(
            url, content=nested_object, headers=signed_headers(nested_object, "msg_2")
        )
    assert answer.status_code == 400, answer.text
    assert "nested too deeply" in answer.json()["error"]
    assert second.status_code == 400, second.text
    assert wakeups.received == 0


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        # Words in the error text ("body") must not decide the status: these are all 401.
        (lambda h, b: ({**h, "webhook-timestamp": "body"}, b), 401),
        (lambda h, b: ({**h, "webhook-timestamp": "the body is fine"}, b), 401),
        (lambda h, b: ({**h, "webhook-signature": "v1,body"}, b), 401),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), 401),
        # An authentic delivery whose body is not an event is a 400.
        (lambda h, b: (signed_headers(b"not json"), b"not json"), 400),
        (lambda h, b: (signed_headers(b"[1, 2]"), b"[1, 2]"), 400),
    ],
)
async def test_status_follows_the_kind_of_refusal(tamper: Any, status: int) -> None:
    body = event_body()
    headers, body = tamper(signed_headers(body), body)
    async with serving() as (_, url, _), httpx.AsyncClient() as http:
        answer = await http.post(url, content=body, headers=headers)
    assert answer.status_code == status, answer.text


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def webhook_log() -> Iterator[Records]:
    records = Records()
    loggers = [logging.getLogger("pleo_export.webhooks"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(records)
    yield records
    for logger in loggers:
        logger.removeHandler(records)


async def test_refusals_are_logged_a_few_times_with_request_text_cut_short(
    webhook_log: Records,
) -> None:
    huge = "A" * 8000
    async with serving() as (_, url, port), httpx.AsyncClient() as http:
        for index in range(60):
            headers = {**signed_headers(b"{}"), "webhook-timestamp": f"{huge}{index}"}
            answer = await http.post(url, content=b"{}", headers=headers)
            assert answer.status_code == 401
            assert len(answer.text) < 400
        for _ in range(60):  # not HTTP at all: uvicorn's own warning per request
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(b"\x16\x03\x01 garbage that is not HTTP\r\n\r\n")
                await read_answer(stream, 2)
    refused = [r for r in webhook_log.records if getattr(r, "event", None) == "webhook.refused"]
    assert 1 <= len(refused) <= 5
    assert all(len(getattr(r, "reason", "")) <= 300 for r in refused)
    assert all(huge not in r.getMessage() for r in webhook_log.records)
    uvicorn_lines = [r for r in webhook_log.records if r.name == "uvicorn.error"]
    assert len(uvicorn_lines) <= 5, len(uvicorn_lines)


SLOW_CLIENTS = 200


async def _hold_until_closed(stream: SocketStream, started: float, closed: list[float]) -> None:
    answer = await read_answer(stream, 6)
    if not answer or status_of(answer) in (408, 503) or answer.startswith(b"HTTP/1.1 5"):
        closed.append(time.monotonic() - started)


async def test_slow_clients_are_cut_off_and_cannot_exhaust_connections(
    webhook_log: Records,
) -> None:
    limits = {"read_timeout": 1.0, "max_connections": 40}
    async with serving(**limits) as (wakeups, url, port):
        streams: list[SocketStream] = []
        try:
            for _ in range(SLOW_CLIENTS):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                streams.append(stream)
                # Half a request, then nothing: the classic slow client.
                await stream.send(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nwebhook-id: ".encode())
            started = time.monotonic()
            closed: list[float] = []
            async with anyio.create_task_group() as tasks:
                for stream in streams:
                    tasks.start_soon(_hold_until_closed, stream, started, closed)
        finally:
            for stream in streams:
                await stream.aclose()
        # Every slow connection was closed by the server, the ones over the limit at once
        # and the others at the read timeout.
        assert len(closed) == SLOW_CLIENTS
        assert max(closed) < 4, max(closed)
        # The receiver still serves a real delivery afterwards.
        body = event_body()
        async with httpx.AsyncClient() as http:
            answer = await http.post(url, content=body, headers=signed_headers(body))
        assert answer.status_code == 204
        assert wakeups.received == 1
    logged = [r for r in webhook_log.records if r.name == "pleo_export.webhooks"]
    assert len(logged) <= 12, len(logged)


async def test_a_body_sent_too_slowly_is_cut_off_at_the_read_timeout() -> None:
    body = event_body()
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(body).items())
    async with (
        serving(read_timeout=1.0) as (wakeups, _, port),
        await anyio.connect_tcp("127.0.0.1", port) as stream,
    ):
        await stream.send(
            f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
        )
        started = time.monotonic()
        try:
            for byte in body[:-1]:  # one byte every 0.2 s: 5 s for the body, if allowed
                await stream.send(bytes([byte]))
                await anyio.sleep(0.2)
                if time.monotonic() - started > 4:
                    break
        except (anyio.BrokenResourceError, ConnectionError):
            pass
        await read_answer(stream, 2)
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    assert wakeups.received == 0
