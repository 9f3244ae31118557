"""Master data for ``pleo-export sync``: CSV files the receiving system exports to the server.

The files lie in the delivery directory (``remote_dir`` or ``local_dir``), are read with the
connector's ``delimiter`` and ``encoding`` (a UTF-8 byte order mark is ignored), and start with
a header row naming their columns (any order, case and surrounding spaces ignored; unknown
columns are ignored too). ``archived`` is ``true``/``yes``/``1`` or empty.

* ``vendors_file``: ``code``, ``name``, ``currency`` (required), ``external_id`` (default: the
  code), ``tax_number``, ``registration_number``, ``country``, ``archived``.
* ``tax_codes_file``: ``code``, ``rate`` (required; ``0.25`` or ``25%``), ``name``, ``type``
  (``inclusive``, the default, ``exclusive``, ``reverse``), ``ingoing_tax_account``,
  ``outgoing_tax_account``, ``archived``.
* ``dimensions_file``: ``dimension``, ``code`` (required), ``name``, ``dimension_name``,
  ``archived``; one row per value; a row with an empty ``code`` describes the dimension itself
  (its name, ``archived``).

The receiving system creates vendors itself, so ``create_vendor`` answers a vendor that is in
``vendors_file`` already (same tax number, else same name); for any other it appends a row to
``vendor_requests_file`` (when set; once per Pleo vendor; see :func:`request_vendor`) and
refuses with ``vendor_unknown``, saying that the vendor is activated in Pleo once it appears in
``vendors_file``.

The export reads ``vendors_file`` too, once per job (:func:`read_listed_vendors`): a vendor it
lists is a vendor the receiving system knows (:class:`ListedVendors`, used by
:func:`pleo_export_sftp.accounts.payable_account`). There a missing file or an unset setting
is no error: vendors are then matched against ``vendor_accounts`` only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pleo_export import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    DimensionValue,
    ItemRejected,
    JobRejected,
    TaxType,
    VendorDraft,
    VendorRef,
    tax_number_forms,
    tax_numbers_match,
)
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_sftp.publish import temp_name
from pleo_export_sftp.settings import SftpSettings
from pleo_export_sftp.storage import Storage

VENDOR_COLUMNS = (
    "code",
    "name",
    "external_id",
    "tax_number",
    "registration_number",
    "currency",
    "country",
    "archived",
)
TAX_CODE_COLUMNS = (
    "code",
    "name",
    "rate",
    "type",
    "ingoing_tax_account",
    "outgoing_tax_account",
    "archived",
)
DIMENSION_COLUMNS = ("dimension", "dimension_name", "code", "name", "archived")
REQUEST_COLUMNS = (
    "requested_at",
    "pleo_id",
    "name",
    "tax_number",
    "registration_number",
    "currency",
    "country",
)

Row = Mapping[str, str]


def _invalid(message: str) -> JobRejected:
    return JobRejected(JobReason.INVALID_CONFIGURATION, message)


async def read_table(
    storage: Storage, settings: SftpSettings, setting: str, required: tuple[str, ...]
) -> list[tuple[int, Row]]:
    """The rows of the file named by ``setting``, as ``(line number, {column: cell})``."""
    name: str | None = getattr(settings, setting)
    if name is None:
        raise JobRejected(
            JobReason.MISSING_CONFIGURATION,
            f"setting {setting} is not set: name the CSV file the receiving system exports to "
            f"{storage.describe()} (see the SFTP connector's master-data columns)",
        )
    data = await storage.read(name)
    if data is None:
        raise JobRejected(
            JobReason.MISSING_CONFIGURATION,
            f"{storage.describe(name)} (setting {setting}) does not exist: export it from the "
            f"receiving system to that place, or correct {setting}",
        )
    return parse_table(storage, settings, setting, name, data, required)


def _decode(data: bytes, settings: SftpSettings, where: str, fix: str) -> str:
    """``data`` as text in the ``encoding`` setting (a UTF-8 byte order mark dropped); a file
    that is not in it is refused naming ``where`` and the ``fix``."""
    try:
        return data.decode(settings.encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise _invalid(
            f"{where} is not {settings.encoding} text ({error.reason} at byte {error.start}): {fix}"
        ) from None


def parse_table(
    storage: Storage,
    settings: SftpSettings,
    setting: str,
    name: str,
    data: bytes,
    required: tuple[str, ...],
) -> list[tuple[int, Row]]:
    """The rows of ``data``, the content of ``name`` (setting ``setting``); see
    :func:`read_table`."""
    text = _decode(
        data,
        settings,
        f"{storage.describe(name)} (setting {setting})",
        f"save it as {settings.encoding} or change the encoding setting",
    )
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=settings.delimiter))
    if not rows:
        raise _invalid(f"{storage.describe(name)} (setting {setting}) is empty: it needs a header")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise _invalid(
            f"{storage.describe(name)} (setting {setting}) has no column "
            f"{', '.join(missing)} in its header row ({', '.join(header) or 'empty'}): add it"
        )
    table: list[tuple[int, Row]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        table.append(
            (number, {c: (row[i].strip() if i < len(row) else "") for i, c in enumerate(header)})
        )
    return table


def _archived(row: Row, where: str) -> bool:
    value = row.get("archived", "").lower()
    if value in ("", "false", "no", "0"):
        return False
    if value in ("true", "yes", "1"):
        return True
    raise _invalid(f"{where}: archived {value!r} is not true or false")


@contextmanager
def _checked(where: str) -> Iterator[None]:
    try:
        yield
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise _invalid(
            f"{where}: {fields} (currency is an ISO 4217 code like EUR, country an ISO 3166 "
            "code like DK)"
        ) from None


def _vendor(row: Row, where: str) -> AccountingVendor:
    with _checked(where):
        return AccountingVendor(
            name=row["name"],
            code=row["code"],
            external_id=row.get("external_id") or row["code"],
            currency=row["currency"].upper(),
            country=row.get("country", "").upper() or None,
            tax_registration_number=row.get("tax_number") or None,
            registration_number=row.get("registration_number") or None,
            archived=_archived(row, where),
        )


VENDOR_REQUIRED = ("code", "name", "currency")


async def list_vendors(storage: Storage, settings: SftpSettings) -> list[AccountingVendor]:
    rows = await read_table(storage, settings, "vendors_file", VENDOR_REQUIRED)
    return _vendors(rows, storage.describe(settings.vendors_file))


def _vendors(rows: list[tuple[int, Row]], where: str) -> list[AccountingVendor]:
    vendors: dict[str, AccountingVendor] = {}
    for number, row in rows:
        vendor = _vendor(row, f"{where} line {number}")
        if vendor.code in vendors:
            raise _invalid(f"{where} line {number}: vendor code {vendor.code!r} is listed twice")
        vendors[vendor.code] = vendor
    return list(vendors.values())


class ListedVendors:
    """The vendors of ``vendors_file`` as read for one job: the vendors the receiving system
    knows, which ``prepare`` matches an accounts-payable item's vendor against (see
    :func:`pleo_export_sftp.accounts.account_for`).

    Indexed once, so matching an item costs a few dictionary look-ups however long the list.
    """

    def __init__(self, vendors: Sequence[AccountingVendor], where: str) -> None:
        self.vendors = tuple(vendors)
        self.where = where
        """The file, as the storage describes it (for messages)."""
        self._by_code: dict[str, list[AccountingVendor]] = {}
        self._by_external_id: dict[str, list[AccountingVendor]] = {}
        self._by_tax_form: dict[str, list[AccountingVendor]] = {}
        for vendor in self.vendors:
            self._by_code.setdefault(vendor.code, []).append(vendor)
            self._by_external_id.setdefault(vendor.external_id, []).append(vendor)
            for form in tax_number_forms(vendor.tax_registration_number or ""):
                self._by_tax_form.setdefault(form, []).append(vendor)

    def matching(self, key: str, value: str) -> list[AccountingVendor]:
        """The listed vendors whose ``key`` (``code``, ``external_id`` or ``tax_number``, as
        :meth:`pleo_export.VendorRef.match_keys` names them) is ``value``: codes and external
        ids exactly, tax numbers by :func:`pleo_export.tax_numbers_match`; in file order."""
        if key == "code":
            return list(self._by_code.get(value, ()))
        if key == "external_id":
            return list(self._by_external_id.get(value, ()))
        seen: dict[int, AccountingVendor] = {}
        for form in tax_number_forms(value):
            for vendor in self._by_tax_form.get(form, ()):
                number = vendor.tax_registration_number
                if number and tax_numbers_match(value, number):
                    seen.setdefault(id(vendor), vendor)
        order = {id(vendor): index for index, vendor in enumerate(self.vendors)}
        return sorted(seen.values(), key=lambda vendor: order[id(vendor)])

    def find(self, vendor: VendorRef) -> tuple[str, str, list[AccountingVendor]] | None:
        """The first of Pleo's keys for ``vendor`` (code, external id, tax number: Pleo's
        order) that the file lists, with its value and the vendors it matches (archived ones
        included); ``None`` when no key matches."""
        for key, value in vendor.match_keys():
            found = self.matching(key, value)
            if found:
                return key, value, found
        return None


async def read_listed_vendors(storage: Storage, settings: SftpSettings) -> ListedVendors | None:
    """The vendors of ``vendors_file`` for ``prepare``; ``None`` when the setting is not set
    or the file does not exist (then vendors are matched against ``vendor_accounts`` only).
    A file that is there but cannot be read as a vendor list is an error, as for ``sync``."""
    name = settings.vendors_file
    if name is None:
        return None
    data = await storage.read(name)
    if data is None:
        return None
    rows = parse_table(storage, settings, "vendors_file", name, data, VENDOR_REQUIRED)
    where = storage.describe(name)
    return ListedVendors(_vendors(rows, where), where)


def _rate(text: str, where: str) -> Decimal:
    cleaned = text.replace(",", ".").strip()
    try:
        rate = Decimal(cleaned.removesuffix("%"))
    except InvalidOperation:
        raise _invalid(f"{where}: rate {text!r} is not a number like 0.25 or 25%") from None
    return rate / 100 if cleaned.endswith("%") else rate


async def list_tax_codes(storage: Storage, settings: SftpSettings) -> list[AccountingTaxCode]:
    rows = await read_table(storage, settings, "tax_codes_file", ("code", "rate"))
    where = storage.describe(settings.tax_codes_file)
    codes: dict[str, AccountingTaxCode] = {}
    for number, row in rows:
        line = f"{where} line {number}"
        kind = (row.get("type") or "inclusive").lower()
        if kind not in {t.value for t in TaxType}:
            raise _invalid(f"{line}: type {kind!r} is not inclusive, exclusive or reverse")
        code = row["code"]
        if code in codes:
            raise _invalid(f"{line}: tax code {code!r} is listed twice")
        with _checked(line):
            codes[code] = AccountingTaxCode(
                code=row["code"],
                name=row.get("name") or row["code"],
                rate=_rate(row["rate"], line),
                type=TaxType(kind),
                ingoing_tax_account=row.get("ingoing_tax_account") or None,
                outgoing_tax_account=row.get("outgoing_tax_account") or None,
                archived=_archived(row, line),
            )
    return list(codes.values())


async def list_dimensions(storage: Storage, settings: SftpSettings) -> list[AccountingDimension]:
    rows = await read_table(storage, settings, "dimensions_file", ("dimension", "code"))
    where = storage.describe(settings.dimensions_file)
    names: dict[str, str] = {}
    archived: dict[str, bool] = {}
    values: dict[str, dict[str, DimensionValue]] = {}
    for number, row in rows:
        line = f"{where} line {number}"
        dimension = row["dimension"]
        if not dimension:
            raise _invalid(f"{line}: the dimension column is empty")
        values.setdefault(dimension, {})
        if row.get("dimension_name"):
            names[dimension] = row["dimension_name"]
        if not row["code"]:
            archived[dimension] = _archived(row, line)
            if row.get("name"):
                names[dimension] = row["name"]
            continue
        if row["code"] in values[dimension]:
            raise _invalid(f"{line}: value {row['code']!r} of {dimension!r} is listed twice")
        with _checked(line):
            values[dimension][row["code"]] = DimensionValue(
                code=row["code"], name=row.get("name") or row["code"], archived=_archived(row, line)
            )
    return [
        AccountingDimension(
            code=dimension,
            name=names.get(dimension, dimension),
            values=tuple(found.values()),
            archived=archived.get(dimension, False),
        )
        for dimension, found in values.items()
    ]


def find_vendor(vendors: list[AccountingVendor], draft: VendorDraft) -> AccountingVendor | None:
    """The active vendor with the draft's tax number, else with its name."""
    active = [v for v in vendors if not v.archived]
    if draft.tax_registration_number:
        for vendor in active:
            if vendor.tax_registration_number and tax_numbers_match(
                draft.tax_registration_number, vendor.tax_registration_number
            ):
                return vendor
    name = draft.name.strip().casefold()
    return next((v for v in active if v.name.strip().casefold() == name), None)


