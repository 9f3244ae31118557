"""Accounts and tax codes: each posting of an item resolved to the account and tax code of
the receiving system, from the settings (account and vendor maps, role accounts) and the
vendors of ``vendors_file``."""

from __future__ import annotations

from pleo_export import (
    AccountingVendor,
    ItemRejected,
    Posting,
    Role,
    VendorRef,
    format_minor,
    tax_numbers_match,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_sftp.masterdata import ListedVendors
from pleo_export_sftp.settings import SftpSettings

_VENDOR_UNKNOWN_MESSAGE = (
    "Selected vendor cannot be processed because it does not exist or is currently blocked. "
    "Please verify the vendor's status in the accounting system and try again."
)
"""Pleo's prescribed ``failureReason`` for ``vendor_unknown``."""


def payable_account(
    settings: SftpSettings, posting: Posting, listed: ListedVendors | None
) -> tuple[str, str | None]:
    """The payable account of an accounts-payable posting, and the vendor's code in
    ``vendors_file`` when that file lists the vendor (else ``None``).

    A vendor the file lists as archived fails with ``vendor_unknown`` (whatever
    ``unknown_vendor`` says: the receiving system blocks it). Otherwise the vendor's
    ``vendor_accounts`` entry wins (by Pleo's identifiers, then by the file's code, external
    id and tax number of the vendor); a vendor only the file lists is booked to
    ``accounts_payable_account``; a vendor in neither fails with ``vendor_unknown`` or goes to
    ``accounts_payable_account`` (``unknown_vendor``).
    """
    s = settings
    vendor = posting.account.vendor
    if vendor is None:
        return s.accounts_payable_account, None
    found = listed.find(vendor) if listed is not None else None
    active: list[AccountingVendor] = []
    where = listed.where if listed is not None else ""
    matched = ""
    if found is not None:
        key, value, vendors = found
        matched = f"vendor {vendor.name!r}: {key.replace('_', ' ')} {value!r}"
        active = [v for v in vendors if not v.archived]
        if not active:
            archived = vendors[0]
            raise ItemRejected(
                Reason.VENDOR_UNKNOWN,
                f"{_VENDOR_UNKNOWN_MESSAGE} ({matched} is vendor {archived.code} "
                f"({archived.name}) in {where} (setting vendors_file), which lists it "
                "as archived in the receiving system: reactivate it there and export the "
                "vendor list again, or choose another vendor for the invoice in Pleo)",
            )
    code = active[0].code if len(active) == 1 else None
    account = _vendor_account(s, vendor)
    if account is None and code is not None:
        # The same vendor under the identifiers the receiving system lists for it.
        same = active[0]
        account = _vendor_account(
            s,
            VendorRef(
                name=same.name,
                source="vendor",
                code=same.code,
                external_id=same.external_id,
                tax_number=same.tax_registration_number,
            ),
        )
    if account is not None:
        return account, code
    if len(active) > 1:
        codes = ", ".join(v.code for v in active)
        raise ItemRejected(
            Reason.VENDOR_UNKNOWN,
            f"{_VENDOR_UNKNOWN_MESSAGE} ({matched} matches several active vendors in {where} "
            f"(setting vendors_file): {codes}; give the vendor its code in Pleo (`pleo-export "
            "sync vendors`), or add it to vendor_accounts)",
        )
    if code is not None or s.unknown_vendor == "fallback":
        return s.accounts_payable_account, code
    tried = ", ".join(f"{key} {value!r}" for key, value in vendor.match_keys())
    tried = tried or "no code, external id or tax number"
    if listed is None:
        raise ItemRejected(
            Reason.VENDOR_UNKNOWN,
            f"{_VENDOR_UNKNOWN_MESSAGE} (vendor {vendor.name!r}: {tried} is not in "
            'vendor_accounts; add it there or set unknown_vendor = "fallback")',
        )
    raise ItemRejected(
        Reason.VENDOR_UNKNOWN,
        f"{_VENDOR_UNKNOWN_MESSAGE} (vendor {vendor.name!r}: {tried} is in neither "
        f"vendor_accounts nor the vendor list {where} (setting vendors_file): create "
        "the vendor in the accounting system and export its vendor list again, add it to "
        'vendor_accounts, or set unknown_vendor = "fallback")',
    )


def _vendor_account(settings: SftpSettings, vendor: VendorRef) -> str | None:
    """The ``vendor_accounts`` entry of the vendor's code, else external id, else tax number
    (by :func:`pleo_export.tax_numbers_match`)."""
    accounts = settings.vendor_accounts
    for key, value in vendor.match_keys():
        if value in accounts:
            return accounts[value]
        if key == "tax_number":
            for known, account in accounts.items():
                if tax_numbers_match(value, known):
                    return account
    return None


def tax_code_for(settings: SftpSettings, posting: Posting) -> str | None:
    """The receiving system's tax code for the posting's Pleo tax code (``tax_code_map``),
    checked against ``tax_codes``."""
    code = posting.tax_code
    if code is None:
        return None
    mapped = settings.tax_code_map.get(code, code)
    known = settings.tax_codes
    if known is not None and mapped not in known:
        where = posting.field or "the item"
        via = f" (tax_code_map[{code!r}] = {mapped})" if mapped != code else ""
        raise ItemRejected(
            Reason.TAX_CODE_UNKNOWN,
            f"{where}.tax.code {code}{via} is not among the tax codes of the receiving "
            "system (setting tax_codes): add it there, map it in tax_code_map, or change "
            "the tax code of the expense in Pleo",
        )
    return mapped


def account_for(
    settings: SftpSettings, posting: Posting, listed: ListedVendors | None = None
) -> str:
    """The receiving system's account for a posting: the mapped account code, the vendor's
    payable account (see :func:`payable_account`; ``listed`` is ``vendors_file`` as read for
    the job, ``None`` when it is not set or not there), or the account setting of its role."""
    s = settings
    ref = posting.account
    where = posting.field or "the item"
    if ref.role is Role.EXPENSE:
        code = ref.code or ref.identifier
        if not code:
            raise ItemRejected(
                Reason.ACCOUNT_UNKNOWN,
                f"{where}.account ({ref.name or 'no name'}) has no account code in Pleo: "
                "give the category an account code in Pleo or choose another category",
            )
        account = s.account_map.get(code, code)
        if s.accounts is not None and account not in s.accounts:
            mapped = f" (account_map[{code!r}] = {account})" if account != code else ""
            raise ItemRejected(
                Reason.ACCOUNT_UNKNOWN,
                f"{where}.account.code {code} ({ref.name or 'no name'}){mapped} is not among "
                "the accounts of the receiving system (setting accounts): add it there, map "
                "it in account_map, or change the category in Pleo",
            )
        return account
    if ref.role is Role.ACCOUNTS_PAYABLE:
        return payable_account(s, posting, listed)[0]
    if ref.code and ref.role in (Role.WALLET, Role.TAX_INPUT, Role.TAX_OUTPUT):
        return s.account_map.get(ref.code, ref.code)
    if ref.role in (Role.EXCHANGE_GAIN, Role.EXCHANGE_LOSS):
        gain = ref.role is Role.EXCHANGE_GAIN
        setting = s.role_setting(ref.role)
        chosen = s.role_account(ref.role)
        if chosen is None:
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"a realised exchange {'gain' if gain else 'loss'} of "
                f"{format_minor(abs(posting.amount), posting.currency)} {posting.currency} "
                "(a foreign-currency invoice paid at another rate than it was booked at) "
                f"needs an account, and {setting} is not set: set it in "
                "[connector.settings] and export again",
            )
        return chosen
    return s.require_role_account(ref.role, needed_by=posting.field or "the item")
