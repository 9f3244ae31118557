"""pleo-export connector for Tryton: journal entries, supplier invoices and payments over
JSON-RPC. See ``docs/connectors/tryton.md``."""

from pleo_export_tryton.connector import VENDOR_UNKNOWN_MESSAGE, TrytonConnector
from pleo_export_tryton.rpc import (
    TrytonClient,
    TrytonError,
    TrytonLoginRefused,
    TrytonNoAnswer,
    TrytonRefused,
    TrytonUnavailable,
)
from pleo_export_tryton.settings import TrytonSettings

__all__ = [
    "VENDOR_UNKNOWN_MESSAGE",
    "TrytonClient",
    "TrytonConnector",
    "TrytonError",
    "TrytonLoginRefused",
    "TrytonNoAnswer",
    "TrytonRefused",
    "TrytonSettings",
    "TrytonUnavailable",
]
