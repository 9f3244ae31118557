"""Test helpers: a real OpenSSH server on loopback, an asyncssh SFTP server with faults, a
proxy that cuts connections, sandbox-generated export items and a connector harness."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from pleo_export import ConnectorContext, ExportItem, ExportItemFile, ExportJob, PostingPlan
from pleo_export.testing import plan_item
from pleo_export_sandbox import DEMO_CHART, generate_items, render_file
from pleo_export_sftp import SftpConnector, SftpSettings

SSHD = Path(shutil.which("sshd") or "/usr/sbin/sshd")
COMPANY_ID = "c0ffee00-0000-4000-8000-000000000001"
JOB_ID = "0b0b0000-0000-4000-8000-000000000042"
SANDBOX_VENDOR_ACCOUNTS = {v.code: f"2100:{v.code}" for v in DEMO_CHART.vendors}
"""A payable account per vendor of the sandbox's chart, as ``scaffold`` sets them up: the
settings below use it unless a test says otherwise, since an unknown vendor fails the item."""


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where every service must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pleo-export-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def known_hosts_line(port: int, public_key_file: Path) -> str:
    kind, key = public_key_file.read_text().split()[:2]
    return f"[127.0.0.1]:{port} {kind} {key}\n"


# --- the real OpenSSH server ------------------------------------------------------------------


@dataclass
class SshServer:
    """``/usr/sbin/sshd -D`` on 127.0.0.1 with a generated host key and client key."""

    port: int
    username: str
    client_key: Path
    host_public_key: Path
    base: Path
    log: Path

    def known_hosts(self, port: int | None = None) -> Path:
        """A known_hosts file with the server's key, for ``port`` (a proxy) or the server."""
        port = port or self.port
        path = self.base / f"known_hosts-{port}"
        path.write_text(known_hosts_line(port, self.host_public_key))
        return path

    def settings(self, remote_dir: Path, **overrides: Any) -> SftpSettings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "private_key": self.client_key,
            "known_hosts": self.known_hosts(overrides.get("port")),
            "remote_dir": str(remote_dir),
            "connect_timeout": 10,
            "operation_timeout": 30,
            "vendor_accounts": SANDBOX_VENDOR_ACCOUNTS,
        }
        values.update(overrides)
        return SftpSettings(**values)


def start_sshd(base: Path) -> tuple[SshServer, subprocess.Popen[bytes]]:
    """Start sshd in ``base``; the caller terminates the process."""
    host_key = keygen(base / "host_key")
    client_key = keygen(base / "client_key")
    authorized = base / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "Subsystem sftp internal-sftp",
                "MaxStartups 100:30:200",
                "MaxSessions 100",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = base / "sshd.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=sink, stderr=sink
        )
    try:
        _wait_for_port(port, process, log)
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    server = SshServer(
        port=port,
        username=getpass.getuser(),
        client_key=client_key,
        host_public_key=Path(f"{host_key}.pub"),
        base=base,
        log=log,
    )
    return server, process


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on port {port}: {log.read_text()}")


# --- an asyncssh SFTP server with faults -------------------------------------------------------


@dataclass
class Faults:
    """What the asyncssh test server does wrong, decided per request."""

    drop_after_bytes: int | None = None
    """Abort the connection once this many bytes were written (over all files)."""
    written: int = 0
    drops: int = 0
    write_error: Callable[[str], Exception | None] | None = None
    """An SFTP error to answer a write to the named file with, or ``None``."""
    rename_error: Callable[[str], Exception | None] | None = None
    lose_rename_reply: Callable[[str], bool] | None = None
    """Rename the named target, then abort the connection before answering."""
    no_posix_rename: bool = False


@dataclass
class AsyncSftp:
    port: int
    root: Path
    known_hosts: Path
    client_key: Path
    faults: Faults
    password: str

    def settings(self, **overrides: Any) -> SftpSettings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": "pleo",
            "private_key": self.client_key,
            "known_hosts": self.known_hosts,
            "remote_dir": "/",
            "connect_timeout": 10,
            "operation_timeout": 30,
            "vendor_accounts": SANDBOX_VENDOR_ACCOUNTS,
        }
        values.update(overrides)
        return SftpSettings(**values)


