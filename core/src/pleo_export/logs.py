"""Structured logging.

Every log call in pleo-export passes its facts as ``extra`` fields (``event``, ``job_id``,
``accounting_entry_id``, ...). :func:`configure` renders them as ``key=value`` text or as one
JSON object per line. A redaction filter replaces any registered secret value (API keys,
tokens, connector passwords) with ``***`` in messages and fields, as a second line of defence
behind :class:`~pydantic.SecretStr`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never let ``value`` appear in a log line (values shorter than 4 chars are ignored)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = redact(record.getMessage())
            record.args = None
            for key, value in _fields(record).items():
                if isinstance(value, str):
                    setattr(record, key, redact(value))
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
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
        return redact(json.dumps(data, default=str))


def _short(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


def configure(
    level: str = "warning",
    fmt: str = "text",
    file: Path | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send pleo-export's logs to ``stream`` (stderr by default) or ``file``."""
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
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
