"""From a Pleo export item to balanced ledger entries (step 5 of Pleo's lifecycle).

:func:`plan_item` validates one export item, resolves its bookkeeping method and builds the
balanced entries a connector will book. Any problem raises
:class:`~pleo_export.connector.ItemRejected` with a v3 failure reason type and a message that
names the field, the value and what to change.

Sign convention (Pleo does not document one; see ``docs/bookkeeping.md``): for spend types the
line amounts are what was spent, so a positive line debits its expense account and the counter
account (wallet, out-of-pocket, payable) is credited with the total; refunds, chargebacks and
cashback arrive negative and reverse that. Transfer types (top-ups, unloads, reimbursements,
invoice payments) arrive positive and move the total from one role to another, in the direction
the type and sub-type name (``SUBTYPE_DIRECTION``). An amount whose sign contradicts its type
(``AMOUNT_SIGN``) fails the item: the sign is never used to guess a direction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from pleo_export.connector import ItemRejected
from pleo_export.ledger import (
    AccountRef,
    EntryKind,
    LedgerEntry,
    Posting,
    PostingPlan,
    Role,
    VendorRef,
)
from pleo_export.money import format_minor, is_known_currency
from pleo_export.pleo.models import (
    BookkeepingMethod,
    DualMoney,
    ExportItem,
    ExportItemLine,
    ExportItemSubType,
    ExportItemType,
    ExportJob,
    TaxType,
    format_timestamp,
)
from pleo_export.pleo.models import ExportJobItemFailureReasonType as Reason

T = ExportItemType

# Spend types: lines debit their expense accounts, the counter role is credited.
SPEND_COUNTER_ROLE: dict[ExportItemType, Role] = {
    T.CARD_PURCHASE: Role.WALLET,
    T.CARD_INVOICE: Role.WALLET,
    T.ATM_WITHDRAWAL: Role.WALLET,
    T.FEE: Role.WALLET,
    T.CASHBACK: Role.WALLET,
    T.REFUND: Role.WALLET,
    T.CHARGEBACK: Role.WALLET,
    T.PERSONAL_SPEND: Role.WALLET,
    T.INVOICE: Role.ACCOUNTS_PAYABLE,
    T.OUT_OF_POCKET: Role.OUT_OF_POCKET,
    T.MILEAGE: Role.OUT_OF_POCKET,
    T.PER_DIEM: Role.OUT_OF_POCKET,
}

# Transfer types: (debited role, credited role) for a positive amount.
TRANSFER_ROLES: dict[ExportItemType, tuple[Role, Role]] = {
    T.WALLET_TOPUP: (Role.WALLET, Role.CONTRA),
    T.WALLET_UNLOAD: (Role.CONTRA, Role.WALLET),
    T.DIRECT_REIMBURSEMENT: (Role.OUT_OF_POCKET, Role.WALLET),
    T.EXTERNAL_REIMBURSEMENT: (Role.OUT_OF_POCKET, Role.CONTRA),
    T.INVOICE_PAYMENT: (Role.ACCOUNTS_PAYABLE, Role.WALLET),
}


class Sign(StrEnum):
    """The sign ``amount`` must have for a type (see ``AMOUNT_SIGN``)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    EITHER = "either"


# The sign of ``amount`` (both currencies) each type must have; any other sign fails the item
# with validation_failure. Money-back types are negative, transfers positive (their sub-type
# names the direction); a negative amount of another spend type is a credit of the lines (a
# credit note for ``invoice``), so the lines give its direction and nothing contradicts it.
AMOUNT_SIGN: dict[ExportItemType, Sign] = {
    T.CARD_PURCHASE: Sign.EITHER,
    T.CARD_INVOICE: Sign.EITHER,
    T.ATM_WITHDRAWAL: Sign.EITHER,
    T.FEE: Sign.EITHER,
    T.CASHBACK: Sign.NEGATIVE,
    T.REFUND: Sign.NEGATIVE,
    T.CHARGEBACK: Sign.NEGATIVE,
    T.PERSONAL_SPEND: Sign.EITHER,
    T.INVOICE: Sign.EITHER,
    T.OUT_OF_POCKET: Sign.EITHER,
    T.MILEAGE: Sign.EITHER,
    T.PER_DIEM: Sign.EITHER,
    T.WALLET_TOPUP: Sign.POSITIVE,
    T.WALLET_UNLOAD: Sign.POSITIVE,
    T.DIRECT_REIMBURSEMENT: Sign.POSITIVE,
    T.EXTERNAL_REIMBURSEMENT: Sign.POSITIVE,
    T.INVOICE_PAYMENT: Sign.POSITIVE,
}


