"""``ConformanceSuite``: the base test class a connector package subclasses.

One test method per scenario (``test_<scenario id>``). An autouse fixture decides, before the
target is built, whether the scenario runs, is exempt (with the reason the connector wrote) or
does not apply to the connector's declared capabilities; the decision is recorded for the
plugin's terminal summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pleo_export.testing.checks import ConformanceFailure
from pleo_export.testing.harness import load_connector_class
from pleo_export.testing.scenarios import SCENARIOS, Kit, not_applicable, run_scenario
from pleo_export.testing.target import ConnectorTarget
from pleo_export_sandbox import DEMO_CHART, Chart

PLUGIN = "pleo_export.testing.plugin"
PROPERTY = "pleo_export_conformance"
"""The ``user_properties`` key under which each scenario test records its decision."""
MIN_REASON_LENGTH = 10

OPT_IN = f'pytest_plugins = ["{PLUGIN}"]'

ScenarioTest = Callable[
    ["ConformanceSuite", ConnectorTarget, Chart, str, Path], Coroutine[Any, Any, None]
]


def validate_suite(cls: type[Any]) -> list[str]:
    """Problems with a suite's class attributes (empty when it is well formed)."""
    problems: list[str] = []
    connector_id = getattr(cls, "connector_id", "")
    if not isinstance(connector_id, str) or not connector_id:
        problems.append(
            f"{cls.__name__}.connector_id must be the entry-point name of the connector "
            '(group pleo_export.connectors), e.g. connector_id = "beancount"'
        )
    exempt = getattr(cls, "exempt", {})
    if not isinstance(exempt, Mapping):
        return [*problems, f"{cls.__name__}.exempt must be a dict of scenario id -> reason"]
    for scenario, reason in exempt.items():
        if scenario not in SCENARIOS:
            problems.append(
                f"{cls.__name__}.exempt names {scenario!r}, which is not a scenario; the "
                f"scenarios are {', '.join(SCENARIOS)}"
            )
        elif not isinstance(reason, str) or len(reason.strip()) < MIN_REASON_LENGTH:
            problems.append(
                f"{cls.__name__}.exempt[{scenario!r}] has no reason ({reason!r}): write why "
                "the scenario cannot apply to this target; the kit prints it"
            )
    return problems


def _scenario_test(scenario: str) -> ScenarioTest:
    """The test method that runs ``scenario`` (the same body for every scenario)."""

    async def test(
        self: ConformanceSuite,
        connector_target: ConnectorTarget,
        conformance_chart: Chart,
        conformance_currency: str,
        tmp_path: Path,
    ) -> None:
        await self._scenario(
            scenario, connector_target, conformance_chart, conformance_currency, tmp_path
        )

    test.__name__ = f"test_{scenario}"
    test.__qualname__ = f"ConformanceSuite.test_{scenario}"
    return test


class ConformanceSuite:
    """Subclass as ``TestConformance`` in your connector's tests; see ``docs/conformance.md``.

    Set ``connector_id`` and define the ``connector_target`` fixture. ``exempt`` maps scenario
    ids to the reason they cannot apply to your target.
    """

    connector_id: ClassVar[str] = ""
    exempt: ClassVar[Mapping[str, str]] = {}

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def conformance_chart(self) -> Chart:
        """The chart every scenario's items use: build the target from it."""
        return DEMO_CHART

    @pytest.fixture
    def conformance_currency(self) -> str:
        """The wallet currency of the sandbox company (amounts balance in it)."""
        return "GBP"

    @pytest.fixture
    def connector_target(self) -> ConnectorTarget:
        pytest.fail(
            f"{type(self).__name__} must define the connector_target fixture: build a fresh, "
            "empty target that knows conformance_chart and yield a ConnectorTarget",
            pytrace=False,
        )

    @pytest.fixture(autouse=True)
    def _pleo_export_conformance_gate(self, request: pytest.FixtureRequest) -> None:
        name = request.function.__name__
        scenario = name.removeprefix("test_")
        if scenario not in SCENARIOS:
            return
        if not request.config.pluginmanager.has_plugin(PLUGIN):
            pytest.fail(
                f"the conformance kit is opt-in: add {OPT_IN} to this test module (or to the "
                "root conftest.py)",
                pytrace=False,
            )
        cls = type(self)
        problems = validate_suite(cls)
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)

        def record(status: str, reason: str = "") -> None:
            value = {
                "connector": cls.connector_id,
                "suite": cls.__name__,
                "scenario": scenario,
                "status": status,
                "reason": reason,
            }
            request.node.user_properties.append((PROPERTY, json.dumps(value)))

        reason = cls.exempt.get(scenario)
        if reason is not None:
            record("exempt", reason.strip())
            pytest.skip(f"exempt: {reason.strip()}")
        try:
            manifest = load_connector_class(cls.connector_id, scenario=scenario).manifest
        except ConformanceFailure:
            record("run")
            return  # the test itself reports why the connector cannot be loaded
        why = not_applicable(SCENARIOS[scenario], manifest)
        if why is not None:
            record("not_applicable", why)
            pytest.skip(f"not applicable: {why}")
        record("run")

    async def _scenario(
        self, scenario: str, target: ConnectorTarget, chart: Chart, currency: str, path: Path
    ) -> None:
        if not isinstance(target, ConnectorTarget):
            pytest.fail(
                f"connector_target must yield a ConnectorTarget, got {type(target).__name__}",
                pytrace=False,
            )
        kit = Kit(
            connector_id=type(self).connector_id,
            target=target,
            chart=chart,
            currency=currency,
            work_dir=path,
        )
        try:
            await run_scenario(scenario, kit)
        except ConformanceFailure as failure:
            message = str(failure)
        else:
            return
        pytest.fail(message, pytrace=False)  # outside the except: no chained traceback

    # One test per scenario, named test_<scenario id> (the gate above reads the name).
    test_happy_journal = _scenario_test("happy_journal")
    test_happy_accounts_payable = _scenario_test("happy_accounts_payable")
    test_partial_failure = _scenario_test("partial_failure")
    test_crash_retry_no_duplicates = _scenario_test("crash_retry_no_duplicates")
    test_unknown_account = _scenario_test("unknown_account")
    test_unknown_vendor = _scenario_test("unknown_vendor")
    test_unknown_tax_code = _scenario_test("unknown_tax_code")
    test_attachment_over_limit = _scenario_test("attachment_over_limit")
    test_closed_period = _scenario_test("closed_period")
    test_rounding_residual = _scenario_test("rounding_residual")
    test_pleo_429_storm = _scenario_test("pleo_429_storm")
    test_target_unreachable_precheck = _scenario_test("target_unreachable_precheck")
    test_read_vendors = _scenario_test("read_vendors")
    test_read_tax_codes = _scenario_test("read_tax_codes")
    test_read_dimensions = _scenario_test("read_dimensions")
    test_create_vendor_idempotent = _scenario_test("create_vendor_idempotent")


__all__ = ["PLUGIN", "PROPERTY", "ConformanceSuite", "validate_suite"]
