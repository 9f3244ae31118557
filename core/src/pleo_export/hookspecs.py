"""Hook specifications: the extension points for cross-cutting plugins.

A plugin is a module or object with functions marked ``@hookimpl`` whose names match the specs
below, registered under the entry-point group ``pleo_export.plugins``::

    # pyproject.toml
    [project.entry-points."pleo_export.plugins"]
    audit = "my_package.audit_plugin"

    # my_package/audit_plugin.py
    from pleo_export import hookimpl

    @hookimpl
    def pleo_export_item_outcome(job, accounting_entry_id, outcome):
        ...

Hooks are called with keyword arguments; an implementation may accept fewer arguments than
the spec names, so new arguments never break existing plugins. Hooks are synchronous. Posting to
the accounting system is not a hook: it is the connector's job (see ``pleo_export.connector``).

Every hook here is documented in ``docs/hooks.md`` with its exact signature; a test keeps the two
in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import pluggy
from pydantic import BaseModel, ConfigDict

from pleo_export.pleo.models import ExportJobFailureReasonType, ExportJobItemFailureReasonType

if TYPE_CHECKING:
    from pleo_export.connector import ConnectorError, ConnectorManifest
    from pleo_export.engine.report import JobReport
    from pleo_export.ledger import PostingPlan, PreparedEntry
    from pleo_export.masterdata import BookedEntry
    from pleo_export.pleo.models import ExportItem, ExportJob
    from pleo_export.service import RoundResult, ServiceView
    from pleo_export.state.base import ItemOutcome

PROJECT = "pleo_export"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class PluginSettings(BaseModel):
    """Base class of a plugin's settings model, validated from ``[plugins.<name>]``.

    A plugin that takes settings names its model ``settings_model`` (a module attribute, or a
    class attribute of a class plugin) and may define ``configure(settings)``, called once
    with the validated settings before any hook. Unknown keys are errors; a relative
    :class:`~pathlib.Path` is resolved against the configuration file's folder. A docstring
    under a field becomes its description (what ``pleo_export.testing.check_plugin`` requires).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _reason_enum(
    value: ExportJobItemFailureReasonType | ExportJobFailureReasonType | str,
) -> ExportJobItemFailureReasonType | ExportJobFailureReasonType:
    """One of Pleo's reason enums for ``value``; a plain string is looked up (item reasons
    first, then job reasons) so a typo fails where the plugin creates the problem."""
    if isinstance(value, ExportJobItemFailureReasonType | ExportJobFailureReasonType):
        return value
    for enum in (ExportJobItemFailureReasonType, ExportJobFailureReasonType):
        try:
            return enum(value)
        except ValueError:
            continue
    known = sorted({*ExportJobItemFailureReasonType, *ExportJobFailureReasonType})
    raise ValueError(
        f"Problem reason_type {value!r} is not one of Pleo's failure reasons: use one of "
        + ", ".join(known)
    )


class Problem:
    """A validation finding from a plugin; it fails the job or the item it is about."""

    __slots__ = ("message", "reason_type")

    def __init__(
        self,
        reason_type: ExportJobItemFailureReasonType | ExportJobFailureReasonType | str,
        message: str,
    ) -> None:
        self.reason_type = _reason_enum(reason_type)
        self.message = message

    def __repr__(self) -> str:
        return f"Problem({self.reason_type.value!r}, {self.message!r})"


# --- job lifecycle -----------------------------------------------------------------------------


@hookspec
def pleo_export_job_started(job: ExportJob, resumed: bool) -> None:
    """Called after the job is claimed (``started`` sent) or resumed, before validation.

    :param job: the job as Pleo returned it.
    :param resumed: ``True`` when an interrupted ``in_progress`` job is being resumed.
    """


@hookspec
def pleo_export_validate_job(job: ExportJob, manifest: ConnectorManifest) -> list[Problem] | None:
    """Extra pre-export validation. Return problems to fail the job before any item is read.

    ``reason_type`` must be an ``ExportJobFailureReasonType`` value. All implementations are
    called and their problems are combined.
    """


