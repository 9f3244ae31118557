"""The transport under :class:`~pleo_export.pleo.client.PleoClient`: budget, retries, logging.

:class:`PleoTransport` owns the ``httpx.AsyncClient`` and sends every request through the
shared :class:`~pleo_export.pleo.ratelimit.RequestBudget` and the
:class:`~pleo_export.pleo.ratelimit.RetryPolicy`, counts it in :class:`ClientStats`, refuses
redirects to another host, caps bodies and turns error answers into the typed errors of
:mod:`pleo_export.pleo.errors`. :class:`~pleo_export.pleo.client.PleoClient` adds the Export
API's endpoints and attachment downloads on top; see its module docstring for the whole.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ValidationError

from pleo_export.pleo import depth
from pleo_export.pleo.errors import (
    PleoApiError,
    PleoHttpError,
    PleoUnavailable,
    RateLimited,
    ResponseSchemaError,
    ServerError,
    error_for,
)
from pleo_export.pleo.models import (
    ExceptionInfo,
    PageInfo,
)
from pleo_export.pleo.ratelimit import AnyioClock, Clock, RequestBudget, RetryPolicy

__all__ = [
    "USER_AGENT",
    "AttachmentTooLarge",
    "ClientStats",
    "PleoTransport",
    "RedirectRefused",
    "describe_transport_error",
]

DOWNLOAD_ENDPOINT = "GET (download)"
"""The :attr:`ClientStats.requests_by_endpoint` key of attachment downloads."""

ENDPOINT_EXTENSION = "pleo_export.endpoint"
_MAX_ERROR_BODY = 64 * 1024
_MAX_REDIRECTS = 5

ModelT = TypeVar("ModelT", bound=BaseModel)


def _package_version() -> str:
    try:
        return version("pleo-export")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0+unknown"


USER_AGENT = f"pleo-export/{_package_version()}"


class AttachmentTooLarge(PleoApiError):
    """A download exceeded the caller's ``max_bytes``; the transfer was stopped."""

    def __init__(self, url: str, max_bytes: int, *, declared: int | None = None) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self.declared = declared
        size = f"declares {declared} bytes" if declared is not None else "is larger"
        super().__init__(f"download {url} {size}; the limit is {max_bytes} bytes")


class RedirectRefused(PleoHttpError):
    """A response redirected to another host; the client follows same-host redirects only."""


@dataclass
class ClientStats:
    """Counters of one :class:`PleoClient`.

    ``requests`` counts requests put on the wire (every attempt, redirect hop and auth retry);
    ``requests_by_endpoint`` splits them by ``"METHOD /v3/template-path"`` (downloads under
    ``"GET (download)"``). ``responses_by_status`` counts every response received, ``retries``
    the attempts repeated after a retryable failure, ``rate_limited`` the 429 answers.
    ``budget_wait_seconds`` is the time requests spent waiting on the request budget and
    ``retry_wait_seconds`` the time spent backing off between attempts.
    """

    requests: int = 0
    requests_by_endpoint: Counter[str] = field(default_factory=Counter)
    responses_by_status: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    budget_wait_seconds: float = 0.0
    retry_wait_seconds: float = 0.0


