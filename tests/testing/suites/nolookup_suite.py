"""``ledger-file-nolookup`` against the kit: it must pass (the crash scenario expects the
interrupted items to fail, each in the target once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pleo_export_broken.conformance import ledger_target

from pleo_export.testing import ConformanceSuite, ConnectorTarget
from pleo_export_sandbox import Chart

pytest_plugins = ["pleo_export.testing.plugin"]


class TestConformance(ConformanceSuite):
    connector_id = "ledger-file-nolookup"

    @pytest.fixture
    def connector_target(self, tmp_path: Path, conformance_chart: Chart) -> ConnectorTarget:
        return ledger_target(tmp_path / "books", conformance_chart)
