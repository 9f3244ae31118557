"""pleo-export-beancount: books Pleo export items into a beancount plain-text ledger.

Registered under the entry-point group ``pleo_export.connectors`` as ``beancount``. Importing
this package does not import beancount itself; that happens when a ledger is loaded.
"""

from pleo_export_beancount.connector import BeancountConnector
from pleo_export_beancount.settings import BeancountSettings
from pleo_export_beancount.starter import (
    StarterAccount,
    StarterChart,
    StarterVendor,
    write_starter_ledger,
)

__all__ = [
    "BeancountConnector",
    "BeancountSettings",
    "StarterAccount",
    "StarterChart",
    "StarterVendor",
    "write_starter_ledger",
]
