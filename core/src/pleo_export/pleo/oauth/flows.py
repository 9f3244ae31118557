"""The install flow: Authorization Code with PKCE (S256), the authorize URL, the pasted or
listened-for redirect and the code exchange (:class:`LoginFlow`, :class:`RedirectListener`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import anyio
import anyio.abc
from pydantic import SecretStr

from pleo_export.pleo.oauth.common import (
    LOGIN_COMMAND,
    MAX_DESCRIPTION,
    PENDING_LOGIN_TTL,
    VERIFIER_CHARS,
    AuthorizationDenied,
    OAuthError,
    StateMismatch,
    log,
)
from pleo_export.pleo.oauth.tokens import (
    TokenManager,
)
from pleo_export.state.base import StoredToken

__all__ = [
    "AuthorizationRequest",
    "LoginFlow",
    "PkcePair",
    "RedirectListener",
    "authorize_url",
    "code_challenge",
    "code_from_redirect",
    "wait_for_redirect",
]


# --- PKCE and the authorize URL ---------------------------------------------------------------


def code_challenge(verifier: str) -> str:
    """The S256 challenge: base64url (no padding) of the SHA-256 of the verifier."""
    if not VERIFIER_CHARS.match(verifier):
        raise ValueError("a PKCE verifier is 43 to 128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PkcePair:
    verifier: SecretStr
    challenge: str

    @classmethod
    def generate(cls) -> PkcePair:
        """64 random bytes as base64url: an 86-character verifier (Pleo allows 43 to 128)."""
        verifier = secrets.token_urlsafe(64)
        return cls(SecretStr(verifier), code_challenge(verifier))


@dataclass(frozen=True)
class AuthorizationRequest:
    """A started login: the URL to open and what the redirect must be checked against."""

    url: str
    state: str
    redirect_uri: str
    scopes: tuple[str, ...]
    expires_at: datetime


def authorize_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    challenge: str,
) -> str:
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "response_type": "code",
            "state": state,
            "code_challenge_method": "S256",
            "code_challenge": challenge,
        },
        quote_via=quote,
    )
    return f"{endpoint}?{query}"


def code_from_redirect(pasted: str, *, expected_state: str) -> SecretStr:
    """The authorization code from what the user pasted.

    ``pasted`` is the URL the browser was redirected to, or its query string, or the bare code.
    With a URL or query string, ``state`` must be the one this login sent
    (:class:`StateMismatch` otherwise) and an ``error`` parameter raises
    :class:`AuthorizationDenied`. A bare code carries no state and is taken as it is.
    """
    text = pasted.strip()
    if not text:
        raise StateMismatch("nothing was pasted: paste the whole redirect URL")
    if "://" not in text and "code=" not in text and "error=" not in text:
        return SecretStr(text)
    query = urlsplit(text).query if "://" in text else text.lstrip("?")
    values = parse_qs(query, keep_blank_values=True)
    error = values.get("error", [None])[0]
    if error is not None:
        description = values.get("error_description", [""])[0][:MAX_DESCRIPTION]
        detail = f": {description}" if description else ""
        raise AuthorizationDenied(
            f"Pleo did not install the app ({error}{detail}); start again with `{LOGIN_COMMAND}`"
        )
    state = values.get("state", [None])[0]
    if state is None or not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise StateMismatch(
            "the redirect's state does not match this login: paste the URL from the browser "
            f"window opened for the latest `{LOGIN_COMMAND}`"
        )
    codes = values.get("code", [])
    if len(codes) != 1 or not codes[0]:
        raise StateMismatch("the redirect URL has no code parameter: paste the whole URL")
    return SecretStr(codes[0])


# --- the install flow -------------------------------------------------------------------------


class LoginFlow:
    """``pleo-export auth login``: start (authorize URL), then complete (code exchange).

    The state and the PKCE verifier of a started login are kept in the state store, next to
    the tokens (row ``<key>#login``, for :data:`PENDING_LOGIN_TTL` seconds), so a login
    started on a server can be completed by a second command with the pasted redirect URL.
    """

    def __init__(
        self,
        manager: TokenManager,
        *,
        authorize_endpoint: str,
        client_id: str,
        redirect_uri: str,
        scopes: Sequence[str],
    ) -> None:
        self.manager = manager
        self.authorize_endpoint = authorize_endpoint
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scopes = tuple(scopes)
        self.pending_key = f"{manager.key}#login"

    async def start(self) -> AuthorizationRequest:
        pkce = PkcePair.generate()
        state = secrets.token_urlsafe(24)
        now = self.manager.clock()
        expires_at = now + timedelta(seconds=PENDING_LOGIN_TTL)
        store = self.manager.store
        for _ in range(5):
            current = await store.get_token(self.pending_key)
            pending = StoredToken(
                key=self.pending_key,
                access_token=state,
                refresh_token=pkce.verifier.get_secret_value(),
                expires_at=expires_at,
                generation=current.generation + 1 if current else 1,
                scope=" ".join(self.scopes),
            )
            if await store.replace_token(
                self.pending_key, current.generation if current else None, pending
            ):
                break
        else:  # pragma: no cover - five concurrent logins in a row
            raise OAuthError("another login is being started at the same time; try again")
        url = authorize_url(
            self.authorize_endpoint,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scopes=self.scopes,
            state=state,
            challenge=pkce.challenge,
        )
        log.info(
            "oauth login started",
            extra={
                "event": "oauth.login.started",
                "installation": self.manager.key,
                "redirect_uri": self.redirect_uri,
            },
        )
        return AuthorizationRequest(url, state, self.redirect_uri, self.scopes, expires_at)

    async def complete(self, pasted: str) -> StoredToken:
        """Check the redirect against the started login, exchange the code, store the tokens.

        A started login can be completed once: its verifier is discarded first, so a second
        paste of the same redirect fails with :class:`StateMismatch` instead of reaching Pleo.
        """
        store = self.manager.store
        pending = await store.get_token(self.pending_key)
        if pending is None or not pending.refresh_token:
            raise StateMismatch(f"no login is waiting to be completed: run `{LOGIN_COMMAND}` first")
        if self.manager.clock() >= pending.expires_at:
            raise StateMismatch(
                f"the login started more than {PENDING_LOGIN_TTL / 60:.0f} minutes ago has "
                f"expired: run `{LOGIN_COMMAND}` again"
            )
        code = code_from_redirect(pasted, expected_state=pending.access_token)
        spent = StoredToken(
            key=self.pending_key,
            access_token="",
            refresh_token="",
            expires_at=datetime.fromtimestamp(0, UTC),
            generation=pending.generation + 1,
            scope=pending.scope,
        )
        if not await store.replace_token(self.pending_key, pending.generation, spent):
            raise StateMismatch("this login was completed or restarted by another command")
        sent_at = self.manager.clock()
        tokens = await self.manager.endpoint.exchange_code(
            code, SecretStr(pending.refresh_token), self.redirect_uri
        )
        return await self.manager.install(tokens, sent_at=sent_at)


class RedirectListener:
    """A one-shot HTTP listener on a loopback redirect URI (``auth login --listen``).

    Entering binds the URI's host and port, so a port that is taken fails before the user
    approves anything; :meth:`wait` then serves until a request for the URI's path arrives
    (other paths, such as ``/favicon.ico``, get 404), answers it with a short page and returns
    the URL the browser came to. ``wait`` has no time limit: bound it with ``anyio.fail_after``.
    Raises ``ValueError`` for a URI that is not ``http://`` on a loopback address.
    """

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        host = parts.hostname or ""
        if parts.scheme != "http" or host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(
                f"--listen needs oauth.redirect_uri on the loopback interface, like "
                f"http://127.0.0.1:8976/callback; {redirect_uri!r} is not (paste the redirect "
                "URL instead)"
            )
        self.redirect_uri = redirect_uri
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path or "/"
        self._host = "127.0.0.1" if host == "localhost" else host
        self._port = parts.port or 80
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None

    async def __aenter__(self) -> Self:
        try:
            self._listener = await anyio.create_tcp_listener(
                local_host=self._host, local_port=self._port
            )
        except OSError as error:
            raise OAuthError(
                f"cannot listen on {self._host}:{self._port} for the OAuth redirect "
                f"({error.strerror or error}); is another login running?"
            ) from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._listener is not None:
            await self._listener.aclose()

    async def wait(self) -> str:
        listener = self._listener
        if listener is None:
            raise RuntimeError("use RedirectListener as an async context manager")
        result: list[str] = []
        async with anyio.create_task_group() as tasks:

            async def handle(stream: anyio.abc.SocketStream) -> None:
                try:
                    async with stream:
                        target = await _read_request_target(stream)
                        if target is None or urlsplit(target).path != self._path or result:
                            await stream.send(_http_answer(404, "Not the OAuth redirect."))
                            return
                        result.append(self._origin + target)
                        await stream.send(
                            _http_answer(
                                200,
                                "pleo-export received Pleo's answer. You can close this window.",
                            )
                        )
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    pass  # the browser went away; the redirect (if it came) is in `result`
                if result:
                    tasks.cancel_scope.cancel()

            tasks.start_soon(listener.serve, handle)
        return result[0]


async def wait_for_redirect(redirect_uri: str) -> str:
    """Listen once on a loopback ``redirect_uri`` (see :class:`RedirectListener`)."""
    async with RedirectListener(redirect_uri) as listener:
        return await listener.wait()


async def _read_request_target(stream: anyio.abc.SocketStream) -> str | None:
    data = b""
    with anyio.move_on_after(10):
        while b"\r\n" not in data and len(data) < 16_384:
            data += await stream.receive(4096)
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    method, _, rest = line.partition(" ")
    target = rest.rpartition(" ")[0]
    if method != "GET" or not target.startswith("/"):
        return None
    return target


def _http_answer(status: int, text: str) -> bytes:
    reason = "OK" if status == 200 else "Not Found"
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
