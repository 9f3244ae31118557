"""Item-by-item judgement of a scenario: what Pleo was told against what the target holds.

Every problem is one sentence that names the scenario's item, what was expected, what
happened (in Pleo and in the target) and what the connector must do instead. A scenario
collects all its problems and fails once with the list (:class:`ConformanceFailure`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pleo_export.ledger import PostingPlan
from pleo_export.pleo.models import ExportJobItem, ExportJobItemStatus
from pleo_export.testing.target import TargetEntry

MAX_LISTED_PROBLEMS = 15
MIN_MESSAGE_LENGTH = 15
"""A failure message shorter than this cannot say what is wrong and what to change."""


class ConformanceFailure(AssertionError):
    """A scenario found the connector (or its ``connector_target`` fixture) wrong."""

    def __init__(self, scenario: str, problems: Sequence[str], *, connector: str = "") -> None:
        self.scenario = scenario
        self.problems = list(problems)
        who = f" with connector {connector!r}" if connector else ""
        if len(self.problems) == 1:
            text = f"{scenario}: {self.problems[0]}"
        else:
            shown = self.problems[:MAX_LISTED_PROBLEMS]
            text = f"{scenario}: {len(self.problems)} problems{who}:\n" + "\n".join(
                f"  - {problem}" for problem in shown
            )
            if len(self.problems) > len(shown):
                text += f"\n  ... and {len(self.problems) - len(shown)} more"
        super().__init__(text)


@dataclass(frozen=True)
class Expect:
    """What must become of one item of a scenario."""

    reference: str
    label: str
    """How the item is named in messages, e.g. ``card_purchase with line 2 on account 6999``."""
    succeed: bool
    reason: str | None = None
    """The ``failureReasonType`` expected when the item must fail."""
    why: str = ""
    """Why the item must fail, e.g. ``account 6999 is not in the target's chart``."""
    mentions: tuple[str, ...] = ()
    """The failure message must contain one of these (the offending value)."""
    fix: str = ""
    """What the connector must do, for the message when it did something else."""
    in_target: int | None = None
    """Entries the target must hold for the item; default 1 when it succeeds, else 0."""
    duplicate: str = "post must write each item once"
    """The end of the message when the item is in the target more than once."""

    @property
    def expected_entries(self) -> int:
        if self.in_target is not None:
            return self.in_target
        return 1 if self.succeed else 0


def _short(text: str | None, limit: int = 160) -> str:
    if not text:
        return "(no message)"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _amount_sums(amounts: Iterable[tuple[int, str]]) -> dict[str, tuple[int, int]]:
    """Per currency: (sum of debits, sum of credits)."""
    debit: dict[str, int] = defaultdict(int)
    credit: dict[str, int] = defaultdict(int)
    for amount, currency in amounts:
        if amount > 0:
            debit[currency] += amount
        elif amount < 0:
            credit[currency] += amount
    return {c: (debit[c], credit[c]) for c in sorted({*debit, *credit})}


def plan_sums(plan: PostingPlan) -> dict[str, tuple[int, int]]:
    return _amount_sums((p.amount, p.currency) for p in plan.postings)


def entry_sums(entry: TargetEntry) -> dict[str, tuple[int, int]]:
    return _amount_sums((p.amount_minor, p.currency) for p in entry.postings)


def check_entry(
    entry: TargetEntry, plan: PostingPlan | None, label: str, currency: str
) -> list[str]:
    """Balance and amounts of one entry the target holds."""
    problems: list[str] = []
    where = f"the entry for reference {entry.reference} ({label}) in the target"
    if not entry.postings:
        return [f"{where} has no postings: read_entries must return every posting it holds"]
    unbalanced = {c: s for c, s in entry.balances().items() if s != 0}
    if unbalanced:
        sums = ", ".join(f"{s} {c}" for c, s in unbalanced.items())
        problems.append(
            f"{where} does not balance: its postings sum to {sums} (minor units) "
            f"{entry.describe()}; every entry must sum to zero in each currency: book every "
            "posting of the prepared entry, including tax and the rounding residual"
        )
        return problems
    if plan is None:
        return problems
    want = plan_sums(plan).get(currency, (0, 0))
    got = entry_sums(entry).get(currency, (0, 0))
    if want != got:
        problems.append(
            f"{where} moves {got[0]} {currency} in debits and {got[1]} in credits, but the "
            f"item books {want[0]} and {want[1]} (minor units) {entry.describe()}; book the "
            "amounts of the prepared entry in the wallet currency, unchanged"
        )
    return problems