class Direction(StrEnum):
    """How a sub-type turns the roles of ``TRANSFER_ROLES``."""

    AS_TYPE = "as type"
    """The type's debited and credited roles as they are (money goes out as the type names)."""
    REVERSED = "reversed"
    """Debited and credited roles swapped: the money comes back."""


S = ExportItemSubType

# Every v3 sub-type (``ExportItemSubTypeV3``): the types it belongs to and its direction.
# A transfer item with a sub-type that is not listed for its type fails the item (its direction
# would be a guess); a spend item's sub-type does not change how it is booked.
SUBTYPE_DIRECTION: dict[ExportItemSubType, tuple[frozenset[ExportItemType], Direction]] = {
    S.REIMBURSEMENT_TO_EMPLOYEE: (
        frozenset({T.DIRECT_REIMBURSEMENT, T.EXTERNAL_REIMBURSEMENT}),
        Direction.AS_TYPE,
    ),
    S.REIMBURSEMENT_TO_EMPLOYEE_REFUND: (
        frozenset({T.DIRECT_REIMBURSEMENT, T.EXTERNAL_REIMBURSEMENT}),
        Direction.REVERSED,
    ),
    S.REIMBURSEMENT_TO_COMPANY: (
        frozenset({T.DIRECT_REIMBURSEMENT, T.EXTERNAL_REIMBURSEMENT}),
        Direction.REVERSED,
    ),
    S.INVOICE_PAYMENT_SENT: (frozenset({T.INVOICE_PAYMENT}), Direction.AS_TYPE),
    S.INVOICE_PAYMENT_RETURNED: (frozenset({T.INVOICE_PAYMENT}), Direction.REVERSED),
    S.INTEREST: (frozenset({T.FEE}), Direction.AS_TYPE),
}

# Sub-types that reverse a transfer's direction (money comes back).
REVERSING_SUBTYPES = frozenset(
    sub for sub, (_, direction) in SUBTYPE_DIRECTION.items() if direction is Direction.REVERSED
)

# Balance movements that Pleo books as journal entries whatever the configuration.
ALWAYS_JOURNAL = frozenset(
    {T.WALLET_TOPUP, T.WALLET_UNLOAD, T.DIRECT_REIMBURSEMENT, T.EXTERNAL_REIMBURSEMENT}
)


@dataclass(frozen=True)
class PlanOptions:
    rounding_tolerance_per_line: int = 1
    """Largest residual (minor units, per line) between line totals and the item total that is
    booked to the rounding account instead of failing the item. Only for items whose supplier
    currency differs from the wallet currency, where conversion rounding is expected."""
    booking_timezone: str = "UTC"
    """The company's time zone: Pleo sends timestamps in UTC, and an expense paid at 00:30 in
    Copenhagen on 1 March belongs to March, not to the last day of February."""


def _reject(reason: Reason, message: str) -> ItemRejected:
    return ItemRejected(reason, message)


def _check_money(money: DualMoney, field: str, wallet_currency: str | None) -> None:
    for side, value in (
        ("inWalletCurrency", money.in_wallet_currency),
        ("inSupplierCurrency", money.in_supplier_currency),
    ):
        if not is_known_currency(value.currency):
            raise _reject(
                Reason.VALIDATION_FAILURE,
                f"{field}.{side}.currency is {value.currency!r}, which is not a bookable ISO "
                "4217 currency: correct the currency of the expense in Pleo",
            )
    wallet = money.in_wallet_currency.currency
    if wallet_currency is not None and wallet != wallet_currency:
        raise _reject(
            Reason.VALIDATION_FAILURE,
            f"{field}.inWalletCurrency.currency is {wallet} but the item total is in "
            f"{wallet_currency}: all lines of one expense must be in the wallet currency",
        )


