"""Resolve the roles of a posting plan to beancount accounts of the ledger's chart.

Order of precedence, per role:

* ``expense``: ``account_map[code]``, else the account whose ``open`` carries
  ``pleo-code: "<code>"``; nothing found fails the item with ``account_unknown``.
* ``wallet``, ``tax_input``, ``tax_output``: the same lookup on the code Pleo sent
  (``contraAccount.code`` or the tax line's ingoing/outgoing tax account), else the configured
  ``wallet_account`` / ``vat_input_account`` / ``vat_output_account``.
* ``accounts_payable`` with a vendor: the account whose ``open`` carries ``vendor-code``, then
  ``vendor-external-id``, then ``vendor-tax-number``; nothing found applies ``unknown_vendor``.
* every other role: its configured account.

Every account must be open on the booking date and accept the wallet currency.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export import ItemRejected, Posting, Role, VendorRef, format_minor
from pleo_export_beancount.chart import PLEO_CODE, VENDOR_KEYS, Chart, LedgerAccount
from pleo_export_beancount.settings import BeancountSettings

VENDOR_UNKNOWN_MESSAGE = (
    "Selected vendor cannot be processed because it does not exist or is currently blocked. "
    "Please verify the vendor's status in the accounting system and try again."
)
"""Pleo's prescribed ``failureReason`` for ``vendor_unknown`` (processing guide, step 5)."""

ROLE_SETTINGS: Mapping[Role, str] = BeancountSettings.ROLE_FIELDS
"""The setting that names the configured account of each role (all but ``expense``)."""

OPTIONAL_ROLE_SETTINGS = frozenset({"exchange_gain_account", "exchange_loss_account"})
"""Settings without a default: checked when set, required only by an item that needs them."""

_CODED_ROLES = frozenset({Role.EXPENSE, Role.WALLET, Role.TAX_INPUT, Role.TAX_OUTPUT})


def _field(posting: Posting) -> str:
    where = posting.field or "the item"
    if posting.account.role in (Role.TAX_INPUT, Role.TAX_OUTPUT):
        return f"{where}.tax"
    if posting.account.role is Role.WALLET and posting.account.code:
        return "contraAccount"
    return where


