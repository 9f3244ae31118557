"""Secrets with quotes, backslashes or non-ASCII characters stay out of JSON and text logs.

JSON encoding escapes such characters (``"`` becomes ``\\"``, ``ä`` becomes ``\\u00e4``), so a
redaction applied to the encoded line no longer finds the secret; ``repr()`` escapes them
differently again. Every form must be masked, in the log file and in what goes to Pleo.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from pleo_export import logs

SECRETS = [
    "Pässwörd12345",
    'pass"word\\with-quotes',
    "it's-a-secret\\path",
    "tab\tand\nnewline-secret",
    "emoji-🔑-secret-value",
]


@pytest.fixture
def secrets() -> list[str]:
    for secret in SECRETS:
        logs.register_secret(secret)
    return SECRETS


def _forms(secret: str) -> list[str]:
    """Every spelling of ``secret`` a log line or a failure reason might carry."""
    return [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
    ]


def _log_to(fmt: str) -> io.StringIO:
    stream = io.StringIO()
    logs.configure(level="debug", fmt=fmt, stream=stream)
    return stream


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_are_masked_in_every_encoded_form(secrets: list[str], fmt: str) -> None:
    stream = _log_to(fmt)
    log = logging.getLogger("pleo_export.hostile")
    for secret in secrets:
        log.error("login failed with %s", secret, extra={"event": "x", "detail": secret})
        log.error("connector said %r", secret, extra={"nested": {"password": secret}})
        log.error(f"as repr: {secret!r}", extra={"items": [secret, {"k": secret}]})
        try:
            raise RuntimeError(f"connection string user:{secret}@host and {secret!r}")
        except RuntimeError:
            log.exception("crash")
    written = stream.getvalue()
    assert written.count("***") >= 9 * len(secrets)
    for secret in secrets:
        for form in _forms(secret):
            assert form not in written, (fmt, form)
    if fmt == "json":
        for line in written.splitlines():
            json.loads(line)  # still one valid JSON object per line


def test_redact_masks_the_repr_and_escaped_forms(secrets: list[str]) -> None:
    for secret in secrets:
        reason = f"login refused: password={secret!r}; raw {secret}; json {json.dumps(secret)}"
        masked = logs.redact(reason)
        for form in _forms(secret):
            assert form not in masked, form


def test_short_fragments_of_text_are_not_mangled(secrets: list[str]) -> None:
    assert logs.redact("nothing secret here: P\\u00e4 it's") == "nothing secret here: P\\u00e4 it's"
