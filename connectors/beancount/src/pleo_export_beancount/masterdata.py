"""Master data in the ledger: vendors, tax codes and dimensions, and new vendors' accounts.

Vendors are the accounts whose ``open`` directive carries vendor metadata (the same keys the
connector matches Pleo's vendors on)::

    2000-01-01 open Liabilities:AccountsPayable:Acme
      vendor-name: "Acme Office Cleaning Ltd"
      vendor-code: "V2001"
      vendor-external-id: "AS-2001"
      vendor-tax-number: "GB123456782"
      vendor-registration-number: "0871234"
      vendor-currency: "GBP"
      vendor-country: "GB"

A closed account is an archived vendor. Tax codes and dimensions are ``custom`` directives; a
later directive for the same code replaces an earlier one (``archived: TRUE`` archives it)::

    2000-01-01 custom "pleo-tax-code" "S20"
      name: "Standard rate 20%"
      rate: "0.20"
      type: "inclusive"
      ingoing-tax-account: "2201"
    2000-01-01 custom "pleo-dimension" "DEPT"
      name: "Department"
    2000-01-01 custom "pleo-dimension-value" "DEPT" "ENG"
      name: "Engineering"
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from pleo_export import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    DimensionValue,
    ExportJobFailureReasonType,
    ItemRejected,
    JobRejected,
    TaxType,
    VendorDraft,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_beancount.chart import (
    VENDOR_KEYS,
    CustomDirective,
    LedgerAccount,
    LoadedLedger,
    load_ledger,
)
from pleo_export_beancount.output import OutputFile
from pleo_export_beancount.render import BEGIN_MARKER, END_MARKER, quote, reference_token
from pleo_export_beancount.settings import BeancountSettings

VENDOR_NAME = "vendor-name"
VENDOR_CURRENCY = "vendor-currency"
VENDOR_COUNTRY = "vendor-country"
VENDOR_REGISTRATION_NUMBER = "vendor-registration-number"
PLEO_VENDOR_ID = "pleo-vendor-id"
"""Written on accounts created for a Pleo draft vendor: the Pleo vendor id."""
VENDOR_PREFIX = "vendor-"
"""An ``open`` directive with a key starting with this is a vendor."""

TAX_CODE = "pleo-tax-code"
DIMENSION = "pleo-dimension"
DIMENSION_VALUE = "pleo-dimension-value"

_CODE_RE = re.compile(r"^(.*?)(\d+)$")


def _invalid(message: str) -> JobRejected:
    return JobRejected(ExportJobFailureReasonType.INVALID_CONFIGURATION, message)


def _archived(meta: Mapping[str, str], where: str) -> bool:
    value = meta.get("archived")
    if value is None:
        return False
    if value.upper() in ("TRUE", "FALSE"):
        return value.upper() == "TRUE"
    raise _invalid(f"archived: {value!r} at {where} must be TRUE or FALSE")


# --- vendors ---------------------------------------------------------------------------------


def is_vendor(account: LedgerAccount) -> bool:
    return any(key.startswith(VENDOR_PREFIX) for key in account.meta)


def _leaf_name(account: str) -> str:
    return account.rsplit(":", 1)[-1].replace("-", " ")


def vendor_of(account: LedgerAccount, ledger: LoadedLedger, today: date) -> AccountingVendor:
    """The vendor an ``open`` directive with vendor metadata describes."""
    meta = account.meta
    code = meta.get(VENDOR_KEYS["code"]) or meta.get(VENDOR_KEYS["external_id"]) or account.name
    external_id = meta.get(VENDOR_KEYS["external_id"]) or meta.get(VENDOR_KEYS["code"])
    currency = meta.get(VENDOR_CURRENCY)
    if currency is None and len(account.currencies) == 1:
        currency = account.currencies[0]
    if currency is None and ledger.operating_currencies:
        currency = ledger.operating_currencies[0]
    if currency is None:
        raise _invalid(
            f"vendor account {account.name} at {account.where()} has no currency: add "
            f'{VENDOR_CURRENCY}: "EUR" to its open directive, or option "operating_currency" '
            "to the ledger"
        )
    country = meta.get(VENDOR_COUNTRY)
    try:
        return AccountingVendor(
            name=meta.get(VENDOR_NAME) or _leaf_name(account.name),
            code=code,
            external_id=external_id or account.name,
            currency=currency.upper(),
            country=country.upper() if country else None,
            tax_registration_number=meta.get(VENDOR_KEYS["tax_number"]),
            registration_number=meta.get(VENDOR_REGISTRATION_NUMBER),
            archived=account.closed is not None and account.closed <= today,
        )
    except ValidationError as error:
        fields = ", ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise _invalid(
            f"vendor account {account.name} at {account.where()} has invalid vendor metadata "
            f"({fields}): {VENDOR_CURRENCY} is an ISO 4217 code like EUR, {VENDOR_COUNTRY} an "
            "ISO 3166 code like DK"
        ) from None


def list_vendors(ledger: LoadedLedger, today: date) -> list[AccountingVendor]:
    """Every vendor account of the ledger; a code on several accounts answers the open one."""
    by_code: dict[str, list[tuple[LedgerAccount, AccountingVendor]]] = {}
    for account in sorted(ledger.chart.accounts.values(), key=lambda a: a.name):
        if is_vendor(account):
            vendor = vendor_of(account, ledger, today)
            by_code.setdefault(vendor.code, []).append((account, vendor))
    vendors: list[AccountingVendor] = []
    for code, found in by_code.items():
        active = [pair for pair in found if not pair[1].archived]
        if len(active) > 1:
            where = ", ".join(f"{a.name} ({a.where()})" for a, _ in active)
            raise _invalid(
                f"vendor code {code!r} is on several open accounts: {where}; keep "
                f"{VENDOR_KEYS['code']} on one of them or close the others"
            )
        vendors.append((active or found)[-1][1])
    return vendors


def find_vendor(ledger: LoadedLedger, draft: VendorDraft, today: date) -> LedgerAccount | None:
    """The open vendor account that stands for ``draft``: created for the same Pleo vendor,
    else with the same tax registration number, else with the same name."""
    accounts = [a for a in ledger.chart.accounts.values() if is_vendor(a)]
    for account in accounts:
        if account.meta.get(PLEO_VENDOR_ID) == draft.pleo_id:
            return account
    active = [a for a in accounts if a.closed is None or a.closed > today]
    if draft.tax_registration_number:
        found = ledger.chart.for_vendor("tax_number", draft.tax_registration_number)
        found = [a for a in found if a in active]
        if found:
            return sorted(found, key=lambda a: a.name)[0]
    name = draft.name.strip().casefold()
    for account in sorted(active, key=lambda a: a.name):
        if vendor_of(account, ledger, today).name.strip().casefold() == name:
            return account
    return None


def next_vendor_code(codes: Iterable[str]) -> str:
    """One more than the highest numbered vendor code (``V2004`` -> ``V2005``), else V0001."""
    best: tuple[int, str, int] | None = None  # number, prefix, width
    for code in codes:
        match = _CODE_RE.match(code)
        if match is None:
            continue
        number = int(match.group(2))
        if best is None or number > best[0]:
            best = (number, match.group(1), len(match.group(2)))
    if best is None:
        return "V0001"
    number, prefix, width = best
    return f"{prefix}{number + 1:0{width}d}"


def account_component(name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name)
    text = "".join(w[:1].upper() + w[1:] for w in words)
    if not text:
        return "Vendor"
    return text if text[0].isupper() or text[0].isdigit() else "V" + text


def new_vendor_account(ledger: LoadedLedger, root: str, draft: VendorDraft) -> str:
    """A fresh payable account ``<root>:<Name>`` for ``draft`` (``-2``, ``-3``... if taken)."""
    base = f"{root}:{account_component(draft.name)}"
    account, suffix = base, 2
    while ledger.chart.get(account) is not None:
        account = f"{base}-{suffix}"
        suffix += 1
    return account


def vendor_block(
    draft: VendorDraft, account: str, code: str, opened: date, token: str
) -> tuple[str, AccountingVendor]:
    """The text that opens ``account`` for ``draft`` (a marked block) and the vendor it is."""
    vendor = AccountingVendor(
        name=draft.name.strip() or code,
        code=code,
        external_id=account,
        currency=draft.currency.upper(),
        country=draft.country.upper() if draft.country else None,
        tax_registration_number=draft.tax_registration_number or None,
        registration_number=draft.registration_number or None,
    )
    meta = [
        (VENDOR_NAME, vendor.name),
        (VENDOR_KEYS["code"], vendor.code),
        (VENDOR_KEYS["external_id"], vendor.external_id),
        (VENDOR_KEYS["tax_number"], vendor.tax_registration_number),
        (VENDOR_REGISTRATION_NUMBER, vendor.registration_number),
        (VENDOR_CURRENCY, vendor.currency),
        (VENDOR_COUNTRY, vendor.country),
        (PLEO_VENDOR_ID, draft.pleo_id),
    ]
    lines = ["", f"{BEGIN_MARKER}{token}", f"{opened.isoformat()} open {account}"]
    lines += [f"  {key}: {quote(value)}" for key, value in meta if value]
    lines.append(f"{END_MARKER}{token}")
    return "\n".join(lines) + "\n", vendor


def create_vendor(
    output: OutputFile, settings: BeancountSettings, draft: VendorDraft, today: date
) -> tuple[AccountingVendor, LoadedLedger, bool]:
    """Open a payable account for ``draft`` at the end of the output file, unless the ledger
    has one for it (:func:`find_vendor`). Answers the vendor, the reloaded ledger and whether
    it was created. The ledger is read with the output file locked, as posting locks it, so
    two processes never open two accounts for one vendor."""
    answer: list[AccountingVendor] = []
    ledgers: list[LoadedLedger] = []

    def build() -> str | None:
        loaded = load_ledger(settings.ledger)
        ledgers.append(loaded)
        found = find_vendor(loaded, draft, today)
        if found is not None:
            answer.append(vendor_of(found, loaded, today))
            return None
        root = settings.accounts_payable_account
        fallback = loaded.chart.get(root)
        text, vendor = vendor_block(
            draft,
            new_vendor_account(loaded, root, draft),
            next_vendor_code(v.code for v in list_vendors(loaded, today)),
            fallback.opened if fallback is not None else date(2000, 1, 1),
            reference_token(f"vendor-{draft.pleo_id}"),
        )
        _parse_check(text, draft)
        answer.append(vendor)
        return text

    created = output.append_built(build) is not None
    ledger = load_ledger(settings.ledger) if created else ledgers[-1]
    return answer[0], ledger, created


def _parse_check(text: str, draft: VendorDraft) -> None:
    from beancount.parser import parser

    entries, errors, _ = parser.parse_string(text, report_filename="<pleo-export vendor>")
    problems = [str(getattr(error, "message", error)) for error in errors]
    if len(entries) != 1:
        problems.append(f"expected 1 open directive, the parser found {len(entries)}")
    if problems:
        raise ItemRejected(
            Reason.ACCOUNTING_SYSTEM_VALIDATION_FAILURE,
            f"the open directive for vendor {draft.name!r} does not parse ("
            + "; ".join(problems)
            + "): correct the vendor's name or identifiers in Pleo",
        )


# --- tax codes and dimensions ----------------------------------------------------------------


def _latest(
    customs: Iterable[CustomDirective], kind: str, arity: int
) -> dict[tuple[str, ...], CustomDirective]:
    found: dict[tuple[str, ...], CustomDirective] = {}
    for directive in customs:
        if directive.type != kind:
            continue
        key = directive.values[:arity]
        if len(key) != arity or not all(key):
            names = '"<dimension>" "<code>"' if arity == 2 else '"<code>"'
            raise _invalid(
                f'custom "{kind}" at {directive.where()} needs {arity} value(s): write '
                f'custom "{kind}" {names}'
            )
        found[key] = directive  # date order: a later directive replaces an earlier one
    return found


def _rate(text: str | None, where: str) -> Decimal:
    try:
        if text is None:
            raise InvalidOperation
        rate = Decimal(text.strip().removesuffix("%"))
        if text.strip().endswith("%"):
            rate /= 100
    except InvalidOperation:
        raise _invalid(
            f'the tax code at {where} has rate: {text!r}: write it as a fraction ("0.25") or a '
            'percentage ("25%")'
        ) from None
    if not Decimal(0) <= rate <= Decimal(1):
        raise _invalid(f"the tax code at {where} has rate {text!r}, outside 0 to 100 %")
    return rate


def list_tax_codes(ledger: LoadedLedger) -> list[AccountingTaxCode]:
    """The ``custom "pleo-tax-code"`` directives (the latest per code)."""
    codes: list[AccountingTaxCode] = []
    for (code,), directive in _latest(ledger.customs, TAX_CODE, 1).items():
        where = directive.where()
        meta = directive.meta
        kind = meta.get("type", "inclusive").lower()
        try:
            tax_type = TaxType(kind)
        except ValueError:
            raise _invalid(
                f"tax code {code} at {where} has type: {kind!r}: choose inclusive, exclusive "
                "or reverse"
            ) from None
        codes.append(
            AccountingTaxCode(
                code=code,
                name=meta.get("name") or code,
                rate=_rate(meta.get("rate"), where),
                type=tax_type,
                ingoing_tax_account=meta.get("ingoing-tax-account"),
                outgoing_tax_account=meta.get("outgoing-tax-account"),
                archived=_archived(meta, where),
            )
        )
    return codes


def list_dimensions(ledger: LoadedLedger) -> list[AccountingDimension]:
    """The ``custom "pleo-dimension"`` directives with their ``pleo-dimension-value`` ones."""
    groups = _latest(ledger.customs, DIMENSION, 1)
    values = _latest(ledger.customs, DIMENSION_VALUE, 2)
    members: dict[str, list[DimensionValue]] = {}
    for (group, code), directive in values.items():
        if (group,) not in groups:
            raise _invalid(
                f'custom "{DIMENSION_VALUE}" "{group}" "{code}" at {directive.where()} names '
                f'a dimension no custom "{DIMENSION}" "{group}" declares: add one'
            )
        members.setdefault(group, []).append(
            DimensionValue(
                code=code,
                name=directive.meta.get("name") or code,
                archived=_archived(directive.meta, directive.where()),
            )
        )
    return [
        AccountingDimension(
            code=group,
            name=directive.meta.get("name") or group,
            values=tuple(members.get(group, ())),
            archived=_archived(directive.meta, directive.where()),
        )
        for (group,), directive in groups.items()
    ]
