"""How a connector package shows the kit its target: settings and a reader of what it holds.

These types carry no pytest dependency, so a connector may build them in helpers of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class TargetPosting:
    """One posting as the target holds it.

    ``amount_minor`` is in minor units of ``currency`` (the wallet currency of the Pleo
    company, in which entries balance), debit positive and credit negative.
    """

    account: str
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError(
                f"TargetPosting.amount_minor must be an int of minor units (6366 for 63.66), "
                f"got {self.amount_minor!r} for account {self.account!r}"
            )


@dataclass(frozen=True)
class TargetEntry:
    """Everything the target holds for one posting of one Pleo item.

    When your target turns one item into several records (an invoice and its payment, a
    document and its lines), return them as one ``TargetEntry`` with all their postings: the
    kit counts entries per ``reference`` to find duplicates, so two ``TargetEntry`` objects with
    the same reference mean the item was written twice.
    """

    reference: str
    """The Pleo ``accountingEntryId`` the entry was posted for (``plan.reference``)."""
    external_id: str
    """The entry's id in the target: what ``post`` reported to Pleo as ``externalId``."""
    postings: tuple[TargetPosting, ...]
    draft: bool = False
    """The target holds the entry as a draft (shown in failure messages; not judged)."""
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Anything else worth showing in a failure message (dates, file and line, ...)."""

    def __post_init__(self) -> None:
        # Plain ``(account, amount_minor, currency)`` tuples are accepted too.
        postings: list[TargetPosting] = []
        raw: tuple[Any, ...] = tuple(self.postings)
        for posting in raw:
            if isinstance(posting, TargetPosting):
                postings.append(posting)
            else:
                account, amount, currency = posting
                postings.append(TargetPosting(account, amount, currency))
        object.__setattr__(self, "postings", tuple(postings))

    def balances(self) -> dict[str, int]:
        """The sum of the postings per currency (all zero when the entry balances)."""
        sums: dict[str, int] = {}
        for posting in self.postings:
            sums[posting.currency] = sums.get(posting.currency, 0) + posting.amount_minor
        return sums

    def describe(self) -> str:
        """``[Expenses:Office 10000 GBP, Assets:Wallet -10000 GBP]`` plus any details."""
        shown = ", ".join(f"{p.account} {p.amount_minor} {p.currency}" for p in self.postings)
        text = f"[{shown}]" + (" (draft)" if self.draft else "")
        if self.details:
            text += " " + ", ".join(f"{key}={value}" for key, value in self.details.items())
        return text


ReadEntries = Callable[[], Awaitable[Sequence[TargetEntry]]]
ClosePeriod = Callable[[date], Awaitable[None]]


@dataclass
class ConnectorTarget:
    """A fresh, empty target for one scenario, yielded by the ``connector_target`` fixture."""

    settings: dict[str, Any]
    """The connector's settings, as in ``[connector.settings]``. Relative paths are resolved
    against the test's ``tmp_path``. The kit reads them each time it builds a connector, so
    ``close_period`` may change them."""
    read_entries: ReadEntries
    """``async () -> list[TargetEntry]``: what the target holds now, read from the target
    itself (not from the connector's memory)."""
    close_period: ClosePeriod | None = None
    """``async (first_open_day) -> None``: close the books for every day before
    ``first_open_day``. ``None`` when the target has no closed periods (then exempt
    ``closed_period`` with a reason)."""
    unreachable_settings: dict[str, Any] | None = None
    """Settings under which the target cannot be reached (a closed port on 127.0.0.1, a
    missing mount): ``open`` or ``check`` must then raise ``TargetTemporarilyUnavailable``.
    ``None`` to exempt ``target_unreachable_precheck`` with a reason."""


__all__ = ["ClosePeriod", "ConnectorTarget", "ReadEntries", "TargetEntry", "TargetPosting"]
