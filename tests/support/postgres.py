"""Throwaway PostgreSQL databases for tests.

::

    from tests.support.postgres import fresh_database, postgres_url

    with fresh_database("chaos") as url:      # postgresql://postgres@127.0.0.1:5432/pleo_export_test_chaos_<random>
        ...                                   # the database is dropped afterwards

    def test_x(postgres_url: str) -> None:    # a pytest fixture: one fresh database per test
        ...

The server comes from ``PLEO_EXPORT_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``: a maintenance database on a server with trust
auth). When that local server is not running, the helpers try once to start the machine's
cluster (``pg_ctlcluster``, as ``.ci/prepare`` does). When the server still cannot be reached
the test is skipped with the reason, or fails when the environment variable ``CI`` is set.

The helpers use psycopg's synchronous API, so they work in any fixture, sync or async.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = [
    "DEFAULT_SERVER",
    "ENV_VAR",
    "fresh_database",
    "postgres_url",
    "require_server",
    "server_url",
]

ENV_VAR = "PLEO_EXPORT_TEST_POSTGRES"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

_PREFIX = re.compile(r"^[a-z0-9_]{1,20}$")


def server_url() -> str:
    """The maintenance-database URL tests create their databases through."""
    return os.environ.get(ENV_VAR) or DEFAULT_SERVER


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL is not available: {reason} (set {ENV_VAR} to a server URL)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide it (.ci/prepare starts PostgreSQL)")
    pytest.skip(message)


def require_server() -> str:
    """The server URL after checking that psycopg is installed and the server answers."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'pleo-export[postgresql]')")
        raise  # unreachable: skip/fail raise
    url = server_url()
    try:
        _ping(url)
    except psycopg.Error as error:
        if not (url == DEFAULT_SERVER and _start_local_cluster()):
            _unavailable(f"cannot connect to {_redact(url)}: {str(error).strip()}")
        try:
            _ping(url)
        except psycopg.Error as again:
            _unavailable(f"cannot connect to {_redact(url)}: {str(again).strip()}")
    return url


def _ping(url: str) -> None:
    import psycopg

    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        conn.execute("SELECT 1")


_tried_start = False


def _start_local_cluster() -> bool:
    """Start the machine's PostgreSQL cluster (Debian's ``pg_ctlcluster``) once per session;
    ``True`` if it then accepts connections."""
    global _tried_start
    if _tried_start:
        return False
    _tried_start = True
    ctl = shutil.which("pg_ctlcluster")
    if ctl is None or not os.path.isdir("/etc/postgresql"):
        return False
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        return False
    started = subprocess.run(
        [ctl, "--skip-systemctl-redirect", versions[0], "main", "start"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if started.returncode != 0:
        return False  # e.g. not allowed to: the caller skips with the connection error
    ready = shutil.which("pg_isready")
    for _ in range(30):
        if ready is None:
            return True
        probe = [ready, "-q", "-h", "127.0.0.1", "-p", "5432"]
        if subprocess.run(probe, check=False, timeout=10).returncode == 0:
            return True
        time.sleep(1)
    return False


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _redact(url: str) -> str:
    from pleo_export.state import redact_url

    return redact_url(url)


@contextmanager
def fresh_database(prefix: str = "test") -> Iterator[str]:
    """Create ``pleo_export_test_<prefix>_<random>``, yield its URL, drop it afterwards.

    ``prefix`` is lower-case letters, digits and underscores (at most 20). The database is
    dropped with ``FORCE``, so connections a killed worker left behind do not keep it alive.
    Skips (or fails under ``CI``) when the server is unreachable.
    """
    if not _PREFIX.match(prefix):
        raise ValueError(f"prefix must match {_PREFIX.pattern}, got {prefix!r}")
    import psycopg
    from psycopg import sql

    server = require_server()
    name = f"pleo_export_test_{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    with fresh_database("fixture") as url:
        yield url
