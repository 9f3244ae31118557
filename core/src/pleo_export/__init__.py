"""pleo-export: move approved spend from Pleo into accounting systems.

The public API for connector and plugin authors is re-exported here; everything else is
internal and may change between minor versions.
"""

from pleo_export.connector import (
    CONTRACT_VERSION,
    Capability,
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorManifest,
    ConnectorSettings,
    ItemRejected,
    JobRejected,
    Limits,
    OutcomeUncertain,
    TargetTemporarilyUnavailable,
)
from pleo_export.ledger import (
    AccountRef,
    EntryKind,
    ExternalRecord,
    LedgerEntry,
    Posting,
    PostingPlan,
    PreparedEntry,
    ResolvedEntry,
    ResolvedPosting,
    Role,
    VendorRef,
)
from pleo_export.tax_numbers import normalise_tax_number, tax_number_forms, tax_numbers_match

__version__ = "0.1.0"

__all__ = [
    "CONTRACT_VERSION",
    "AccountRef",
    "Capability",
    "Connector",
    "ConnectorContext",
    "ConnectorError",
    "ConnectorManifest",
    "ConnectorSettings",
    "EntryKind",
    "ExternalRecord",
    "ItemRejected",
    "JobRejected",
    "LedgerEntry",
    "Limits",
    "OutcomeUncertain",
    "Posting",
    "PostingPlan",
    "PreparedEntry",
    "ResolvedEntry",
    "ResolvedPosting",
    "Role",
    "TargetTemporarilyUnavailable",
    "VendorRef",
    "__version__",
    "normalise_tax_number",
    "tax_number_forms",
    "tax_numbers_match",
]
