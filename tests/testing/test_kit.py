"""The conformance kit (``pleo_export.testing``) judged on connectors whose verdict is known.

One child pytest session (module scope) runs the kit on:

- the four deliberately broken connectors of ``contrib/broken-connectors``, through their own
  test modules, loaded by the entry points their ``pyproject.toml`` declares (a throwaway
  ``dist-info`` on ``PYTHONPATH`` stands in for installing the distribution);
- ``ledger-file``, the correct connector they all derive from, the same connector without
  ``lookup_by_reference`` (crash scenario only) and with ``batch_posting`` (a few scenarios);
- the in-memory test connector, with exemptions;
- suites that are set up wrong.

The tests assert on its JUnit report and on the kit's terminal summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pleo_export.testing import SCENARIO_IDS
from tests.support.dists import make_distribution
from tests.testing.suites.masterdata_suite import MASTER_DATA_SCENARIOS

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib" / "broken-connectors"
SUITES = Path(__file__).resolve().parent / "suites"
MISCONFIGURED = SUITES / "misconfigured_suite.py"

KIT_TEST_CONNECTORS = {
    "memory": "tests.support.memory:MemoryConnector",
    "ledger-file": "pleo_export_broken.ledger:LedgerFileConnector",
    "ledger-file-nolookup": "tests.testing.suites.variants:NoLookupConnector",
    "ledger-file-batch": "tests.testing.suites.variants:BatchConnector",
    "memory-masterdata": "tests.testing.suites.masterdata_suite:MasterDataConnector",
    "memory-masterdata-duplicating": "tests.testing.suites.masterdata_suite:DuplicatingConnector",
}


@dataclass(frozen=True)
class Verdict:
    """What the kit must say about one broken connector."""

    module: str
    connector_id: str
    failed: frozenset[str]
    may_also_fail: frozenset[str] = frozenset()
    """Scenarios that fail too when the generated items happen to exercise the defect."""
    says: dict[str, tuple[str, ...]] = field(default_factory=dict)


BROKEN = (
    Verdict(
        "test_double_post",
        "broken-double-post",
        frozenset({"crash_retry_no_duplicates"}),
        says={
            "crash_retry_no_duplicates": (
                "is in the target 2 times (posted, then the process crashed before the outcome "
                "was recorded); find_existing must return the entry posted before the crash",
                "find_existing on a freshly opened connector returned None",
            )
        },
    ),
    Verdict(
        "test_false_success",
        "broken-false-success",
        frozenset(
            {
                "partial_failure",
                "unknown_account",
                "unknown_vendor",
                "unknown_tax_code",
                "closed_period",
            }
        ),
        says={
            "unknown_account": (
                "must fail with account_unknown",
                "but Pleo has it successful (externalId 'ledger.jsonl:refused') while the target "
                "holds no entry for it",
                "never return an ExternalRecord for an entry that was not stored",
                "the job ended completed but must end completed_with_errors",
            ),
            "closed_period": ("must fail with accounting_system_validation_failure",),
            "unknown_vendor": ("must fail with vendor_unknown",),
            "unknown_tax_code": ("must fail with tax_code_unknown",),
        },
    ),
    Verdict(
        "test_lost_failure",
        "broken-lost-failure",
        frozenset({"partial_failure", "unknown_account", "unknown_vendor", "unknown_tax_code"}),
        says={
            "unknown_account": (
                "must fail with account_unknown",
                "Pleo has it successful and the target holds an entry for it on",
                "suspense:unmapped",
                "never book it to another account",
            ),
            "unknown_vendor": ("must fail with vendor_unknown", "suspense:unmapped"),
            "unknown_tax_code": ("must fail with tax_code_unknown", "suspense:unmapped"),
        },
    ),
    Verdict(
        "test_unbalanced",
        "broken-unbalanced",
        frozenset({"rounding_residual"}),
        may_also_fail=frozenset(
            {
                "happy_journal",
                "happy_accounts_payable",
                "partial_failure",
                "crash_retry_no_duplicates",
                "pleo_429_storm",
            }
        ),
        says={
            "rounding_residual": (
                "does not balance: its postings sum to -1 GBP",
                "does not balance: its postings sum to 1 GBP",
                "including tax and the rounding residual",
            )
        },
    ),
)


BATCH_SCENARIOS = ("happy_journal", "partial_failure", "crash_retry_no_duplicates")


@dataclass(frozen=True)
class Case:
    outcome: str
    """``passed``, ``failed``, ``error`` or ``skipped``."""
    message: str


@dataclass
class Session:
    stdout: str
    cases: dict[tuple[str, str], Case]
    """(module stem or suite class, test name) -> outcome."""

    def case(self, where: str, test: str) -> Case:
        try:
            return self.cases[(where, test)]
        except KeyError:
            raise AssertionError(f"{where}::{test} did not run; output:\n{self.stdout}") from None

    def outcomes(self, where: str) -> dict[str, Case]:
        return {
            test.removeprefix("test_"): case
            for (module, test), case in self.cases.items()
            if module == where
        }


def _parse(xml: Path) -> dict[tuple[str, str], Case]:
    cases: dict[tuple[str, str], Case] = {}
    for testcase in ET.parse(xml).iter("testcase"):  # noqa: S314 - our own child's report
        module, cls = testcase.attrib["classname"].split(".")[-2:]
        outcome, message = "passed", ""
        for child in testcase:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error"}.get(child.tag, "skipped")
                message = (child.attrib.get("message") or "") + "\n" + (child.text or "")
        case = Case(outcome, message)
        cases[(module, testcase.attrib["name"])] = case
        cases[(cls, testcase.attrib["name"])] = case
    return cases


def _environment(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    paths = [str(site), str(CONTRIB / "src"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _install_fakes(site: Path) -> None:
    """The broken distribution's declared entry points, and the kit tests' own connectors."""
    project = tomllib.loads((CONTRIB / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    make_distribution(
        site,
        project["name"],
        project["version"],
        {"pleo_export.connectors": project["entry-points"]["pleo_export.connectors"]},
        {},
    )
    make_distribution(
        site,
        "pleo-export-kit-test-connectors",
        "0",
        {"pleo_export.connectors": KIT_TEST_CONNECTORS},
        {},
    )


def run_child(tmp: Path, targets: list[str]) -> Session:
    site = tmp / "site"
    if not site.exists():
        _install_fakes(site)
    xml = tmp / f"report-{len(list(tmp.glob('report-*.xml')))}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rs",
        f"--junitxml={xml}",
        f"--rootdir={ROOT}",
        *targets,
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=_environment(site), capture_output=True, text=True, timeout=900
    )
    if not xml.exists():
        raise AssertionError(f"the child pytest wrote no report:\n{result.stdout}\n{result.stderr}")
    return Session(stdout=result.stdout, cases=_parse(xml))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    targets = [str(CONTRIB / "tests" / f"{verdict.module}.py") for verdict in BROKEN]
    targets += [str(SUITES / "reference_suite.py"), str(SUITES / "memory_suite.py")]
    targets.append(
        f"{SUITES / 'nolookup_suite.py'}::TestConformance::test_crash_retry_no_duplicates"
    )
    targets += [f"{SUITES / 'batch_suite.py'}::TestConformance::test_{s}" for s in BATCH_SCENARIOS]
    targets += [
        f"{SUITES / 'masterdata_suite.py'}::{suite}::test_{s}"
        for suite in ("TestConformance", "TestDuplicating")
        for s in MASTER_DATA_SCENARIOS
    ]
    targets += [
        f"{MISCONFIGURED}::{node}"
        for node in (
            "TestExemptWithoutReason::test_happy_journal",
            "TestExemptUnknownScenario::test_happy_journal",
            "TestNotInstalled::test_happy_journal",
            "TestNoTargetFixture::test_happy_journal",
            "TestMissingHooks::test_closed_period",
            "TestMissingHooks::test_target_unreachable_precheck",
        )
    ]
    return run_child(tmp_path_factory.mktemp("kit"), targets)


@pytest.mark.parametrize("verdict", BROKEN, ids=lambda v: v.connector_id)
def test_broken_connector_fails_the_kit_naming_the_scenario(
    session: Session, verdict: Verdict
) -> None:
    outcomes = session.outcomes(verdict.module)
    assert set(outcomes) == set(SCENARIO_IDS), "every scenario is in the report"
    # The ledger connectors keep no master data: those scenarios do not apply to them.
    skipped = {s for s, case in outcomes.items() if case.outcome == "skipped"}
    assert skipped == set(MASTER_DATA_SCENARIOS)
    outcomes = {s: case for s, case in outcomes.items() if s not in skipped}
    failed = {scenario for scenario, case in outcomes.items() if case.outcome == "failed"}
    assert verdict.failed <= failed, f"{verdict.connector_id} passed {verdict.failed - failed}"
    unexpected = failed - verdict.failed - verdict.may_also_fail
    assert not unexpected, {s: outcomes[s].message[:600] for s in unexpected}
    others = {s: c.outcome for s, c in outcomes.items() if s not in failed}
    assert set(others.values()) <= {"passed"}, others
    for scenario in failed:
        message = outcomes[scenario].message
        assert message.startswith(f"Failed: {scenario}: "), message[:300]
    for scenario, fragments in verdict.says.items():
        message = outcomes[scenario].message
        for fragment in fragments:
            assert fragment in message, f"{scenario}: {fragment!r} not in:\n{message}"


def test_the_correct_connector_they_derive_from_passes_every_scenario(session: Session) -> None:
    outcomes = session.outcomes("reference_suite")
    expected = dict.fromkeys(SCENARIO_IDS, "passed") | dict.fromkeys(
        MASTER_DATA_SCENARIOS, "skipped"
    )
    assert {s: c.outcome for s, c in outcomes.items()} == expected
    message = session.case("reference_suite", "test_read_vendors").message
    assert "not applicable: the connector does not declare read_vendors" in message


def test_without_lookup_an_interrupted_item_fails_instead_of_being_posted_again(
    session: Session,
) -> None:
    case = session.case("nolookup_suite", "test_crash_retry_no_duplicates")
    assert case.outcome == "passed", case.message


def test_a_batch_connector_passes_with_the_crash_after_a_batch(session: Session) -> None:
    outcomes = session.outcomes("batch_suite")
    assert {s: c.outcome for s, c in outcomes.items()} == dict.fromkeys(BATCH_SCENARIOS, "passed")


def test_the_memory_connector_passes_with_written_exemptions(session: Session) -> None:
    outcomes = {s: c.outcome for s, c in session.outcomes("memory_suite").items()}
    exempt = {"unknown_vendor", "unknown_tax_code", "closed_period", "target_unreachable_precheck"}
    not_applicable = {"attachment_over_limit", *MASTER_DATA_SCENARIOS}
    assert {s for s, o in outcomes.items() if o == "skipped"} == exempt | not_applicable
    assert {s for s, o in outcomes.items() if o == "passed"} == set(SCENARIO_IDS) - exempt - (
        not_applicable
    )
    attachment = session.case("memory_suite", "test_attachment_over_limit").message
    assert "not applicable: the connector declares no limits.max_attachment_bytes" in attachment
    assert "exempt: the memory target has no accounting periods" in (
        session.case("memory_suite", "test_closed_period").message
    )


def test_a_connector_keeping_master_data_passes_the_master_data_scenarios(
    session: Session,
) -> None:
    outcomes = {s: c.outcome for s, c in session.outcomes("TestConformance").items()}
    assert {s: outcomes.get(s) for s in MASTER_DATA_SCENARIOS} == dict.fromkeys(
        MASTER_DATA_SCENARIOS, "passed"
    )


def test_duplicated_vendors_and_tax_codes_fail_the_master_data_scenarios(
    session: Session,
) -> None:
    outcomes = session.outcomes("TestDuplicating")
    assert {s: c.outcome for s, c in outcomes.items()} == {
        "read_vendors": "passed",
        "read_dimensions": "passed",
        "read_tax_codes": "failed",
        "create_vendor_idempotent": "failed",
    }
    assert "list_tax_codes() answers the tax code 'S20' more than once" in (
        outcomes["read_tax_codes"].message
    )
    message = outcomes["create_vendor_idempotent"].message
    assert message.startswith("Failed: create_vendor_idempotent: ")
    assert "the same draft twice made two vendors" in message
    assert "after a restart the same draft made another vendor" in message
    assert "made another vendor" in message


def test_the_summary_prints_each_exemption_and_the_counts(session: Session) -> None:
    out = session.stdout
    assert "pleo-export conformance" in out
    assert (
        "connector 'memory' (TestConformance): 7 scenarios run, 7 passed, 0 failed; "
        "4 exempted; 5 not applicable" in out
    )
    assert "  exempt closed_period: the memory target has no accounting periods" in out
    assert "  not applicable attachment_over_limit: the connector declares no" in out
    assert (
        "connector 'ledger-file' (TestConformance): 12 scenarios run, 12 passed, 0 failed; "
        "0 exempted; 4 not applicable" in out
    )
    assert (
        "connector 'broken-double-post' (TestConformance): 12 scenarios run, 11 passed, 1 failed"
        in out
    )
    assert "  FAILED crash_retry_no_duplicates" in out


@pytest.mark.parametrize(
    ("suite", "test", "outcome", "fragment"),
    [
        (
            "TestExemptWithoutReason",
            "test_happy_journal",
            "error",
            "TestExemptWithoutReason.exempt['closed_period'] has no reason",
        ),
        (
            "TestExemptUnknownScenario",
            "test_happy_journal",
            "error",
            "exempt names 'closed_periods', which is not a scenario",
        ),
        (
            "TestNotInstalled",
            "test_happy_journal",
            "failed",
            "happy_journal: the connector cannot be loaded by its entry-point name: connector "
            "'not-installed' is not installed",
        ),
        (
            "TestNoTargetFixture",
            "test_happy_journal",
            "error",
            "must define the connector_target fixture",
        ),
        (
            "TestMissingHooks",
            "test_closed_period",
            "failed",
            "closed_period: connector_target.close_period is None",
        ),
        (
            "TestMissingHooks",
            "test_target_unreachable_precheck",
            "failed",
            "target_unreachable_precheck: connector_target.unreachable_settings is None",
        ),
    ],
)
def test_a_suite_set_up_wrong_is_told_what_to_fix(
    session: Session, suite: str, test: str, outcome: str, fragment: str
) -> None:
    case = session.case(suite, test)
    assert case.outcome == outcome, case.message
    assert fragment in case.message, case.message


def test_the_kit_is_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_no_opt_in="""
        from pleo_export.testing import ConformanceSuite

        class TestConformance(ConformanceSuite):
            connector_id = "memory"
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "test_no_opt_in.py::TestConformance::test_happy_journal"
    )
    result.assert_outcomes(errors=1)
    opt_in = 'the conformance kit is opt-in: add pytest_plugins = ["pleo_export.testing.plugin"]'
    assert opt_in in result.stdout.str()
