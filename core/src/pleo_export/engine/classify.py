"""Error classification: what the engine makes of an exception raised by the connector.

Every exception from ``check``, ``prepare``, ``find_existing`` or ``post`` ends up as one of
three kinds, each with one treatment:

- **retryable** (:class:`~pleo_export.connector.TargetTemporarilyUnavailable`): nothing was
  written; retried with backoff, up to ``engine.post_attempts`` attempts;
- **terminal** (:class:`~pleo_export.connector.ItemRejected`,
  :class:`~pleo_export.connector.JobRejected`): the item (or the job) fails at once;
- **uncertain** (:class:`~pleo_export.connector.OutcomeUncertain`): the write may have landed;
  the entry is looked up by reference before anything is posted again, or, without
  ``lookup_by_reference``, fails asking for a manual check.

A :class:`~pleo_export.connector.ConnectorError` raised on purpose is taken as it is. Any other
exception is offered to the plugins' ``pleo_export_classify_error`` hook (first answer wins),
then to the connector's own ``classify_error``. A classifier that raises or answers something
that is not a connector error is logged and skipped, so a broken classifier never turns an
item's failure into a crash of the run: the plugin host isolates each plugin implementation
(``plugin.hook_failed``); the rest is logged here (``classify.failed``). What nobody classifies is
*uncertain* during ``post`` (the request may have reached the target) and an
``unexpected_failure`` of the item everywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pleo_export.connector import ConnectorError, ItemRejected, OutcomeUncertain
from pleo_export.pleo.models import ExportJobItemFailureReasonType as ItemReason

log = logging.getLogger("pleo_export.engine")


def classify(
    error: BaseException,
    *,
    during: str,
    plugins: Callable[..., Any],
    connector: Callable[[BaseException], Any],
    manifest: Any,
) -> ConnectorError:
    """The connector error ``error`` counts as; ``during`` names the connector call."""
    if isinstance(error, ConnectorError):
        return error
    sources: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("plugin", lambda: plugins(error=error, manifest=manifest, during=during)),
        ("connector", lambda: connector(error)),
    )
    for source, ask in sources:
        try:
            answer = ask()
        except Exception as failure:
            _classifier_failed(source, during, error, f"raised {type(failure).__name__}: {failure}")
            continue
        if answer is None:
            continue
        if isinstance(answer, ConnectorError):
            return answer
        _classifier_failed(source, during, error, f"answered {type(answer).__name__}")
    detail = f"{type(error).__name__}: {error}"
    if during == "post":
        return OutcomeUncertain(detail)
    return ItemRejected(
        ItemReason.UNEXPECTED_FAILURE, f"unexpected error during {during}: {detail}"
    )


def _classifier_failed(source: str, during: str, error: BaseException, what: str) -> None:
    name = "a plugin's pleo_export_classify_error" if source == "plugin" else "the connector's"
    if source == "connector":
        name += " classify_error"
    log.error(
        "%s %s instead of classifying the error; ignoring that classifier: fix or disable it",
        name,
        what,
        extra={
            "event": "classify.failed",
            "classifier": source,
            "during": during,
            "error_type": type(error).__name__,
        },
    )


__all__ = ["classify"]
