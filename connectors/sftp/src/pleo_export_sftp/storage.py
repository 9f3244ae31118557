"""Where files are published: an SFTP server (asyncssh) or a local directory.

Both implement :class:`Storage`, so publishing runs the same code path for both. Every
failure leaves as a :class:`DeliveryError` with a :class:`Problem` (unreachable,
authentication, host key, permission denied, disk full, ...) and a message that says what to
change.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import posixpath
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread
import asyncssh

if TYPE_CHECKING:
    from pleo_export_sftp.settings import SftpSettings


class Problem(StrEnum):
    """Why a delivery failed; decides the reason type Pleo gets."""

    UNREACHABLE = "unreachable"
    """No connection: refused, no route, name not resolved."""
    TIMEOUT = "timeout"
    """The server did not answer in time (``connect_timeout``, ``operation_timeout``)."""
    CONNECTION_LOST = "connection_lost"
    """An established connection broke."""
    AUTHENTICATION = "authentication"
    """The server refused the login."""
    HOST_KEY = "host_key"
    """The server's host key does not match ``known_hosts``."""
    CONFIGURATION = "configuration"
    """A setting cannot be used (unreadable key file, bad known_hosts, damaged manifest)."""
    MISSING_DIRECTORY = "missing_directory"
    PERMISSION_DENIED = "permission_denied"
    DISK_FULL = "disk_full"
    """No space left or quota exceeded (OpenSSH reports both as a plain SFTP failure)."""
    FAILURE = "failure"
    """Any other refusal by the server or the file system."""


TRANSIENT = frozenset({Problem.UNREACHABLE, Problem.TIMEOUT, Problem.CONNECTION_LOST})
"""Problems worth retrying as they are."""


class DeliveryError(Exception):
    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime: float


class Storage(abc.ABC):
    """A flat directory: names are plain file names (no separators)."""

    @abc.abstractmethod
    def describe(self, name: str | None = None) -> str:
        """The directory (or a file in it) as a person would type it, for messages."""

    def url(self, name: str) -> str | None:
        """A URL of the published file, if one can be formed."""
        return None

    async def connect(self) -> None:  # noqa: B027 - a local directory needs no connection
        """Make sure the next operation can run (connect or reconnect)."""

    async def close(self) -> None:  # noqa: B027
        """Release the connection, if any."""

    async def reset(self) -> None:
        """Drop a connection whose state is unknown; the next operation reconnects."""
        await self.close()

    @abc.abstractmethod
    async def check_directory(self) -> None:
        """Raise ``MISSING_DIRECTORY`` (or another problem) when the directory is unusable."""

    @abc.abstractmethod
    async def list_names(self) -> list[str]: ...

    @abc.abstractmethod
    async def stat(self, name: str) -> FileStat | None: ...

    @abc.abstractmethod
    async def read(self, name: str) -> bytes | None:
        """The file's content, or ``None`` when it does not exist."""

    @abc.abstractmethod
    async def write(self, name: str, data: bytes) -> None:
        """Create or truncate ``name`` with ``data`` and flush it to disk where possible."""

    @abc.abstractmethod
    async def replace(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target`` atomically, replacing ``target`` if it exists."""

    @abc.abstractmethod
    async def remove(self, name: str) -> None:
        """Remove ``name``; a missing file is not an error."""


# --- local directory -------------------------------------------------------------------------


def _local_problem(error: OSError, action: str, where: str) -> DeliveryError:
    code = error.errno
    reason = error.strerror or str(error)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return DeliveryError(
            Problem.DISK_FULL,
            f"cannot {action} {where}: {reason}; free space (or raise the quota) on that disk",
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DeliveryError(
            Problem.PERMISSION_DENIED,
            f"cannot {action} {where}: {reason}; give the user running pleo-export write "
            "permission on the directory",
        )
    if code in (errno.ENOENT, errno.ENOTDIR):
        return DeliveryError(
            Problem.MISSING_DIRECTORY,
            f"cannot {action} {where}: {reason}; create the directory or correct local_dir",
        )
    return DeliveryError(Problem.FAILURE, f"cannot {action} {where}: {reason}")


class LocalStorage(Storage):
    """A directory on this machine; writes are fsynced and renames atomic (``os.replace``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self, name: str | None = None) -> str:
        return str(self.directory / name) if name else str(self.directory)

    def url(self, name: str) -> str | None:
        return (self.directory / name).absolute().as_uri()

    async def _run(self, action: str, name: str | None, function: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(function, *args)
        except OSError as error:
            raise _local_problem(error, action, self.describe(name)) from error

    async def check_directory(self) -> None:
        def check() -> None:
            if not self.directory.is_dir():
                raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.directory))

        await self._run("use the directory", None, check)

    async def list_names(self) -> list[str]:
        result: list[str] = await self._run(
            "list", None, lambda: [p.name for p in self.directory.iterdir()]
        )
        return result

    async def stat(self, name: str) -> FileStat | None:
        def stat() -> FileStat | None:
            try:
                info = (self.directory / name).stat()
            except FileNotFoundError:
                return None
            return FileStat(info.st_size, info.st_mtime)

        result: FileStat | None = await self._run("read", name, stat)
        return result

    async def read(self, name: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                return (self.directory / name).read_bytes()
            except FileNotFoundError:
                return None

        result: bytes | None = await self._run("read", name, read)
        return result

    async def write(self, name: str, data: bytes) -> None:
        def write() -> None:
            path = self.directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)

        await self._run("write", name, write)

    async def replace(self, source: str, target: str) -> None:
        def replace() -> None:
            os.replace(self.directory / source, self.directory / target)
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        await self._run("rename a file to", target, replace)

    async def remove(self, name: str) -> None:
        await self._run("remove", name, lambda: (self.directory / name).unlink(missing_ok=True))