async def request_vendor(storage: Storage, settings: SftpSettings, draft: VendorDraft) -> bool:
    """Append ``draft`` to ``vendor_requests_file`` unless it is there; whether it was added.

    A new file gets the header :data:`REQUEST_COLUMNS`; a row added to an existing file follows
    that file's header (its columns may have been reordered, unknown ones stay empty), which
    must have ``pleo_id``: without it a request could not be found again, and one would be
    added on every round. The file is rewritten through a temporary file renamed into place, so
    a reader never sees half a row."""
    name = settings.vendor_requests_file
    if name is None:
        return False
    where = f"{storage.describe(name)} (setting vendor_requests_file)"
    data = await storage.read(name)
    text = (
        _decode(
            data,
            settings,
            where,
            f"save it as {settings.encoding}, or move it away to have pleo-export start a new one",
        )
        if data is not None
        else ""
    )
    rows = [
        row
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=settings.delimiter)
        if any(cell.strip() for cell in row)
    ]
    header = [cell.strip().lower() for cell in rows[0]] if rows else list(REQUEST_COLUMNS)
    if "pleo_id" not in header:
        raise _invalid(
            f"{where} has no pleo_id column in its header row ({', '.join(header) or 'empty'}), "
            "so pleo-export cannot tell which vendors it requested: add the column, or move "
            "the file away to have pleo-export start a new one"
        )
    column = header.index("pleo_id")
    if any(len(row) > column and row[column].strip() == draft.pleo_id for row in rows[1:]):
        return False
    values = {
        "requested_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "pleo_id": draft.pleo_id,
        "name": draft.name,
        "tax_number": draft.tax_registration_number or "",
        "registration_number": draft.registration_number or "",
        "currency": draft.currency,
        "country": draft.country or "",
    }
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=settings.delimiter, lineterminator=settings.newline)
    if not rows:
        writer.writerow(REQUEST_COLUMNS)
    writer.writerow([values.get(column_name, "") for column_name in header])
    prefix = text if not text or text.endswith(("\n", "\r")) else text + settings.newline
    content = (prefix + out.getvalue()).encode(settings.encoding, errors="replace")
    temporary = temp_name(name)
    await storage.write(temporary, content)
    try:
        await storage.replace(temporary, name)
    except BaseException:
        await storage.remove(temporary)
        raise
    return True


