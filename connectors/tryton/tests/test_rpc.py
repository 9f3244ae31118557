"""The JSON-RPC client and the error mapping, against a scripted Tryton (no server needed)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.tryton.tests.tryton_items import item, job
from pleo_export import (
    ConnectorContext,
    ItemRejected,
    JobRejected,
    OutcomeUncertain,
    PreparedEntry,
    TargetTemporarilyUnavailable,
)
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.testing import plan_item
from pleo_export_tryton import TrytonConnector, TrytonSettings
from pleo_export_tryton.books import Books, Company
from pleo_export_tryton.errors import refusal_reason, to_connector_error
from pleo_export_tryton.rpc import (
    TrytonClient,
    TrytonDatabaseMissing,
    TrytonError,
    TrytonFault,
    TrytonForbidden,
    TrytonLoginRefused,
    TrytonNoAnswer,
    TrytonProtocolError,
    TrytonRefused,
    TrytonUnavailable,
    TrytonWarning,
    dumps,
    loads,
)
from pleo_export_tryton.specs import MoveLineSpec, MoveSpec, Payload, like_prefix, parse_marker

pytestmark = pytest.mark.anyio
URL = "http://tryton.test"
Handler = Callable[[str, list[Any], httpx.Request], httpx.Response]


def _ok(result: Any) -> httpx.Response:
    return httpx.Response(200, content=dumps({"id": 1, "result": result}))


def _error(error: Any) -> httpx.Response:
    return httpx.Response(200, content=dumps({"id": 1, "error": error}))


class Script:
    """A fake Tryton: logs in, then answers each method with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = loads(request.content)
        method = body["method"]
        self.calls.append((method, request.headers.get("Authorization")))
        return self.handler(method, body["params"], request)

    def client(self, **kwargs: Any) -> TrytonClient:
        return TrytonClient(
            URL,
            "books",
            "admin",
            SecretStr("s3cret-pass"),
            transport=httpx.MockTransport(self),
            **kwargs,
        )


def logging_in(then: Handler) -> Handler:
    def handler(method: str, params: list[Any], request: httpx.Request) -> httpx.Response:
        if method == "common.db.login":
            return _ok([7, "token", None])
        return then(method, params, request)

    return handler


def test_values_survive_the_trip() -> None:
    value = {
        "amount": Decimal("-12.30"),
        "day": dt.date(2025, 3, 4),
        "at": dt.datetime(2025, 3, 4, 5, 6, 7, 8),
        "data": b"\x89PNG\r\n",
        "ids": (1, 2),
    }
    back = loads(dumps(value))
    assert back == {**value, "ids": [1, 2]}


async def test_session_header_and_context() -> None:
    seen: list[list[Any]] = []

    def answer(method: str, params: list[Any], request: httpx.Request) -> httpx.Response:
        seen.append(params)
        return _ok([11, 12])

    script = Script(logging_in(answer))
    client = script.client()
    client.context = {"company": 3}
    assert await client.model("account.move", "search", [("state", "=", "posted")]) == [11, 12]
    await client.close()
    token = base64.b64encode(b"admin:7:token").decode()
    assert script.calls[1] == ("model.account.move.search", f"Session {token}")
    assert seen[0] == [[["state", "=", "posted"]], {"company": 3}]
    assert script.calls[-1][0] == "common.db.logout"


async def test_an_expired_session_logs_in_again_once() -> None:
    answers = iter([httpx.Response(401), _ok([1])])
    script = Script(logging_in(lambda *_: next(answers)))
    client = script.client()
    assert await client.model("account.move", "search", [], write=True) == [1]
    assert [method for method, _ in script.calls].count("common.db.login") == 2


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        (httpx.Response(401), TrytonLoginRefused, "refused the login of user 'admin'"),
        (httpx.Response(404), TrytonDatabaseMissing, "database 'books' does not exist"),
        (httpx.Response(200, text="<html>proxy</html>"), TrytonProtocolError, "not JSON"),
    ],
)
async def test_login_failures(
    response: httpx.Response, error: type[TrytonError], text: str
) -> None:
    client = Script(lambda *_: response).client()
    with pytest.raises(error) as caught:
        await client.login()
    assert text in caught.value.message
    assert "s3cret-pass" not in caught.value.message