@contextlib.asynccontextmanager
async def asyncssh_server(base: Path, faults: Faults | None = None) -> AsyncIterator[AsyncSftp]:
    """An SFTP server on loopback, chrooted to ``base/root``; password ``s3cret`` or the key."""
    faults = faults or Faults()
    root = base / "root"
    root.mkdir(exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key_file = base / "client_key"
    client_key.write_private_key(str(client_key_file))
    password = "s3cret"

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, given: str) -> bool:
            return username == "pleo" and given == password

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
            return username == "pleo" and key.public_data == client_key.public_data

    class FaultySftp(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel) -> None:
            super().__init__(chan, chroot=str(root).encode())
            self._names: dict[int, str] = {}

        def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
            handle = super().open(path, pflags, attrs)
            self._names[id(handle)] = os.path.basename(path.decode())
            return handle

        def write(self, file_obj: object, offset: int, data: bytes) -> Any:
            name = self._names.get(id(file_obj), "")
            if faults.write_error is not None:
                error = faults.write_error(name)
                if error is not None:
                    raise error
            faults.written += len(data)
            if faults.drop_after_bytes is not None and faults.written > faults.drop_after_bytes:
                faults.drop_after_bytes = None
                faults.drops += 1
                self.connection.abort()
                raise asyncssh.SFTPConnectionLost("dropped by the test server")
            return super().write(file_obj, offset, data)

        def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
            if faults.no_posix_rename:
                raise asyncssh.SFTPOpUnsupported("posix-rename not supported")
            target = os.path.basename(newpath.decode())
            if faults.rename_error is not None:
                error = faults.rename_error(target)
                if error is not None:
                    raise error
            if faults.lose_rename_reply is not None and faults.lose_rename_reply(target):
                super().posix_rename(oldpath, newpath)
                self.connection.abort()
                raise asyncssh.SFTPConnectionLost("the answer was lost")
            return super().posix_rename(oldpath, newpath)

    server = await asyncssh.create_server(
        Server,
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        sftp_factory=FaultySftp,
        allow_scp=False,
    )
    port = server.sockets[0].getsockname()[1]
    known_hosts = base / "known_hosts"
    kind, key = host_key.export_public_key().decode().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    try:
        yield AsyncSftp(port, root, known_hosts, client_key_file, faults, password)
    finally:
        server.close()
        await server.wait_closed()


