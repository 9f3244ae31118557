"""The kit's judgement on hand-made outcomes: each way a connector can be wrong gets a sentence
that names the item, what happened and what to do."""

from __future__ import annotations

from typing import Any

import pytest

from pleo_export.bookkeeping import plan_item
from pleo_export.connector import Capability, ConnectorManifest, Limits
from pleo_export.ledger import PostingPlan
from pleo_export.pleo.models import ExportItem, ExportJob, ExportJobItem
from pleo_export.testing import ConformanceSuite, TargetEntry, TargetPosting
from pleo_export.testing.checks import ConformanceFailure, Expect, judge
from pleo_export.testing.items import ItemFactory, Line
from pleo_export.testing.scenarios import SCENARIOS, not_applicable
from pleo_export.testing.suite import validate_suite
from pleo_export_sandbox import DEMO_CHART
from tests.support.memory import MemorySettings

COMPANY = "00000000-0000-4000-8000-0000000000c0"
JOB = ExportJob.model_validate(
    {
        "id": "00000000-0000-4000-8000-0000000000a0",
        "companyId": COMPANY,
        "status": "in_progress",
        "createdAt": "2025-03-01T08:00:00Z",
        "expiresIn": 3600,
        "isInteractive": True,
        "numberOfItems": 1,
        "vendorBasedBookkeeping": False,
    }
)


@pytest.fixture
def plan() -> PostingPlan:
    factory = ItemFactory(DEMO_CHART, COMPANY, "GBP", "checks")
    wire = factory.spend("one", [Line(factory.account("6100"), 12_000, factory.tax("S20"))])
    return plan_item(ExportItem.model_validate(wire), JOB)


def pleo(plan: PostingPlan, status: str, **fields: Any) -> dict[str, ExportJobItem]:
    item = ExportJobItem(
        accounting_entry_id=plan.reference, export_job_id=JOB.id, status=status, **fields
    )
    return {plan.reference: item}


def booked(plan: PostingPlan, *, external_id: str = "L1", drop: int = 0) -> TargetEntry:
    postings = [
        TargetPosting(f"acct:{p.account.role}", p.amount, p.currency) for p in plan.postings
    ]
    return TargetEntry(plan.reference, external_id, tuple(postings[drop:]))


def test_a_correct_outcome_has_no_problems(plan: PostingPlan) -> None:
    expect = [Expect(plan.reference, "card purchase", succeed=True)]
    outcome = pleo(plan, "successful", external_id="L1")
    assert judge(expect, outcome, [booked(plan)], {plan.reference: plan}, "GBP") == []


def test_a_duplicate_names_the_reference_and_the_fix(plan: PostingPlan) -> None:
    expect = [Expect(plan.reference, "crashed", succeed=True, duplicate="find_existing must ...")]
    entries = [booked(plan), booked(plan, external_id="L2")]
    problems = judge(expect, pleo(plan, "successful", external_id="L1"), entries, {}, "GBP")
    assert problems == [
        f"reference {plan.reference} is in the target 2 times (crashed); find_existing must ..."
    ]


def test_success_without_an_entry_in_the_target(plan: PostingPlan) -> None:
    expect = [Expect(plan.reference, "card purchase", succeed=True)]
    (problem,) = judge(expect, pleo(plan, "successful", external_id="L9"), [], {}, "GBP")
    assert "is successful in Pleo (externalId 'L9') but the target holds no entry" in problem


def test_an_unbalanced_entry_shows_its_postings(plan: PostingPlan) -> None:
    expect = [Expect(plan.reference, "card purchase", succeed=True)]
    entry = booked(plan, drop=1)  # without the expense posting
    (problem,) = judge(expect, pleo(plan, "successful", external_id="L1"), [entry], {}, "GBP")
    assert "does not balance: its postings sum to -10000 GBP" in problem
    assert "acct:tax_input 2000 GBP" in problem


def test_amounts_other_than_the_items_are_named(plan: PostingPlan) -> None:
    expect = [Expect(plan.reference, "card purchase", succeed=True)]
    doubled = TargetEntry(
        plan.reference,
        "L1",
        tuple((f"a{n}", p.amount * 2, p.currency) for n, p in enumerate(plan.postings)),
    )
    (problem,) = judge(
        expect, pleo(plan, "successful", external_id="L1"), [doubled], {plan.reference: plan}, "GBP"
    )
    assert (
        "moves 24000 GBP in debits and -24000 in credits, but the item books 12000 and -12000"
        in problem
    )


