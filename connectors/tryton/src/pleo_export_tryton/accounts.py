"""Resolving an item against the Tryton books: the vendor's party, each posting's account
(expense, counter, VAT, exchange, payable) and tax."""

from __future__ import annotations

from pleo_export import BookkeepingMethod, ExportItemType, ItemRejected, Posting, PostingPlan, Role
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_tryton.base import Resolved, TrytonBase
from pleo_export_tryton.books import Account, Party, Tax, to_amount

_COUNTER_ROLES = frozenset({Role.WALLET, Role.OUT_OF_POCKET, Role.CONTRA})


class TrytonAccounts(TrytonBase):
    """Parties, accounts and taxes for the postings of an item."""

    async def _party(self, plan: PostingPlan) -> Party | None:
        _, books = self._require()
        if plan.vendor is None:
            return None
        party = await books.vendor_party(plan.vendor)
        if party is None and plan.method is BookkeepingMethod.ACCOUNTS_PAYABLE:
            raise ItemRejected(Reason.VENDOR_UNKNOWN, self._vendor_unknown(plan))
        if party is not None:
            self.log.debug(
                "item %s: vendor %s is Tryton party %s (matched on %s)",
                plan.reference,
                plan.vendor.name,
                party.id,
                party.matched_on,
                extra={"accounting_entry_id": plan.reference, "tryton_party": party.id},
            )
        return party

    async def _resolve(self, plan: PostingPlan, posting: Posting, party: Party | None) -> Resolved:
        _, books = self._require()
        s = self.settings
        company = books.company
        ref = posting.account
        role = ref.role
        field = posting.field or "amount"
        item_type = _item_type(plan)
        tax = (
            await self._tax(posting)
            if role in (Role.EXPENSE, Role.TAX_INPUT, Role.TAX_OUTPUT)
            else None
        )

        async def by_code(code: str, where: str) -> Account:
            tryton_code = s.account_code(code)
            account = await books.account(tryton_code)
            shown = code if tryton_code == code else f"{code} (Tryton {tryton_code})"
            if account is None:
                raise ItemRejected(
                    Reason.ACCOUNT_UNKNOWN,
                    f"{where} {shown}{_named(ref.name)} does not exist in Tryton company "
                    f"{company.name}: create the account in Tryton, map it in account_map, or "
                    "change the category in Pleo",
                )
            if not account.postable:
                raise ItemRejected(
                    Reason.ACCOUNT_UNKNOWN,
                    f"{where} {shown} is account {account.label} in Tryton, which is closed or "
                    "a view account: open it in Tryton or change the category in Pleo",
                )
            return account

        async def by_setting(code: str, setting: str) -> Account:
            account = await books.account(code)
            if account is None or not account.postable:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"account {code} (setting {setting}) does not exist or cannot be booked on in "
                    f"Tryton company {company.name}: correct the setting",
                )
            return account

        account: Account
        by_role: dict[str, str] = {}
        if item_type is not None:
            by_role = {str(k): v for k, v in s.counter_accounts.get(item_type, {}).items()}
        override = by_role.get(role.value)
        if role is Role.EXPENSE:
            if not ref.code:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"{field}.account has no code: set a category with an account code on the "
                    "expense in Pleo",
                )
            account = await by_code(ref.code, f"{field}.account.code")
        elif role in _COUNTER_ROLES and override:
            account = await by_setting(override, f"counter_accounts.{item_type}.{role.value}")
        elif role is Role.WALLET:
            if ref.code:
                account = await by_code(ref.code, "contraAccount.code")
            elif s.wallet_account:
                account = await by_setting(s.wallet_account, "wallet_account")
            else:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    "the item has no contraAccount and the wallet_account setting is empty: map "
                    "the Pleo wallet account in Pleo's accounting settings or set wallet_account",
                )
        elif role is Role.OUT_OF_POCKET:
            account = await by_setting(s.out_of_pocket_account, "out_of_pocket_account")
        elif role is Role.CONTRA:
            account = await by_setting(s.contra_account, "contra_account")
        elif role is Role.ROUNDING:
            account = await by_setting(s.rounding_account, "rounding_account")
        elif role is Role.TAX_INPUT:
            if ref.code:
                account = await by_code(ref.code, f"{field}.tax.ingoingTaxAccount")
            elif tax is not None and (tax.invoice_account or tax.credit_note_account):
                tax_account = (
                    (tax.credit_note_account if posting.amount < 0 else tax.invoice_account)
                    or tax.invoice_account
                    or tax.credit_note_account
                )
                found = await books.account_by_id(int(tax_account or 0))
                if found is None:
                    raise ItemRejected(
                        Reason.MISSING_CONFIGURATION,
                        f"Tryton tax {tax.name} names no usable account: set its invoice account",
                    )
                account = found
            elif s.vat_input_account:
                account = await by_setting(s.vat_input_account, "vat_input_account")
            else:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"{field}.tax has no ingoingTaxAccount and no Tryton tax gives one: map the "
                    "VAT accounts of the tax code in Pleo, or set vat_input_account",
                )
        elif role is Role.TAX_OUTPUT:
            if ref.code:
                account = await by_code(ref.code, f"{field}.tax.outgoingTaxAccount")
            elif s.vat_output_account:
                account = await by_setting(s.vat_output_account, "vat_output_account")
            else:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"{field}.tax is reverse charge but has no outgoingTaxAccount: map it on "
                    "the tax code in Pleo, or set vat_output_account",
                )
        elif role in (Role.EXCHANGE_GAIN, Role.EXCHANGE_LOSS):
            account = await self._exchange_account(posting)
        else:  # Role.ACCOUNTS_PAYABLE
            account = await self._payable(party, posting)
        line_party: int | None = None
        if account.party_required:
            if party is None:
                if role is Role.ACCOUNTS_PAYABLE:
                    raise ItemRejected(Reason.VENDOR_UNKNOWN, self._vendor_unknown(plan))
                raise ItemRejected(
                    Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
                    f"account {account.label} ({role.value}) requires a party in Tryton but the "
                    "item names no vendor: uncheck Party Required on the account or book the "
                    "role to another account",
                )
            line_party = party.id
        return Resolved(posting=posting, account=account, party=line_party, tax=tax)

    async def _exchange_account(self, posting: Posting) -> Account:
        """The exchange gain or loss account: the setting, else Tryton's configuration."""
        _, books = self._require()
        gain = posting.account.role is Role.EXCHANGE_GAIN
        setting = "exchange_gain_account" if gain else "exchange_loss_account"
        code = self.settings.exchange_gain_account if gain else self.settings.exchange_loss_account
        what = "gain" if gain else "loss"
        if code is not None:
            account = await books.account(code)
            if account is None or not account.postable:
                raise ItemRejected(
                    Reason.MISSING_CONFIGURATION,
                    f"account {code} (setting {setting}) does not exist or cannot be booked on "
                    f"in Tryton company {books.company.name}: correct the setting",
                )
            return account
        credit, debit = await books.exchange_accounts()
        configured = credit if gain else debit
        found = await books.account_by_id(configured) if configured is not None else None
        if found is None or not found.postable:
            field_name = "Credit" if gain else "Debit"
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"a realised exchange {what} of "
                f"{to_amount(abs(posting.amount), books.company.digits)} {posting.currency} (a "
                "foreign-currency invoice paid at another rate than it was booked at) needs an "
                f"account: set the Currency Exchange {field_name} Account in Tryton's accounting "
                f"configuration, or {setting} in [connector.settings], and export again",
            )
        return found

    async def _payable(self, party: Party | None, posting: Posting) -> Account:
        _, books = self._require()
        s = self.settings
        account_id: int | None = party.payable_account if party is not None else None
        account: Account | None = None
        if account_id is not None:
            account = await books.account_by_id(account_id)
        elif party is None and s.payable_account:
            account = await books.account(s.payable_account)
        if account is None:
            default = await books.default_payable()
            account = await books.account_by_id(default) if default is not None else None
        if account is None or not account.postable:
            who = f"vendor {party.name}" if party is not None else "items without a vendor"
            raise ItemRejected(
                Reason.MISSING_CONFIGURATION,
                f"there is no usable payable account for {who} ({posting.field}): set the "
                "party's payable account, a default payable account in Tryton's accounting "
                "configuration, or the payable_account setting",
            )
        return account

    async def _tax(self, posting: Posting) -> Tax | None:
        _, books = self._require()
        code = posting.tax_code
        if not code:
            return None
        name = self.settings.tax_map.get(code, code)
        tax = await books.tax(name)
        if tax is None:
            shown = f"{code!r}" + (f" (Tryton tax {name!r})" if name != code else "")
            raise ItemRejected(
                Reason.TAX_CODE_UNKNOWN,
                f"{posting.field}.tax.code {shown} has no tax of that name in Tryton company "
                f"{books.company.name}: create the tax in Tryton, map the code in tax_map, or "
                "change the tax code on the expense in Pleo",
            )
        return tax


def _item_type(plan: PostingPlan) -> ExportItemType | None:
    try:
        return ExportItemType(plan.item.type)
    except ValueError:
        return None


def _named(name: str | None) -> str:
    return f" ({name})" if name else ""
