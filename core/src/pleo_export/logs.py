"""Structured logging.

Every log call in pleo-export passes its facts as ``extra`` fields (``event``, ``job_id``,
``accounting_entry_id``, ...). :func:`configure` renders them as ``key=value`` text or as one
JSON object per line. A redaction filter replaces any registered secret value (API keys,
tokens, connector passwords) with ``***`` in messages and fields, as a second line of defence
behind :class:`~pydantic.SecretStr`. Redaction runs on the values before they are encoded, and
also knows each secret's escaped spellings (JSON with and without ``ensure_ascii``, ``repr()``
and ``ascii()``), so a secret with quotes, backslashes or non-ASCII characters is masked in
whichever form a message quotes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)
MASK = "***"
_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()
"""Every registered spelling, longest first (so an escaped form is masked whole)."""


def _spellings(value: str) -> set[str]:
    """``value`` as it appears raw, JSON-escaped, in ``repr()`` and in ``ascii()``."""
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        ascii(value)[1:-1],
    }


def register_secret(value: str | None) -> None:
    """Never let ``value`` appear in a log line (values shorter than 4 chars are ignored).

    Its escaped spellings (JSON, ``repr()``, ``ascii()``) are registered with it.
    """
    global _ordered
    if value and len(value) >= 4:
        _secrets.update(form for form in _spellings(value) if len(form) >= 4)
        _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every registered secret, in any of its spellings, replaced by ``***``."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrub(value: Any) -> Any:
    """``value`` with secrets masked in every string it holds (dicts, lists and tuples too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = redact(record.getMessage())
            record.args = None
            for key, value in _fields(record).items():
                if isinstance(value, str | dict | list | tuple):
                    setattr(record, key, _scrub(value))
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [stamp, record.levelname.lower(), record.getMessage()]
        fields = " ".join(f"{k}={_short(v)}" for k, v in _fields(record).items() if v is not None)
        if fields:
            parts.append(fields)
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_fields(record))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        # Mask before encoding: json.dumps escapes quotes, backslashes and non-ASCII text,
        # after which the raw secret would no longer match. The pass over the encoded line
        # catches what an object's str() produced during encoding.
        encoded = json.dumps(_scrub(data), default=lambda value: redact(str(value)))
        return redact(encoded)


def _short(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class _ReportOnce(logging.FileHandler):
    """A log file that reports its first write failure (a full disk, ``/dev/full``) in one line
    on stderr and then drops lines quietly, instead of a traceback for every line."""

    _reported = False

    def handleError(self, record: logging.LogRecord) -> None:
        if self._reported:
            return
        self._reported = True
        error = sys.exc_info()[1]
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        with contextlib.suppress(OSError):  # stderr may be gone too
            sys.stderr.write(
                f"pleo-export: cannot write to the log file {self.baseFilename}: {reason}; "
                "log lines are dropped from now on\n"
            )


class _RotatingFileHandler(_ReportOnce, logging.handlers.RotatingFileHandler):
    pass


class _WatchedFileHandler(_ReportOnce, logging.handlers.WatchedFileHandler):
    pass


def configure(
    level: str = "warning",
    fmt: str = "text",
    file: Path | None = None,
    stream: TextIO | None = None,
    *,
    rotate_bytes: int = 0,
    backups: int = 5,
) -> None:
    """Send pleo-export's logs to ``stream`` (stderr by default) or ``file``.

    A ``file`` is rotated when it would grow past ``rotate_bytes`` (keeping ``backups`` old
    files, ``file.1`` newest); with ``rotate_bytes=0`` it is never rotated here but reopened
    when an outside tool (logrotate) has moved it away. If writing fails later (a full disk,
    ``/dev/full``), one line on stderr says so and further lines are dropped.

    Raises:
        OSError: ``file`` or its folder cannot be created or opened for appending.
    """
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        if rotate_bytes > 0:
            handler = _RotatingFileHandler(
                file, maxBytes=rotate_bytes, backupCount=backups, encoding="utf-8"
            )
        else:
            handler = _WatchedFileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("pleo_export")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs full request URLs at INFO, which would include pre-signed receipt links.
    logging.getLogger("httpx").setLevel(logging.WARNING)
