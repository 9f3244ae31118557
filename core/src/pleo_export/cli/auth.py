"""``pleo-export auth``: OAuth installation of a partner app."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import click

from pleo_export.cli.common import (
    EXIT_CONFIG,
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    Context,
    emit_json,
    fail,
    run_command,
)
from pleo_export.cli.root import main
from pleo_export.config import ConfigError


@main.group()
def auth() -> None:
    """OAuth installation of a partner app (authorization code with PKCE).

    \b
    Set up the OAuth client in the [oauth] table (client_id, redirect_uri) and
    its secret in PLEO_EXPORT_OAUTH__CLIENT_SECRET, then:
      pleo-export auth login --listen   open the printed URL; the browser
                                        comes back to the loopback redirect_uri
      pleo-export auth login            open the URL, then paste the URL the
                                        browser was redirected to
      pleo-export auth status           is the installation authorised?
    The tokens are kept in the state store (state.url) and refreshed by
    whichever pleo-export process needs them first, one at a time.
    """


@auth.command("login")
@click.option(
    "--listen",
    is_flag=True,
    help="Wait for the browser's redirect on oauth.redirect_uri (http://127.0.0.1:PORT/...).",
)
@click.option(
    "--code",
    "pasted",
    metavar="URL",
    help=(
        "Complete the login started last: the URL the browser was redirected to (or just "
        "its code). Prints no new URL."
    ),
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds --listen waits for the browser.",
)
@click.pass_obj
def auth_login(obj: Context, listen: bool, pasted: str | None, timeout: float) -> None:
    """Install the app: print Pleo's authorize URL, then exchange the code.

    \b
    Without options the command prints the URL and asks for the URL the
    browser ended up on after approving (on a server, open the URL on any
    machine and paste the result back). With --listen it receives the
    redirect itself. A login that was started but not completed can be
    finished within 10 minutes with --code URL. The state parameter is
    checked, and the tokens are stored in the state store.
    """
    if listen and pasted is not None:
        fail("--listen and --code cannot be combined", EXIT_CONFIG)
    sys.exit(run_command(lambda: _auth_login(obj, listen, pasted, wait_seconds=timeout)))


async def _auth_login(
    obj: Context, listen: bool, pasted: str | None, *, wait_seconds: float
) -> int:
    from pleo_export.app import oauth_installation
    from pleo_export.pleo.oauth import RedirectListener

    settings = obj.settings()
    async with oauth_installation(settings) as installation:
        flow = installation.login()
        if pasted is None and listen:
            try:
                listener = RedirectListener(flow.redirect_uri)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            async with listener:  # bound before the URL is shown
                request = await flow.start()
                _print_authorize_url(request.url)
                click.echo(
                    f"Waiting for the browser to return to {request.redirect_uri} ...", err=True
                )
                try:
                    with anyio.fail_after(wait_seconds):
                        pasted = await listener.wait()
                except TimeoutError:
                    click.echo(
                        f"No redirect arrived within {wait_seconds:.0f}s. Finish the login with: "
                        "pleo-export auth login --code '<the URL the browser was redirected to>'",
                        err=True,
                    )
                    return EXIT_ITEMS_FAILED
        elif pasted is None:
            request = await flow.start()
            _print_authorize_url(request.url)
            try:
                pasted = click.prompt(
                    "Paste the URL your browser was redirected to", prompt_suffix=": "
                )
            except click.Abort:
                click.echo(
                    "\nNot completed. Within 10 minutes, finish with: "
                    "pleo-export auth login --code '<the URL the browser was redirected to>'",
                    err=True,
                )
                return EXIT_ITEMS_FAILED
        assert pasted is not None
        token = await flow.complete(pasted)
    click.echo(
        f"Installed. The access token is valid until {token.expires_at.isoformat()} and is "
        f"refreshed automatically; scopes: {token.scope or '(not reported)'}."
    )
    return EXIT_OK


def _print_authorize_url(url: str) -> None:
    click.echo("Open this URL in a browser, sign in to Pleo and approve the app:\n")
    click.echo(f"  {url}\n")


@auth.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def auth_status(obj: Context, as_json: bool) -> None:
    """Whether the OAuth installation is authorised, and until when its token is valid.

    Exits 0 when tokens are stored and not revoked, 1 otherwise. Never prints
    a token.
    """
    sys.exit(run_command(lambda: _auth_status(obj, as_json), as_json=as_json))


async def _auth_status(obj: Context, as_json: bool) -> int:
    from datetime import UTC, datetime

    from pleo_export.app import oauth_installation
    from pleo_export.pleo.oauth import is_dead

    settings = obj.settings()
    async with oauth_installation(settings) as installation:
        token = await installation.manager.current()
    now = datetime.now(UTC)
    authorised = token is not None and not is_dead(token)
    info: dict[str, Any] = {
        "installation": installation.key,
        "client_id": installation.client_id,
        "auth_url": installation.auth_url,
        "authorised": authorised,
        "revoked": token is not None and is_dead(token),
        "access_token_expires_at": token.expires_at.isoformat() if authorised and token else None,
        "access_token_valid": bool(authorised and token and token.expires_at > now),
        "generation": token.generation if token else None,
        "scope": token.scope if token else None,
    }
    if as_json:
        emit_json(info)
    elif token is None:
        click.echo(f"{installation.key}: not installed; run `pleo-export auth login`")
    elif not authorised:
        click.echo(
            f"{installation.key}: REVOKED (Pleo refused its refresh token); run "
            "`pleo-export auth login`"
        )
    else:
        left = (token.expires_at - now).total_seconds()
        validity = (
            f"valid for {left / 60:.0f} more minutes" if left > 0 else "expired (refreshed on use)"
        )
        click.echo(
            f"{installation.key}: authorised; access token {validity} "
            f"(until {token.expires_at.isoformat()}); scope: {token.scope or '(not reported)'}; "
            f"token generation {token.generation}"
        )
    return EXIT_OK if authorised else EXIT_ITEMS_FAILED


@auth.command("refresh")
@click.pass_obj
def auth_refresh(obj: Context) -> None:
    """Refresh the access token now (normally it is refreshed on use)."""
    sys.exit(run_command(lambda: _auth_refresh(obj)))


async def _auth_refresh(obj: Context) -> int:
    from pleo_export.app import oauth_installation

    settings = obj.settings()
    async with oauth_installation(settings) as installation:
        token = await installation.manager.refresh_now()
    click.echo(
        f"{installation.key}: refreshed; the access token is valid until "
        f"{token.expires_at.isoformat()}"
    )
    return EXIT_OK
