"""Writing items: ``post_batch`` creates each part of a batch with one request per model,
attaches the receipts, posts, reconciles, and retries a refused request record by record."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pleo_export import (
    EntryKind,
    ExternalRecord,
    ItemRejected,
    OutcomeUncertain,
    PostingPlan,
    PreparedEntry,
    TargetTemporarilyUnavailable,
)
from pleo_export import ExportJobItemFailureReasonType as Reason
from pleo_export_tryton.base import MAX_ATTACHMENT_BYTES, Found, Work, item_error
from pleo_export_tryton.errors import to_connector_error
from pleo_export_tryton.lookup import TrytonLookup
from pleo_export_tryton.reconcile import TrytonReconcile
from pleo_export_tryton.rpc import TrytonError, TrytonFault, TrytonRefused, TrytonWarning
from pleo_export_tryton.specs import Attachment, InvoiceSpec, Payload, RecordSpec

_ATTACHMENT_CHUNK_BYTES = 16 * 1024 * 1024
"""Receipts sent to Tryton in one request, at most (one receipt may be larger alone)."""


def _chunks(
    pending: list[tuple[Work, dict[str, Any]]], limit: int
) -> list[list[tuple[Work, dict[str, Any]]]]:
    """``pending`` cut into requests of at most ``limit`` bytes of receipts (one at least)."""
    chunks: list[list[tuple[Work, dict[str, Any]]]] = []
    size = 0
    for entry in pending:
        length = len(entry[1]["data"])
        if not chunks or size + length > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += length
    return chunks


class TrytonPost(TrytonLookup, TrytonReconcile):
    """``post`` and ``post_batch``: create, attach, post and reconcile."""

    def batch_size(self) -> int:
        return self.settings.batch_size

    async def post_batch(
        self, entries: Sequence[PreparedEntry]
    ) -> Sequence[ExternalRecord | ItemRejected]:
        """Write several items with few requests: one ``create`` and one ``post`` per model
        and part for the whole batch, one request for the receipts. When Tryton refuses a
        batch request, its records are retried one by one, so one bad item fails alone."""
        works: list[Work] = []
        for prepared in entries:
            payload = prepared.payload
            if not isinstance(payload, Payload):
                raise TypeError(
                    "post() takes a PreparedEntry returned by this connector's prepare()"
                )
            works.append(Work(prepared=prepared, payload=payload))
        for work in works:
            try:
                work.files = await self._download(work.prepared.plan, work.payload)
            except ItemRejected as rejected:
                work.error = rejected
        try:
            await self._load_existing([w for w in works if w.error is None])
        except TrytonError as error:
            raise to_connector_error(error, "looking up what Tryton already holds") from error
        posted = self.settings.state == "posted"
        try:
            for part in range(1, max((len(w.payload.parts) for w in works), default=0) + 1):
                active = [w for w in works if w.error is None and part <= len(w.payload.parts)]
                await self._create_many([w for w in active if part not in w.records], part)
                if part == 1:
                    await self._attach_many([w for w in active if w.error is None and w.files])
                if posted:
                    await self._post_many(
                        [w for w in active if w.error is None and not w.records[part].posted],
                        part,
                    )
        except TargetTemporarilyUnavailable as error:
            if not any(w.created for w in works):
                raise
            # Records were written before Tryton went away: not "nothing written". The engine
            # looks each item up; the ones not complete are posted again and finished.
            raise OutcomeUncertain(
                f"{error.message}; some records of this batch were already written"
            ) from error
        if posted:
            await self._reconcile([w for w in works if w.error is None])
        await self._created_at([w for w in works if w.error is None])
        results: list[ExternalRecord | ItemRejected] = []
        for work in works:
            if work.error is not None:
                results.append(work.error)
                continue
            first = work.records[1]
            if first.created is None:
                first.created = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            results.append(self._record(first))
        return results

    async def _created_at(self, works: list[Work]) -> None:
        """Read when Tryton created the first records written now (``exportedAt``)."""
        client, _ = self._require()
        by_model: dict[str, list[Found]] = defaultdict(list)
        for work in works:
            first = work.records[1]
            if first.created is None:
                by_model[first.model].append(first)
        for model, records in by_model.items():
            try:
                rows = await client.model(model, "read", [r.id for r in records], ["create_date"])
            except TrytonError as error:  # the records are booked; the time is a detail
                self.log.debug("could not read create_date: %s", error.message)
                continue
            created = {row["id"]: row.get("create_date") for row in rows}
            for record in records:
                record.created = created.get(record.id)

    async def _load_existing(self, works: list[Work]) -> None:
        """What each item already has in Tryton: from the lookup just before, else searched."""
        unknown: list[Work] = []
        drafts_unknown: list[Work] = []
        for work in works:
            remembered = self._looked_up.pop(work.payload.reference, None)
            if remembered is None:
                unknown.append(work)
                continue
            work.records, drafts_known = dict(remembered[0]), remembered[1]
            has_invoice = any(isinstance(s, InvoiceSpec) for s in work.payload.parts)
            if not drafts_known and has_invoice:
                drafts_unknown.append(work)
        if unknown:
            found = await self._existing_all([w.payload.reference for w in unknown])
            for work in unknown:
                work.records = dict(found[work.payload.reference])
        if drafts_unknown:  # draft invoices have no move: the posted-mode lookup misses them
            found = await self._existing_all(
                [w.payload.reference for w in drafts_unknown], models=("account.invoice",)
            )
            for work in drafts_unknown:
                work.records.update(found[work.payload.reference])

    async def _download(
        self, plan: PostingPlan, payload: Payload
    ) -> list[tuple[Attachment, bytes]]:
        files: list[tuple[Attachment, bytes]] = []
        for attachment in payload.attachments:
            file = plan.attachments[attachment.index]
            content = await self.context.fetch_attachment(
                file, label=f"files[{attachment.index}]", max_bytes=MAX_ATTACHMENT_BYTES
            )
            files.append((attachment, content))
        return files

    async def _create_many(self, works: list[Work], part: int) -> None:
        """Create part ``part`` of every item in ``works``: one request per model."""
        client, books = self._require()
        by_model: dict[str, list[Work]] = defaultdict(list)
        for work in works:
            by_model[work.payload.parts[part - 1].model].append(work)
        for model, group in by_model.items():
            specs = [w.payload.parts[part - 1] for w in group]
            values = [spec.values(books.company.id) for spec in specs]
            what = _what(specs[0]) if len(specs) == 1 else f"{len(specs)} records ({model})"
            try:
                ids = await client.model(model, "create", values, write=True)
            except (TrytonRefused, TrytonWarning, TrytonFault) as error:
                if len(group) == 1:
                    group[0].error = item_error(error, f"creating the {what}")
                    continue
                for work in group:  # find the one Tryton refuses
                    await self._create_many([work], part)
                continue
            except TrytonError as error:
                raise to_connector_error(error, f"creating the {what}") from error
            for work, spec, record_id in zip(group, specs, ids, strict=True):
                work.records[part] = Found(
                    model=model,
                    id=int(record_id),
                    part=part,
                    parts=spec.parts,
                    state="draft",
                    created=None,
                )
                work.created.add(part)
                self.log.info(
                    "created %s %s for %s (part %s/%s)",
                    model,
                    record_id,
                    work.payload.reference,
                    part,
                    spec.parts,
                    extra={
                        "accounting_entry_id": work.payload.reference,
                        "tryton_model": model,
                        "tryton_id": record_id,
                    },
                )

    async def _attach_many(self, works: list[Work]) -> None:
        """Attach the receipts each item's first record lacks (new records have none)."""
        client, _ = self._require()
        pending: list[tuple[Work, dict[str, Any]]] = []
        for work in works:
            found = work.records[1]
            resource = f"{found.model},{found.id}"
            present: set[str] = set()
            if 1 not in work.created:
                try:
                    rows = await client.search_read(
                        "ir.attachment", [("resource", "=", resource)], ["name"]
                    )
                except TrytonError as error:
                    raise to_connector_error(
                        error, f"reading the receipts of {resource}"
                    ) from error
                present = {row["name"] for row in rows}
            for attachment, content in work.files:
                if attachment.name in present:
                    continue
                pending.append(
                    (
                        work,
                        {
                            "name": attachment.name,
                            "resource": resource,
                            "type": "data",
                            "data": content,
                            "description": f"Pleo receipt {attachment.index + 1} of "
                            f"{work.payload.reference} ({attachment.mime_type})",
                        },
                    )
                )
        for chunk in _chunks(pending, _ATTACHMENT_CHUNK_BYTES):
            try:
                await client.model("ir.attachment", "create", [v for _, v in chunk], write=True)
            except (TrytonRefused, TrytonFault) as error:
                if len(chunk) == 1:
                    work, values = chunk[0]
                    work.error = ItemRejected(
                        Reason.RECEIPT_UPLOAD_FAILURE,
                        f"Tryton refused receipt {values['name']} for {values['resource']}: "
                        f"{error.message}. The record stays in draft; attach the receipt by "
                        "hand and post it, or export the item again",
                    )
                    continue
                for single in chunk:
                    if single[0].error is None:
                        await self._attach_values([single])
            except TrytonError as error:
                raise to_connector_error(error, "attaching receipts") from error

    async def _attach_values(self, chunk: list[tuple[Work, dict[str, Any]]]) -> None:
        client, _ = self._require()
        work, values = chunk[0]
        try:
            await client.model("ir.attachment", "create", [values], write=True)
        except (TrytonRefused, TrytonFault) as error:
            work.error = ItemRejected(
                Reason.RECEIPT_UPLOAD_FAILURE,
                f"Tryton refused receipt {values['name']} for {values['resource']}: "
                f"{error.message}. The record stays in draft; attach the receipt by hand and "
                "post it, or export the item again",
            )
        except TrytonError as error:
            raise to_connector_error(error, "attaching receipts") from error

    async def _post_many(self, works: list[Work], part: int) -> None:
        """Post part ``part`` of every item in ``works``: one request per model."""
        client, _ = self._require()
        by_model: dict[str, list[Work]] = defaultdict(list)
        for work in works:
            by_model[work.records[part].model].append(work)
        for model, group in by_model.items():
            if len(group) > 1:
                ids = [w.records[part].id for w in group]
                try:
                    await client.model(model, "post", ids, write=True)
                except (TrytonRefused, TrytonWarning, TrytonFault):
                    pass  # find the one Tryton refuses, below
                except TrytonError as error:
                    raise to_connector_error(error, f"posting {len(ids)} records") from error
                else:
                    for work in group:
                        work.records[part].state = "posted"
                    continue
            for work in group:
                await self._post_one(work, part)

    async def _post_one(self, work: Work, part: int) -> None:
        client, _ = self._require()
        found = work.records[part]
        what = f"{_what(work.payload.parts[part - 1])} {found.id}"
        for attempt in (1, 2):
            try:
                await client.model(found.model, "post", [found.id], write=True)
                break
            except TrytonWarning as warning:
                if not self.settings.confirm_warnings or attempt == 2:
                    work.error = item_error(warning, f"posting {what}")
                    return
                await self._confirm(warning)
            except (TrytonRefused, TrytonFault) as error:
                if part in work.created:
                    await self._delete_draft(found)
                    del work.records[part]
                work.error = item_error(error, f"posting {what}")
                return
            except TrytonError as error:
                raise to_connector_error(error, f"posting {what}") from error
        found.state = "posted"

    async def _confirm(self, warning: TrytonWarning) -> None:
        client, _ = self._require()
        self.log.warning(
            "confirming Tryton warning %s: %s (confirm_warnings = true)",
            warning.name,
            warning.tryton_message,
            extra={"tryton_warning": warning.name},
        )
        try:
            await client.model(
                "res.user.warning",
                "create",
                [{"user": client.user_id, "name": warning.name, "always": False}],
                write=True,
            )
        except TrytonError as error:
            raise to_connector_error(error, f"confirming Tryton warning {warning.name}") from error

    async def _delete_draft(self, found: Found) -> None:
        client, _ = self._require()
        try:
            await client.model(found.model, "delete", [found.id], write=True)
        except TrytonError as error:
            self.log.warning(
                "could not delete draft %s %s after Tryton refused to post it: %s",
                found.model,
                found.id,
                error.message,
                extra={"tryton_model": found.model, "tryton_id": found.id},
            )


def _what(spec: RecordSpec) -> str:
    if isinstance(spec, InvoiceSpec):
        return "supplier credit note" if spec.total < 0 else "supplier invoice"
    return "payment move" if spec.kind == EntryKind.AP_PAYMENT.value else "journal move"
