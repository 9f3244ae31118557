"""Real servers on loopback for the notify plugin: an SMTP server (aiosmtpd) with STARTTLS,
implicit TLS and login, and an HTTP receiver (the standard library's ``http.server``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
USERNAME = "pleo-export@example.com"
PASSWORD = "smtp-pw-9d41c7e2"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def _certificate(folder: Path, name: str) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = Certificate(folder / f"{name}.pem", folder / f"{name}.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1: the CA file the client trusts."""
    return _certificate(tmp_path_factory.mktemp("tls"), "smtp-loopback")


@pytest.fixture(scope="session")
def other_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """Another self-signed certificate: trusting it must not make the server trusted."""
    return _certificate(tmp_path_factory.mktemp("tls-other"), "someone-else")


@dataclass
class Mailbox:
    """What the SMTP server received, and how it answers."""

    refuse_with: str | None = None
    """An SMTP reply (e.g. ``451 ...``) to give to every DATA instead of accepting it."""
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], bool]] = field(default_factory=list)
    """(MAIL FROM, RCPT TO, whether the session was encrypted)."""
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with is not None:
            return self.refuse_with
        content = envelope.original_content or envelope.content
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), session.ssl is not None)
        )
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append(login)
        return AuthResult(success=login == (USERNAME, PASSWORD), handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox


StartSmtp = Callable[..., SmtpServer]


@pytest.fixture
def smtp_server(certificate: Certificate) -> Iterator[StartSmtp]:
    """Starts aiosmtpd on loopback: ``security`` ``starttls`` (offers STARTTLS, login only
    after it), ``ssl`` (TLS from the first byte) or ``none``; ``refuse_with`` makes every
    DATA fail with that reply."""
    controllers: list[Controller] = []

    def start(security: str = "starttls", refuse_with: str | None = None) -> SmtpServer:
        mailbox = Mailbox(refuse_with=refuse_with)
        port = free_port()
        options: dict[str, Any] = {
            "hostname": LOOPBACK,
            "port": port,
            "authenticator": mailbox.authenticate,
            "server_hostname": "smtp.loopback.test",
        }
        if security == "starttls":
            options |= {"tls_context": certificate.server_context(), "require_starttls": True}
        elif security == "ssl":
            options |= {"ssl_context": certificate.server_context(), "auth_require_tls": False}
        controller = Controller(mailbox, **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer(port=port, mailbox=mailbox)

    yield start
    for controller in controllers:
        controller.stop()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    status: int = 204
    requests: list[Request] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on loopback that records every POST and answers ``receiver.status``."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(Request(self.path, dict(self.headers.items()), body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    state.url = f"http://{LOOPBACK}:{server.server_address[1]}/hooks/pleo?token=t0k3n-in-url"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
