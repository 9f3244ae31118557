"""Sending: email with the standard library's SMTP client, the webhook with httpx.

Both are synchronous on purpose: pleo-export's hooks are synchronous and run in the engine's
event loop, and one message per job is sent after the job's outcomes are all reported, so the
export waits at most the channel's ``timeout`` per network step. Errors come out as
:class:`DeliveryError`, whose message names the channel, the server and what to check, and
never a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from pleo_export_notify.settings import EmailSettings, WebhookSettings

TIMESTAMP_HEADER = "X-Pleo-Export-Timestamp"
USER_AGENT = "pleo-export-notify/0.1"


class DeliveryError(Exception):
    """A message could not be delivered; the message says where and what to check."""


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(settings.ca_file) if settings.ca_file is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def build_email(settings: EmailSettings, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[1])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def send_email(settings: EmailSettings, subject: str, body: str) -> None:
    """Send one email; raises :class:`DeliveryError`."""
    where = f"SMTP server {settings.host}:{settings.effective_port} ({settings.security})"
    message = build_email(settings, subject, body)
    try:
        client: smtplib.SMTP
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(
                settings.host,
                settings.effective_port,
                timeout=settings.timeout,
                context=tls_context(settings),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.effective_port, timeout=settings.timeout)
        with client:
            if settings.security == "starttls":
                client.starttls(context=tls_context(settings))
            if settings.username is not None and settings.password is not None:
                client.login(settings.username, settings.password.get_secret_value())
            refused = client.send_message(message)
    except smtplib.SMTPNotSupportedError as error:
        raise DeliveryError(
            f"{where} does not offer {_what(error)}: check security (starttls, ssl, none) and "
            "whether the server wants a login"
        ) from None
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryError(
            f"{where} refused the login of {settings.username!r} ({error.smtp_code}): check "
            "username and password"
        ) from None
    except smtplib.SMTPResponseException as error:
        raise DeliveryError(
            f"{where} answered {error.smtp_code} {_decode(error.smtp_error)}"
        ) from None
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryError(
            f"{where} refused every recipient ({', '.join(error.recipients)}): check recipients"
        ) from None
    except ssl.SSLError as error:
        raise DeliveryError(
            f"TLS with {where} failed ({error.reason or error}): check host (the certificate "
            "must name it), security and ca_file"
        ) from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(
            f"cannot deliver through {where}: {type(error).__name__}: {error}; check host, "
            "port and security, and that the server is up"
        ) from None
    if refused:
        raise DeliveryError(
            f"{where} refused {len(refused)} recipient(s) ({', '.join(sorted(refused))}); the "
            "others got the message"
        )


def _decode(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _what(error: smtplib.SMTPNotSupportedError) -> str:
    text = str(error).lower()
    if "starttls" in text:
        return "STARTTLS"
    if "auth" in text:
        return "a login (AUTH)"
    return f"what was asked ({error})"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``<timestamp>.<body>``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def post_webhook(
    settings: WebhookSettings,
    payload: dict[str, Any],
    *,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """POST ``payload``; the receiver's status code. Raises :class:`DeliveryError` unless it
    answers 2xx."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: timestamp,
    }
    if settings.secret is not None:
        key = settings.secret.get_secret_value().encode("utf-8")
        headers[settings.signature_header] = signature(key, timestamp, body)
    url = str(settings.url)
    # Only scheme, host and port: a webhook's path or query often carries a token.
    port = f":{settings.url.port}" if settings.url.port else ""
    where = f"webhook at {settings.url.scheme}://{settings.url.host}{port}"
    try:
        with httpx.Client(timeout=settings.timeout, transport=transport) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise DeliveryError(
            f"cannot reach {where}: {type(error).__name__}: {str(error).replace(url, '<url>')}; "
            "check url and that the "
            "receiver is up"
        ) from None
    if not response.is_success:
        raise DeliveryError(
            f"{where} answered {response.status_code} {response.reason_phrase}; check the "
            "receiver's log (a 401 or 403 usually means the secret differs)"
        )
    return response.status_code


__all__ = ["DeliveryError", "post_webhook", "send_email", "signature"]
