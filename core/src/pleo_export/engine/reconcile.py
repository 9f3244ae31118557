"""After a job: what the target booked for its successful items, for reconciliation plugins.

Hooks are synchronous and plugins do not hold the connector, so the engine reads back for
them: when a plugin implements ``pleo_export_job_reconciled`` and the run is not a dry run, it
asks the connector's ``read_booked`` (``READ_BOOKED``) for the references of the job's
succeeded items and hands the answer to the hook. Nothing here changes an export outcome: the
final event has been sent already, and a failure in reading or in a plugin is logged only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pleo_export.connector import Capability
from pleo_export.logs import redact
from pleo_export.masterdata import BookedEntry
from pleo_export.state.base import ItemPhase

if TYPE_CHECKING:
    from pleo_export.engine.job import JobRun
    from pleo_export.engine.runner import ExportEngine

log = logging.getLogger("pleo_export.engine")


async def read_back(
    engine: ExportEngine, references: Sequence[str]
) -> tuple[list[BookedEntry] | None, str | None]:
    """The connector's ``read_booked`` answer for ``references``, or ``None`` and why not."""
    manifest = engine.manifest
    if Capability.READ_BOOKED not in manifest.capabilities:
        return None, (
            f"connector {manifest.id!r} cannot read back what it booked (it does not declare "
            "read_booked), so what was booked could not be compared with Pleo's figures"
        )
    try:
        answer = await engine.connector.read_booked(list(references))
        booked = list(answer)
        for entry in booked:
            if not isinstance(entry, BookedEntry):
                raise TypeError(f"read_booked answered {type(entry).__name__}, not BookedEntry")
    except Exception as error:
        message = redact(f"{type(error).__name__}: {error}")
        return None, f"reading back from connector {manifest.id!r} failed: {message}"
    return booked, None


async def reconcile(engine: ExportEngine, run: JobRun) -> None:
    """Call ``pleo_export_job_reconciled`` for ``run``'s job when a plugin wants it."""
    if engine.options.dry_run or not engine.hooks.wants_reconciliation():
        return
    job = run.job
    try:
        records = await engine.store.items(job.id, [ItemPhase.SUCCEEDED])
        references = [record.accounting_entry_id for record in records]
        if not references:
            return
        booked, problem = await read_back(engine, references)
        if problem is not None:
            log.warning(
                "could not read back what the target booked",
                extra=run.ctx(event="reconcile.unavailable", reason=problem),
            )
        engine.hooks.job_reconciled(
            job=job, report=run.report, references=references, booked=booked, problem=problem
        )
    except Exception as error:
        log.error(
            "reconciliation failed; the export itself is not affected",
            extra=run.ctx(
                event="reconcile.failed",
                error_type=type(error).__name__,
                error=redact(str(error)),
            ),
        )