def check_amount_sign(item: ExportItem, item_type: ExportItemType) -> None:
    """Fail ``item`` when the sign of ``amount`` contradicts its type (``AMOUNT_SIGN``)."""
    expected = AMOUNT_SIGN[item_type]
    if expected is Sign.EITHER:
        return
    for side, value in (
        ("inWalletCurrency", item.amount.in_wallet_currency.value),
        ("inSupplierCurrency", item.amount.in_supplier_currency.value),
    ):
        if value == 0 or (value > 0) == (expected is Sign.POSITIVE):
            continue
        if expected is Sign.NEGATIVE:
            why = (
                f"{item_type.value} is money coming back and must be negative; a positive "
                "amount would book it as spend"
            )
        else:
            why = (
                f"{item_type.value} must be positive; its direction comes from the type and "
                "subType, not from the sign"
            )
        raise _reject(
            Reason.VALIDATION_FAILURE,
            f"amount.{side}.value is {value} for type {item_type.value}: {why}; pleo-export "
            "does not guess which way to book it, so check the expense in Pleo and export it "
            "again",
        )


def transfer_direction(item: ExportItem, item_type: ExportItemType) -> Direction:
    """The direction of a transfer item's sub-type (``SUBTYPE_DIRECTION``); fails the item
    when the sub-type is unknown or belongs to other types."""
    if item.sub_type is None:
        return Direction.AS_TYPE
    try:
        sub_type = ExportItemSubType(item.sub_type)
    except ValueError:
        sub_type = None
    if sub_type is not None:
        types, direction = SUBTYPE_DIRECTION[sub_type]
        if item_type in types:
            return direction
    allowed = sorted(s.value for s, (types, _) in SUBTYPE_DIRECTION.items() if item_type in types)
    raise _reject(
        Reason.VALIDATION_FAILURE,
        f"subType is {item.sub_type!r} for type {item_type.value}, which pleo-export cannot tell "
        f"the direction of (expected none or one of {', '.join(allowed)}): it does not guess; "
        "check the expense in Pleo or upgrade pleo-export",
    )


def resolve_method(item: ExportItem, job: ExportJob) -> tuple[BookkeepingMethod, str]:
    """Pick the bookkeeping method for ``item`` and say why."""
    item_type = ExportItemType(item.type)
    if item_type in ALWAYS_JOURNAL:
        return BookkeepingMethod.JOURNAL, f"always journal for {item_type.value}"
    if item.bookkeeping is None:
        if job.vendor_based_bookkeeping and item.supplier is not None:
            return BookkeepingMethod.ACCOUNTS_PAYABLE, "legacy: no bookkeeping, supplier present"
        return BookkeepingMethod.JOURNAL, "no bookkeeping object: journal"
    try:
        method = BookkeepingMethod(item.bookkeeping.method)
    except ValueError:
        raise _reject(
            Reason.VALIDATION_FAILURE,
            f"bookkeeping.method is {item.bookkeeping.method!r}; expected one of journal, "
            "accounts_payable, none: check the vendor settings of the expense in Pleo",
        ) from None
    if method is BookkeepingMethod.NONE:
        return BookkeepingMethod.JOURNAL, "bookkeeping.method none: journal"
    return method, "bookkeeping.method"


def resolve_vendor(item: ExportItem) -> VendorRef | None:
    """The vendor to book against: Pleo's ``vendor`` object, else the legacy ``supplier``."""
    if item.vendor is not None:
        v = item.vendor
        return VendorRef(
            name=v.name,
            source="vendor",
            code=v.code,
            external_id=v.external_id,
            tax_number=v.tax_registration_number,
            default_currency=v.default_currency,
        )
    if item.supplier is not None and (
        item.supplier.code or item.supplier.account or item.supplier.tax_identifier
    ):
        s = item.supplier
        return VendorRef(
            name=s.name or s.code or "unnamed supplier",
            source="supplier",
            code=s.code,
            external_id=s.account,
            tax_number=s.tax_identifier,
        )
    return None


def invoice_date(item: ExportItem) -> dt.date | None:
    """The supplier's invoice date, ``additionalInformation.invoiceInformation.invoiceDate``.

    Pleo documents the field as a date (pattern ``YYYY-MM-DD``) sent as a date-time; the
    calendar date as written is used, never shifted into the booking time zone. ``None`` when
    the item carries no invoice information.
    """
    info = item.additional_information.invoice_information
    if info is None or info.invoice_date is None:
        return None
    return info.invoice_date.date()


