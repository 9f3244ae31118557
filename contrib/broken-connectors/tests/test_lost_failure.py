"""Conformance of `broken-lost-failure`, which loses failures: it books unknown accounts,
vendors and tax codes to a suspense account.

The kit must FAIL this module: ``tests/testing`` in the pleo-export repository runs it and
checks that the failures name the expected scenarios.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pleo_export_broken.conformance import ledger_target

from pleo_export.testing import ConformanceSuite, ConnectorTarget
from pleo_export_sandbox import Chart

pytest_plugins = ["pleo_export.testing.plugin"]


class TestConformance(ConformanceSuite):
    connector_id = "broken-lost-failure"

    @pytest.fixture
    def connector_target(self, tmp_path: Path, conformance_chart: Chart) -> ConnectorTarget:
        return ledger_target(tmp_path / "books", conformance_chart)
