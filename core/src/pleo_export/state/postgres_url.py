"""PostgreSQL state store URLs: parsing into a libpq URI plus pleo-export's own parameters,
and hiding passwords.

Nothing here imports the driver, so URLs can be checked and shown without psycopg installed.
"""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["SCHEMES", "Durability", "ParsedURL", "parse_url", "redact_url"]

SCHEMES: Final = ("postgresql", "postgres")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` parameter) as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc, query = parts.netloc, parts.query
    userinfo, at, hostinfo = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        query = "&".join(
            f"{key}=***" if key == "password" else f"{key}={quote(value, safe='')}"
            for key, value in pairs
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password" and value:
            return value
    return None


Durability = Literal["server", "process"]
"""``server``: commits as durable as the server's ``synchronous_commit`` makes them (default);
``process``: ``synchronous_commit = off`` (survives the worker dying, not the server)."""


class ParsedURL(NamedTuple):
    conninfo: str
    """The libpq connection URI, without pleo-export's own parameters."""
    schema: str | None
    durability: Durability = "server"


def parse_url(url: str) -> ParsedURL:
    """Split a ``postgresql://`` URL into the libpq connection URI and pleo-export's own
    parameters, ``schema=`` and ``durability=`` (``server`` or ``process``).

    Every other query parameter (``sslmode``, ``application_name``, ...) is passed to libpq.

    Raises:
        ValueError: another scheme, no database name, a ``schema`` that is not a plain
            lower-case identifier, or an unknown ``durability``; the message shows the URL
            with its password hidden.
    """
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"malformed PostgreSQL URL {shown!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"{shown!r} is not a PostgreSQL URL; use postgresql://user@host:5432/dbname"
        )
    if not parts.path.strip("/"):
        raise ValueError(
            f"PostgreSQL URL {shown!r} names no database; add it after the host, e.g. "
            "postgresql://user@host:5432/pleo_export"
        )
    schema: str | None = None
    durability: Durability = "server"
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "durability":
            if value == "server":
                durability = "server"
            elif value == "process":
                durability = "process"
            else:
                raise ValueError(
                    f"durability must be 'server' or 'process', not {value!r} (in {shown!r})"
                )
        elif key == "schema":
            if not _SCHEMA_NAME.match(value) or value.startswith("pg_"):
                raise ValueError(
                    f"schema={value!r} in PostgreSQL URL {shown!r} is not a plain identifier; "
                    "use lower-case letters, digits and underscores, starting with a letter "
                    "(not pg_, which PostgreSQL reserves), e.g. schema=pleo_export"
                )
            schema = value
        else:
            rest.append((key, value))
    conninfo = urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(rest, quote_via=quote), "")
    )
    return ParsedURL(conninfo, schema, durability)