def narration(item: ExportItem) -> str:
    parts = [
        item.supplier.name if item.supplier and item.supplier.name else None,
        item.user.name if item.user else None,
        item.note,
    ]
    text = " / ".join(p.strip() for p in parts if p and p.strip())
    return text or item.type.replace("_", " ")


def _check_exclusive(line: ExportItemLine, field: str, tolerance: int) -> None:
    """``netAmount + tax.amount`` must be ``lineAmount`` (within ``tolerance``) in both
    currencies for an ``exclusive`` tax line: Pleo's figures must agree before any is booked."""
    assert line.tax is not None
    for side, net, tax, gross in (
        (
            "inWalletCurrency",
            line.net_amount.in_wallet_currency,
            line.tax.amount.in_wallet_currency,
            line.line_amount.in_wallet_currency,
        ),
        (
            "inSupplierCurrency",
            line.net_amount.in_supplier_currency,
            line.tax.amount.in_supplier_currency,
            line.line_amount.in_supplier_currency,
        ),
    ):
        if abs(net.value + tax.value - gross.value) <= tolerance:
            continue
        currency = gross.currency
        raise _reject(
            Reason.VALIDATION_FAILURE,
            f"{field}.netAmount.{side} ({format_minor(net.value, currency)}) + "
            f"{field}.tax.amount.{side} ({format_minor(tax.value, currency)}) is "
            f"{format_minor(net.value + tax.value, currency)} {currency}, but "
            f"{field}.lineAmount.{side} is {format_minor(gross.value, currency)} {currency}: "
            "Pleo's figures for this exclusive tax line disagree; correct the amount or the tax "
            "code of the expense in Pleo",
        )


def _line_postings(item: ExportItem, wallet_currency: str, options: PlanOptions) -> list[Posting]:
    """Debit postings for the lines of a spend item: expense (net of VAT) and VAT."""
    postings: list[Posting] = []
    seen_ids: set[str] = set()
    for index, line in enumerate(item.accounting_entry_lines):
        field = f"accountingEntryLines[{index}]"
        if line.accounting_entry_line_id in seen_ids:
            raise _reject(
                Reason.VALIDATION_FAILURE,
                f"{field}.accountingEntryLineId {line.accounting_entry_line_id} appears twice "
                "in the same item: Pleo must send each line once; re-queue the expense",
            )
        seen_ids.add(line.accounting_entry_line_id)
        _check_money(line.line_amount, f"{field}.lineAmount", wallet_currency)
        if line.account is None:
            raise _reject(
                Reason.MISSING_CONFIGURATION,
                f"{field}.account is missing: the expense has no category; set a category "
                "(account) on it in Pleo and export it again",
            )
        gross = line.line_amount.in_wallet_currency.value
        gross_supplier = line.line_amount.in_supplier_currency.value
        supplier_currency = line.line_amount.in_supplier_currency.currency
        expense = AccountRef(
            role=Role.EXPENSE,
            code=line.account.code,
            name=line.account.name,
            identifier=line.account.identifier,
        )
        tags = tuple(line.tags or ())
        if line.tax is None:
            postings.append(
                Posting(
                    account=expense,
                    amount=gross,
                    currency=wallet_currency,
                    supplier_amount=gross_supplier,
                    supplier_currency=supplier_currency,
                    tags=tags,
                    line_id=line.accounting_entry_line_id,
                    field=field,
                )
            )
            continue
        tax = line.tax
        _check_money(tax.amount, f"{field}.tax.amount", wallet_currency)
        try:
            tax_type = TaxType(tax.type)
        except ValueError:
            raise _reject(
                Reason.VALIDATION_FAILURE,
                f"{field}.tax.type is {tax.type!r}; expected inclusive, exclusive or reverse: "
                "check the tax code in Pleo",
            ) from None
        tax_wallet = tax.amount.in_wallet_currency.value
        tax_supplier = tax.amount.in_supplier_currency.value
        if tax_type is TaxType.EXCLUSIVE:
            _check_exclusive(line, field, options.rounding_tolerance_per_line)
        if tax_wallet != 0 and gross != 0 and (tax_wallet > 0) != (gross > 0):
            raise _reject(
                Reason.VALIDATION_FAILURE,
                f"{field}.tax.amount is {tax_wallet} but the line amount is {gross}: VAT "
                "must have the same sign as the line; check the tax code on the expense",
            )
        if tax_type is not TaxType.REVERSE and abs(tax_wallet) > abs(gross):
            raise _reject(
                Reason.VALIDATION_FAILURE,
                f"{field}.tax.amount ({tax_wallet}) is larger than the line amount ({gross}): "
                "check the tax code and rate on the expense in Pleo",
            )
        common = {
            "currency": wallet_currency,
            "supplier_currency": supplier_currency,
            "tax_code": tax.code,
            "tax_rate": tax.rate,
            "tax_type": tax_type.value,
            "tags": tags,
            "line_id": line.accounting_entry_line_id,
            "field": field,
        }
        base = gross if tax_type is TaxType.REVERSE else gross - tax_wallet
        base_supplier = (
            gross_supplier if tax_type is TaxType.REVERSE else gross_supplier - tax_supplier
        )
        postings.append(
            Posting(account=expense, amount=base, supplier_amount=base_supplier, **common)
        )
        vat_in = AccountRef(role=Role.TAX_INPUT, code=tax.ingoing_tax_account)
        postings.append(
            Posting(account=vat_in, amount=tax_wallet, supplier_amount=tax_supplier, **common)
        )
        if tax_type is TaxType.REVERSE:
            vat_out = AccountRef(role=Role.TAX_OUTPUT, code=tax.outgoing_tax_account)
            postings.append(
                Posting(
                    account=vat_out, amount=-tax_wallet, supplier_amount=-tax_supplier, **common
                )
            )
    return postings