def judge(
    expectations: Sequence[Expect],
    pleo: Mapping[str, ExportJobItem],
    entries: Sequence[TargetEntry],
    plans: Mapping[str, PostingPlan],
    currency: str,
) -> list[str]:
    """Every way the outcome differs from ``expectations``, one sentence each."""
    problems: list[str] = []
    by_reference: dict[str, list[TargetEntry]] = defaultdict(list)
    for entry in entries:
        by_reference[entry.reference].append(entry)
    expected_refs = {e.reference for e in expectations}
    for expect in expectations:
        ref = expect.reference
        item = pleo.get(ref)
        held = by_reference.get(ref, [])
        name = f"reference {ref} ({expect.label})"
        if item is None:
            problems.append(f"{name} is not among the job's items in Pleo (a kit error)")
            continue
        status = item.status
        if status not in (ExportJobItemStatus.SUCCESSFUL, ExportJobItemStatus.FAILED):
            problems.append(
                f"{name} is {status.value} in Pleo after the run: every item must end "
                "successful or failed"
            )
            continue
        if expect.succeed and status is ExportJobItemStatus.FAILED:
            problems.append(
                f"{name} failed with {item.failure_reason_type}: "
                f"{_short(item.failure_reason)}; it must succeed"
                + (f": {expect.fix}" if expect.fix else "")
            )
        elif not expect.succeed and status is ExportJobItemStatus.SUCCESSFUL:
            if held:
                accounts = sorted({p.account for e in held for p in e.postings})
                problems.append(
                    f"{name} must fail with {expect.reason} ({expect.why}), but Pleo has it "
                    f"successful and the target holds an entry for it on {', '.join(accounts)}: "
                    f"{expect.fix or 'raise ItemRejected instead of booking it'}"
                )
            else:
                problems.append(
                    f"{name} must fail with {expect.reason} ({expect.why}), but Pleo has it "
                    f"successful (externalId {item.external_id!r}) while the target holds no "
                    "entry for it: post must raise ItemRejected when the target refuses an "
                    "entry, never return an ExternalRecord for an entry that was not stored"
                )
        elif not expect.succeed:
            if expect.reason is not None and item.failure_reason_type != expect.reason:
                problems.append(
                    f"{name} failed with {item.failure_reason_type} but must fail with "
                    f"{expect.reason} ({expect.why}): raise ItemRejected("
                    f"ExportJobItemFailureReasonType.{expect.reason.upper()}, ...); message "
                    f"was: {_short(item.failure_reason)}"
                )
            message = item.failure_reason or ""
            if len(message.strip()) < MIN_MESSAGE_LENGTH:
                problems.append(
                    f"{name} failed with the message {message!r}, which tells the finance "
                    "team nothing: name the field, the value and what to change"
                )
            elif expect.mentions and not any(m.lower() in message.lower() for m in expect.mentions):
                shown = " or ".join(repr(m) for m in expect.mentions)
                problems.append(
                    f"{name} failed with a message that does not name {shown}: "
                    f"{_short(message)}; say which value is wrong and what to change"
                )
        if status is ExportJobItemStatus.SUCCESSFUL and not (item.external_id or "").strip():
            problems.append(
                f"{name} is successful in Pleo without an externalId: return an ExternalRecord "
                "whose external_id identifies the entry in the target"
            )
        want = expect.expected_entries
        if len(held) > want and want >= 1:
            problems.append(
                f"reference {ref} is in the target {len(held)} times ({expect.label}); "
                f"{expect.duplicate}"
            )
        elif len(held) > want and status is ExportJobItemStatus.FAILED:
            problems.append(
                f"reference {ref} ({expect.label}) failed in Pleo "
                f"({item.failure_reason_type}) but the target holds {len(held)} entries for "
                "it: nothing may be written for an item that fails (validate in prepare, "
                "write in post only)"
            )
        elif len(held) < want and status is ExportJobItemStatus.SUCCESSFUL:
            problems.append(
                f"reference {ref} ({expect.label}) is successful in Pleo (externalId "
                f"{item.external_id!r}) but the target holds no entry for it: post must only "
                "return an ExternalRecord once the entry is stored, and read_entries must "
                "return it"
            )
        elif len(held) < want:
            problems.append(
                f"reference {ref} ({expect.label}) must be in the target {want} time(s), "
                f"found {len(held)}"
            )
        for entry in held:
            problems += check_entry(entry, plans.get(ref), expect.label, currency)
            if (
                status is ExportJobItemStatus.SUCCESSFUL
                and item.external_id
                and len(held) == 1
                and entry.external_id != item.external_id
            ):
                problems.append(
                    f"reference {ref} ({expect.label}) was reported to Pleo with externalId "
                    f"{item.external_id!r} but the target holds it as {entry.external_id!r}: "
                    "report the id the entry has in the target (and have read_entries return "
                    "the same id)"
                )
    strangers = sorted(set(by_reference) - expected_refs)
    for ref in strangers:
        problems.append(
            f"the target holds an entry for reference {ref!r}, which is not an item of this "
            "scenario: store plan.reference (the accountingEntryId) with each entry, and start "
            "every scenario from an empty target"
        )
    return problems


__all__ = [
    "ConformanceFailure",
    "Expect",
    "check_entry",
    "entry_sums",
    "judge",
    "plan_sums",
]
