"""A small asynchronous JSON-RPC client for Tryton (``trytond`` 7.x/8.x) on httpx.

Tryton serves JSON-RPC at ``<url>/<database>/rpc/``. ``common.db.login`` with
``[login, {"password": ...}, language]`` answers ``[user_id, session, ...]``; later requests
carry ``Authorization: Session base64(login:user_id:session)``. Model methods are called as
``model.<model name>.<method>`` with the method's arguments followed by the context. Values
that JSON lacks travel as objects with a ``__class__`` key (``Decimal``, ``date``,
``datetime``, ``bytes``).

Errors come back in two ways. A request Tryton processed and refused answers 200 with
``{"error": ["UserError", [message, description, domain]]}`` (or ``UserWarning`` with a
warning name, or a plain ``[text, traceback]`` for a programming error); Tryton rolled the
transaction back, so nothing was written. Authentication problems and overload answer with
an HTTP status (401, 403, 404, 429, 503). Every failure is raised as a subclass of
:class:`TrytonError` that says whether the request may have been applied.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import itertools
import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

log = logging.getLogger("pleo_export_tryton.rpc")


# --- errors ----------------------------------------------------------------------------------


class TrytonError(Exception):
    """Base class: something went wrong talking to Tryton."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TrytonRefused(TrytonError):
    """Tryton processed the request and refused it (``UserError``); nothing was written."""

    def __init__(self, method: str, message: str, description: str = "") -> None:
        text = message + (f" ({description})" if description else "")
        super().__init__(text)
        self.method = method
        self.tryton_message = message
        self.description = description


class TrytonWarning(TrytonError):
    """Tryton asks a person to confirm something (``UserWarning``); nothing was written."""

    def __init__(self, method: str, name: str, message: str, description: str = "") -> None:
        super().__init__(message + (f" ({description})" if description else ""))
        self.method = method
        self.name = name
        self.tryton_message = message


class TrytonFault(TrytonError):
    """Tryton failed with an internal error while processing; nothing was committed."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(message)
        self.method = method


class TrytonLoginRefused(TrytonError):
    """The user name or password was refused (or the account is locked out for a while)."""


class TrytonDatabaseMissing(TrytonError):
    """The database does not exist on this Tryton server."""


class TrytonForbidden(TrytonError):
    """The user may not call this method (access rights)."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(message)
        self.method = method


class TrytonUnavailable(TrytonError):
    """Tryton could not be reached, or answered that it is busy: nothing was applied."""

    def __init__(self, message: str, *, retry_after: float | None = None, timeout: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.timeout = timeout
        self.rate_limited = False


class TrytonNoAnswer(TrytonError):
    """The request was sent but no answer came back: it may or may not have been applied."""

    def __init__(self, method: str, message: str, *, write: bool) -> None:
        super().__init__(message)
        self.method = method
        self.write = write


class TrytonProtocolError(TrytonError):
    """An answer that is not Tryton JSON-RPC (a proxy page, a wrong URL)."""


# --- values ----------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind is None:
        return obj
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "datetime":
        return dt.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj["hour"],
            obj["minute"],
            obj["second"],
            obj.get("microsecond", 0),
        )
    if kind == "time":
        return dt.time(obj["hour"], obj["minute"], obj["second"], obj.get("microsecond", 0))
    if kind == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if kind == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


def dumps(body: Any) -> bytes:
    return json.dumps(body, default=_encode, separators=(",", ":")).encode("utf-8")


def loads(data: bytes | str) -> Any:
    return json.loads(data, object_hook=_decode)


