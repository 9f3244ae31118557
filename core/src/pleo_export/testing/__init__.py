"""The connector conformance kit: one pytest suite every connector must pass.

A connector package opts in with a test module::

    import pytest
    from pleo_export.testing import ConformanceSuite, ConnectorTarget, TargetEntry

    pytest_plugins = ["pleo_export.testing.plugin"]

    class TestConformance(ConformanceSuite):
        connector_id = "myconnector"
        exempt = {"closed_period": "the target has no accounting periods"}

        @pytest.fixture
        def connector_target(self, tmp_path, conformance_chart, conformance_currency):
            ...
            yield ConnectorTarget(settings={...}, read_entries=read)

The kit drives the real engine against the in-process Pleo sandbox, loads the connector by its
entry-point name and judges every item in Pleo and in the target. See ``docs/conformance.md``.

Plugins have their own check, :func:`check_plugin` (:mod:`pleo_export.testing.plugins`).
Needs pytest, anyio and the sandbox distribution ``pleo-export-sandbox``:
``pip install "pleo-export[testing]"``.
"""

from pleo_export.bookkeeping import plan_item
from pleo_export.testing.checks import ConformanceFailure, Expect
from pleo_export.testing.target import ConnectorTarget, TargetEntry, TargetPosting

try:
    import pytest  # noqa: F401 - checked here so the error below names the fix
except ImportError as error:  # pragma: no cover - exercised without pytest installed
    raise ImportError(
        "pleo_export.testing is the connector conformance kit and needs pytest (and anyio's "
        'pytest plugin): install it with `pip install "pleo-export[testing]"` or add pytest '
        "to your test dependencies"
    ) from error

try:
    import pleo_export_sandbox  # noqa: F401 - the kit runs on it; checked to name the fix
except ModuleNotFoundError as error:  # pragma: no cover - exercised without the sandbox
    if error.name != "pleo_export_sandbox":
        raise
    raise ImportError(
        "pleo_export.testing runs the connector under test against the Pleo sandbox, the "
        'separate distribution pleo-export-sandbox: install it with `pip install "pleo-export'
        '[testing]"` (or pip install pleo-export-sandbox)'
    ) from error

from pleo_export.testing.plugins import PluginCheckFailure, PluginCheckReport, check_plugin
from pleo_export.testing.scenarios import FIRST_OPEN_DAY, SCENARIOS, Kit, run_scenario
from pleo_export.testing.suite import ConformanceSuite

SCENARIO_IDS: tuple[str, ...] = tuple(SCENARIOS)
"""Every scenario id, in the order the suite runs them."""

__all__ = [
    "FIRST_OPEN_DAY",
    "SCENARIOS",
    "SCENARIO_IDS",
    "ConformanceFailure",
    "ConformanceSuite",
    "ConnectorTarget",
    "Expect",
    "Kit",
    "PluginCheckFailure",
    "PluginCheckReport",
    "TargetEntry",
    "TargetPosting",
    "check_plugin",
    "plan_item",
    "run_scenario",
]
