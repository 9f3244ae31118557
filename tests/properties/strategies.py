"""Hypothesis strategies: Pleo export items (``ExportItemV3`` wire dicts) with hostile values.

:func:`jobs` draws a whole export job: its settings (vendor-based bookkeeping, the company's
booking time zone) and 40 to 60 items. Each item starts as a well-formed item of one of the
17 types, built the way Pleo builds them (lines that add up to the total, tax that fits the
tax type, accounts and vendors the test target knows), and then gets zero, one or two
*hostile* changes from :data:`HOSTILE`, each of which keeps the item valid against the
OpenAPI schema: missing accounts, lines that do not add up, zero, negative and huge amounts,
currencies Pleo's enum allows but nobody can book, wallet and supplier currency mixes, unicode
and very long text, duplicate line ids, unknown types, methods and tax types, and more.

Every drawn item comes with the outcome it must have (:class:`Expect`): a clean item and an item
with one benign change must be exported; an item with one harmful change must fail with exactly
the reason type that change calls for; an item with two changes may end either way, but must
still end ``successful`` or ``failed`` with a typed reason. :func:`invalid_jobs` does the same
with items that break the schema on purpose, one violation each.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from pleo_export.bookkeeping import (
    ALWAYS_JOURNAL,
    AMOUNT_SIGN,
    SPEND_COUNTER_ROLE,
    SUBTYPE_DIRECTION,
    TRANSFER_ROLES,
    Sign,
)
from pleo_export.pleo.models import ExportItemType
from pleo_export_sandbox import DEMO_CHART

T = ExportItemType
COMPANY_ID = "5c1e2b7a-0d4f-4e55-9a1b-3f6a2c8d9e01"
SPEND_TYPES = tuple(SPEND_COUNTER_ROLE)
TRANSFER_TYPES = tuple(TRANSFER_ROLES)
NEGATIVE_TYPES = frozenset({T.REFUND, T.CHARGEBACK, T.CASHBACK})
AP_CAPABLE = frozenset(SPEND_TYPES) | {T.INVOICE_PAYMENT}
BOOKABLE = ("GBP", "EUR", "USD", "SEK", "DKK", "NOK", "CHF", "JPY", "KWD", "CLF")
"""Currencies in Pleo's enum that can be booked (0, 2, 3 and 4 decimals among them)."""
NOT_BOOKABLE = ("UNDEFINED", "XXX", "XAU", "XTS", "XDR")
"""In Pleo's ``MoneyModel`` enum, yet not money anyone can book."""
KNOWN_CODES = tuple(a.code for a in DEMO_CHART.expense_accounts)
KNOWN_VENDORS = DEMO_CHART.vendors
TIMEZONES = ("UTC", "Europe/Copenhagen", "Pacific/Kiritimati", "Pacific/Pago_Pago")
MAX_FILE_BYTES = 5_000_000
"""The test target's attachment limit (``limits.max_attachment_bytes``)."""

# Text: every Unicode category except lone surrogates (they cannot travel as UTF-8 JSON).
UNICODE = st.characters(exclude_categories=("Cs",))
short_text = st.text(UNICODE, max_size=40)


def _uuid(*parts: object) -> str:
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, "pleo-export-properties:" + ":".join(map(str, parts)))
    )


def _money(currency: str, value: int | float) -> dict[str, Any]:
    return {"currency": currency, "value": value}


def _dual(supplier_currency: str, supplier: int, wallet_currency: str, wallet: int) -> Any:
    return {
        "inSupplierCurrency": _money(supplier_currency, supplier),
        "inWalletCurrency": _money(wallet_currency, wallet),
    }


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Expect:
    """The outcome an item must have."""

    reason: str | None = None
    """The failure reason type it must fail with; ``None`` with ``anything`` false: success."""
    anything: bool = False
    """Either outcome is acceptable (several hostile changes, or one whose effect depends on
    the combination); it must still be final with a typed reason or a balanced entry."""
    changes: tuple[str, ...] = ()

    def describe(self) -> str:
        what = "anything typed" if self.anything else (self.reason or "successful")
        return f"{what} after {', '.join(self.changes) or 'no change'}"