def test_a_wrong_reason_type_and_a_vague_message(plan: PostingPlan) -> None:
    expect = [
        Expect(
            plan.reference,
            "account 6999",
            succeed=False,
            reason="account_unknown",
            why="6999 is unknown",
            mentions=("6999",),
        )
    ]
    outcome = pleo(plan, "failed", failure_reason_type="unexpected_failure", failure_reason="oops")
    problems = judge(expect, outcome, [], {}, "GBP")
    assert len(problems) == 2
    assert "failed with unexpected_failure but must fail with account_unknown" in problems[0]
    assert "ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN" in problems[0]
    assert "failed with the message 'oops', which tells the finance team nothing" in problems[1]


def test_a_message_must_name_the_offending_value(plan: PostingPlan) -> None:
    expect = [
        Expect(plan.reference, "x", succeed=False, reason="account_unknown", mentions=("6999",))
    ]
    outcome = pleo(
        plan,
        "failed",
        failure_reason_type="account_unknown",
        failure_reason="an account is not in the chart of accounts",
    )
    (problem,) = judge(expect, outcome, [], {}, "GBP")
    assert "failed with a message that does not name '6999'" in problem


def test_a_failed_item_must_leave_nothing_in_the_target(plan: PostingPlan) -> None:
    expect = [Expect(plan.reference, "x", succeed=False, reason="account_unknown")]
    outcome = pleo(
        plan, "failed", failure_reason_type="account_unknown", failure_reason="account 6999 ..."
    )
    (problem,) = judge(expect, outcome, [booked(plan)], {}, "GBP")
    assert "but the target holds 1 entries for it: nothing may be written" in problem


def test_external_id_must_match_and_strangers_are_reported(plan: PostingPlan) -> None:
    expect = [Expect(plan.reference, "x", succeed=True)]
    stranger = TargetEntry("not-in-this-job", "L7", (("a", 1, "GBP"), ("b", -1, "GBP")))
    problems = judge(
        expect,
        pleo(plan, "successful", external_id="L1"),
        [booked(plan, external_id="L5"), stranger],
        {},
        "GBP",
    )
    assert (
        "was reported to Pleo with externalId 'L1' but the target holds it as 'L5'" in problems[0]
    )
    assert "holds an entry for reference 'not-in-this-job'" in problems[1]


def test_a_failure_lists_every_problem_under_the_scenario() -> None:
    failure = ConformanceFailure("unknown_account", ["first", "second"], connector="x")
    assert str(failure) == "unknown_account: 2 problems with connector 'x':\n  - first\n  - second"
    assert str(ConformanceFailure("closed_period", ["only"])) == "closed_period: only"


def test_target_types_take_plain_tuples_and_refuse_fractional_amounts() -> None:
    entry = TargetEntry("r", "e", (("Expenses:A", 150, "GBP"), ("Assets:B", -150, "GBP")))
    assert entry.postings[0] == TargetPosting("Expenses:A", 150, "GBP")
    assert entry.balances() == {"GBP": 0}
    with pytest.raises(TypeError, match=r"amount_minor must be an int of minor units"):
        TargetPosting("Expenses:A", 1.5, "GBP")  # type: ignore[arg-type]


def test_capabilities_decide_which_scenarios_apply() -> None:
    manifest = ConnectorManifest(
        id="x",
        display_name="x",
        capabilities=frozenset({Capability.JOURNAL, Capability.ATTACHMENTS}),
        settings_model=MemorySettings,
    )
    reasons = {sid: not_applicable(s, manifest) for sid, s in SCENARIOS.items()}
    assert reasons["happy_accounts_payable"] == "the connector does not declare accounts_payable"
    assert reasons["unknown_vendor"] == "the connector does not declare accounts_payable"
    assert reasons["attachment_over_limit"] == (
        "the connector declares no limits.max_attachment_bytes"
    )
    assert reasons["crash_retry_no_duplicates"] is None  # without lookup it expects failures
    limited = manifest.model_copy(update={"limits": Limits(max_attachment_bytes=1000)})
    assert not_applicable(SCENARIOS["attachment_over_limit"], limited) is None


def test_suite_attributes_are_validated() -> None:
    class TestGood(ConformanceSuite):
        connector_id = "memory"
        exempt = {"closed_period": "the memory target has no periods"}

    class TestBad(ConformanceSuite):
        exempt = {"closed_period": "", "nope": "a reason that is long enough"}

    assert validate_suite(TestGood) == []
    problems = validate_suite(TestBad)
    assert len(problems) == 3
    assert problems[0].startswith("TestBad.connector_id must be the entry-point name")
    assert "exempt['closed_period'] has no reason" in problems[1]
    assert "exempt names 'nope', which is not a scenario" in problems[2]
