"""Fixtures: the real OpenSSH server (session-wide) and the anyio backend."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from connectors.sftp.tests.helpers import SSHD, SshServer, start_sshd, unavailable


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """``/usr/sbin/sshd -D`` on a free loopback port, for the whole test session."""
    if not SSHD.exists():
        unavailable(f"OpenSSH server not installed ({SSHD}): apt-get install openssh-server")
    if shutil.which("ssh-keygen") is None:
        unavailable("ssh-keygen not installed: apt-get install openssh-client")
    server, process = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