# --- a TCP proxy that cuts connections -------------------------------------------------------


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to a target port and cuts connections on demand.

    ``cut_after(n)`` kills every connection once ``n`` more bytes went from client to server,
    in the middle of whatever was being sent, and then refuses new connections (a dead
    network or server) until ``cut_after(None)``.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.upstream_bytes = 0
        self.cuts = 0
        self.down = False
        self._cut_at: int | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close_all()
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def cut_after(self, count: int | None) -> None:
        self.down = False
        self._cut_at = None if count is None else self.upstream_bytes + count

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if self.down:
                writer.transport.abort()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                writer.transport.abort()
                return
            self._writers.update({writer, up_writer})
            await asyncio.gather(
                self._pump(reader, up_writer, upstream=True),
                self._pump(up_reader, writer, upstream=False),
            )
            self._writers.discard(writer)
            self._writers.discard(up_writer)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await src.read(65536):
                if upstream and self._cut_at is not None:
                    room = self._cut_at - self.upstream_bytes
                    if len(data) >= room:
                        dst.write(data[: max(room, 0)])
                        self._cut_at = None
                        self.cuts += 1
                        self.down = True
                        self._close_all()
                        return
                if upstream:
                    self.upstream_bytes += len(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.transport.abort()


# --- items and a connector harness -----------------------------------------------------------


def job(vendor_based: bool = False, job_id: str = JOB_ID) -> ExportJob:
    return ExportJob.model_validate(
        {
            "id": job_id,
            "companyId": COMPANY_ID,
            "status": "in_progress",
            "createdAt": "2025-01-06T08:00:00Z",
            "expiresIn": 3600,
            "isInteractive": True,
            "numberOfItems": 1,
            "vendorBasedBookkeeping": vendor_based,
        }
    )


def sandbox_items(
    count: int, seed: int = 1, *, vendor_based: bool = False, **options: Any
) -> list[ExportItem]:
    """Export items from the sandbox's generator (every type, receipts, foreign currencies)."""
    options.setdefault("large_file_rate", 0.0)
    raw = generate_items(COMPANY_ID, count, seed, vendor_based_bookkeeping=vendor_based, **options)
    return [ExportItem.model_validate(item) for item in raw]


def plans(items: Sequence[ExportItem], the_job: ExportJob | None = None) -> list[PostingPlan]:
    the_job = the_job or job()
    return [plan_item(item, the_job) for item in items]


async def fetch_sandbox_file(file: ExportItemFile) -> bytes:
    """Render a receipt the sandbox generator described (its id is the URL's last part)."""
    content, _ = render_file(file.url.rsplit("/", 1)[-1])
    return content


@dataclass
class Harness:
    """A connector built like the engine builds it, with recorded receipt downloads."""

    settings: SftpSettings
    work_dir: Path
    dry_run: bool = False
    fetch: Callable[[ExportItemFile], Awaitable[bytes]] = fetch_sandbox_file
    fetched: list[str] = field(default_factory=list)

    async def _fetch(self, file: ExportItemFile) -> bytes:
        self.fetched.append(file.url)
        return await self.fetch(file)

    def connector(self) -> SftpConnector:
        context = ConnectorContext(
            logger=logging.getLogger("pleo_export.connector.sftp.test"),
            fetch_attachment=self._fetch,
            work_dir=self.work_dir,
            dry_run=self.dry_run,
        )
        return SftpConnector(self.settings, context)

    @contextlib.asynccontextmanager
    async def opened(self, the_job: ExportJob | None = None) -> AsyncIterator[SftpConnector]:
        connector = self.connector()
        await connector.open()
        try:
            await connector.check(the_job or job())
            yield connector
        finally:
            await connector.close()


def local_settings(directory: Path, **overrides: Any) -> SftpSettings:
    directory.mkdir(parents=True, exist_ok=True)
    overrides.setdefault("vendor_accounts", SANDBOX_VENDOR_ACCOUNTS)
    return SftpSettings(local_dir=directory, **overrides)


def published(directory: Path) -> dict[str, bytes]:
    """The files a reader sees in ``directory`` (no dot files), by name."""
    files = sorted(directory.iterdir())
    return {p.name: p.read_bytes() for p in files if not p.name.startswith(".")}


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every file with its modification time and content."""
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.iterdir()}


def files_outside(root: Path, inside: Path) -> list[Path]:
    """Files under ``root`` that are not under ``inside``."""
    return [p for p in root.rglob("*") if p.is_file() and inside not in p.parents]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".pleo-tmp-"))


def card_purchase(**changes: Any) -> ExportItem:
    """A sandbox card purchase with VAT and receipts, with top-level fields replaced."""
    raw = generate_items(COMPANY_ID, 60, 1, types=["card_purchase"], large_file_rate=0.0)
    item = next(
        i
        for i in raw
        if i["accountingEntryLines"] and i["accountingEntryLines"][0].get("tax") and i.get("files")
    )
    item.update(changes)
    return ExportItem.model_validate(item)


def hostile_item(entry_id: str = "../../../etc/cron.d/evil") -> ExportItem:
    """An item whose text fields try formula injection and whose ids try path traversal."""
    item = card_purchase(
        accountingEntryId=entry_id,
        note='=HYPERLINK("http://evil.invalid","click")',
        supplier={"name": "@SUM(1+1)*cmd|' /C calc'!A0"},
        user={"id": "u1", "name": "+44 7700 900123\r\nsecond line"},
    )
    data = item.model_dump(by_alias=True, mode="json")
    data["accountingEntryLines"][0]["account"]["name"] = "-2+3"
    data["accountingEntryLines"][0]["tags"] = [{"id": "t1", "code": "=1+1", "groupCode": "DEPT"}]
    data["files"][0]["type"] = "application/x-../../sh"
    return ExportItem.model_validate(data)


@contextlib.contextmanager
def lost_connection_noise() -> Iterator[list[dict[str, Any]]]:
    """Collect what the event loop reports about abandoned asyncio work while connections die.

    The connector must leave none: every request it sends is awaited, also when the connection
    breaks. A task or future whose exception nobody retrieved would be garbage-collected later
    and logged from a finaliser (on CPython 3.11 that can even break a later ``ast.parse``), so
    the context fails the test when anything was reported.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    reported: list[dict[str, Any]] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(context)
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield reported
        gc.collect()  # abandoned tasks report when they are collected
    finally:
        loop.set_exception_handler(previous)
    assert not reported, [
        f"{c.get('message')}: {c.get('exception')!r} ({c.get('task') or c.get('future')})"
        for c in reported
    ]
