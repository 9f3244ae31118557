"""The Tryton fixtures (a real trytond on PostgreSQL per test module) and the SFTP connector's
real OpenSSH server (``sshd``, one per test session) for the sync tests; they skip with the
reason when Tryton, PostgreSQL or sshd is missing (and fail under CI)."""

from connectors.sftp.tests.conftest import sshd
from connectors.tryton.tests.conftest import tryton, tryton_template

__all__ = ["sshd", "tryton", "tryton_template"]
