"""The booking date is the company's calendar date, not the UTC one."""

from __future__ import annotations

from datetime import date

import pytest

from pleo_export.bookkeeping import PlanOptions, plan_item
from pleo_export.config import ConfigError, load_settings
from pleo_export.pleo.models import ExportItem, ExportJob
from pleo_export_sandbox import generate_items

JOB = ExportJob.model_validate(
    {
        "id": "00000000-0000-4000-8000-000000000001",
        "companyId": "00000000-0000-4000-8000-000000000002",
        "status": "in_progress",
        "createdAt": "2026-03-01T08:00:00Z",
        "expiresIn": 3600,
        "isInteractive": True,
        "numberOfItems": 1,
        "vendorBasedBookkeeping": False,
    }
)


def _card_purchase_at(timestamp: str) -> ExportItem:
    [raw] = generate_items(JOB.company_id, 1, seed=1, types=["card_purchase"])
    return ExportItem.model_validate({**raw, "date": timestamp})


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", date(2026, 2, 28)),
        ("Europe/Copenhagen", date(2026, 3, 1)),
        ("America/New_York", date(2026, 2, 28)),
    ],
)
def test_entry_date_follows_the_booking_time_zone(zone: str, expected: date) -> None:
    item = _card_purchase_at("2026-02-28T23:30:00Z")
    plan = plan_item(item, JOB, PlanOptions(booking_timezone=zone))
    assert {entry.date for entry in plan.entries} == {expected}


def test_unknown_time_zone_is_a_configuration_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"engine\.booking_timezone"):
        load_settings(engine={"booking_timezone": "Europe/Atlantis"})