class PleoTransport:
    """Requests to Pleo with the budget, retries, statistics and logging every call needs.

    The constructor's arguments are :class:`~pleo_export.pleo.client.PleoClient`'s.
    """

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth,
        *,
        requests_per_minute: int = 500,
        window_seconds: float = 60.0,
        page_size: int = 1000,
        timeout: float = 30.0,
        download_timeout: float | None = 300.0,
        download_hosts: Iterable[str] = (),
        download_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._base_url = httpx.URL(base_url.rstrip("/"))
        if not self._base_url.is_absolute_url:
            raise ValueError(f"base_url must be an absolute URL, got {base_url!r}")
        self._auth = auth
        self._page_size = page_size
        if download_timeout is not None and not download_timeout > 0:
            raise ValueError("download_timeout must be positive (or None for no deadline)")
        self._download_timeout = download_timeout
        if download_concurrency < 1:
            raise ValueError("download_concurrency must be at least 1")
        self._download_concurrency = download_concurrency
        self._download_slots: anyio.CapacityLimiter | None = None
        base_host = host_key(self._base_url.host, origin(self._base_url)[2])
        self._download_hosts = frozenset(
            {base_host, *(_normalise_host_entry(entry) for entry in download_hosts)}
        )
        self._retry = retry if retry is not None else RetryPolicy()
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._log = logger if logger is not None else logging.getLogger("pleo_export.pleo.client")
        self.budget = RequestBudget(requests_per_minute, window_seconds, clock=self._clock)
        self.stats = ClientStats()
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=True,
            max_redirects=_MAX_REDIRECTS,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )

    def __repr__(self) -> str:
        return f"PleoClient(base_url={str(self._base_url)!r}, auth={self._auth!r})"

    @property
    def base_url(self) -> str:
        """The API base URL, without a trailing slash."""
        return str(self._base_url)

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the underlying HTTP client (``async with`` does this for you)."""
        await self._http.aclose()

    @property
    def download_slots(self) -> anyio.CapacityLimiter:
        """The downloads allowed in flight at once (``download_concurrency``), apart from
        the API's request budget."""
        if self._download_slots is None:  # created in the event loop, on first use
            self._download_slots = anyio.CapacityLimiter(self._download_concurrency)
        return self._download_slots

    def _is_api_origin(self, url: httpx.URL) -> bool:
        return origin(url) == origin(self._base_url)

    async def _on_request(self, request: httpx.Request) -> None:
        """Event hook run for every request put on the wire."""
        if self._is_api_origin(request.url):
            # Await first: `x += await ...` would read x before the wait and lose updates.
            waited = await self.budget.acquire()
            self.stats.budget_wait_seconds += waited
        endpoint = request.extensions.get(ENDPOINT_EXTENSION)
        self.stats.requests += 1
        self.stats.requests_by_endpoint[
            endpoint if isinstance(endpoint, str) else f"{request.method} {request.url.path}"
        ] += 1

    async def _on_response(self, response: httpx.Response) -> None:
        """Event hook run for every response, redirects included."""
        self.stats.responses_by_status[response.status_code] += 1
        if response.status_code == 429:
            self.stats.rate_limited += 1
        if response.has_redirect_location:
            source = response.request.url
            target = source.join(response.headers["Location"])
            if target.host != source.host:
                raise RedirectRefused(
                    response.status_code,
                    None,
                    f"redirect to another host ({target.host}) refused",
                    method=response.request.method,
                    url=loggable(source),
                )

    async def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
        parse: bool = True,
    ) -> Any:
        """Send one API request with retries; return the decoded JSON body.

        Returns ``None`` when ``parse`` is false or the body is empty.
        """
        request = self._http.build_request(
            method,
            path,
            params=list(params) or None,
            json=json_body,
            extensions={ENDPOINT_EXTENSION: endpoint},
        )
        response, body = await self._send(request, endpoint, auth=self._auth)
        if not parse or not body.strip():
            return None
        try:
            return depth.loads(body)  # any depth: a RecursionError would end the run
        except ValueError as exc:
            raise ResponseSchemaError(
                f"{endpoint}: response {response.status_code} is not JSON"
            ) from exc

    async def _send(
        self,
        request: httpx.Request,
        endpoint: str,
        *,
        auth: httpx.Auth | None,
        max_bytes: int | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """Send ``request`` until it succeeds or the retry policy gives up.

        Returns the (closed) 2xx response and its body. Raises the typed error of a non-2xx
        answer, :class:`~pleo_export.pleo.errors.RateLimited` /
        :class:`~pleo_export.pleo.errors.ServerError` when 429/5xx outlast the retries and
        :class:`~pleo_export.pleo.errors.PleoUnavailable` when the transport does.
        """
        policy = self._retry
        path = request.url.path
        attempt = 0
        while True:
            attempt += 1
            started = self._clock.now()
            try:
                response = await self._http.send(request, auth=auth, stream=True)
                try:
                    if response.is_success:
                        body = await _read_capped(response, max_bytes, loggable(request.url))
                    else:
                        body = await _read_capped(response, _MAX_ERROR_BODY, None)
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                self._log_attempt(
                    request.method, path, endpoint, attempt, started, error=type(exc).__name__
                )
                described = describe_transport_error(exc)
                if not _is_retryable_transport_error(exc) or attempt >= policy.max_attempts:
                    raise PleoUnavailable(
                        f"{request.method} {loggable(request.url)} failed after {attempt} "
                        f"attempt(s): {described} ({type(exc).__name__})"
                    ) from exc
                await self._back_off(
                    request.method, path, attempt, type(exc).__name__, None, described
                )
                continue
            except httpx.RequestError as exc:
                # Not the network's fault (too many redirects, an undecodable body): another
                # attempt would end the same way. Wrapped so every error is a PleoApiError.
                raise PleoUnavailable(
                    f"{request.method} {loggable(request.url)} failed: {type(exc).__name__}"
                ) from exc

            status = response.status_code
            self._log_attempt(request.method, path, endpoint, attempt, started, status=status)
            if response.is_success:
                return response, body
            if status != 429 and status < 500:
                raise _http_error(response, body)

            retry_after = _retry_after(response)
            if attempt >= policy.max_attempts:
                info = _exception_info(body)
                error_cls = RateLimited if status == 429 else ServerError
                raise error_cls(
                    status,
                    info.type if info else None,
                    (info.message if info else None) or f"gave up after {attempt} attempts",
                    method=request.method,
                    url=loggable(request.url),
                )
            if retry_after is not None:
                self.budget.pause_until(self._clock.now() + retry_after)
            await self._back_off(
                request.method,
                path,
                attempt,
                f"status {status}",
                retry_after,
                f"Pleo answered {status}",
            )

    async def _back_off(
        self,
        method: str,
        path: str,
        attempt: int,
        reason: str,
        retry_after: float | None,
        described: str,
    ) -> None:
        """Log the retry (``reason``: the status or exception class; ``described``: in words)
        and wait."""
        wait = self._retry.delay(attempt, retry_after)
        self.stats.retries += 1
        self.stats.retry_wait_seconds += wait
        # A warning, so that it shows at the default log level: a run waiting on an
        # unreachable Pleo says so on every attempt instead of staying silent.
        self._log.warning(
            f"Pleo {method} {path}: {described}; attempt {attempt} of {self._retry.max_attempts} "
            f"failed, retrying in {wait:.1f} s",
            extra={
                "event": "pleo.retry",
                "method": method,
                "path": path,
                "attempt": attempt,
                "reason": reason,
                "error": described,
                "retry_after": retry_after,
                "wait_seconds": round(wait, 3),
            },
        )
        await self._clock.sleep(wait)

    def _log_attempt(
        self,
        method: str,
        path: str,
        endpoint: str,
        attempt: int,
        started: float,
        *,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        self._log.debug(
            "pleo request",
            extra={
                "event": "pleo.request",
                "method": method,
                "path": path,
                "endpoint": endpoint,
                "status": status,
                "error": error,
                "attempt": attempt,
                "elapsed_ms": round((self._clock.now() - started) * 1000, 1),
            },
        )

    async def _pages(
        self,
        path: str,
        endpoint: str,
        params: Sequence[tuple[str, str]],
        *,
        method: str = "GET",
        json_body: Any = None,
    ) -> AsyncIterator[list[Any]]:
        """Yield the ``data`` list of every page, following ``pagination.endCursor``.

        ``method``/``json_body`` serve the ``POST ...:search`` endpoints, which page through
        the query string like the ``GET`` lists and take their filters in the body."""
        after: str | None = None
        followed: set[str] = set()
        while True:
            page_params = [*params, ("limit", str(self._page_size))]
            if after is not None:
                page_params.append(("after", after))
            body = await self._call(method, path, endpoint, params=page_params, json_body=json_body)
            if not isinstance(body, dict):
                raise ResponseSchemaError(f"{endpoint}: response body is not a JSON object")
            data = body.get("data")
            if not isinstance(data, list):
                raise ResponseSchemaError(f"{endpoint}: response field 'data' is not a list")
            page = self._validate(PageInfo, body.get("pagination"), endpoint, "pagination")
            yield data
            if not page.has_next_page:
                return
            cursor = page.end_cursor
            if not cursor:
                raise ResponseSchemaError(
                    f"{endpoint}: response field 'pagination.endCursor' is missing although "
                    "hasNextPage is true"
                )
            if cursor in followed:
                raise ResponseSchemaError(
                    f"{endpoint}: response field 'pagination.endCursor' repeats a cursor "
                    "already followed; stopping rather than looping"
                )
            followed.add(cursor)
            after = cursor

    @staticmethod
    def _validate(model: type[ModelT], value: Any, endpoint: str, where: str) -> ModelT:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise _schema_error(endpoint, where, exc) from exc


# --- helpers -------------------------------------------------------------------------------


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default_ports = {"http": 80, "https": 443}
    return url.scheme, url.host, url.port or default_ports.get(url.scheme)


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (URLs from a payload can be arbitrarily long)."""
    return text if len(text) <= limit else text[:limit] + "..."


def host_key(host: str, port: int | None) -> str:
    return f"{host.lower()}:{port}" if port is not None else host.lower()


def _normalise_host_entry(entry: str) -> str:
    """``host`` or ``host:port`` (``[v6]:port`` too) as compared with a URL's host."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return f"{host}{rest}"
    return entry


def is_internal_host(host: str) -> bool:
    """Loopback, private, link-local or otherwise non-public address (or ``*.localhost``)."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


def loggable(url: httpx.URL) -> str:
    """The URL without query string or user info (pre-signed URLs carry signatures there)."""
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


def data_of(body: Any, endpoint: str) -> Any:
    if not isinstance(body, dict) or "data" not in body:
        raise ResponseSchemaError(f"{endpoint}: response field 'data' is missing")
    return body["data"]


def _schema_error(endpoint: str, where: str, exc: ValidationError) -> ResponseSchemaError:
    problems = []
    for error in exc.errors()[:5]:
        location = ".".join(str(part) for part in (*([where] if where else []), *error["loc"]))
        problems.append(f"'{location or '(body)'}': {error['msg']}")
    more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return ResponseSchemaError(f"{endpoint}: response field {'; '.join(problems)}{more}")


async def _read_capped(response: httpx.Response, max_bytes: int | None, url: str | None) -> bytes:
    """Read a streamed body; past ``max_bytes`` raise (``url`` set) or truncate (``None``)."""
    if max_bytes is None:
        return await response.aread()
    declared = response.headers.get("Content-Length")
    if (
        url is not None
        and declared is not None
        and declared.isdigit()
        and "Content-Encoding" not in response.headers
        and int(declared) > max_bytes
    ):
        raise AttachmentTooLarge(url, max_bytes, declared=int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            if url is not None:
                raise AttachmentTooLarge(url, max_bytes)
            chunks.append(chunk[: max_bytes - (size - len(chunk))])
            break
        chunks.append(chunk)
    return b"".join(chunks)


def describe_transport_error(exc: httpx.TransportError) -> str:
    """What went wrong on the wire, in words a person reads: "connection refused", "connection
    timed out", ... (the exception's class name alone says little)."""
    causes: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(causes) < 10:  # the chain down to the socket's OSError
        causes.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    text = " ".join(str(cause) for cause in causes).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "timed out waiting for the answer"
    if isinstance(exc, httpx.WriteTimeout):
        return "timed out sending the request"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in text:
            return "connection refused"
        if any(
            marker in text
            for marker in ("name or service not known", "nodename nor servname", "getaddrinfo")
        ) or ("name resolution" in text):
            return "host name not found"
        if "unreachable" in text:
            return "network unreachable"
        if "ssl" in text or "certificate" in text:
            return "TLS handshake failed"
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed before a complete answer"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the connection broke"
    return type(exc).__name__


def _is_retryable_transport_error(exc: httpx.TransportError) -> bool:
    # Deterministic failures (an unsupported URL scheme, a malformed request) would only fail
    # again; timeouts, connection and protocol errors of the peer are worth another attempt.
    return not isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP-date), ``None`` when absent or bad.

    The HTTP-date form is compared with the wall clock, the only clock it relates to.
    """
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _exception_info(body: bytes) -> ExceptionInfo | None:
    try:
        return ExceptionInfo.model_validate_json(body)
    except ValidationError:
        return None


def _http_error(response: httpx.Response, body: bytes) -> PleoHttpError:
    info = _exception_info(body)
    message = (info.message if info else None) or response.reason_phrase or "error"
    return error_for(
        response.status_code,
        info.type if info else None,
        message,
        method=response.request.method,
        url=loggable(response.request.url),
    )
