"""``[plugins.notify]``: when to send, and through which channels (email, webhook)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator

from pleo_export import PluginSettings

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class EmailSettings(PluginSettings):
    """``[plugins.notify.email]``: one email per job with failures, over SMTP."""

    host: str = Field(min_length=1)
    """The SMTP server's name or address."""
    port: int | None = Field(None, ge=1, le=65535)
    """Its port; by default 587 with ``starttls``, 465 with ``ssl`` and 25 with ``none``."""
    security: Literal["starttls", "ssl", "none"] = "starttls"
    """``starttls`` (upgrade a plain connection, usually port 587), ``ssl`` (TLS from the first
    byte, usually port 465) or ``none`` (plain text; only without a username)."""
    ca_file: Path | None = None
    """A PEM file of certificate authorities to trust instead of the system's (a company CA);
    relative to the configuration file's folder. The server's name is always checked."""
    username: str | None = None
    """The login; needs ``password``."""
    password: SecretStr | None = None
    """The login's password; never logged."""
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    """The ``From`` address."""
    recipients: list[str] = Field(min_length=1)
    """The ``To`` addresses."""
    timeout: float = Field(10.0, gt=0, le=120)
    """Seconds to wait for the server at each step; the export waits at most this long per
    step for the message to go out."""

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"{address!r} is not an email address (name@example.com)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        if self.username is not None and self.security == "none":
            raise ValueError(
                "security = 'none' would send the password in plain text: use 'starttls' or "
                "'ssl', or remove username and password"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class WebhookSettings(PluginSettings):
    """``[plugins.notify.webhook]``: one JSON POST per job with failures."""

    url: HttpUrl
    """Where the JSON is posted (``https://``; ``http://`` only inside a trusted network)."""
    secret: SecretStr | None = None
    """Signs each request (HMAC-SHA256 of the timestamp and the body) in the header named by
    ``signature_header``; never logged. Without it requests are not signed."""
    signature_header: str = Field("X-Pleo-Export-Signature", pattern=r"^[A-Za-z0-9-]+$")
    """The header carrying ``sha256=<hex digest>``."""
    timeout: float = Field(10.0, gt=0, le=120)
    """Seconds to wait for the receiver's answer."""


class NotifySettings(PluginSettings):
    """``[plugins.notify]``."""

    on: Literal["failures", "always"] = "failures"
    """``failures``: a message for each job in which items failed or that failed as a whole
    (or ended on Pleo's side); ``always``: for every finished job. Dry runs send nothing."""
    max_items: int = Field(10, ge=0, le=500)
    """How many failed items a message lists one by one (the counts cover all of them)."""
    subject_prefix: str = "[pleo-export]"
    """Put before each email's subject."""
    email: EmailSettings | None = None
    """The email channel; off when absent. With neither channel the plugin sends nothing
    (installed but not configured)."""
    webhook: WebhookSettings | None = None
    """The webhook channel; off when absent."""

    @property
    def channels(self) -> list[str]:
        return [name for name in ("email", "webhook") if getattr(self, name) is not None]


__all__ = ["EmailSettings", "NotifySettings", "WebhookSettings"]
