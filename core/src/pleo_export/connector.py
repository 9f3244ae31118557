"""The connector contract: what an accounting-system connector is and how the engine calls it.

A connector is an async class, registered under the entry-point group
``pleo_export.connectors``, with a :class:`ConnectorManifest` and a settings model. The engine
calls, per job and per item::

    await connector.open()
    await connector.check(job)                 # pre-export validation; raise JobRejected
    prepared = await connector.prepare(plan)   # resolve accounts, validate; raise ItemRejected
    record = await connector.find_existing(plan.reference)   # LOOKUP_BY_REFERENCE only
    record = await connector.post(prepared)    # write to the target
    # or, with BATCH_POSTING: records = await connector.post_batch([prepared, ...])
    # (a connector with post_batch need not write post: the default posts a batch of one)
    await connector.close()

``prepare`` must not write anything: ``--dry-run`` runs it for every item and shows the result.
``post`` returns where the entry landed, or raises one of the errors below. The host checks
when it loads a connector that the capabilities it declares match the methods it implements
(:func:`contract_problems`). See ``docs/connectors.md`` for the full reference.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pleo_export.ledger import ExternalRecord, PostingPlan, PreparedEntry
from pleo_export.masterdata import (
    AccountingDimension,
    AccountingTaxCode,
    AccountingVendor,
    BookedEntry,
    VendorDraft,
)
from pleo_export.pleo.models import (
    ExportItemFile,
    ExportJob,
    ExportJobFailureReasonType,
    ExportJobItemFailureReasonType,
)

CONTRACT_VERSION = 1
"""The connector contract this core implements. A manifest declaring another is refused."""


class Capability(StrEnum):
    JOURNAL = "journal"
    """Books journal entries (bookkeeping methods ``journal`` and ``none``)."""
    ACCOUNTS_PAYABLE = "accounts_payable"
    """Books vendor invoices, credit notes and payments (jobs with vendorBasedBookkeeping)."""
    ATTACHMENTS = "attachments"
    """Stores receipts with the entry it posts."""
    LOOKUP_BY_REFERENCE = "lookup_by_reference"
    """Can find an entry it posted earlier by its reference, so retries never post twice."""
    BATCH_POSTING = "batch_posting"
    """Can post several items in one call to the target."""
    READ_VENDORS = "read_vendors"
    """Lists the target's vendors (:meth:`Connector.list_vendors`), for ``pleo-export sync``."""
    READ_TAX_CODES = "read_tax_codes"
    """Lists the target's tax codes (:meth:`Connector.list_tax_codes`)."""
    READ_DIMENSIONS = "read_dimensions"
    """Lists the target's dimensions and their values (:meth:`Connector.list_dimensions`),
    synchronised as Pleo tag groups and tags."""
    CREATE_VENDORS = "create_vendors"
    """Creates a vendor that was created in Pleo as a draft (:meth:`Connector.create_vendor`)."""
    READ_BOOKED = "read_booked"
    """Reads back what it booked for given references (:meth:`Connector.read_booked`), for
    reconciliation reports."""


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_attachment_bytes: int | None = None
    """Receipts larger than this fail with ``receipt_file_size_limit_exceeded``."""
    max_batch_size: int = 1
    max_concurrent_posts: int = Field(1, ge=1)
    """How many items the engine may post at once (``post`` calls, with their look-ups and
    ``prepare``); the default of :meth:`Connector.post_concurrency`. Raise it only when the
    target takes concurrent writes safely."""


class ConnectorSettings(BaseSettings):
    """Base class of every connector's settings.

    Values come from the ``[connector.settings]`` table of the configuration file and from
    environment variables ``PLEO_EXPORT_<CONNECTOR ID>_<FIELD>``. Unknown keys are errors, so a
    misspelt setting never goes unnoticed. Declare secrets as :class:`pydantic.SecretStr`.
    """

    model_config = SettingsConfigDict(extra="forbid", env_nested_delimiter="__")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The engine passes the configuration file's values as keyword arguments; environment
        # variables win over them, exactly as for pleo-export's own settings.
        return env_settings, init_settings, file_secret_settings


SettingsT = TypeVar("SettingsT", bound=ConnectorSettings)


