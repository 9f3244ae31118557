"""Accounts and tax codes: each posting of an item resolved to the account and tax code of
the receiving system, from the settings (account and vendor maps, role accounts)."""

from __future__ import annotations

from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected, Posting, Role, format_minor, tax_numbers_match
from pleo_export_sftp.settings import SftpSettings

_VENDOR_UNKNOWN_MESSAGE = (
    "Selected vendor cannot be processed because it does not exist or is currently blocked. "
    "Please verify the vendor's status in the accounting system and try again."
)
"""Pleo's prescribed ``failureReason`` for ``vendor_unknown``."""


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


def account_for(settings: SftpSettings, posting: Posting) -> str:
    """The receiving system's account for a posting: the mapped account code, the vendor's
    payable account, or the account setting of its role."""
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
        if ref.vendor is None:
            return s.accounts_payable_account
        tried = []
        for key, value in ref.vendor.match_keys():
            tried.append(f"{key} {value!r}")
            if value in s.vendor_accounts:
                return s.vendor_accounts[value]
            if key == "tax_number":
                for known, account in s.vendor_accounts.items():
                    if tax_numbers_match(value, known):
                        return account
        if s.unknown_vendor == "fallback":
            return s.accounts_payable_account
        raise ItemRejected(
            Reason.VENDOR_UNKNOWN,
            f"{_VENDOR_UNKNOWN_MESSAGE} (vendor {ref.vendor.name!r}: "
            f"{', '.join(tried) or 'no code, external id or tax number'} is not in "
            'vendor_accounts; add it there or set unknown_vendor = "fallback")',
        )
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
