"""Fixtures of the notify plugin's tests: real servers on loopback (see ``servers.py``)."""

from plugins.notify.tests.servers import (  # noqa: F401 - fixtures
    anyio_backend,
    certificate,
    other_certificate,
    receiver,
    smtp_server,
)