class ConnectorManifest(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    """Equals the entry-point name the connector is registered under."""
    display_name: str
    contract_version: int = CONTRACT_VERSION
    capabilities: frozenset[Capability]
    limits: Limits = Limits()
    settings_model: type[ConnectorSettings]
    docs_url: str | None = None


# --- errors ----------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base class of the errors a connector raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ItemRejected(ConnectorError):
    """This item cannot be booked; the others go on. Reported to Pleo as ``failed``.

    The message is shown to the finance team in Pleo: name the field, the value and what to
    change, e.g. ``account 6800 (Office supplies) does not exist in the ledger: open it or
    change the category in Pleo``.
    """

    def __init__(self, reason_type: ExportJobItemFailureReasonType, message: str) -> None:
        super().__init__(message)
        self.reason_type = reason_type


class JobRejected(ConnectorError):
    """The whole job cannot be exported (target unreachable, login refused, wrong company)."""

    def __init__(self, reason_type: ExportJobFailureReasonType, message: str) -> None:
        super().__init__(message)
        self.reason_type = reason_type


class TargetTemporarilyUnavailable(ConnectorError):
    """A transient failure *before* anything was written: safe to retry as is."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        reason_type: ExportJobItemFailureReasonType = (
            ExportJobItemFailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE
        ),
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason_type = reason_type


class OutcomeUncertain(ConnectorError):
    """The write may or may not have landed (timeout after sending, connection lost).

    The engine never posts such an item again blindly: it looks the item up by reference first
    (``LOOKUP_BY_REFERENCE``) or, without that capability, fails it asking for a manual check.
    """


# --- context and base class ------------------------------------------------------------------


class ReceiptSource(Protocol):
    """Where :meth:`ConnectorContext.fetch_attachment` takes receipts from while the engine
    prefetches them (:mod:`pleo_export.engine.prefetch`)."""

    async def fetch(
        self, file: ExportItemFile, download: Callable[[ExportItemFile], Awaitable[bytes]]
    ) -> bytes:
        """``file``'s content: fetched ahead, or ``await download(file)``."""
        ...


class ConnectorContext:
    """What the engine lends a connector."""

    def __init__(
        self,
        *,
        logger: logging.Logger,
        fetch_attachment: Callable[[ExportItemFile], Awaitable[bytes]],
        work_dir: Path,
        dry_run: bool = False,
    ) -> None:
        self.logger = logger
        self._fetch_attachment = fetch_attachment
        self.work_dir = work_dir
        self.dry_run = dry_run
        self.receipts: ReceiptSource | None = None
        """Set by the engine while a job runs: receipts it downloads ahead of the posts
        (``engine.receipt_prefetch``). Connectors never set it."""

    @property
    def download(self) -> Callable[[ExportItemFile], Awaitable[bytes]]:
        """The plain receipt download, without the engine's prefetching or size check."""
        return self._fetch_attachment

    async def fetch_attachment(
        self, file: ExportItemFile, *, label: str = "the receipt", max_bytes: int | None = None
    ) -> bytes:
        """Download a receipt from Pleo (URLs expire 24 hours after the items were fetched).

        ``label`` names the file in messages (e.g. ``files[2]``). Raises :class:`ItemRejected`
        with ``receipt_download_failure`` when it cannot be downloaded, and with
        ``receipt_file_size_limit_exceeded`` when it is larger than ``max_bytes``.
        """
        from pleo_export.attachments import download_failed, too_large

        try:
            if self.receipts is not None:
                content = await self.receipts.fetch(file, self._fetch_attachment)
            else:
                content = await self._fetch_attachment(file)
        except ItemRejected:
            raise
        except Exception as error:
            raise download_failed(label, file, error) from error
        if max_bytes is not None and len(content) > max_bytes:
            raise too_large(label, len(content), max_bytes)
        return content


class Connector(abc.ABC, Generic[SettingsT]):
    """Base class for connectors. Subclasses set ``manifest`` and implement the methods."""

    manifest: ClassVar[ConnectorManifest]

    def __init__(self, settings: SettingsT, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context

    async def open(self) -> None:
        """Connect to the target (log in, open files). Called once per run."""

    async def close(self) -> None:
        """Release what ``open`` acquired. Always called, also after errors."""

    @abc.abstractmethod
    async def check(self, job: ExportJob) -> None:
        """Pre-export validation for ``job``: raise :class:`JobRejected` when it cannot run."""

    @abc.abstractmethod
    async def prepare(self, plan: PostingPlan) -> PreparedEntry:
        """Resolve accounts, vendor and tax for ``plan`` and validate them; write nothing."""

    async def post(self, prepared: PreparedEntry) -> ExternalRecord:
        """Write the entry to the target and say where it landed.

        Defaults to :meth:`post_batch` with a batch of one, raising its ``ItemRejected``: a
        connector that implements ``post_batch`` need not write ``post``. Every other
        connector implements ``post`` (checked when the connector loads).
        """
        if not _overrides(type(self), "post_batch"):
            raise NotImplementedError(
                f"connector {self.manifest.id!r} implements neither post nor post_batch"
            )
        results = await self.post_batch([prepared])
        if len(results) != 1:
            raise ValueError(
                f"connector {self.manifest.id!r}: post_batch answered {len(results)} results "
                "for one entry"
            )
        (result,) = results
        if isinstance(result, ItemRejected):
            raise result
        return result

    def batch_size(self) -> int:
        """How many prepared entries the engine hands to :meth:`post_batch` at once.

        Only used with ``BATCH_POSTING``. Defaults to the manifest's ``limits.max_batch_size``;
        override to read it from settings (a batch never spans two jobs).
        """
        return self.manifest.limits.max_batch_size

    def post_concurrency(self) -> int:
        """How many items the engine may post at once; each ``post`` (with the item's look-ups
        and ``prepare``) runs under one of that many slots.

        Defaults to the manifest's ``limits.max_concurrent_posts`` (1: one at a time);
        override to read it from settings. Return more than 1 only when concurrent ``post``,
        ``prepare`` and ``find_existing`` calls are safe for the target. ``BATCH_POSTING``
        connectors post their batches one at a time whatever this says.
        """
        return self.manifest.limits.max_concurrent_posts

    async def post_batch(
        self, entries: Sequence[PreparedEntry]
    ) -> Sequence[ExternalRecord | ItemRejected]:
        """Write several entries as one delivery (``BATCH_POSTING``); answer per entry, in order.

        Raise to fail the whole batch with :meth:`post`'s meaning:
        :class:`TargetTemporarilyUnavailable` (nothing was written; the engine retries the
        batch), :class:`OutcomeUncertain` or an unclassified exception (it may have landed: each
        entry is looked up by reference before anything is posted again), :class:`JobRejected`
        (the target stopped accepting entries).
        """
        raise NotImplementedError(
            f"connector {self.manifest.id!r} declares batch_posting but has no post_batch"
        )

    async def find_existing(self, reference: str) -> ExternalRecord | None:
        """Find an entry posted earlier for ``reference`` (``LOOKUP_BY_REFERENCE``)."""
        raise NotImplementedError(
            f"connector {self.manifest.id!r} does not declare lookup_by_reference"
        )

    # --- optional capabilities: master data and read-back --------------------------------

    async def list_vendors(self) -> Sequence[AccountingVendor]:
        """Every vendor in the target, archived ones included (``READ_VENDORS``)."""
        raise NotImplementedError(f"connector {self.manifest.id!r} does not declare read_vendors")

    async def list_tax_codes(self) -> Sequence[AccountingTaxCode]:
        """Every purchase tax code in the target (``READ_TAX_CODES``)."""
        raise NotImplementedError(f"connector {self.manifest.id!r} does not declare read_tax_codes")

    async def list_dimensions(self) -> Sequence[AccountingDimension]:
        """Every dimension with its values (``READ_DIMENSIONS``)."""
        raise NotImplementedError(
            f"connector {self.manifest.id!r} does not declare read_dimensions"
        )

    async def create_vendor(self, draft: VendorDraft) -> AccountingVendor:
        """Create ``draft`` in the target and answer it with its code and external id
        (``CREATE_VENDORS``). When a vendor with the same tax registration number or name
        exists already, answer that one instead of creating a second. Raise
        :class:`ItemRejected` with a message saying what to change when it cannot be created.
        """
        raise NotImplementedError(f"connector {self.manifest.id!r} does not declare create_vendors")

    async def read_booked(self, references: Sequence[str]) -> Sequence[BookedEntry]:
        """What the target holds for each of ``references`` (``READ_BOOKED``); a reference
        with nothing booked is left out of the answer."""
        raise NotImplementedError(f"connector {self.manifest.id!r} does not declare read_booked")

    async def verify(self) -> list[str]:
        """Problems the target itself reports after a run (e.g. ledger validation errors)."""
        return []

    @classmethod
    def starter(cls, directory: Path, currency: str) -> dict[str, Any]:
        """Create what a new installation needs in ``directory``; return settings.

        Optional; ``pleo-export init`` uses it. Unlike ``scaffold`` (:class:`SupportsScaffold`)
        it knows no chart: it
        sets up an empty target (files, folders) that passes pre-export validation, for the
        company's own accounts to be added. ``currency`` is the Pleo wallet currency. Paths in
        the returned settings may be relative to ``directory``. Never overwrite a file: raise
        :class:`FileExistsError` naming it.
        """
        raise NotImplementedError(f"connector {cls.manifest.id!r} has no starter")

    def classify_error(self, error: BaseException) -> ConnectorError | None:
        """Translate a foreign exception from the target into a connector error, or ``None``.

        The engine asks plugins first (hook ``pleo_export_classify_error``), then this method;
        anything left unclassified is an ``unexpected_failure`` (or, during ``post``, an
        uncertain outcome).
        """
        return None


@runtime_checkable
class SupportsScaffold(Protocol):
    """An optional part of the contract: a connector class that can set up a demo target.

    ``pleo-export demo`` needs it; a connector without it works everywhere else.
    """

    @classmethod
    def scaffold(cls, directory: Path, chart: Any, currency: str) -> dict[str, Any]:
        """Create a target in ``directory`` that knows the sandbox chart; return settings.

        ``chart`` is :data:`pleo_export_sandbox.DEMO_CHART` and ``currency`` the sandbox
        company's wallet currency. Paths in the returned settings may be relative to
        ``directory``.
        """
        ...


def _overrides(cls: type[Connector[Any]], name: str) -> bool:
    """Whether ``cls`` (or a base between it and :class:`Connector`) defines method ``name``."""
    return getattr(cls, name, None) is not getattr(Connector, name)


def contract_problems(cls: type[Connector[Any]]) -> list[str]:
    """Where a connector class breaks the contract: a declared capability without the method
    it needs, or a required method missing. Empty when the class is usable."""
    capabilities = cls.manifest.capabilities
    problems: list[str] = []
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        problems.append(f"does not implement the required method(s) {', '.join(missing)}")
    if not _overrides(cls, "post") and not _overrides(cls, "post_batch"):
        problems.append("implements neither post nor post_batch: implement one of them")
    if Capability.LOOKUP_BY_REFERENCE in capabilities and not _overrides(cls, "find_existing"):
        problems.append(
            "declares lookup_by_reference but does not implement find_existing(reference): "
            "implement it, or remove the capability from the manifest"
        )
    if Capability.BATCH_POSTING in capabilities and not _overrides(cls, "post_batch"):
        problems.append(
            "declares batch_posting but does not implement post_batch(entries): implement "
            "it, or remove the capability from the manifest"
        )
    for capability, method, signature in _CAPABILITY_METHODS:
        if capability in capabilities and not _overrides(cls, method):
            problems.append(
                f"declares {capability.value} but does not implement {signature}: implement "
                "it, or remove the capability from the manifest"
            )
    return problems


_CAPABILITY_METHODS: tuple[tuple[Capability, str, str], ...] = (
    (Capability.READ_VENDORS, "list_vendors", "list_vendors()"),
    (Capability.READ_TAX_CODES, "list_tax_codes", "list_tax_codes()"),
    (Capability.READ_DIMENSIONS, "list_dimensions", "list_dimensions()"),
    (Capability.CREATE_VENDORS, "create_vendor", "create_vendor(draft)"),
    (Capability.READ_BOOKED, "read_booked", "read_booked(references)"),
)


def describe_settings_error(
    connector_id: str, errors: Sequence[Mapping[str, Any]], *, env_prefix: str | None = None
) -> str:
    """A readable message for pydantic validation errors, naming fields but never values.

    With ``env_prefix``, a field set by an environment variable is named by that variable."""
    import os

    lines = [f"invalid settings for connector {connector_id!r}:"]
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        location = ".".join(loc) or "(settings)"
        if env_prefix and loc:
            variable = (env_prefix + "__".join(loc)).upper()
            if any(name.upper() == variable for name in os.environ):
                location = f"{variable} ({location})"
        lines.append(f"  - {location}: {error.get('msg', 'invalid')}")
    return "\n".join(lines)