# --- the client ------------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class TrytonClient:
    """One logged-in session on one Tryton database.

    ``call`` sends a request and returns its ``result``. ``write=True`` marks requests that
    change data, so that a lost answer is reported as :class:`TrytonNoAnswer` with
    ``write=True`` (the caller must look before trying again) rather than as unavailability.
    A session that Tryton expired (401) is renewed once and the request sent again: a 401
    comes before Tryton processes anything.
    """

    def __init__(
        self,
        url: str,
        database: str,
        user: str,
        password: SecretStr,
        *,
        timeout: float = 60.0,
        language: str = "en",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.user = user
        self._password = password
        self._language = language
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        self._ids = itertools.count(1)
        self._session: str | None = None
        self.user_id: int | None = None
        self.context: dict[str, Any] = {}
        self.calls = 0

    @property
    def rpc_url(self) -> str:
        return f"{self.url}/{self.database}/rpc/"

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(TrytonError):  # else the session times out on its own
                await self._send("common.db.logout", [], write=False)
            self._session = None
        await self._http.aclose()

    async def login(self) -> int:
        """Open a session; raise :class:`TrytonLoginRefused` or :class:`TrytonDatabaseMissing`."""
        self._session = None
        params = [self.user, {"password": self._password.get_secret_value()}, self._language]
        result = await self._send("common.db.login", params, write=False, login=True)
        if not isinstance(result, list) or len(result) < 2:
            raise TrytonProtocolError(
                f"unexpected answer to common.db.login from {self.rpc_url}: {type(result).__name__}"
            )
        self.user_id, self._session = int(result[0]), str(result[1])
        return self.user_id

    async def call(self, method: str, *args: Any, write: bool = False) -> Any:
        """``method(*args)`` with no context appended (``common.*``, ``system.*``)."""
        if self._session is None:
            await self.login()
        try:
            return await self._send(method, list(args), write=write)
        except _SessionExpired:
            log.info("Tryton session expired; logging in again", extra={"method": method})
            await self.login()
            return await self._send(method, list(args), write=write)

    async def model(
        self,
        model: str,
        method: str,
        *args: Any,
        write: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """``model.<model>.<method>(*args, context)`` with the session context."""
        merged = {**self.context, **(context or {})}
        return await self.call(f"model.{model}.{method}", *args, merged, write=write)

    async def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        order: list[tuple[str, str]] | None = None,
        limit: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        rows = await self.model(
            model, "search_read", domain, 0, limit, order, fields, context=context
        )
        return list(rows)

    async def wizard(
        self, name: str, state: str, data: dict[str, Any], context: Mapping[str, Any]
    ) -> Any:
        """Run wizard ``name`` from ``state`` with ``data`` (a button of a form, for example)."""
        merged = {**self.context, **context}
        created = await self.call(f"wizard.{name}.create", merged, write=True)
        session_id = created[0]
        try:
            return await self.call(
                f"wizard.{name}.execute", session_id, data, state, merged, write=True
            )
        finally:
            try:
                await self.call(f"wizard.{name}.delete", session_id, merged, write=True)
            except TrytonError as error:
                log.debug("could not delete wizard session: %s", error.message)

    # --- transport ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self._session is None or self.user_id is None:
            return {}
        token = f"{self.user}:{self.user_id}:{self._session}".encode()
        return {"Authorization": "Session " + base64.b64encode(token).decode("ascii")}

    async def _send(
        self, method: str, params: list[Any], *, write: bool, login: bool = False
    ) -> Any:
        body = {"id": next(self._ids), "method": method, "params": params}
        content = dumps(body)
        started = time.monotonic()
        self.calls += 1
        try:
            response = await self._http.post(self.rpc_url, content=content, headers=self._headers())
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise TrytonUnavailable(
                f"cannot connect to Tryton at {self.url}: {error or type(error).__name__}",
                timeout=isinstance(error, httpx.TimeoutException),
            ) from error
        except httpx.TimeoutException as error:
            if write:
                raise TrytonNoAnswer(
                    method,
                    f"no answer from Tryton to {method} within the timeout",
                    write=True,
                ) from error
            raise TrytonUnavailable(
                f"no answer from Tryton to {method} within the timeout", timeout=True
            ) from error
        except httpx.TransportError as error:
            if write:
                raise TrytonNoAnswer(
                    method,
                    f"the connection to Tryton broke during {method}: "
                    f"{error or type(error).__name__}",
                    write=True,
                ) from error
            raise TrytonUnavailable(
                f"the connection to Tryton broke during {method}: {error or type(error).__name__}"
            ) from error
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        log.debug(
            "tryton %s -> %s in %sms",
            method,
            response.status_code,
            elapsed_ms,
            extra={"method": method, "status": response.status_code, "elapsed_ms": elapsed_ms},
        )
        return self._result(method, response, write=write, login=login)

    def _result(self, method: str, response: httpx.Response, *, write: bool, login: bool) -> Any:
        status = response.status_code
        if status == 401:
            if login:
                raise TrytonLoginRefused(
                    f"Tryton refused the login of user {self.user!r} on database {self.database!r}"
                )
            raise _SessionExpired(method)
        if status == 403:
            if login:
                raise TrytonLoginRefused(
                    f"Tryton refused the login of user {self.user!r} on database "
                    f"{self.database!r} (forbidden)"
                )
            raise TrytonForbidden(
                method, f"user {self.user!r} is not allowed to call {method} in Tryton"
            )
        if status == 404:
            if login:
                raise TrytonDatabaseMissing(
                    f"database {self.database!r} does not exist on the Tryton server {self.url}"
                )
            raise TrytonProtocolError(
                f"{self.rpc_url} answered 404 to {method}: is {self.url} a Tryton server?"
            )
        if status == 429:
            error = TrytonUnavailable(
                f"Tryton is rate limiting requests ({method})",
                retry_after=_retry_after(response),
            )
            error.rate_limited = True
            raise error
        if status in (502, 504) and write:
            # A proxy gave up waiting; Tryton may still have committed the request.
            raise TrytonNoAnswer(
                method, f"Tryton's gateway answered {status} to {method}", write=True
            )
        if status >= 500 and not response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            raise TrytonUnavailable(
                f"Tryton answered {status} to {method}", retry_after=_retry_after(response)
            )
        try:
            payload = loads(response.content)
        except ValueError:
            raise TrytonProtocolError(
                f"{self.rpc_url} answered {status} with something that is not JSON to {method}: "
                "check the url setting"
            ) from None
        if status >= 400:
            text = payload.get("message") if isinstance(payload, dict) else None
            raise TrytonRefused(method, str(text or f"HTTP {status}"))
        if not isinstance(payload, dict):
            raise TrytonProtocolError(f"unexpected JSON-RPC answer to {method}")
        if "error" in payload and payload["error"] is not None:
            raise _error(method, payload["error"])
        return payload.get("result")


class _SessionExpired(TrytonError):
    def __init__(self, method: str) -> None:
        super().__init__(f"the Tryton session expired ({method})")


def _error(method: str, error: Any) -> TrytonError:
    """The exception for the ``error`` member of a JSON-RPC answer."""
    if isinstance(error, list) and len(error) == 2 and isinstance(error[1], list):
        kind, args = error
        if kind == "UserError":
            message = str(args[0]) if args else "refused"
            description = str(args[1]) if len(args) > 1 and args[1] else ""
            return TrytonRefused(method, message, description)
        if kind == "UserWarning":
            name = str(args[0]) if args else ""
            message = str(args[1]) if len(args) > 1 else "confirmation needed"
            description = str(args[2]) if len(args) > 2 and args[2] else ""
            return TrytonWarning(method, name, message, description)
        if kind == "ConcurrencyException":
            return TrytonRefused(method, str(args[0]) if args else "concurrent change")
        if kind == "LoginException":
            return TrytonLoginRefused(f"Tryton asks for more login parameters ({args})")
    if isinstance(error, list) and error:
        return TrytonFault(method, f"Tryton failed in {method}: {str(error[0])[:500]}")
    return TrytonFault(method, f"Tryton failed in {method}: {str(error)[:500]}")
