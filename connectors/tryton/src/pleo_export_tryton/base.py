"""What every part of the Tryton connector shares: the records an item has in Tryton, the
work of one ``post_batch`` item, and the connector's state (client, books, lookups)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from pleo_export import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ItemRejected,
    JobRejected,
    Posting,
    PostingPlan,
    PreparedEntry,
)
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export.attachments import PLEO_MAX_RECEIPT_BYTES
from pleo_export_tryton.books import Account, Books, Tax
from pleo_export_tryton.errors import to_connector_error
from pleo_export_tryton.rpc import TrytonClient, TrytonError
from pleo_export_tryton.settings import TrytonSettings
from pleo_export_tryton.specs import Attachment, Payload

MAX_ATTACHMENT_BYTES = PLEO_MAX_RECEIPT_BYTES
"""Pleo's largest receipt; Tryton itself accepts far larger requests from a logged-in user."""

VENDOR_UNKNOWN_MESSAGE = (
    "Selected vendor cannot be processed because it does not exist or is currently blocked. "
    "Please verify the vendor's status in the accounting system and try again."
)
"""The message Pleo's accounts-payable guide asks for when vendor matching fails."""


@dataclass
class Found:
    """A record written earlier for an item, found by its marker."""

    model: str
    id: int
    part: int
    parts: int
    state: str
    created: dt.datetime | None

    @property
    def posted(self) -> bool:
        return self.state in ("posted", "paid")


@dataclass
class Work:
    """One item of a ``post_batch`` call, while it is written."""

    prepared: PreparedEntry
    payload: Payload
    files: list[tuple[Attachment, bytes]] = field(default_factory=list)
    records: dict[int, Found] = field(default_factory=dict)
    """Part number -> the record that holds it (found, or created now)."""
    created: set[int] = field(default_factory=set)
    """Parts created by this call (a refused post deletes them again)."""
    error: ItemRejected | None = None


def item_error(error: TrytonError, doing: str) -> ItemRejected:
    mapped = to_connector_error(error, doing)
    if isinstance(mapped, ItemRejected):
        return mapped
    return ItemRejected(Reason.UNEXPECTED_FAILURE, mapped.message)


@dataclass(frozen=True)
class Resolved:
    posting: Posting
    account: Account
    party: int | None
    tax: Tax | None


class TrytonBase(Connector[TrytonSettings]):
    """The connector's state and the helpers every part uses (see ``connector.py``)."""

    def __init__(self, settings: TrytonSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._client: TrytonClient | None = None
        self._books: Books | None = None
        self._looked_up: OrderedDict[str, tuple[dict[int, Found], bool]] = OrderedDict()
        """Recent lookups by reference, for the ``post_batch`` that follows them."""
        self._prepared_invoices: dict[tuple[int, int, str], dict[str, tuple[int, int, str]]] = {}
        """Invoices prepared in this run, by (party, payable account, invoice number) and
        reference: their payable amount and supplier amount (debit positive) and currency. A
        payment in the same batch settles against them before they are in Tryton."""
        self.log: logging.Logger = context.logger

    @staticmethod
    def _job_level(error: ConnectorError) -> ConnectorError:
        if isinstance(error, ItemRejected):
            return JobRejected(JobReason.INVALID_CONFIGURATION, error.message)
        return error

    def _require(self) -> tuple[TrytonClient, Books]:
        if self._client is None or self._books is None:
            raise RuntimeError("TrytonConnector.open() must succeed first")
        return self._client, self._books

    def _vendor_unknown(self, plan: PostingPlan) -> str:
        vendor = plan.vendor
        tried = (
            ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in vendor.match_keys())
            if vendor
            else ""
        )
        name = vendor.name if vendor else "(none)"
        return (
            f"{VENDOR_UNKNOWN_MESSAGE} No Tryton party matches vendor {name} ({tried}): give "
            "the party the vendor's code as its code, or its external id or tax number as an "
            "identifier"
        )


def plan_invoice_number(plan: PostingPlan) -> str | None:
    info = plan.item.additional_information.invoice_information
    number = info.invoice_number if info is not None else None
    return number.strip() if number and number.strip() else None