def _counter_ref(role: Role, item: ExportItem, vendor: VendorRef | None) -> AccountRef:
    if role is Role.WALLET and item.contra_account is not None:
        c = item.contra_account
        return AccountRef(role=role, code=c.code, name=c.name, identifier=c.identifier)
    if role is Role.ACCOUNTS_PAYABLE:
        return AccountRef(role=role, vendor=vendor)
    return AccountRef(role=role)


def _posting(ref: AccountRef, amount: int, supplier: int, item: ExportItem) -> Posting:
    return Posting(
        account=ref,
        amount=amount,
        currency=item.amount.in_wallet_currency.currency,
        supplier_amount=supplier,
        supplier_currency=item.amount.in_supplier_currency.currency,
        field="amount",
    )


def plan_item(item: ExportItem, job: ExportJob, options: PlanOptions | None = None) -> PostingPlan:
    """Validate ``item`` and build its balanced entries; raise ``ItemRejected`` if it cannot."""
    options = options or PlanOptions()
    try:
        item_type = ExportItemType(item.type)
    except ValueError:
        raise _reject(
            Reason.VALIDATION_FAILURE,
            f"type is {item.type!r}, which this version of pleo-export does not know how to "
            "book: upgrade pleo-export or exclude the expense from the export",
        ) from None
    _check_money(item.amount, "amount", None)
    wallet_currency = item.amount.in_wallet_currency.currency
    total = item.amount.in_wallet_currency.value
    total_supplier = item.amount.in_supplier_currency.value
    if total == 0:
        raise _reject(
            Reason.VALIDATION_FAILURE,
            "amount.inWalletCurrency.value is 0: there is nothing to book; correct the amount "
            "in Pleo or leave the expense out of the export",
        )
    check_amount_sign(item, item_type)
    method, method_source = resolve_method(item, job)
    vendor = resolve_vendor(item)
    if method is BookkeepingMethod.ACCOUNTS_PAYABLE and vendor is None:
        raise _reject(
            Reason.VENDOR_UNKNOWN,
            "bookkeeping.method is accounts_payable but the item has neither vendor nor "
            "supplier identifiers: select a vendor on the expense in Pleo and export it again",
        )
    try:
        date = item.date.astimezone(ZoneInfo(options.booking_timezone)).date()
    except OverflowError:  # 9999-12-31T23:00Z east of UTC, 0001-01-01T00:00Z west of it
        raise _reject(
            Reason.VALIDATION_FAILURE,
            f"date {format_timestamp(item.date)} falls outside the calendar in the booking time "
            f"zone {options.booking_timezone}: correct the date of the expense in Pleo",
        ) from None
    text = narration(item)
    document_date = invoice_date(item) or date

    if item_type in TRANSFER_ROLES:
        debit_role, credit_role = TRANSFER_ROLES[item_type]
        if transfer_direction(item, item_type) is Direction.REVERSED:
            debit_role, credit_role = credit_role, debit_role
        debit = _counter_ref(debit_role, item, vendor)
        credit = _counter_ref(credit_role, item, vendor)
        kind = EntryKind.JOURNAL
        if item_type is T.INVOICE_PAYMENT and method is BookkeepingMethod.ACCOUNTS_PAYABLE:
            kind = EntryKind.AP_PAYMENT
        entry = LedgerEntry(
            kind=kind,
            date=date,
            narration=text,
            postings=(
                _posting(debit, total, total_supplier, item),
                _posting(credit, -total, -total_supplier, item),
            ),
        )
        return _plan(item, job, method, method_source, vendor, (entry,))

    if not item.accounting_entry_lines:
        raise _reject(
            Reason.VALIDATION_FAILURE,
            "accountingEntryLines is empty: a spend item needs at least one line with an "
            "account; re-queue the expense in Pleo",
        )
    lines = _line_postings(item, wallet_currency, options)
    line_total = sum(
        line.line_amount.in_wallet_currency.value for line in item.accounting_entry_lines
    )
    residual = total - line_total
    if residual:
        multi_currency = item.amount.in_supplier_currency.currency != wallet_currency
        tolerance = options.rounding_tolerance_per_line * len(item.accounting_entry_lines)
        if not multi_currency or abs(residual) > tolerance:
            raise _reject(
                Reason.VALIDATION_FAILURE,
                f"accountingEntryLines sum to {format_minor(line_total, wallet_currency)} "
                f"{wallet_currency} but amount.inWalletCurrency is "
                f"{format_minor(total, wallet_currency)} {wallet_currency}: the lines must add "
                "up to the total; correct the split of the expense in Pleo",
            )
        lines.append(
            Posting(
                account=AccountRef(role=Role.ROUNDING),
                amount=residual,
                currency=wallet_currency,
                supplier_amount=0,
                supplier_currency=item.amount.in_supplier_currency.currency,
                field="amount",
            )
        )

    counter_role = SPEND_COUNTER_ROLE[item_type]
    if method is BookkeepingMethod.JOURNAL:
        counter = _counter_ref(counter_role, item, vendor)
        entry = LedgerEntry(
            kind=EntryKind.JOURNAL,
            date=document_date if item_type is T.INVOICE else date,
            narration=text,
            postings=(*lines, _posting(counter, -total, -total_supplier, item)),
        )
        return _plan(item, job, method, method_source, vendor, (entry,))

    # Accounts payable: an invoice (or a credit note when money comes back) against the
    # vendor, then, unless the item is itself an invoice, the payment that settles it.
    payable = _counter_ref(Role.ACCOUNTS_PAYABLE, item, vendor)
    document = LedgerEntry(
        kind=EntryKind.AP_INVOICE if total > 0 else EntryKind.AP_CREDIT_NOTE,
        date=document_date,
        narration=text,
        postings=(*lines, _posting(payable, -total, -total_supplier, item)),
    )
    entries: Sequence[LedgerEntry] = (document,)
    if counter_role is not Role.ACCOUNTS_PAYABLE:
        settle_from = _counter_ref(counter_role, item, vendor)
        payment = LedgerEntry(
            kind=EntryKind.AP_PAYMENT,
            date=date,
            narration=text,
            postings=(
                _posting(payable, total, total_supplier, item),
                _posting(settle_from, -total, -total_supplier, item),
            ),
        )
        entries = (document, payment)
    return _plan(item, job, method, method_source, vendor, tuple(entries))


def _plan(
    item: ExportItem,
    job: ExportJob,
    method: BookkeepingMethod,
    method_source: str,
    vendor: VendorRef | None,
    entries: tuple[LedgerEntry, ...],
) -> PostingPlan:
    for entry in entries:
        if entry.balance != 0:  # a bug in this module, never a property of the input
            raise AssertionError(f"unbalanced entry built for {item.accounting_entry_id}")
    return PostingPlan(
        job=job,
        item=item,
        method=method,
        method_source=method_source,
        reference=item.accounting_entry_id,
        reconciliation_id=item.additional_information.reconciliation_id,
        entries=entries,
        vendor=vendor,
        attachments=tuple(item.files or ()),
    )