async def create_vendor(
    storage: Storage, settings: SftpSettings, draft: VendorDraft
) -> AccountingVendor:
    vendors = await list_vendors(storage, settings)
    found = find_vendor(vendors, draft)
    if found is not None:
        return found
    listed = storage.describe(settings.vendors_file)
    requested = await request_vendor(storage, settings, draft)
    if settings.vendor_requests_file is None:
        asked = (
            "set vendor_requests_file to have pleo-export write such requests to a CSV file "
            "for the accounting team"
        )
    else:
        where = storage.describe(settings.vendor_requests_file)
        asked = f"it is {'now' if requested else 'already'} requested in {where}"
    raise ItemRejected(
        Reason.VENDOR_UNKNOWN,
        f"vendor {draft.name!r} is not in the receiving system's vendor list {listed} "
        "(setting vendors_file), and pleo-export cannot create vendors in a system it only "
        f"delivers files to: {asked}. Create the vendor in the accounting system and export "
        "its vendor list again; the vendor is activated in Pleo when it appears there",
    )


def write_chart_files(directory: Path, chart: Any) -> dict[str, str]:
    """``vendors.csv``, ``tax-codes.csv`` and ``dimensions.csv`` in ``directory`` for the
    sandbox chart, as a receiving system would export them; the settings that name them."""

    def write(name: str, header: tuple[str, ...], rows: list[list[str]]) -> None:
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        (directory / name).write_text(out.getvalue(), encoding="utf-8", newline="")

    write(
        "vendors.csv",
        VENDOR_COLUMNS,
        [
            [
                v.code,
                v.name,
                v.external_id,
                v.tax_registration_number or "",
                v.registration_number or "",
                v.default_currency,
                v.country or "",
                "",
            ]
            for v in chart.vendors
        ],
    )
    write(
        "tax-codes.csv",
        TAX_CODE_COLUMNS,
        [
            [
                t.code,
                t.name,
                str(t.rate),
                t.type,
                t.ingoing_tax_account or "",
                t.outgoing_tax_account or "",
                "",
            ]
            for t in chart.tax_codes
        ],
    )
    write(
        "dimensions.csv",
        DIMENSION_COLUMNS,
        [[g.code, g.name, t.code, t.name, ""] for g in chart.tag_groups for t in g.tags],
    )
    return {
        "vendors_file": "vendors.csv",
        "tax_codes_file": "tax-codes.csv",
        "dimensions_file": "dimensions.csv",
        "vendor_requests_file": "vendor-requests.csv",
    }