class Resolver:
    """Maps postings to ledger accounts for one item; raises :class:`ItemRejected`."""

    def __init__(
        self,
        settings: BeancountSettings,
        chart: Chart,
        ledger: Path,
        logger: logging.Logger,
    ) -> None:
        self.settings = settings
        self.chart = chart
        self.ledger = ledger
        self.logger = logger

    def resolve(self, posting: Posting, day: date) -> str:
        """The beancount account for ``posting`` booked on ``day``."""
        ref = posting.account
        if ref.role is Role.ACCOUNTS_PAYABLE and ref.vendor is not None:
            return self._vendor(posting, ref.vendor, day)
        if ref.role in _CODED_ROLES:
            found = self._by_code(posting, day)
            if found is not None:
                return found
            if ref.role is Role.EXPENSE:
                raise self._expense_unknown(posting)
        return self._configured(posting, day)

    # --- lookups --------------------------------------------------------------------------

    def _describe(self, posting: Posting) -> str:
        ref = posting.account
        label = "account" if ref.role is Role.EXPENSE else f"{ref.role.value} account"
        code = ref.code or ref.identifier
        text = f"{label} {code}" if code else label
        if ref.name:
            text += f" ({ref.name})"
        return f"{text} on {_field(posting)}"

    def _by_code(self, posting: Posting, day: date) -> str | None:
        ref = posting.account
        keys = [k for k in dict.fromkeys((ref.code, ref.identifier)) if k]
        for key in keys:
            mapped = self.settings.account_map.get(key)
            if mapped is not None:
                account = self.chart.get(mapped)
                what = f"{self._describe(posting)} (account_map[{key!r}] = {mapped})"
                if account is None:
                    raise ItemRejected(
                        Reason.ACCOUNT_UNKNOWN,
                        f"{what} does not exist in the ledger {self.ledger}: add "
                        f"`{day.isoformat()} open {mapped}` or correct account_map",
                    )
                self._check_usable(account, posting, day, what)
                return mapped
            candidates = self.chart.with_code(key)
            if not candidates:
                continue
            active = [a for a in candidates if a.active_on(day)]
            what = self._describe(posting)
            if len(active) > 1:
                names = ", ".join(a.name for a in active)
                raise ItemRejected(
                    Reason.INVALID_CONFIGURATION,
                    f"{what}: {PLEO_CODE} {key} is on several accounts open on "
                    f"{day.isoformat()} in the ledger {self.ledger} ({names}): keep it on one",
                )
            self._check_usable(active[0] if active else candidates[0], posting, day, what)
            return (active[0] if active else candidates[0]).name
        return None

    def _expense_unknown(self, posting: Posting) -> ItemRejected:
        ref = posting.account
        code = ref.code or ref.identifier
        if not code:
            return ItemRejected(
                Reason.ACCOUNT_UNKNOWN,
                f"{self._describe(posting)} has no account code in Pleo, so it cannot be "
                f"found in the ledger {self.ledger}: give the category an account code in "
                "Pleo or choose another category",
            )
        return ItemRejected(
            Reason.ACCOUNT_UNKNOWN,
            f"{self._describe(posting)} does not exist in the ledger {self.ledger}: add "
            f'`open` for it with {PLEO_CODE}: "{code}" (or map {code} in account_map) or '
            "change the category in Pleo",
        )

    def _configured(self, posting: Posting, day: date) -> str:
        setting = self.settings.role_setting(posting.account.role)
        name = self.settings.role_account(posting.account.role)
        if name is None:
            kind = posting.account.role.value.replace("_", " ")
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"a realised {kind} of {format_minor(abs(posting.amount), posting.currency)} "
                f"{posting.currency} (a foreign-currency invoice paid at another rate than it "
                f"was booked at) needs an account, and {setting} is not set: set it in "
                f"[connector.settings] to an account opened in the ledger {self.ledger} and "
                "export again",
            )
        account = self.chart.get(name)
        what = f"{posting.account.role.value} account {name} (setting {setting})"
        if account is None:
            raise ItemRejected(
                Reason.ACCOUNT_UNKNOWN,
                f"{what} does not exist in the ledger {self.ledger}: add "
                f"`{day.isoformat()} open {name}` to it or change {setting}",
            )
        self._check_usable(account, posting, day, what)
        return name

    def _vendor(self, posting: Posting, vendor: VendorRef, day: date) -> str:
        tried: list[str] = []
        for field_name, value in vendor.match_keys():
            key = VENDOR_KEYS[field_name]
            tried.append(f'{key}: "{value}"')
            candidates = self.chart.for_vendor(field_name, value)
            if not candidates:
                continue
            active = [a for a in candidates if a.active_on(day)]
            if len(active) > 1:
                names = ", ".join(a.name for a in active)
                raise ItemRejected(
                    Reason.INVALID_CONFIGURATION,
                    f"vendor {vendor.name!r}: {key} {value!r} is on several accounts open on "
                    f"{day.isoformat()} in the ledger {self.ledger} ({names}): keep it on one",
                )
            if not active:
                account = candidates[0]
                raise ItemRejected(
                    Reason.VENDOR_UNKNOWN,
                    f"{VENDOR_UNKNOWN_MESSAGE} (vendor {vendor.name!r}: {key} {value!r} "
                    f"matches {account.name}, which is not open on {day.isoformat()}: "
                    f"{self._interval(account)} at {account.where()})",
                )
            self._check_usable(active[0], posting, day, f"vendor {vendor.name!r} account")
            return active[0].name
        if self.settings.unknown_vendor == "fallback":
            self.logger.info(
                "vendor %r matches no account (%s): booking to the fallback payable account "
                "%s (unknown_vendor = fallback)",
                vendor.name,
                ", ".join(tried) or "no identifiers",
                self.settings.accounts_payable_account,
            )
            return self._configured(posting, day)
        if tried:
            detail = (
                f"no `open` directive in the ledger {self.ledger} carries {' or '.join(tried)}: "
                "add the identifier to the vendor's payable account, correct the vendor in "
                'Pleo, or set unknown_vendor = "fallback"'
            )
        else:
            detail = (
                "the vendor has no code, external id or tax number in Pleo to match on: add "
                'one in Pleo, or set unknown_vendor = "fallback"'
            )
        raise ItemRejected(
            Reason.VENDOR_UNKNOWN,
            f"{VENDOR_UNKNOWN_MESSAGE} (vendor {vendor.name!r}: {detail})",
        )

    # --- checks ---------------------------------------------------------------------------

    @staticmethod
    def _interval(account: LedgerAccount) -> str:
        text = f"opened {account.opened.isoformat()}"
        if account.closed is not None:
            text += f", closed {account.closed.isoformat()}"
        return text

    def _check_usable(self, account: LedgerAccount, posting: Posting, day: date, what: str) -> None:
        if not account.active_on(day):
            if day < account.opened:
                change = f"move its open date to {day.isoformat()} or earlier"
            else:
                change = "remove its close directive"
            raise ItemRejected(
                Reason.ACCOUNT_UNKNOWN,
                f"{what} maps to {account.name}, which is not open on {day.isoformat()} in the "
                f"ledger {self.ledger} ({self._interval(account)} at {account.where()}): "
                f"{change}, or change the account in Pleo",
            )
        if not account.accepts(posting.currency):
            allowed = ", ".join(account.currencies)
            raise ItemRejected(
                Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                f"{what} maps to {account.name}, whose `open` directive at {account.where()} "
                f"only allows {allowed} but the entry is in {posting.currency}: add "
                f"{posting.currency} to the directive or book this currency elsewhere",
            )
