"""Suites that are set up wrong: the kit must say what is wrong with each."""

from __future__ import annotations

import pytest

from pleo_export.testing import ConformanceSuite, ConnectorTarget
from pleo_export_sandbox import Chart
from tests.testing.suites.memory_suite import memory_target

pytest_plugins = ["pleo_export.testing.plugin"]


class TestExemptWithoutReason(ConformanceSuite):
    connector_id = "memory"
    exempt = {"closed_period": " "}

    @pytest.fixture
    def connector_target(self, conformance_chart: Chart) -> ConnectorTarget:
        return memory_target(conformance_chart)


class TestExemptUnknownScenario(ConformanceSuite):
    connector_id = "memory"
    exempt = {"closed_periods": "a typo in the scenario id must not go unnoticed"}

    @pytest.fixture
    def connector_target(self, conformance_chart: Chart) -> ConnectorTarget:
        return memory_target(conformance_chart)


class TestNotInstalled(ConformanceSuite):
    connector_id = "not-installed"

    @pytest.fixture
    def connector_target(self, conformance_chart: Chart) -> ConnectorTarget:
        return memory_target(conformance_chart)


class TestNoTargetFixture(ConformanceSuite):
    connector_id = "memory"


class TestMissingHooks(ConformanceSuite):
    """No close_period and no unreachable_settings, and no exemption for either."""

    connector_id = "memory"

    @pytest.fixture
    def connector_target(self, conformance_chart: Chart) -> ConnectorTarget:
        return memory_target(conformance_chart)
