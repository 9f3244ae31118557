"""A plugin that raises in a hook is isolated: logged as ``plugin.hook_failed``, treated as
having answered nothing, and the other plugins in the same hook still run."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest

from pleo_export.hookspecs import Problem, hookimpl
from pleo_export.host import Origin, PluginHost
from pleo_export.pleo.models import ExportJobItemStatus, ExportJobStatus
from tests.engine.conftest import Harness

pytestmark = pytest.mark.anyio

HOOKS = (
    "pleo_export_job_started",
    "pleo_export_validate_job",
    "pleo_export_job_finished",
    "pleo_export_validate_item",
    "pleo_export_map_item",
    "pleo_export_item_outcome",
)


class Broken:
    """Raises in every hook the engine calls on a clean run."""

    @hookimpl
    def pleo_export_job_started(self, job: Any) -> None:
        raise RuntimeError("job_started bug")

    @hookimpl
    def pleo_export_validate_job(self, job: Any) -> None:
        raise RuntimeError("validate_job bug")

    @hookimpl
    def pleo_export_job_finished(self, job: Any) -> None:
        raise RuntimeError("job_finished bug")

    @hookimpl
    def pleo_export_validate_item(self, item: Any) -> None:
        raise ValueError("validate_item bug")

    @hookimpl(tryfirst=True)
    def pleo_export_map_item(self, plan: Any) -> None:
        raise KeyError("map_item bug")

    @hookimpl
    def pleo_export_item_outcome(self, outcome: Any) -> None:
        raise RuntimeError("item_outcome bug")


class Policy:
    """A working plugin in the same hooks: it still runs after the broken one raised."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    @hookimpl
    def pleo_export_job_started(self, job: Any) -> None:
        self.calls["job_started"] += 1

    @hookimpl
    def pleo_export_job_finished(self, job: Any) -> None:
        self.calls["job_finished"] += 1

    @hookimpl
    def pleo_export_validate_item(self, item: Any) -> list[Problem] | None:
        if item.type == "card_purchase":
            return [Problem("validation_failure", "card purchases are refused by policy")]
        return None

    @hookimpl
    def pleo_export_item_outcome(self, outcome: Any) -> None:
        self.calls["item_outcome"] += 1


async def test_a_raising_plugin_is_logged_and_the_others_still_run(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pleo_export")
    host = PluginHost(load_entry_points=False)
    policy = Policy()
    # Registered first, so pluggy calls the broken plugin first in every hook.
    assert host.register(policy, Origin("policy", "tests", "tests", "0"))
    assert host.register(Broken(), Origin("broken", "tests", "tests", "0"))
    job = harness.sandbox.queue_export(harness.company_id, count=30, seed=4, attachments=False)
    async with harness.engine(host=host) as engine:
        report = await engine.run_pending()

    assert harness.sandbox.get_job(job.id).status is ExportJobStatus.COMPLETED_WITH_ERRORS
    items = harness.sandbox.job_items(job.id)
    cards = {
        i.accounting_entry_id
        for i in items
        if harness.sandbox.export_item(i.accounting_entry_id)["type"] == "card_purchase"
    }
    assert cards
    for item in items:
        if item.accounting_entry_id in cards:
            assert item.status is ExportJobItemStatus.FAILED
            assert item.failure_reason == "card purchases are refused by policy"
        else:
            assert item.status is ExportJobItemStatus.SUCCESSFUL
    assert report.jobs[0].posted == 30 - len(cards)
    assert policy.calls == {"job_started": 1, "job_finished": 1, "item_outcome": 30}

    failed = [r for r in caplog.records if getattr(r, "event", None) == "plugin.hook_failed"]
    assert {r.hook for r in failed} == set(HOOKS)
    assert {r.plugin for r in failed} == {"broken"}
    by_hook = Counter(r.hook for r in failed)
    assert by_hook["pleo_export_item_outcome"] == 30
    # Items that fail validation never reach the mapping hook.
    assert by_hook["pleo_export_map_item"] == 30 - len(cards)
    sample = next(r for r in failed if r.hook == "pleo_export_validate_item")
    assert sample.levelno == logging.ERROR
    assert "ValueError: validate_item bug" in sample.getMessage()
    assert sample.exc_info is not None


async def test_a_base_exception_in_a_hook_still_stops_the_run(harness: Harness) -> None:
    class Interrupt:
        @hookimpl
        def pleo_export_job_started(self, job: Any) -> None:
            raise KeyboardInterrupt

    host = PluginHost(load_entry_points=False)
    assert host.register(Interrupt(), Origin("interrupt", "tests", "tests", "0"))
    harness.sandbox.queue_export(harness.company_id, count=2, seed=5, attachments=False)
    async with harness.engine(host=host) as engine:
        with pytest.raises(KeyboardInterrupt):
            await engine.run_pending()
