"""The correct JSON-lines ledger connector the broken examples derive from: it must pass every
scenario, so each broken example's failures come from its one defect."""

from __future__ import annotations

from pathlib import Path

import pytest
from pleo_export_broken.conformance import ledger_target

from pleo_export.testing import ConformanceSuite, ConnectorTarget
from pleo_export_sandbox import Chart

pytest_plugins = ["pleo_export.testing.plugin"]


class TestConformance(ConformanceSuite):
    connector_id = "ledger-file"

    @pytest.fixture
    def connector_target(self, tmp_path: Path, conformance_chart: Chart) -> ConnectorTarget:
        return ledger_target(tmp_path / "books", conformance_chart)
