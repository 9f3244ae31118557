"""Building engines and connector contexts: one place, shared by the app and the kit.

:func:`connector_context` is the :class:`~pleo_export.connector.ConnectorContext` a connector
gets (its logger, receipt downloads through the Pleo client, its working folder);
:func:`open_connector` opens a connector and turns a refusal into the problem that fails every
job's pre-export validation; :class:`EngineFactory` builds the engine of each company from the
parts they share. :func:`pleo_export.app.open_session` and the conformance kit
(:mod:`pleo_export.testing.harness`) both use them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pleo_export.connector import (
    Connector,
    ConnectorContext,
    ConnectorManifest,
    ItemRejected,
    JobRejected,
    TargetTemporarilyUnavailable,
)
from pleo_export.engine.options import EngineOptions, Hooks, Progress
from pleo_export.engine.runner import ExportEngine
from pleo_export.pleo import errors as pleo_errors
from pleo_export.pleo.client import DownloadRefused, PleoClient
from pleo_export.pleo.models import ExportItemFile
from pleo_export.pleo.models import ExportJobFailureReasonType as JobReason
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason
from pleo_export.state.base import StateStore

__all__ = ["EngineFactory", "connector_context", "open_connector"]

log = logging.getLogger("pleo_export.app")


def connector_context(
    *, client: PleoClient, manifest: ConnectorManifest, work_dir: Path, dry_run: bool = False
) -> ConnectorContext:
    """The context of a connector described by ``manifest``: receipts are downloaded through
    ``client`` (at most the manifest's ``max_attachment_bytes``), and a download that fails
    fails the item ``receipt_download_failure`` with what to do."""
    limit = manifest.limits.max_attachment_bytes

    async def fetch_attachment(file: ExportItemFile) -> bytes:
        try:
            return await client.download(file.url, max_bytes=limit)
        except DownloadRefused as error:
            raise ItemRejected(
                ItemReason.RECEIPT_DOWNLOAD_FAILURE,
                f"the receipt ({file.type}) was not downloaded: {error}. Export the expense "
                "again; if its receipt link stays like this, contact Pleo support",
            ) from error
        except pleo_errors.PleoApiError as error:
            raise ItemRejected(
                ItemReason.RECEIPT_DOWNLOAD_FAILURE,
                f"the receipt ({file.type}, {file.size} bytes) could not be downloaded from "
                f"Pleo: {error}. Receipt links expire 24 hours after the export started; "
                "export the expense again",
            ) from error

    return ConnectorContext(
        logger=logging.getLogger(f"pleo_export.connector.{manifest.id}"),
        fetch_attachment=fetch_attachment,
        work_dir=work_dir,
        dry_run=dry_run,
    )


async def open_connector(
    connector: Connector[Any], company_id: str | None = None
) -> JobRejected | None:
    """Open ``connector``: ``None``, or the problem that makes it unusable (the target refused
    the configuration, or cannot be reached). Other errors propagate. Closing is the caller's
    job, also when this returns a problem."""
    unavailable: JobRejected | None = None
    try:
        await connector.open()
    except JobRejected as rejected:
        unavailable = rejected
    except TargetTemporarilyUnavailable as error:
        unavailable = JobRejected(JobReason.ACCOUNTING_SYSTEM_UNREACHABLE, error.message)
    if unavailable is not None:
        log.error(
            "the accounting system cannot be used: %s",
            unavailable.message,
            extra={"event": "connector.unavailable", "company_id": company_id},
        )
    return unavailable


@dataclass(frozen=True)
class EngineFactory:
    """What the engines of one session share; :meth:`build` makes one per company."""

    client: PleoClient
    store: StateStore
    hooks: Hooks
    options: EngineOptions
    progress: Progress | None = None

    @classmethod
    def like(cls, engine: ExportEngine) -> EngineFactory:
        """A factory for engines that share ``engine``'s client, store, hooks and options."""
        return cls(
            client=engine.client,
            store=engine.store,
            hooks=engine.hooks,
            options=engine.options,
            progress=engine.progress,
        )

    def build(
        self,
        connector: Connector[Any],
        *,
        company_id: str | None,
        unavailable: JobRejected | None = None,
    ) -> ExportEngine:
        """The engine of ``company_id`` over ``connector`` (``unavailable``: what
        :func:`open_connector` found)."""
        return ExportEngine(
            client=self.client,
            connector=connector,
            store=self.store,
            hooks=self.hooks,
            options=replace(self.options, company_id=company_id),
            progress=self.progress,
            unavailable=unavailable,
        )