@hookspec
def pleo_export_job_finished(job: ExportJob, report: JobReport) -> None:
    """Called when the engine is done with ``job``: after the final event (``completed``,
    ``completed_with_errors``, ``failed``), or, when the job ended on Pleo's side first (it
    expired), with ``report.final_event`` ``None``. Also after a dry run."""


@hookspec
def pleo_export_job_reconciled(
    job: ExportJob,
    report: JobReport,
    references: Sequence[str],
    booked: Sequence[BookedEntry] | None,
    problem: str | None,
) -> None:
    """Called after ``pleo_export_job_finished`` with what the target holds for the job's
    successful items, read back through the connector's ``read_booked``.

    Only when some plugin implements this hook, the run is not a dry run and the job has
    items that succeeded. ``references`` are those items' references (accounting entry ids);
    ``booked`` is the connector's answer (a reference with nothing booked is missing from it),
    or ``None`` when the connector does not declare ``read_booked`` or reading failed, and then
    ``problem`` says why. Nothing here changes the job's outcome: a failure in reading or in an
    implementation is logged and the run goes on.
    """


# --- items -------------------------------------------------------------------------------------


@hookspec
def pleo_export_validate_item(item: ExportItem, job: ExportJob) -> list[Problem] | None:
    """Extra item validation (policy rules). Problems fail the item; the others go on.

    ``reason_type`` must be an ``ExportJobItemFailureReasonType`` value; the message is shown to
    the finance team in Pleo, so name the field, the value and what to change.
    """


@hookspec(firstresult=True)
def pleo_export_map_item(plan: PostingPlan) -> PostingPlan | None:
    """Override the entries built for an item (first non-``None`` result wins).

    Return a new plan (``plan.model_copy(update=...)``) to change accounts, narration or
    entries; the engine checks that every entry still balances.
    """


@hookspec(firstresult=True)
def pleo_export_classify_error(
    error: BaseException, manifest: ConnectorManifest, during: str
) -> ConnectorError | None:
    """Translate an exception raised by the connector into a typed connector error.

    :param during: ``"check"``, ``"prepare"``, ``"lookup"`` or ``"post"``.
    Return ``ItemRejected``, ``JobRejected``, ``TargetTemporarilyUnavailable`` or
    ``OutcomeUncertain``; ``None`` defers to the connector's own ``classify_error``.
    """


@hookspec
def pleo_export_item_prepared(job: ExportJob, prepared: PreparedEntry) -> None:
    """Called once per item after the connector prepared its entries (accounts resolved),
    before anything is posted; also in a dry run. ``prepared.plan`` is the final plan (after
    ``pleo_export_map_item``). Items found in the target by reference are not prepared."""


@hookspec
def pleo_export_item_outcome(
    job: ExportJob, accounting_entry_id: str, outcome: ItemOutcome
) -> None:
    """Called once per item when its outcome is recorded (before it is reported to Pleo)."""


# --- the service (run --watch, serve) ---------------------------------------------------------


@hookspec
def pleo_export_service_started(
    service: ServiceView,
) -> AbstractAsyncContextManager[object] | None:
    """Called once when ``run --watch`` or ``serve`` starts, before the first round.

    Keep ``service`` to read the Pleo client's counters and the leases live. Return an async
    context manager to run something beside the service (an HTTP endpoint): it is entered
    now, in the service's event loop, and exited when the service stops (also on SIGTERM).
    When entering it returns a string (an address), ``serve`` shows it in its first line. An
    error while entering it stops the command with exit code 2.
    """


@hookspec
def pleo_export_round_finished(result: RoundResult) -> None:
    """Called after every round of ``run`` (one round) and of ``run --watch``/``serve``: when
    the pending jobs are done, or when Pleo could not be reached (``result.succeeded``
    ``False``). Not called for a dry run."""
