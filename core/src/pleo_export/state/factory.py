"""Pick a state store backend from a URL: :func:`open_store`.

The backends are imported here lazily, by URL scheme, so importing :mod:`pleo_export.state`
does not import them (and PostgreSQL's driver is only needed for ``postgresql://`` URLs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleo_export.state.postgres_url import redact_url as redact_any

if TYPE_CHECKING:
    from pleo_export.state.base import StateStore
    from pleo_export.state.sqlite import Durability

__all__ = ["SUPPORTED_URLS", "open_store", "redact_url"]

SUPPORTED_URLS = (
    "sqlite:///relative/path.db",
    "sqlite:////absolute/path.db",
    "sqlite:///:memory:",
    "a bare filesystem path",
    "postgresql://user@host:5432/dbname[?schema=name]",
)
"""Forms accepted by :func:`open_store`, for help and error messages."""

_SQLITE_PREFIX = "sqlite://"
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def redact_url(url: str) -> str:
    """``url`` safe to show: a password in it (``user:password@`` or ``password=``) is ``***``."""
    if "://" not in url:
        return url  # a filesystem path
    return redact_any(url)


def open_store(url: str) -> StateStore:
    """Return an *unopened* state store for ``url``; call ``await store.open()`` before use.

    Accepted forms:

    - ``sqlite:///relative/path.db`` (relative to the working directory),
    - ``sqlite:////abs/path.db`` (absolute),
    - ``sqlite:///:memory:`` (in-memory, lost on close; for tests),
    - a bare filesystem path such as ``state/pleo.db`` or ``/var/lib/pleo-export/state.db``,
    - ``postgresql://user[:password]@host[:port]/dbname`` (also ``postgres://``), optionally
      with ``?schema=name`` to keep the tables in their own schema (created if missing); other
      query parameters (``sslmode``, ``application_name``, ...) are passed to libpq. The
      driver is imported when the store is opened (``pip install 'pleo-export[postgresql]'``).

    A SQLite URL may carry ``?durability=power`` to fsync every commit (survives power loss)
    instead of the default ``durability=process`` (survives process crashes).

    Raises:
        ValueError: the URL uses another scheme or is malformed; the message lists the
            supported forms. A PostgreSQL URL's password never appears in the message.
    """
    from pleo_export.state.sqlite import SQLiteStateStore

    if not url or not url.strip():
        raise ValueError(f"empty state store URL; use one of: {_supported()}")
    if url.startswith(_POSTGRES_PREFIXES):
        from pleo_export.state.postgres import PostgresStateStore

        return PostgresStateStore(url)
    if "://" not in url:
        return SQLiteStateStore(url)
    if not url.startswith(_SQLITE_PREFIX):
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"unsupported state store URL scheme {scheme!r} in {redact_url(url)!r}; use one of: "
            f"{_supported()}"
        )
    rest = url[len(_SQLITE_PREFIX) :]
    if not rest.startswith("/"):
        raise ValueError(
            f"SQLite URL {url!r} has a host part; SQLite URLs take three slashes before a "
            f"relative path and four before an absolute one, e.g. one of: {_supported()}"
        )
    path, _, query = rest[1:].partition("?")
    if not path:
        raise ValueError(f"SQLite URL {url!r} names no database file; use one of: {_supported()}")
    return SQLiteStateStore(path, durability=_durability_from_query(url, query))


def _durability_from_query(url: str, query: str) -> Durability:
    durability: Durability = "process"
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key != "durability":
            raise ValueError(
                f"unknown parameter {key!r} in state store URL {url!r}; only "
                "'durability=process' or 'durability=power' is accepted"
            )
        if value == "process":
            durability = "process"
        elif value == "power":
            durability = "power"
        else:
            raise ValueError(f"durability must be 'process' or 'power', not {value!r} (in {url!r})")
    return durability


def _supported() -> str:
    return ", ".join(SUPPORTED_URLS)