@pytest.mark.parametrize(
    ("response", "write", "error"),
    [
        (_error(["UserError", ["Nope.", "Details.", None]]), True, TrytonRefused),
        (_error(["UserWarning", ["invoice_similar", "Similar.", ""]]), True, TrytonWarning),
        (_error(["KeyError: 'x'", "Traceback ..."]), False, TrytonFault),
        (httpx.Response(403), False, TrytonForbidden),
        (httpx.Response(429, headers={"Retry-After": "3"}), True, TrytonUnavailable),
        (httpx.Response(503, text="busy"), True, TrytonUnavailable),
        (httpx.Response(502, text="bad gateway"), True, TrytonNoAnswer),
        (httpx.Response(502, text="bad gateway"), False, TrytonUnavailable),
    ],
)
async def test_answers_become_typed_errors(
    response: httpx.Response, write: bool, error: type[TrytonError]
) -> None:
    client = Script(logging_in(lambda *_: response)).client()
    with pytest.raises(error) as caught:
        await client.model("account.move", "create", [{}], write=write)
    if isinstance(caught.value, TrytonRefused):
        assert caught.value.message == "Nope. (Details.)"
    if isinstance(caught.value, TrytonWarning):
        assert caught.value.name == "invoice_similar"
    if response.status_code == 429:
        assert isinstance(caught.value, TrytonUnavailable)
        assert caught.value.rate_limited and caught.value.retry_after == 3


@pytest.mark.parametrize(
    ("exception", "write", "error", "timed_out"),
    [
        (httpx.ConnectError("refused"), True, TrytonUnavailable, False),
        (httpx.ConnectTimeout("slow"), True, TrytonUnavailable, True),
        (httpx.ReadTimeout("slow"), True, TrytonNoAnswer, None),
        (httpx.ReadTimeout("slow"), False, TrytonUnavailable, True),
        (httpx.RemoteProtocolError("gone"), True, TrytonNoAnswer, None),
    ],
)
async def test_transport_failures(
    exception: Exception, write: bool, error: type[TrytonError], timed_out: bool | None
) -> None:
    def answer(method: str, params: list[Any], request: httpx.Request) -> httpx.Response:
        raise exception

    client = Script(logging_in(answer)).client()
    with pytest.raises(error) as caught:
        await client.model("account.move", "create", [{}], write=write)
    if timed_out is not None:
        assert isinstance(caught.value, TrytonUnavailable)
        assert caught.value.timeout is timed_out


@pytest.mark.parametrize(
    ("error", "expected", "reason"),
    [
        (TrytonNoAnswer("m", "no answer", write=True), OutcomeUncertain, None),
        (
            TrytonUnavailable("down"),
            TargetTemporarilyUnavailable,
            Reason.ACCOUNTING_SYSTEM_UNREACHABLE,
        ),
        (
            TrytonUnavailable("slow", timeout=True),
            TargetTemporarilyUnavailable,
            Reason.ACCOUNTING_SYSTEM_TIMEOUT,
        ),
        (TrytonLoginRefused("no"), JobRejected, JobReason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE),
        (TrytonDatabaseMissing("no db"), JobRejected, JobReason.INVALID_CONFIGURATION),
        (TrytonForbidden("m", "no rights"), JobRejected, JobReason.AUTHORIZATION_FAILURE),
        (
            TrytonRefused(
                "m", 'To post move "(5)", you must balance all its lines debits and credits.'
            ),
            ItemRejected,
            Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
        ),
        (
            TrytonRefused("m", 'The value "9" for field "Account" in "Line" is not valid.'),
            ItemRejected,
            Reason.ACCOUNT_UNKNOWN,
        ),
        (
            TrytonRefused(
                "m", 'To create a line on account "2100", you must set a party on line "x".'
            ),
            ItemRejected,
            Reason.VENDOR_UNKNOWN,
        ),
        (
            TrytonWarning("m", "w", "Similar invoice."),
            ItemRejected,
            Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
        ),
        (TrytonFault("m", "boom"), ItemRejected, Reason.UNEXPECTED_FAILURE),
    ],
)
def test_error_mapping(error: TrytonError, expected: type[Exception], reason: Any) -> None:
    mapped = to_connector_error(error, "posting journal move 5")
    assert isinstance(mapped, expected)
    if reason is not None:
        assert mapped.reason_type == reason  # type: ignore[attr-defined]
    assert "posting journal move 5" in mapped.message or isinstance(mapped, JobRejected)


