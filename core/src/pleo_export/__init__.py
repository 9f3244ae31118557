"""pleo-export: move approved spend from Pleo into accounting systems.

The public API for connector and plugin authors is re-exported here; everything else is
internal and may change between minor versions.

Connector and plugin authors import from here and from :mod:`pleo_export.testing` only; a test
(``tests/test_public_api.py``) fails when a connector under ``connectors/``, ``contrib/`` or the
connector template imports anything else.
"""

from typing import TYPE_CHECKING, Any

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
    SupportsScaffold,
    TargetTemporarilyUnavailable,
    contract_problems,
    describe_settings_error,
)
from pleo_export.hookspecs import PluginSettings, Problem, hookimpl
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
from pleo_export.masterdata import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    BookedEntry,
    BookedPosting,
    DimensionValue,
    VendorDraft,
)
from pleo_export.money import decimals, format_minor, to_decimal
from pleo_export.pleo.models import (
    BookkeepingMethod,
    ExportItem,
    ExportItemFile,
    ExportItemSubType,
    ExportItemType,
    ExportJob,
    ExportJobFailureReasonType,
    ExportJobItemFailureReasonType,
    ExportJobItemStatus,
    ExportJobStatus,
    TaxType,
    format_timestamp,
)
from pleo_export.role_accounts import RoleAccountSettings
from pleo_export.settlement import (
    BookedInvoice,
    SettlementRequest,
    settle_payment,
    settlement_request,
)
from pleo_export.tax_numbers import normalise_tax_number, tax_number_forms, tax_numbers_match

if TYPE_CHECKING:
    from pleo_export.engine.report import ItemFailure, JobReport, RunReport
    from pleo_export.service import LeaseState, PleoCalls, RoundResult, ServiceView
    from pleo_export.state.base import ItemOutcome

__version__ = "0.1.0"

_LAZY = {
    # Outcome and report types live with the engine and the state store; they are imported on
    # first use so that ``import pleo_export`` (every connector does it) stays light.
    "ItemFailure": "pleo_export.engine.report",
    "ItemOutcome": "pleo_export.state.base",
    "JobReport": "pleo_export.engine.report",
    "RunReport": "pleo_export.engine.report",
    "LeaseState": "pleo_export.service",
    "PleoCalls": "pleo_export.service",
    "RoundResult": "pleo_export.service",
    "ServiceView": "pleo_export.service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pleo_export' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CONTRACT_VERSION",
    "AccountRef",
    "AccountingDimension",
    "AccountingTaxCode",
    "AccountingVendor",
    "BookedEntry",
    "BookedInvoice",
    "BookedPosting",
    "BookkeepingMethod",
    "Capability",
    "Connector",
    "ConnectorContext",
    "ConnectorError",
    "ConnectorManifest",
    "ConnectorSettings",
    "DimensionValue",
    "EntryKind",
    "ExportItem",
    "ExportItemFile",
    "ExportItemSubType",
    "ExportItemType",
    "ExportJob",
    "ExportJobFailureReasonType",
    "ExportJobItemFailureReasonType",
    "ExportJobItemStatus",
    "ExportJobStatus",
    "ExternalRecord",
    "ItemFailure",
    "ItemOutcome",
    "ItemRejected",
    "JobRejected",
    "JobReport",
    "LeaseState",
    "LedgerEntry",
    "Limits",
    "OutcomeUncertain",
    "PleoCalls",
    "PluginSettings",
    "Posting",
    "PostingPlan",
    "PreparedEntry",
    "Problem",
    "ResolvedEntry",
    "ResolvedPosting",
    "Role",
    "RoleAccountSettings",
    "RoundResult",
    "RunReport",
    "ServiceView",
    "SettlementRequest",
    "SupportsScaffold",
    "TargetTemporarilyUnavailable",
    "TaxType",
    "VendorDraft",
    "VendorRef",
    "__version__",
    "contract_problems",
    "decimals",
    "describe_settings_error",
    "format_minor",
    "format_timestamp",
    "hookimpl",
    "normalise_tax_number",
    "settle_payment",
    "settlement_request",
    "tax_number_forms",
    "tax_numbers_match",
    "to_decimal",
]
