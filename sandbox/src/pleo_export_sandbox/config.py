"""The sandbox's settings (:class:`SandboxConfig`), its request record, and the small
shared types the app, the OAuth server and organisation keys all use."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pleo_export_sandbox.files import LARGE_FILE_SIZE
from pleo_export_sandbox.store import Store

JSON_MEDIA_TYPE = "application/json;charset=UTF-8"
FILE_PLACEHOLDER = "sandbox-file:"
"""Stored items carry ``files[].url`` as this prefix plus a file id; URLs are signed when the
items are fetched, so they expire ``file_url_ttl`` seconds after that fetch."""
MAX_LATENCY = 10.0
"""The largest ``api_latency``/``file_latency`` accepted, in seconds: beyond it the client's
timeouts, not the network, would be what is being tried."""
CURSOR_PATTERN = re.compile(r"^[A-Z2-7=~]+$")
PAGE_ORDERS = (
    "ASC",
    "ASC_NULLS_FIRST",
    "ASC_NULLS_LAST",
    "DESC",
    "DESC_NULLS_FIRST",
    "DESC_NULLS_LAST",
)


@dataclass(frozen=True)
class SandboxConfig:
    started_is_idempotent: bool = False
    """Whether ``started`` on an ``in_progress`` job is accepted (202) rather than 422.
    Pleo does not document it; 422 is the strict choice."""
    strict_completion: bool = True
    """Refuse ``completed``/``completed_with_errors`` (422) while items are pending or
    in_progress. When off, such items become ``abandoned`` on completion."""
    job_expires_in: int = 3600
    """Seconds without an event or item update after which a job fails with ``job_expired``."""
    page_size_default: int = 50
    """Page size when a list request has no ``limit``."""
    page_size_max: int = 1000
    """Largest page served whatever ``limit`` asks for. Pleo documents neither a default nor a
    maximum ``limit`` for the export endpoints, so the sandbox picks generous values; clients
    must follow ``hasNextPage``/``endCursor`` whatever page size the server chooses."""
    rate_limit_per_minute: int = 600
    """Requests accepted per credential in any ``rate_limit_window`` (Pleo: 600/min)."""
    rate_limit_window: float = 60.0
    file_url_ttl: int = 86_400
    """Seconds a file URL stays valid after the export items carrying it were fetched."""
    large_file_rate: float = 0.1
    """Share of generated items with receipts whose first file is ``large_file_size`` bytes."""
    large_file_size: int = LARGE_FILE_SIZE
    start_time: datetime | None = None
    """Sandbox wall-clock time when its clock is first read (default: now)."""
    base_url: str = "http://sandbox.localhost"
    files_base_url: str = "https://files.sandbox.invalid"
    """Where receipt files are served: a host of their own, as Pleo serves receipts from
    storage apart from the API (pre-signed URLs), so downloads do not count against the
    client's request budget for the API. In process the sandbox's transport routes every
    host to the app; the default is an ``https`` name under the reserved ``.invalid`` domain,
    which never resolves, so a client applies the rules it applies to Pleo's real storage
    (``https`` on a public host: fetched without credentials, no allow-list needed).
    :func:`~pleo_export_sandbox.server.running_server` and ``pleo-export sandbox serve`` set
    it to their own listener."""
    api_latency: float = 0.0
    """Seconds every API call (``/v3/...`` and the OAuth endpoints) waits before it is
    answered, to try the client against a Pleo that is far away (0 to ``MAX_LATENCY``)."""
    file_latency: float = 0.0
    """Seconds every file download (``/_sandbox/files/...`` on ``files_base_url``) waits before
    it is answered
    (0 to ``MAX_LATENCY``)."""
    seed_master_data: bool = True
    """Whether each company's vendors, tax codes and tag groups (the Vendors, Tax Code and
    Tags APIs) start as the demo chart's; off, they start empty."""

    def __post_init__(self) -> None:
        for name in ("api_latency", "file_latency"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_LATENCY:  # also refuses NaN
                raise ValueError(
                    f"SandboxConfig.{name} must be between 0 and {MAX_LATENCY:g} seconds, "
                    f"not {value!r}"
                )


@dataclass(frozen=True)
class RequestRecord:
    """One exchange with the sandbox, as ``Sandbox.requests`` and ``on_exchange`` see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    """The status the sandbox answered; 0 when the connection was dropped before applying."""
    body: Any | None
    """The parsed JSON request body (the raw text if it was not JSON; ``None`` if empty)."""
    response_body: Any | None
    credential_id: str | None
    at: float
    """Clock reading when the request arrived."""
    fault: str | None = None
    """The fault kind that hit this request, if any."""
    response_headers: dict[str, str] = field(default_factory=dict)


class SandboxHost(Protocol):
    """What the OAuth server and organisation keys need of a sandbox: its store and its clock.
    :class:`~pleo_export_sandbox.app.Sandbox` is one; naming this instead of the class keeps
    those modules free of an import of the app."""

    store: Store
    clock: Callable[[], float]
