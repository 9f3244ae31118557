"""From Tryton's errors to Pleo's reason types, with messages a finance team can act on."""

from __future__ import annotations

import re

import httpx

from pleo_export import (
    ConnectorError,
    ItemRejected,
    JobRejected,
    OutcomeUncertain,
    TargetTemporarilyUnavailable,
)
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_tryton.rpc import (
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
)

# Tryton's English messages (the connector logs in with language "en") -> reason and hint.
_REFUSALS: tuple[tuple[re.Pattern[str], Reason, str], ...] = (
    (
        re.compile(r"balance all its lines|debits and credits", re.I),
        Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
        "the entry does not balance in Tryton; check the item's lines and tax in Pleo",
    ),
    (
        re.compile(
            r"closed (journal-)?period|closed fiscal year|create a period for the date", re.I
        ),
        Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
        "the accounting period is closed in Tryton; reopen it or set closed_period = "
        '"first_open_date"',
    ),
    (
        re.compile(r'field "Account"|line on account .* set a type or unclose', re.I),
        Reason.ACCOUNT_UNKNOWN,
        "an account of this item cannot be used in Tryton; check the category in Pleo and "
        "the account in Tryton",
    ),
    (
        re.compile(r'field "Party"|must set a party|must remove the party', re.I),
        Reason.VENDOR_UNKNOWN,
        "check the vendor of the expense in Pleo and the party in Tryton",
    ),
    (
        re.compile(r'field "Tax"', re.I),
        Reason.TAX_CODE_UNKNOWN,
        "check the tax code of the expense in Pleo and the tax in Tryton",
    ),
)


def refusal_reason(message: str) -> tuple[Reason, str]:
    """The reason type and a hint for a Tryton refusal text."""
    for pattern, reason, hint in _REFUSALS:
        if pattern.search(message):
            return reason, hint
    return (
        Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
        "correct the entry in Tryton or the expense in Pleo, then export it again",
    )


def to_connector_error(
    error: TrytonError, doing: str, *, settings_hint: str = ""
) -> ConnectorError:
    """Translate a Tryton client error raised while ``doing`` something into a connector error.

    ``doing`` completes "while ...", e.g. ``"posting supplier invoice 12"``.
    """
    if isinstance(error, TrytonNoAnswer):
        return OutcomeUncertain(
            f"{error.message} while {doing}; the change may or may not have been applied in Tryton"
        )
    if isinstance(error, TrytonUnavailable):
        if error.rate_limited:
            reason = Reason.ACCOUNTING_SYSTEM_RATE_LIMIT
        elif error.timeout:
            reason = Reason.ACCOUNTING_SYSTEM_TIMEOUT
        else:
            reason = Reason.ACCOUNTING_SYSTEM_UNREACHABLE
        return TargetTemporarilyUnavailable(
            f"{error.message} (while {doing}): check that the Tryton server is running and "
            "reachable, then export again",
            retry_after=error.retry_after,
            reason_type=reason,
        )
    if isinstance(error, TrytonLoginRefused):
        return JobRejected(
            JobReason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            f"{error.message}: check the user and password settings (PLEO_EXPORT_TRYTON_USER, "
            "PLEO_EXPORT_TRYTON_PASSWORD); after several failed logins Tryton also refuses "
            "the right password for a while",
        )
    if isinstance(error, TrytonDatabaseMissing):
        return JobRejected(
            JobReason.INVALID_CONFIGURATION,
            f"{error.message}: correct the database setting",
        )
    if isinstance(error, TrytonForbidden):
        return JobRejected(
            JobReason.AUTHORIZATION_FAILURE,
            f"{error.message} (while {doing}): give the user the Account and Account "
            "Administration groups in Tryton",
        )
    if isinstance(error, TrytonProtocolError):
        return JobRejected(JobReason.INVALID_CONFIGURATION, f"{error.message} (while {doing})")
    if isinstance(error, TrytonWarning):
        return ItemRejected(
            Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
            f"Tryton asks for a confirmation while {doing}: {error.message}. Confirm it by "
            "posting the draft in Tryton, or set confirm_warnings = true to let pleo-export "
            "confirm such questions",
        )
    if isinstance(error, TrytonRefused):
        reason, hint = refusal_reason(error.message)
        return ItemRejected(
            reason, f"Tryton refused {doing}: {error.message}. {settings_hint or hint}"
        )
    if isinstance(error, TrytonFault):
        return ItemRejected(
            Reason.UNEXPECTED_FAILURE,
            f"{error.message} (while {doing}); nothing was saved. See the Tryton server log",
        )
    return ItemRejected(Reason.UNEXPECTED_FAILURE, f"{error.message} (while {doing})")


def classify_foreign(error: BaseException) -> ConnectorError | None:
    """For ``Connector.classify_error``: Tryton and httpx errors that escaped on their own."""
    if isinstance(error, TrytonError):
        return to_connector_error(error, "talking to Tryton")
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TargetTemporarilyUnavailable(f"Tryton unreachable: {error}")
    if isinstance(error, httpx.TimeoutException | httpx.TransportError):
        return OutcomeUncertain(f"no complete answer from Tryton: {error}")
    return None