# --- SFTP ------------------------------------------------------------------------------------

_SAFE_BLOCK = 16 * 1024
"""Bytes per SFTP read or write request when the server announces no limits."""
_WRITE_WINDOW = 16
"""Write requests in flight at once for one file."""


def _leaf(error: BaseException) -> BaseException:
    """The first error inside (nested) exception groups, or ``error`` itself."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


_LOST = (
    asyncssh.ConnectionLost,
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.DisconnectError,
    asyncssh.ChannelOpenError,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    EOFError,
)


KnownHostsMatch = tuple[Any, ...]
"""What :meth:`asyncssh.SSHKnownHosts.match` returns: host keys, CA keys, revoked keys, ..."""


def match_known_hosts(
    known: asyncssh.SSHKnownHosts, host: str, addr: str, port: int | None
) -> KnownHostsMatch:
    """The known_hosts entries for ``host`` (at ``addr``) on ``port``, as OpenSSH reads them.

    On port 22 (or ``None``) entries name the bare host or address. On any other port only
    ``[host]:port`` (or ``[addr]:port``) entries count: asyncssh falls back to the bare host
    when none matches, so an entry for the SSH server on port 22 of the same machine would
    vouch for whatever listens on another port. Revoked keys count from both forms.
    """
    if port is None or port == 22:
        return tuple(known.match(host, addr, None))
    found = [list(part) for part in known.match(f"[{host}]:{port}", "", None)]
    if addr and addr != host:
        for index, part in enumerate(known.match(f"[{addr}]:{port}", "", None)):
            found[index].extend(part)
    bare = known.match(host, addr if addr else "", None)
    found[2].extend(bare[2])  # @revoked entries for the bare host still revoke
    return tuple(found)


class SftpStorage(Storage):
    """A directory on an SFTP server.

    One SSH connection with one SFTP session, opened on first use and again after it broke.
    The server's host key must match ``known_hosts``; agent keys, default key files and
    ``~/.ssh/config`` are never used, so only the configured credentials are tried.
    """

    def __init__(self, settings: SftpSettings) -> None:
        if settings.host is None or settings.known_hosts is None:
            raise ValueError("SftpStorage needs host and known_hosts")
        self.settings = settings
        self.host = settings.host
        self.port = settings.port
        self.directory = settings.remote_dir
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self.connections = 0
        """How many connections were opened (reconnects included); for logs and tests."""
        self._lock = anyio.Lock()

    def describe(self, name: str | None = None) -> str:
        path = posixpath.join(self.directory, name) if name else self.directory
        return f"{path} on {self.host}:{self.port}"

    def url(self, name: str) -> str | None:
        path = posixpath.join(self.directory, name)
        if not path.startswith("/"):
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sftp://{self.settings.username}@{host}:{self.port}{path}"

    def _path(self, name: str) -> str:
        return posixpath.join(self.directory, name)

    # --- connection ----------------------------------------------------------------------

    async def connect(self) -> None:
        await self._client()

    async def _client(self) -> asyncssh.SFTPClient:
        async with self._lock:
            if self._sftp is not None and self._conn is not None and not self._conn.is_closed():
                return self._sftp
            await self.close()
            return await self._open()

    async def _open(self) -> asyncssh.SFTPClient:
        s = self.settings
        try:
            known = await anyio.to_thread.run_sync(asyncssh.read_known_hosts, str(s.known_hosts))
        except (OSError, ValueError) as error:
            raise DeliveryError(
                Problem.CONFIGURATION, f"known_hosts {s.known_hosts} cannot be read ({error})"
            ) from error
        options: dict[str, Any] = {
            "username": s.username,
            # OpenSSH's rule, not asyncssh's fallback: see match_known_hosts.
            "known_hosts": lambda host, addr, port: match_known_hosts(known, host, addr, port),
            "agent_path": None,
            "config": None,
            "client_keys": [str(s.private_key)] if s.private_key is not None else None,
            "password": s.password.get_secret_value() if s.password is not None else None,
            "connect_timeout": s.connect_timeout,
            "login_timeout": s.connect_timeout,
            "keepalive_interval": 30,
            "keepalive_count_max": 3,
        }
        if s.private_key_passphrase is not None:
            options["passphrase"] = s.private_key_passphrase.get_secret_value()
        preferred = [m for m, on in (("publickey", s.private_key), ("password", s.password)) if on]
        options["preferred_auth"] = preferred
        try:
            with anyio.fail_after(s.connect_timeout * 2):
                conn = await asyncssh.connect(self.host, self.port, **options)
        except TimeoutError as error:
            raise DeliveryError(
                Problem.TIMEOUT,
                f"no SSH connection to {self.host}:{self.port} within {s.connect_timeout} "
                "seconds: check host, port and firewalls, or raise connect_timeout",
            ) from error
        except Exception as error:
            raise self._connect_problem(error) from error
        try:
            with anyio.fail_after(s.operation_timeout):
                sftp = await conn.start_sftp_client()
        except Exception as error:
            conn.abort()
            if isinstance(error, asyncssh.ChannelOpenError | asyncssh.SFTPError):
                raise DeliveryError(
                    Problem.CONFIGURATION,
                    f"{self.host}:{self.port} accepted the login but not the SFTP subsystem "
                    f"({error}): ask the administrator to enable SFTP for user {s.username}",
                ) from error
            raise self._translate(error, "start SFTP on", None) from error
        self._conn, self._sftp = conn, sftp
        self.connections += 1
        return sftp

    def _connect_problem(self, error: BaseException) -> DeliveryError:
        s = self.settings
        where = f"{self.host}:{self.port}"
        if isinstance(error, asyncssh.HostKeyNotVerifiable):
            return DeliveryError(
                Problem.HOST_KEY,
                f"the host key of {where} does not match {s.known_hosts} ({error}); the "
                "connection was refused. If the server's key changed legitimately, get its new "
                "fingerprint from the administrator, compare it with `ssh-keyscan -p "
                f"{self.port} {self.host} | ssh-keygen -lf -` and update known_hosts",
            )
        if isinstance(error, asyncssh.PermissionDenied):
            methods = " and ".join(
                m for m, on in (("key", s.private_key), ("password", s.password)) if on
            )
            return DeliveryError(
                Problem.AUTHENTICATION,
                f"{where} refused the login of user {s.username} with {methods}: check "
                "username, the key in the server's authorized_keys, or the password",
            )
        if isinstance(error, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
            return DeliveryError(
                Problem.CONFIGURATION,
                f"the private key {s.private_key} cannot be used ({error}): check the file "
                "and private_key_passphrase",
            )
        if isinstance(error, socket.gaierror):
            return DeliveryError(
                Problem.UNREACHABLE,
                f"the host name {self.host} cannot be resolved ({error.strerror}): check host",
            )
        if isinstance(error, ConnectionRefusedError):
            return DeliveryError(
                Problem.UNREACHABLE,
                f"{where} refused the connection: check host and port, and that the SFTP "
                "server is running",
            )
        if isinstance(error, _LOST):
            return DeliveryError(
                Problem.UNREACHABLE,
                f"{where} closed the connection during the SSH handshake ({error}): check "
                "that this is an SSH server and that it accepts this client",
            )
        if isinstance(error, OSError):
            return DeliveryError(
                Problem.UNREACHABLE,
                f"cannot connect to {where}: {error.strerror or error}; check host, port and "
                "the network",
            )
        if isinstance(error, ValueError):
            return DeliveryError(
                Problem.CONFIGURATION, f"cannot connect to {where}: {error}; check the settings"
            )
        return DeliveryError(Problem.UNREACHABLE, f"cannot connect to {where}: {error!r}")

    async def close(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is None:
            return
        conn.close()
        with anyio.move_on_after(5):
            await conn.wait_closed()

    async def reset(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.abort()

    # --- errors --------------------------------------------------------------------------

    def _translate(self, error: BaseException, action: str, name: str | None) -> DeliveryError:
        where = self.describe(name)
        user = self.settings.username
        if isinstance(error, DeliveryError):
            return error
        if isinstance(error, TimeoutError):
            return DeliveryError(
                Problem.TIMEOUT,
                f"the server did not {action} {where} within {self.settings.operation_timeout} "
                "seconds: check the server's load and network, or raise operation_timeout",
            )
        if isinstance(error, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
            return DeliveryError(
                Problem.PERMISSION_DENIED,
                f"permission denied: user {user} may not {action} {where}; grant write "
                "permission on the directory to that user, or change remote_dir",
            )
        if isinstance(error, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
            return DeliveryError(
                Problem.DISK_FULL,
                f"the server has no space left to {action} {where} ({error.reason}): free "
                "space or raise the quota of user " + str(user),
            )
        if isinstance(error, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            return DeliveryError(
                Problem.MISSING_DIRECTORY,
                f"cannot {action} {where}: no such file or directory; create remote_dir "
                f"{self.directory} on the server or correct the setting",
            )
        if isinstance(error, asyncssh.SFTPFailure) and action in ("write", "create"):
            return DeliveryError(
                Problem.DISK_FULL,
                f"the server refused to {action} {where} ({error.reason}); OpenSSH reports a "
                f"full disk or an exceeded quota this way: free space for user {user}",
            )
        if isinstance(error, _LOST):
            return DeliveryError(
                Problem.CONNECTION_LOST,
                f"the connection to {self.host}:{self.port} broke while trying to {action} "
                f"{where} ({type(error).__name__}: {error})",
            )
        if isinstance(error, asyncssh.SFTPError):
            return DeliveryError(
                Problem.FAILURE,
                f"the server refused to {action} {where}: {error.reason or error}",
            )
        if isinstance(error, OSError):
            return DeliveryError(
                Problem.CONNECTION_LOST,
                f"network error while trying to {action} {where}: {error.strerror or error}",
            )
        raise error

    async def _op(self, action: str, name: str | None, call: Any) -> Any:
        sftp = await self._client()
        try:
            with anyio.fail_after(self.settings.operation_timeout):
                return await call(sftp)
        except Exception as error:
            translated = self._translate(_leaf(error), action, name)
            if translated.problem in TRANSIENT:
                await self.reset()  # its state is unknown: never reuse it
            raise translated from error

    # --- operations ----------------------------------------------------------------------

    async def check_directory(self) -> None:
        async def check(sftp: asyncssh.SFTPClient) -> None:
            if not await sftp.isdir(self.directory):
                raise asyncssh.SFTPNoSuchFile(f"{self.directory} is not a directory")

        await self._op("use the directory", None, check)

    async def list_names(self) -> list[str]:
        async def listdir(sftp: asyncssh.SFTPClient) -> list[str]:
            names = await sftp.listdir(self.directory)
            return [str(n) for n in names if n not in (".", "..")]

        result: list[str] = await self._op("list", None, listdir)
        return result

    async def stat(self, name: str) -> FileStat | None:
        async def stat(sftp: asyncssh.SFTPClient) -> FileStat | None:
            try:
                attrs = await sftp.stat(self._path(name))
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return None
            return FileStat(int(attrs.size or 0), float(attrs.mtime or 0))

        result: FileStat | None = await self._op("read", name, stat)
        return result

    # Reads and writes go block by block through requests this class awaits itself (block_size
    # 0 turns off asyncssh's own parallel I/O, whose helper tasks outlive a broken connection
    # with exceptions nobody retrieves).

    async def read(self, name: str) -> bytes | None:
        async def read(sftp: asyncssh.SFTPClient) -> bytes | None:
            block = sftp.limits.max_read_len or _SAFE_BLOCK
            parts: list[bytes] = []
            offset = 0
            try:
                async with sftp.open(self._path(name), "rb", block_size=0) as file:
                    while part := await file.read(block, offset):
                        parts.append(cast(bytes, part))
                        offset += len(part)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return None
            return b"".join(parts)

        result: bytes | None = await self._op("read", name, read)
        return result

    async def write(self, name: str, data: bytes) -> None:
        async def write(sftp: asyncssh.SFTPClient) -> None:
            block = sftp.limits.max_write_len or _SAFE_BLOCK
            window = anyio.CapacityLimiter(_WRITE_WINDOW)
            async with sftp.open(self._path(name), "wb", block_size=0) as file:

                async def write_block(offset: int) -> None:
                    async with window:
                        await file.write(data[offset : offset + block], offset)

                async with anyio.create_task_group() as group:
                    for offset in range(0, len(data), block):
                        group.start_soon(write_block, offset)
                # A server without fsync still publishes atomically through the rename.
                with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                    await file.fsync()

        await self._op("write", name, write)

    async def replace(self, source: str, target: str) -> None:
        async def replace(sftp: asyncssh.SFTPClient) -> None:
            try:
                await sftp.posix_rename(self._path(source), self._path(target))
            except asyncssh.SFTPOpUnsupported:
                # Without posix-rename an SFTPv3 rename refuses an existing target. Only a
                # file left by an interrupted earlier attempt can be in the way.
                if await sftp.exists(self._path(target)):
                    await sftp.remove(self._path(target))
                await sftp.rename(self._path(source), self._path(target))

        await self._op("rename a file to", target, replace)

    async def remove(self, name: str) -> None:
        async def remove(sftp: asyncssh.SFTPClient) -> None:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                await sftp.remove(self._path(name))

        await self._op("remove", name, remove)
