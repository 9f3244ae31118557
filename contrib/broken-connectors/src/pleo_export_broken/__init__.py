"""Deliberately wrong pleo-export connectors, for the conformance kit's own tests.

Each connector books into a JSON-lines ledger like :class:`LedgerFileConnector` but has one
defect, and the kit (:mod:`pleo_export.testing`) must fail it naming the scenario that exposes
the defect. Do not use them for real exports.
"""

from pleo_export_broken.broken import (
    DoublePostConnector,
    FalseSuccessConnector,
    LostFailureConnector,
    UnbalancedConnector,
)
from pleo_export_broken.ledger import LedgerFileConnector, LedgerSettings, read_lines

__all__ = [
    "DoublePostConnector",
    "FalseSuccessConnector",
    "LedgerFileConnector",
    "LedgerSettings",
    "LostFailureConnector",
    "UnbalancedConnector",
    "read_lines",
]
