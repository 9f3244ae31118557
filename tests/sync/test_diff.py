"""The sync plan: matching on external id, code, tax number and name; never a delete."""

from __future__ import annotations

from decimal import Decimal

from pleo_export.masterdata import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    DimensionValue,
)
from pleo_export.pleo.models import TaxType
from pleo_export.sync.diff import (
    Action,
    Entity,
    FieldChange,
    PleoRecord,
    RecordState,
    diff_tags,
    diff_tax_codes,
    diff_vendors,
    normalise_rate,
)


def vendor(code: str, name: str, **extra: object) -> AccountingVendor:
    values: dict[str, object] = {
        "code": code,
        "name": name,
        "external_id": f"X-{code}",
        "currency": "GBP",
        **extra,
    }
    return AccountingVendor.model_validate(values)


def pleo_vendor(
    id_: str, name: str, state: RecordState = RecordState.ACTIVE, **fields: str | None
) -> PleoRecord:
    return PleoRecord(
        id=id_, fields={"name": name, "default_currency": "GBP", **fields}, state=state
    )


def test_an_empty_pleo_gets_every_open_vendor_created_and_none_of_the_archived_ones() -> None:
    plan = diff_vendors(
        [vendor("V1", "Acme"), vendor("V2", "Globex", archived=True)],
        [],
    )

    assert [(c.action, c.code) for c in plan.changes] == [(Action.CREATE, "V1")]
    assert plan.changes[0].desired["external_id"] == "X-V1"


def test_vendors_match_on_external_id_then_code_then_tax_number_then_name() -> None:
    accounting = [
        vendor("V1", "Acme"),
        vendor("V2", "Globex"),
        vendor("V3", "Initech", tax_registration_number="GB 123 456"),
        vendor("V4", "Umbrella Corp"),
    ]
    pleo = [
        pleo_vendor("p1", "Acme", code="OLD", external_id="X-V1"),
        pleo_vendor("p2", "Globex", code="V2", external_id="X-V2"),
        pleo_vendor("p3", "Initech Ltd", tax_registration_number="gb123456"),
        pleo_vendor("p4", "umbrella  corp"),
    ]

    plan = diff_vendors(accounting, pleo)

    by_code = {c.code: c for c in plan.changes}
    assert {c: by_code[c].pleo_id for c in by_code} == {
        "V1": "p1",
        "V2": "p2",
        "V3": "p3",
        "V4": "p4",
    }
    assert by_code["V1"].action is Action.UPDATE
    assert by_code["V1"].changes == (FieldChange("code", "OLD", "V1"),)
    assert by_code["V2"].action is Action.UNCHANGED
    assert FieldChange("name", "Initech Ltd", "Initech") in by_code["V3"].changes
    # The tax number matched although spaced and cased differently: not a change.
    assert all(c.field != "tax_registration_number" for c in by_code["V3"].changes)


def test_a_field_the_accounting_system_leaves_empty_keeps_pleos_value() -> None:
    plan = diff_vendors(
        [vendor("V1", "Acme")],
        [pleo_vendor("p1", "Acme", code="V1", external_id="X-V1", country="DK")],
    )

    assert plan.changes[0].action is Action.UNCHANGED


def test_archiving_never_deletes_and_drafts_are_left_to_the_vendor_flow() -> None:
    plan = diff_vendors(
        [vendor("V1", "Acme", archived=True)],
        [
            pleo_vendor("p1", "Acme", code="V1", external_id="X-V1"),
            pleo_vendor("p2", "Gone Ltd", code="V9", external_id="X-V9"),
            pleo_vendor("p3", "New In Pleo", state=RecordState.DRAFT),
            pleo_vendor("p4", "Long Gone", state=RecordState.ARCHIVED, code="V8"),
        ],
    )

    assert sorted((c.pleo_id, c.action) for c in plan.writes) == [
        ("p1", Action.ARCHIVE),
        ("p2", Action.ARCHIVE),
    ]
    assert plan.count(Action.UNCHANGED) == 0


def test_an_archived_pleo_vendor_open_in_the_accounting_system_is_reopened() -> None:
    plan = diff_vendors(
        [vendor("V1", "Acme")],
        [pleo_vendor("p1", "Acme", RecordState.ARCHIVED, code="V1", external_id="X-V1")],
    )

    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert change.changes == (FieldChange("state", "archived", "active"),)


