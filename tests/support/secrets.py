"""Prove that secrets stay secret: search every log record, report and error for them.

Two pieces, usable on their own:

:func:`capture_logs`
    a context manager that records every log record of every logger, at DEBUG, whatever
    levels and handlers were configured before (``httpx``, ``httpcore``, ``uvicorn``, ...;
    loggers that do not propagate included), and restores the configuration afterwards.

:class:`SecretScanner`
    holds the secret values of a test and searches text for them, also in the forms a secret
    takes on its way out: HTTP Basic credentials (``base64("key:")`` for Pleo's API key,
    ``base64("client_id:secret")`` for OAuth clients), URL and JSON escaping, ``repr``.
    ``scan_*`` methods take log records (message, arguments, every ``extra`` field, the
    traceback, and the record as pleo-export's text and JSON formatters render it),
    exceptions (the whole chain, with tracebacks), report objects and plain text, and remember
    every hit; :meth:`SecretScanner.assert_clean` fails listing where each secret was found,
    by its name, never by its value::

        scanner = SecretScanner()
        scanner.add("pleo api key", api_key, basic_user=True)
        scanner.add("ledger password", password)
        with capture_logs() as records:
            ...
        scanner.scan_records(records)
        scanner.scan_text("cli stderr", result.stderr)
        scanner.assert_clean()
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from pleo_export.logs import JsonFormatter, TextFormatter

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


# --- capturing logs -----------------------------------------------------------------------------


class _Recorder(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextmanager
def capture_logs() -> Iterator[list[logging.LogRecord]]:
    """Record every log record of every logger at DEBUG and up while the block runs.

    The root logger and every existing logger are set to DEBUG and enabled; the recorder is
    attached to the root and to each logger that does not propagate. Levels, ``disabled``
    flags and handlers are restored on exit. Loggers created inside the block inherit DEBUG.
    """
    records: list[logging.LogRecord] = []
    recorder = _Recorder(records)
    root = logging.getLogger()
    saved: list[tuple[logging.Logger, int, bool]] = [(root, root.level, root.disabled)]
    attached: list[logging.Logger] = [root]
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):
            continue  # a PlaceHolder
        saved.append((logger, logger.level, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate:
            attached.append(logger)
    root.setLevel(logging.DEBUG)
    for logger in attached:
        logger.addHandler(recorder)
    try:
        yield records
    finally:
        for logger in attached:
            logger.removeHandler(recorder)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


# --- scanning -----------------------------------------------------------------------------------


def _b64(raw: str) -> set[str]:
    data = raw.encode()
    forms = {base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()}
    return forms | {f.rstrip("=") for f in forms}


def encodings(secret: str) -> set[str]:
    """``secret`` as it may appear in text: plain, URL-quoted, JSON- and repr-escaped."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    }
    return {form for form in forms if form}


@dataclass
class Finding:
    where: str
    secret: str
    """The secret's name (never its value)."""
    form: str
    """Which encoding of it was found."""


@dataclass
class SecretScanner:
    needles: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Text to look for -> (secret name, description of the form)."""
    findings: list[Finding] = field(default_factory=list)
    scanned: int = 0
    """How many pieces of text were searched (so a test can check it searched something)."""

    def add(self, name: str, value: str, *, basic_user: bool = False) -> None:
        """A secret called ``name``. ``basic_user``: it is also sent as an HTTP Basic user
        name with an empty password (Pleo's API key), so look for ``base64("value:")``."""
        if len(value) < 8:
            raise ValueError(f"secret {name!r} is too short to search for reliably")
        for form in encodings(value):
            self.needles.setdefault(form, (name, "plain" if form == value else "escaped"))
        if basic_user:
            for form in _b64(f"{value}:"):
                self.needles.setdefault(form, (name, "base64 of 'value:' (HTTP Basic)"))
        for form in _b64(value):
            if len(form) >= 8:
                self.needles.setdefault(form, (name, "base64"))

    def add_basic(self, name: str, user: str, password: str) -> None:
        """An HTTP Basic pair whose password is ``name`` (e.g. an OAuth client secret)."""
        self.add(name, password)
        for form in _b64(f"{user}:{password}"):
            self.needles.setdefault(form, (name, "base64 of 'user:value' (HTTP Basic)"))

    # --- what gets searched --------------------------------------------------------------------

    def scan_text(self, where: str, text: str | bytes | None) -> None:
        if text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.scanned += 1
        for needle, (name, form) in self.needles.items():
            if needle in text:
                self.findings.append(Finding(where, name, form))

    def scan_object(self, where: str, value: Any) -> None:
        """A report or any data: its JSON form (``default=str``) and its ``repr``."""
        with suppress(TypeError, ValueError):  # not JSON-able even with default=str
            self.scan_text(f"{where} (json)", json.dumps(value, default=str, ensure_ascii=False))
        self.scan_text(f"{where} (repr)", repr(value))

    def scan_exception(self, where: str, error: BaseException) -> None:
        """The exception, its causes and contexts: messages, ``repr``, ``args``, tracebacks."""
        self.scan_text(
            f"{where} (traceback)", "".join(traceback.format_exception(error, chain=True))
        )
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.scan_text(f"{where} ({type(current).__name__})", str(current))
            self.scan_object(f"{where} ({type(current).__name__} args)", current.args)
            current = current.__cause__ or current.__context__

    def scan_record(self, record: logging.LogRecord) -> None:
        where = f"log {record.name}:{record.levelname.lower()} {record.msg!r:.60}"
        try:
            message = record.getMessage()
        except Exception:  # a broken format string still has its parts scanned below
            message = ""
        self.scan_text(f"{where} message", message)
        self.scan_text(f"{where} msg", str(record.msg))
        if record.args:
            self.scan_object(f"{where} args", record.args)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        for key, value in extras.items():
            self.scan_object(f"{where} extra {key}", value)
            if isinstance(value, BaseException):
                self.scan_exception(f"{where} extra {key}", value)
        if record.exc_info and record.exc_info[1] is not None:
            self.scan_exception(f"{where} exc_info", record.exc_info[1])
        self.scan_text(f"{where} exc_text", record.exc_text)
        self.scan_text(f"{where} stack", record.stack_info)
        self.scan_text(f"{where} as text", TextFormatter().format(record))
        self.scan_text(f"{where} as json", JsonFormatter().format(record))

    def scan_records(self, records: Iterable[logging.LogRecord]) -> None:
        for record in records:
            self.scan_record(record)

    # --- verdict ------------------------------------------------------------------------------

    def assert_clean(self) -> None:
        if not self.findings:
            return
        lines = [f"- {f.secret} ({f.form}) in {f.where}" for f in self.findings[:40]]
        more = len(self.findings) - 40
        if more > 0:
            lines.append(f"... and {more} more")
        raise AssertionError("secrets found where they must never be:\n" + "\n".join(lines))


__all__ = ["Finding", "SecretScanner", "capture_logs", "encodings"]
