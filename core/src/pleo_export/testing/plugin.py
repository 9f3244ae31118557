"""The conformance kit's pytest plugin. A connector package opts in explicitly::

    pytest_plugins = ["pleo_export.testing.plugin"]

in its conformance test module (or its root ``conftest.py``). The plugin collects what each
scenario test decided (run, exempt with its reason, not applicable) and how it ended, and
prints a summary after the run: per connector, the scenarios run, passed and failed, and
every exemption with its reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from pleo_export.testing.suite import PROPERTY

RECORDER = "pleo_export.testing.recorder"


@dataclass
class Decision:
    connector: str
    suite: str
    scenario: str
    status: str
    """``run``, ``exempt`` or ``not_applicable``."""
    reason: str
    outcome: str = "not run"
    """``passed``, ``failed``, ``error`` or ``skipped``."""


class Recorder:
    """Gathers the scenario decisions and outcomes of one pytest session."""

    def __init__(self) -> None:
        self.decisions: dict[str, Decision] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = dict(report.user_properties).get(PROPERTY)
        if not isinstance(raw, str):
            return
        decision = self.decisions.get(report.nodeid)
        if decision is None:
            data: dict[str, Any] = json.loads(raw)
            decision = Decision(
                connector=str(data["connector"]),
                suite=str(data["suite"]),
                scenario=str(data["scenario"]),
                status=str(data["status"]),
                reason=str(data["reason"]),
            )
            self.decisions[report.nodeid] = decision
        if report.when == "call":
            decision.outcome = report.outcome
        elif report.failed:
            decision.outcome = "error"
        elif report.skipped and report.when == "setup":
            decision.outcome = "skipped"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.decisions:
            return
        write = terminalreporter.write_line
        terminalreporter.section("pleo-export conformance")
        groups: dict[tuple[str, str], list[Decision]] = {}
        for decision in self.decisions.values():
            groups.setdefault((decision.connector, decision.suite), []).append(decision)
        for (connector, suite), decisions in groups.items():
            ran = [d for d in decisions if d.status == "run"]
            passed = sum(1 for d in ran if d.outcome == "passed")
            failed = [d for d in ran if d.outcome in ("failed", "error")]
            exempt = [d for d in decisions if d.status == "exempt"]
            na = [d for d in decisions if d.status == "not_applicable"]
            write(
                f"connector {connector!r} ({suite}): {_count(len(ran), 'scenario')} run, "
                f"{passed} passed, {len(failed)} failed; {len(exempt)} exempted; "
                f"{len(na)} not applicable"
            )
            for d in exempt:
                write(f"  exempt {d.scenario}: {d.reason}")
            for d in na:
                write(f"  not applicable {d.scenario}: {d.reason}")
            for d in failed:
                write(f"  FAILED {d.scenario}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(RECORDER):
        config.pluginmanager.register(Recorder(), RECORDER)