SUCCESS = Expect()
ANY = Expect(anything=True)


@dataclass
class Draft:
    """An item being drawn, with the facts the hostile changes need."""

    item: dict[str, Any]
    type: ExportItemType
    wallet: str
    supplier: str
    spend: bool

    @property
    def lines(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = self.item["accountingEntryLines"]
        return lines

    @property
    def multi_currency(self) -> bool:
        return self.supplier != self.wallet


# --- well-formed items -----------------------------------------------------------------------


def _split(total: int, weights: list[int]) -> list[int]:
    """``total`` (> 0) in ``len(weights)`` positive parts, or one part when it is too small."""
    if total < len(weights):
        return [total]
    scale = sum(weights)
    parts = [max(1, total * w // scale) for w in weights[:-1]]
    last = total - sum(parts)
    return [*parts, last] if last >= 1 else [total]


def _tax(draw: st.DrawFn, gross_wallet: int, gross_supplier: int) -> dict[str, Any] | None:
    kind = draw(st.sampled_from((None, None, "inclusive", "exclusive", "reverse")))
    if kind is None:
        return None
    rate = draw(st.sampled_from((0.0, 0.05, 0.2, 0.25)))

    def amount(gross: int) -> int:
        if kind == "reverse":
            return round(gross * rate)
        return round(gross * rate / (1 + rate))

    tax: dict[str, Any] = {
        "id": _uuid("tax", kind, rate),
        "code": draw(st.sampled_from(("S20", "R5", "Z0", "EX20", "RC20"))),
        "rate": rate,
        "type": kind,
        "ingoingTaxAccount": "2201",
        "amount": {
            "inSupplierCurrency": {"value": amount(gross_supplier)},
            "inWalletCurrency": {"value": amount(gross_wallet)},
        },
    }
    if kind == "reverse":
        tax["outgoingTaxAccount"] = "2202"
    return tax


@st.composite
def well_formed(draw: st.DrawFn, index: int, wallet: str) -> Draft:
    """A valid item of a random type that the test target can book."""
    item_type = draw(st.sampled_from(SPEND_TYPES + TRANSFER_TYPES))
    spend = item_type in SPEND_COUNTER_ROLE
    supplier_currency = wallet
    if draw(st.integers(0, 3)) == 0:
        supplier_currency = draw(st.sampled_from(BOOKABLE))
    total = draw(st.integers(1, 10_000_000))
    supplier_total = total if supplier_currency == wallet else draw(st.integers(1, 10**9))
    entry_id = _uuid("entry", index)
    sign = -1 if item_type in NEGATIVE_TYPES else 1
    when = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
        seconds=draw(st.integers(0, 31 * 366 * 86_400))
    )
    item: dict[str, Any] = {
        "_links": {},
        "accountingEntryId": entry_id,
        "companyId": COMPANY_ID,
        "type": item_type.value,
        "date": _timestamp(when),
        "amount": _dual(supplier_currency, sign * supplier_total, wallet, sign * total),
        "additionalInformation": {"reconciliationId": f"BK-{index:06d}"},
    }
    lines: list[dict[str, Any]] = []
    if spend:
        weights = draw(st.lists(st.integers(1, 9), min_size=1, max_size=4))
        wallet_parts = _split(total, weights)
        supplier_parts = (
            wallet_parts
            if supplier_currency == wallet
            else _split(supplier_total, weights[: len(wallet_parts)])
        )
        if len(supplier_parts) != len(wallet_parts):
            wallet_parts, supplier_parts = [total], [supplier_total]
        for n, (gross_wallet, gross_supplier) in enumerate(
            zip(wallet_parts, supplier_parts, strict=True)
        ):
            code = draw(st.sampled_from(KNOWN_CODES))
            line: dict[str, Any] = {
                "accountingEntryLineId": _uuid("line", index, n),
                "account": {"id": _uuid("account", code), "name": f"Account {code}", "code": code},
                "lineAmount": _dual(
                    supplier_currency, sign * gross_supplier, wallet, sign * gross_wallet
                ),
            }
            net_wallet, net_supplier = gross_wallet, gross_supplier
            tax = _tax(draw, gross_wallet, gross_supplier)
            if tax is not None:
                tax_wallet = tax["amount"]["inWalletCurrency"]["value"]
                tax_supplier = tax["amount"]["inSupplierCurrency"]["value"]
                tax["amount"] = _dual(
                    supplier_currency, sign * tax_supplier, wallet, sign * tax_wallet
                )
                if tax["type"] == "exclusive":
                    net_wallet, net_supplier = (
                        gross_wallet - tax_wallet,
                        gross_supplier - tax_supplier,
                    )
                line["tax"] = tax
            line["netAmount"] = _dual(
                supplier_currency, sign * net_supplier, wallet, sign * net_wallet
            )
            if draw(st.booleans()):
                line["tags"] = [
                    {"id": _uuid("tag", "DEPT", "ENG"), "code": "ENG", "groupCode": "DEPT"}
                ]
            lines.append(line)
    else:
        # Transfers carry one line without an account, as Pleo sends them.
        lines.append(
            {
                "accountingEntryLineId": _uuid("line", index, 0),
                "lineAmount": _dual(supplier_currency, supplier_total, wallet, total),
                "netAmount": _dual(supplier_currency, supplier_total, wallet, total),
            }
        )
    item["accountingEntryLines"] = lines

    vendor = draw(st.sampled_from(KNOWN_VENDORS))
    if item_type in ALWAYS_JOURNAL:
        item["bookkeeping"] = {"method": "none"}
    else:
        method = draw(st.sampled_from(("journal", "none", "accounts_payable", "legacy")))
        if method == "accounts_payable":
            item["bookkeeping"] = {"method": method}
            item["vendor"] = {
                "id": _uuid("vendor", vendor.code),
                "name": vendor.name,
                "code": vendor.code,
                "externalId": vendor.external_id,
                "defaultCurrency": vendor.default_currency,
                "taxRegistrationNumber": vendor.tax_registration_number,
            }
        elif method != "legacy":
            item["bookkeeping"] = {"method": method}
        # legacy: no bookkeeping object. In a vendor-based job a supplier present is then the
        # vendor to book against; it always names one the target knows.
    if item_type is T.INVOICE_PAYMENT or draw(st.booleans()):
        item["supplier"] = {"name": vendor.name, "code": vendor.code, "country": "GB"}
    if item_type in (T.DIRECT_REIMBURSEMENT, T.EXTERNAL_REIMBURSEMENT, T.INVOICE_PAYMENT):
        item["subType"] = draw(
            st.sampled_from(
                {
                    T.DIRECT_REIMBURSEMENT: (
                        "reimbursement_to_employee",
                        "reimbursement_to_company",
                    ),
                    T.EXTERNAL_REIMBURSEMENT: ("reimbursement_to_employee",),
                    T.INVOICE_PAYMENT: ("invoice_payment_sent", "invoice_payment_returned"),
                }[item_type]
            )
        )
    if draw(st.booleans()):
        item["contraAccount"] = {"id": _uuid("account", "1990"), "name": "Pleo", "code": "1990"}
    if draw(st.booleans()):
        item["note"] = draw(short_text)
    if draw(st.booleans()):
        item["user"] = {"id": _uuid("user", index % 7), "name": draw(short_text), "code": "E001"}
    if draw(st.integers(0, 4)) == 0:
        item["files"] = [
            {"url": "https://files.example.invalid/receipt.png", "type": "image/png", "size": 9000}
        ]
    return Draft(item, item_type, wallet, supplier_currency, spend)


# --- hostile changes (each keeps the item valid against the schema) -------------------------


def _scale_amounts(node: Any, factor: int) -> None:
    """Multiply every money value in ``node`` by ``factor`` (tax and net included)."""
    if isinstance(node, dict):
        if set(node) == {"currency", "value"} and isinstance(node["value"], int):
            node["value"] *= factor
            return
        for value in node.values():
            _scale_amounts(value, factor)
    elif isinstance(node, list):
        for value in node:
            _scale_amounts(value, factor)


def _all_money(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if set(node) == {"currency", "value"}:
            return [node]
        for value in node.values():
            found += _all_money(value)
    elif isinstance(node, list):
        for value in node:
            found += _all_money(value)
    return found


Change = Callable[[st.DrawFn, Draft], Expect | None]
"""Applies one hostile change; returns the outcome it calls for, or ``None`` if it does not
apply to this item (it is then left as it was)."""


def missing_account(draw: st.DrawFn, d: Draft) -> Expect | None:
    if not d.spend or not d.lines:
        return None
    line = draw(st.sampled_from(d.lines))
    if draw(st.booleans()):
        del line["account"]
    else:
        line["account"] = None
    return Expect("missing_configuration")


def lines_off(draw: st.DrawFn, d: Draft) -> Expect | None:
    """One line is larger than it should be, within or beyond the rounding tolerance."""
    if not d.spend or not d.lines:
        return None
    line = draw(st.sampled_from(d.lines))
    tolerance = len(d.lines)  # engine.rounding_tolerance_per_line (1) per line
    delta = draw(st.one_of(st.integers(1, tolerance), st.integers(tolerance + 1, 10**6)))
    money = line["lineAmount"]["inWalletCurrency"]
    step = delta if money["value"] >= 0 else -delta
    money["value"] += step
    line["netAmount"]["inWalletCurrency"]["value"] += step  # an exclusive line still adds up
    # A multi-currency item may miss its total by conversion rounding: booked to rounding.
    within = d.multi_currency and delta <= tolerance
    return SUCCESS if within else Expect("validation_failure")


def zero_amount(draw: st.DrawFn, d: Draft) -> Expect | None:
    d.item["amount"]["inWalletCurrency"]["value"] = 0
    return Expect("validation_failure")


def negative_amount(draw: st.DrawFn, d: Draft) -> Expect | None:
    """Every amount of the item negated: a credit of the lines for spend types that may have
    either sign; for money-back types and transfers a sign that contradicts the type, which
    fails the item instead of being booked the other way round."""
    _scale_amounts(d.item, -1)
    return SUCCESS if AMOUNT_SIGN[d.type] is Sign.EITHER else Expect("validation_failure")


def exclusive_net_off(draw: st.DrawFn, d: Draft) -> Expect | None:
    """An exclusive tax line whose netAmount + tax is not its lineAmount (beyond the rounding
    tolerance of 1 per line), in one of the two currencies: Pleo's figures disagree."""
    taxed = [line for line in d.lines if (line.get("tax") or {}).get("type") == "exclusive"]
    if not taxed:
        return None
    side = draw(st.sampled_from(("inWalletCurrency", "inSupplierCurrency")))
    taxed[0]["netAmount"][side]["value"] += draw(st.sampled_from((-1, 1))) * draw(
        st.integers(2, 10**6)
    )
    return Expect("validation_failure")


def foreign_sub_type(draw: st.DrawFn, d: Draft) -> Expect | None:
    """A transfer with a sub-type of another type, or an unknown one: its direction would be
    a guess."""
    if d.type not in TRANSFER_ROLES:
        return None
    others = [s.value for s, (types, _) in SUBTYPE_DIRECTION.items() if d.type not in types]
    d.item["subType"] = draw(st.sampled_from([*others, "payout_adjustment"]))
    return Expect("validation_failure")


def huge_amount(draw: st.DrawFn, d: Draft) -> Expect | None:
    _scale_amounts(d.item, 10 ** draw(st.integers(6, 24)))
    return SUCCESS


def integral_float_amount(draw: st.DrawFn, d: Draft) -> Expect | None:
    """Minor units written as a float with nothing after the point (1234.0)."""
    for money in _all_money(d.item):
        if abs(money["value"]) < 2**52:
            money["value"] = float(money["value"])
    return SUCCESS


def fractional_amount(draw: st.DrawFn, d: Draft) -> Expect | None:
    """The spec types amounts as ``number``; a fraction of a minor unit cannot be booked."""
    money = d.item["amount"]["inWalletCurrency"]
    money["value"] = money["value"] + 0.5
    return Expect("validation_failure")


def unbookable_currency(draw: st.DrawFn, d: Draft) -> Expect | None:
    side = draw(st.sampled_from(("inWalletCurrency", "inSupplierCurrency")))
    d.item["amount"][side]["currency"] = draw(st.sampled_from(NOT_BOOKABLE))
    return Expect("validation_failure")


def line_in_other_wallet_currency(draw: st.DrawFn, d: Draft) -> Expect | None:
    if not d.spend or not d.lines:
        return None
    line = draw(st.sampled_from(d.lines))
    other = draw(st.sampled_from([c for c in BOOKABLE if c != d.wallet]))
    line["lineAmount"]["inWalletCurrency"]["currency"] = other
    return Expect("validation_failure")


def supplier_currency_mix(draw: st.DrawFn, d: Draft) -> Expect | None:
    """Lines paid in other supplier currencies than the total: nothing to refuse."""
    for line in d.lines:
        currency = draw(st.sampled_from(BOOKABLE))
        for part in ("lineAmount", "netAmount"):
            line[part]["inSupplierCurrency"]["currency"] = currency
        if line.get("tax"):
            line["tax"]["amount"]["inSupplierCurrency"]["currency"] = currency
    return SUCCESS


def hostile_text(draw: st.DrawFn, d: Draft) -> Expect | None:
    """Unicode of every kind, and very long, in the note and the names."""
    chunk = draw(st.text(UNICODE, min_size=1, max_size=30))
    repeat = draw(st.sampled_from((1, 10, 1_000, 20_000)))
    d.item["note"] = chunk * repeat
    d.item["supplier"] = {**(d.item.get("supplier") or {}), "name": draw(short_text)}
    d.item["user"] = {"id": _uuid("user", "x"), "name": draw(short_text)}
    d.item["additionalInformation"]["reconciliationId"] = draw(short_text)
    for line in d.lines:
        if line.get("account"):
            line["account"]["name"] = draw(short_text)
    return SUCCESS


def duplicate_line_ids(draw: st.DrawFn, d: Draft) -> Expect | None:
    if not d.spend or not d.lines:
        return None
    if len(d.lines) == 1:  # split the line in two, both valid, so only the id is wrong
        line = d.lines[0]
        twin = copy.deepcopy(line)
        twin.pop("tax", None)
        for part in ("lineAmount", "netAmount"):
            twin[part]["inWalletCurrency"]["value"] = 0
            twin[part]["inSupplierCurrency"]["value"] = 0
        d.lines.append(twin)
    d.lines[-1]["accountingEntryLineId"] = d.lines[0]["accountingEntryLineId"]
    return Expect("validation_failure")


def zero_line(draw: st.DrawFn, d: Draft) -> Expect | None:
    """An extra line of zero: harmless."""
    if not d.spend or not d.lines:
        return None
    line = copy.deepcopy(d.lines[0])
    line.pop("tax", None)
    line["accountingEntryLineId"] = _uuid("zero-line", d.item["accountingEntryId"])
    for part in ("lineAmount", "netAmount"):
        line[part]["inWalletCurrency"]["value"] = 0
        line[part]["inSupplierCurrency"]["value"] = 0
    d.lines.append(line)
    return SUCCESS


def no_lines(draw: st.DrawFn, d: Draft) -> Expect | None:
    d.item["accountingEntryLines"] = []
    return Expect("validation_failure") if d.spend else SUCCESS


def unknown_type(draw: st.DrawFn, d: Draft) -> Expect | None:
    known = {t.value for t in ExportItemType}
    d.item["type"] = draw(short_text.filter(lambda s: s not in known))
    return Expect("validation_failure")


def unknown_method(draw: st.DrawFn, d: Draft) -> Expect | None:
    d.item["bookkeeping"] = {"method": draw(short_text.filter(lambda s: s not in _METHODS))}
    return SUCCESS if d.type in ALWAYS_JOURNAL else Expect("validation_failure")


_METHODS = frozenset({"journal", "none", "accounts_payable"})


def unknown_tax_type(draw: st.DrawFn, d: Draft) -> Expect | None:
    taxed = [line for line in d.lines if line.get("tax")]
    if not d.spend or not taxed:
        return None
    taxed[0]["tax"]["type"] = draw(
        short_text.filter(lambda s: s not in ("inclusive", "exclusive", "reverse"))
    )
    return Expect("validation_failure")


def tax_larger_than_line(draw: st.DrawFn, d: Draft) -> Expect | None:
    if not d.spend or not d.lines:
        return None
    line = d.lines[0]
    gross = line["lineAmount"]["inWalletCurrency"]["value"]
    if gross == 0:
        return None
    line["tax"] = {
        "id": _uuid("tax", "bad"),
        "rate": 0.2,
        "type": "inclusive",
        "amount": _dual(d.supplier, 0, d.wallet, gross * 2),
    }
    return Expect("validation_failure")


def huge_tax_rate(draw: st.DrawFn, d: Draft) -> Expect | None:
    taxed = [line for line in d.lines if line.get("tax")]
    if not taxed:
        return None
    taxed[0]["tax"]["rate"] = draw(st.sampled_from((1e300, -3.5, 0.0, 99.999)))
    return SUCCESS


def payable_without_vendor(draw: st.DrawFn, d: Draft) -> Expect | None:
    if d.type in ALWAYS_JOURNAL or d.type not in AP_CAPABLE:
        return None
    d.item["bookkeeping"] = {"method": "accounts_payable"}
    d.item.pop("vendor", None)
    d.item["supplier"] = {"name": "Nobody in particular"}
    return Expect("vendor_unknown")


def vendor_unknown_to_target(draw: st.DrawFn, d: Draft) -> Expect | None:
    if d.type in ALWAYS_JOURNAL or d.type not in AP_CAPABLE:
        return None
    d.item["bookkeeping"] = {"method": "accounts_payable"}
    d.item["vendor"] = {
        "id": _uuid("vendor", "stranger"),
        "name": draw(short_text),
        "code": "V-" + draw(short_text),
        "defaultCurrency": draw(st.sampled_from(BOOKABLE)),
    }
    return Expect("vendor_unknown")


def account_unknown_to_target(draw: st.DrawFn, d: Draft) -> Expect | None:
    accounted = [line for line in d.lines if line.get("account")]
    if not d.spend or not accounted:
        return None
    line = draw(st.sampled_from(accounted))
    line["account"]["code"] = draw(
        st.one_of(st.none(), short_text.filter(lambda s: s not in KNOWN_CODES))
    )
    return Expect("account_unknown")


def file_too_large(draw: st.DrawFn, d: Draft) -> Expect | None:
    d.item["files"] = [
        {
            "url": "https://files.example.invalid/huge.pdf",
            "type": "application/pdf",
            "size": draw(st.integers(MAX_FILE_BYTES + 1, 2**31 - 1)),
        }
    ]
    return Expect("receipt_file_size_limit_exceeded")


def far_date(draw: st.DrawFn, d: Draft) -> Expect | None:
    """The first or last second a timestamp can name; in some time zones the booking date
    falls outside the calendar."""
    d.item["date"] = draw(st.sampled_from(("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z")))
    return ANY


def nulls_where_allowed(draw: st.DrawFn, d: Draft) -> Expect | None:
    """Every nullable field the item has set to null."""
    for name in ("contraAccount", "files", "note", "vendor", "supplier", "user", "bookkeeping"):
        if name in d.item and not (name == "vendor" and d.item.get("bookkeeping")):
            d.item[name] = None
    if d.item.get("bookkeeping") is None and d.type not in ALWAYS_JOURNAL:
        return ANY  # now a legacy item: its vendor comes from a supplier that is gone
    return SUCCESS


HOSTILE: dict[str, Change] = {
    f.__name__: f
    for f in (
        missing_account,
        lines_off,
        zero_amount,
        negative_amount,
        exclusive_net_off,
        foreign_sub_type,
        huge_amount,
        integral_float_amount,
        fractional_amount,
        unbookable_currency,
        line_in_other_wallet_currency,
        supplier_currency_mix,
        hostile_text,
        duplicate_line_ids,
        zero_line,
        no_lines,
        unknown_type,
        unknown_method,
        unknown_tax_type,
        tax_larger_than_line,
        huge_tax_rate,
        payable_without_vendor,
        vendor_unknown_to_target,
        account_unknown_to_target,
        file_too_large,
        far_date,
        nulls_where_allowed,
    )
}


@st.composite
def hostile_item(
    draw: st.DrawFn, index: int, wallet: str, vendor_based: bool
) -> tuple[dict[str, Any], Expect]:
    draft = draw(well_formed(index, wallet))
    names = draw(st.lists(st.sampled_from(sorted(HOSTILE)), max_size=2, unique=True))
    expected: list[Expect] = []
    applied: list[str] = []
    for name in names:
        outcome = HOSTILE[name](draw, draft)
        if outcome is not None:
            expected.append(outcome)
            applied.append(name)
    if not expected:
        verdict = SUCCESS
    elif len(expected) == 1:
        verdict = expected[0]
    else:
        verdict = ANY
    if (
        vendor_based
        and "bookkeeping" not in draft.item
        and draft.type not in ALWAYS_JOURNAL
        and not (draft.item.get("supplier") or {}).get("code")
        and not verdict.anything
        and verdict.reason is None
    ):
        verdict = ANY  # a legacy item in a vendor-based job needs a supplier to pay
    return draft.item, Expect(verdict.reason, verdict.anything, tuple(applied))


@dataclass(frozen=True)
class Job:
    vendor_based: bool
    timezone: str
    wallet: str
    items: tuple[tuple[dict[str, Any], Expect], ...]


@st.composite
def jobs(draw: st.DrawFn, min_items: int = 40, max_items: int = 60) -> Job:
    """An export job of hostile, schema-valid items."""
    vendor_based = draw(st.booleans())
    wallet = draw(st.sampled_from(BOOKABLE))
    count = draw(st.integers(min_items, max_items))
    items = tuple(draw(hostile_item(n, wallet, vendor_based)) for n in range(count))
    return Job(vendor_based, draw(st.sampled_from(TIMEZONES)), wallet, items)


# --- schema violations -----------------------------------------------------------------------


def _violations() -> dict[str, Callable[[st.DrawFn, dict[str, Any]], Expect]]:
    def drop_required(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        name = draw(
            st.sampled_from(
                (
                    "amount",
                    "accountingEntryLines",
                    "additionalInformation",
                    "date",
                    "type",
                    "_links",
                )
            )
        )
        del item[name]
        return Expect("validation_failure")

    def drop_line_field(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        field = draw(st.sampled_from(("accountingEntryLineId", "lineAmount", "netAmount")))
        del item["accountingEntryLines"][0][field]
        return Expect("validation_failure")

    def amount_as_text(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        # Amounts are parsed strictly: a string is never coerced, however numeric it looks.
        text = draw(st.sampled_from(("12.50", "abc", "", "1e3", "100", "47003", "1_000", " 7 ")))
        money = draw(st.sampled_from(_money_fields(item)))
        money["value"] = text
        return Expect("validation_failure")

    def amount_not_a_number(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        money = draw(st.sampled_from(_money_fields(item)))
        money["value"] = draw(st.sampled_from((True, False, None, [100], {"value": 100})))
        return Expect("validation_failure")

    def currency_outside_enum(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        currency = draw(st.sampled_from(("eur", "", "EURO", "G8P", "ABC")))
        item["amount"]["inWalletCurrency"]["currency"] = currency
        return ANY if currency == "ABC" else Expect("validation_failure")

    def not_a_timestamp(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        value = draw(st.sampled_from(("yesterday", "2025-13-45T00:00:00Z", "12:00")))
        item["date"] = value
        return Expect("validation_failure")

    def null_required(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        item[draw(st.sampled_from(("amount", "type", "additionalInformation")))] = None
        return Expect("validation_failure")

    def lines_not_a_list(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        item["accountingEntryLines"] = {"0": item["accountingEntryLines"]}
        return Expect("validation_failure")

    def type_not_a_string(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        item["type"] = draw(st.sampled_from((17, ["card_purchase"], {"type": "x"})))
        return Expect("validation_failure")

    def vendor_currency_too_long(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        item["vendor"] = {"id": _uuid("v"), "name": "V", "defaultCurrency": "EURO"}
        return ANY

    def account_without_name(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        for line in item["accountingEntryLines"]:
            line["account"] = {"code": "6000"}
        return Expect("validation_failure")

    def nested_too_deep(draw: st.DrawFn, item: dict[str, Any]) -> Expect:
        # Deeper than the engine's limit (32 levels); tests/hostile serves deeper ones.
        # Arrays, so the item also breaks the schema (none of these fields is an array of
        # arrays); deeply nested objects in unknown fields are in tests/hostile.
        value: Any = draw(short_text)
        for _ in range(draw(st.integers(33, 300))):
            value = [value]
        where = draw(st.sampled_from(("note", "supplier", "accountingEntryLines")))
        item[where] = value
        return Expect("validation_failure")

    return {
        f.__name__: f
        for f in (
            drop_required,
            drop_line_field,
            amount_as_text,
            amount_not_a_number,
            currency_outside_enum,
            not_a_timestamp,
            null_required,
            lines_not_a_list,
            type_not_a_string,
            vendor_currency_too_long,
            account_without_name,
            nested_too_deep,
        )
    }


def _money_fields(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The item's total and its lines' amounts (each a ``MoneyModel``)."""
    found = [item["amount"]["inWalletCurrency"], item["amount"]["inSupplierCurrency"]]
    for line in item["accountingEntryLines"]:
        for part in ("lineAmount", "netAmount"):
            found += [line[part]["inWalletCurrency"], line[part]["inSupplierCurrency"]]
    return found


VIOLATIONS = _violations()


@st.composite
def invalid_item(draw: st.DrawFn, index: int, wallet: str) -> tuple[dict[str, Any], Expect]:
    draft = draw(well_formed(index, wallet))
    name = draw(st.sampled_from(sorted(VIOLATIONS)))
    expect = VIOLATIONS[name](draw, draft.item)
    return draft.item, Expect(expect.reason, expect.anything, (name,))


@st.composite
def invalid_jobs(draw: st.DrawFn, min_items: int = 20, max_items: int = 40) -> Job:
    """An export job whose every item breaks the ``ExportItemV3`` schema once."""
    wallet = draw(st.sampled_from(BOOKABLE))
    count = draw(st.integers(min_items, max_items))
    items = tuple(draw(invalid_item(n, wallet)) for n in range(count))
    return Job(False, "UTC", wallet, items)