def test_a_draft_matching_an_accounting_vendor_is_activated_with_its_code() -> None:
    plan = diff_vendors(
        [vendor("V1", "Acme", tax_registration_number="DK1")],
        [pleo_vendor("p1", "ACME", RecordState.DRAFT, tax_registration_number="DK1")],
    )

    (change,) = plan.changes
    assert change.action is Action.ACTIVATE
    assert FieldChange("code", None, "V1") in change.changes
    assert FieldChange("external_id", None, "X-V1") in change.changes


def test_an_open_pleo_vendor_wins_the_match_over_an_archived_duplicate() -> None:
    plan = diff_vendors(
        [vendor("V1", "Acme")],
        [
            pleo_vendor("old", "Acme", RecordState.ARCHIVED, code="V1", external_id="X-V1"),
            pleo_vendor("new", "Acme", code="V1", external_id="X-V1"),
        ],
    )

    assert [(c.pleo_id, c.action) for c in plan.changes] == [("new", Action.UNCHANGED)]


def tax(code: str, rate: str, **extra: object) -> AccountingTaxCode:
    values: dict[str, object] = {
        "code": code,
        "name": f"VAT {code}",
        "rate": Decimal(rate),
        "type": TaxType.INCLUSIVE,
        **extra,
    }
    return AccountingTaxCode.model_validate(values)


def test_tax_rates_compare_as_numbers_and_changes_name_old_and_new() -> None:
    current = PleoRecord(
        "t1",
        {"code": "S20", "name": "VAT S20", "rate": normalise_rate(0.2), "type": "inclusive"},
    )
    same = diff_tax_codes([tax("S20", "0.200")], [current])
    changed = diff_tax_codes([tax("S20", "0.25")], [current])

    assert same.changes[0].action is Action.UNCHANGED
    assert changed.changes[0].changes == (FieldChange("rate", "0.2", "0.25"),)


def test_a_tax_code_gone_from_the_accounting_system_is_archived() -> None:
    plan = diff_tax_codes([], [PleoRecord("t1", {"code": "OLD", "name": "Old VAT", "rate": "0.1"})])

    (change,) = plan.changes
    assert (change.entity, change.action, change.code) == (
        Entity.TAX_CODE,
        Action.ARCHIVE,
        "OLD",
    )


def test_dimensions_become_tag_groups_and_values_tags_groups_first() -> None:
    dimension = AccountingDimension(
        code="DEPT",
        name="Department",
        values=(DimensionValue(code="SALES", name="Sales"), DimensionValue(code="OPS", name="Ops")),
    )
    group = PleoRecord("g1", {"code": "DEPT", "name": "Department"})
    tags = [
        PleoRecord("t1", {"code": "SALES", "name": "Sales team"}, group_id="g1"),
        PleoRecord("t2", {"code": "HR", "name": "HR"}, group_id="g1"),
    ]

    plan = diff_tags([dimension], [group], tags)
    fresh = diff_tags([dimension], [], [])

    assert [(c.entity, c.action, c.code) for c in plan.changes] == [
        (Entity.TAG_GROUP, Action.UNCHANGED, "DEPT"),
        (Entity.TAG, Action.UPDATE, "SALES"),
        (Entity.TAG, Action.CREATE, "OPS"),
        (Entity.TAG, Action.ARCHIVE, "HR"),
    ]
    assert all(c.group_id == "g1" for c in plan.changes[1:])
    assert [(c.entity, c.action, c.group_code) for c in fresh.changes] == [
        (Entity.TAG_GROUP, Action.CREATE, None),
        (Entity.TAG, Action.CREATE, "DEPT"),
        (Entity.TAG, Action.CREATE, "DEPT"),
    ]
    assert fresh.changes[1].group_id is None  # resolved when the group has been created


def test_the_same_lists_on_both_sides_plan_no_write() -> None:
    accounting = [vendor("V1", "Acme", country="DK"), vendor("V2", "Globex")]
    pleo = [
        pleo_vendor(f"p{i}", v.name, code=v.code, external_id=v.external_id, country=v.country)
        for i, v in enumerate(accounting)
    ]

    assert diff_vendors(accounting, pleo).writes == ()