def test_closed_period_refusals_name_the_setting() -> None:
    reason, hint = refusal_reason('You cannot create a journal-period in closed period "2025-01".')
    assert reason is Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE
    assert "closed_period" in hint


def test_markers() -> None:
    assert parse_marker("pleo:ab-12#2/3 BK-1 Lunch") == ("ab-12", 2, 3)
    assert parse_marker("pleo:ab-12#2/3") == ("ab-12", 2, 3)
    assert parse_marker("Lunch pleo:ab-12#2/3") is None
    assert like_prefix("a_b%c") == "pleo:a\\_b\\%c#%"


# --- the connector with a scripted Tryton ---------------------------------------------------


def _connector(script: Script, tmp_path: Path) -> TrytonConnector:
    settings = TrytonSettings(
        url=URL,
        database="books",
        password=SecretStr("s3cret-pass"),
        out_of_pocket_account="2250",
        contra_account="1299",
        rounding_account="7990",
    )

    async def fetch(file: Any) -> bytes:
        raise AssertionError("no downloads here")

    context = ConnectorContext(
        logger=logging.getLogger("test.tryton.rpc"), fetch_attachment=fetch, work_dir=tmp_path
    )

    class Scripted(TrytonConnector):
        def make_client(self) -> TrytonClient:
            return script.client()

    return Scripted(settings, context)


async def test_open_with_a_refused_password_rejects_the_job(tmp_path: Path) -> None:
    connector = _connector(Script(lambda *_: httpx.Response(401)), tmp_path)
    with pytest.raises(JobRejected) as caught:
        await connector.open()
    assert caught.value.reason_type is JobReason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert "s3cret-pass" not in caught.value.message


async def test_open_when_tryton_is_down_is_temporary(tmp_path: Path) -> None:
    def down(*_: Any) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    connector = _connector(Script(down), tmp_path)
    with pytest.raises(TargetTemporarilyUnavailable) as caught:
        await connector.open()
    assert "cannot connect to Tryton at http://tryton.test" in caught.value.message


async def test_a_write_without_answer_is_uncertain(tmp_path: Path) -> None:
    def answer(method: str, params: list[Any], request: httpx.Request) -> httpx.Response:
        if method.endswith(".create"):
            raise httpx.ReadTimeout("no answer")
        return _ok([])

    script = Script(logging_in(answer))
    connector = _connector(script, tmp_path)
    client = script.client()
    await client.login()
    connector._client = client
    connector._books = Books(
        client, Company(id=1, name="Co", currency_id=1, currency="GBP", digits=2)
    )
    plan = plan_item(item(amount=100), job())
    spec = MoveSpec(
        part=1,
        parts=1,
        kind="journal",
        journal=1,
        period=1,
        date=dt.date(2025, 3, 4),
        description=f"pleo:{plan.reference}#1/1",
        lines=(MoveLineSpec(account=1, amount=Decimal("1.00")),),
    )
    payload = Payload(
        reference=plan.reference,
        parts=(spec,),
        attachments=(),
        party=None,
        invoice_number=None,
        settles=False,
        match_open=None,
        amount=Decimal("1.00"),
    )
    with pytest.raises(OutcomeUncertain) as caught:
        await connector.post(PreparedEntry(plan=plan, entries=(), payload=payload))
    assert "may or may not have been applied" in caught.value.message
    assert [m for m, _ in script.calls][-2:] == [
        "model.account.invoice.search_read",
        "model.account.move.create",
    ]


def test_classify_error_for_escaped_http_errors(tmp_path: Path) -> None:
    connector = _connector(Script(lambda *_: _ok(None)), tmp_path)
    assert isinstance(
        connector.classify_error(httpx.ConnectError("refused")), TargetTemporarilyUnavailable
    )
    assert isinstance(connector.classify_error(httpx.ReadTimeout("slow")), OutcomeUncertain)
    assert isinstance(
        connector.classify_error(TrytonRefused("m", "balance all its lines")), ItemRejected
    )
    assert connector.classify_error(ValueError("ours")) is None
