"""OAuth 2.0 for partner apps: Pleo's install flow and rotating refresh tokens.

A partner app that many companies install authenticates with OAuth instead of an API key
(reference §1.3). Pleo's rules, and what this package does about each:

* **Install: Authorization Code with PKCE (S256 only).** :class:`LoginFlow` makes the PKCE
  pair and a ``state``, builds the authorize URL and, once the browser comes back to the
  redirect URI, checks ``state`` and exchanges the code at the token endpoint.
  ``pleo-export auth login`` drives it, either from a pasted redirect URL or by listening once
  on a loopback redirect URI (:func:`wait_for_redirect`).
* **Client authentication** at the token endpoint is HTTP Basic ``client_id:client_secret``
  (:class:`TokenEndpoint`).
* **Rotation.** Every refresh returns a new access token *and a new refresh token*; the old
  ones are worthless at once, and presenting a spent refresh token again revokes every token
  of the installation. So refreshes must be centralised and one at a time.
  :class:`TokenManager` keeps the tokens in the state store (``get_token``/``replace_token``,
  a compare-and-swap on ``generation``) and takes the store's lease ``oauth-refresh:<key>``
  around every refresh, so across processes sharing one store exactly one refreshes and the
  others pick up its result. A refresh token is sent at most once by the process that holds
  the lease; when it is refused the installation is marked dead in the store (an empty
  refresh token), so no process ever sends it again, and :class:`ReauthorizationRequired`
  tells the user to run ``pleo-export auth login``.
* **Opaque tokens.** Nothing here parses a token; the lifetime comes from ``expires_in``.

:class:`OAuthBearerAuth` plugs the manager into
:class:`~pleo_export.pleo.auth.BearerTokenAuth`: the token is checked before every request and
refreshed shortly before it expires (``refresh_margin``), and once more after a 401.

Tokens, codes, the PKCE verifier and the client secret are never logged and never part of an
exception message; values held in memory are :class:`~pydantic.SecretStr`.

Modules: :mod:`~pleo_export.pleo.oauth.common` (endpoints, scopes, errors),
:mod:`~pleo_export.pleo.oauth.endpoint` (the token endpoint),
:mod:`~pleo_export.pleo.oauth.tokens` (tokens in the state store, refresh under a lease),
:mod:`~pleo_export.pleo.oauth.bearer` (bearer auth), :mod:`~pleo_export.pleo.oauth.flows`
(PKCE and the install flow) and :mod:`~pleo_export.pleo.oauth.installation` (all of it
wired). Import the names from this package.
"""

from __future__ import annotations

from pleo_export.pleo.oauth.bearer import (
    OAuthBearerAuth,
)
from pleo_export.pleo.oauth.common import (
    AUTHORIZE_PATH,
    DEAD_REFRESH_TOKEN_ERRORS,
    EXPORT_SCOPES,
    LOGIN_COMMAND,
    PENDING_LOGIN_TTL,
    PRODUCTION_AUTH_URL,
    STAGING_AUTH_URL,
    TOKEN_PATH,
    AuthorizationDenied,
    OAuthError,
    ReauthorizationRequired,
    RefreshLockTimeout,
    StateMismatch,
    TokenEndpointError,
    TokenEndpointUnavailable,
)
from pleo_export.pleo.oauth.endpoint import (
    TokenEndpoint,
    TokenSet,
)
from pleo_export.pleo.oauth.flows import (
    AuthorizationRequest,
    LoginFlow,
    PkcePair,
    RedirectListener,
    authorize_url,
    code_challenge,
    code_from_redirect,
    wait_for_redirect,
)
from pleo_export.pleo.oauth.installation import (
    OAuthInstallation,
)
from pleo_export.pleo.oauth.tokens import (
    TokenManager,
    is_dead,
    token_key,
)

__all__ = [
    "AUTHORIZE_PATH",
    "DEAD_REFRESH_TOKEN_ERRORS",
    "EXPORT_SCOPES",
    "LOGIN_COMMAND",
    "PENDING_LOGIN_TTL",
    "PRODUCTION_AUTH_URL",
    "STAGING_AUTH_URL",
    "TOKEN_PATH",
    "AuthorizationDenied",
    "AuthorizationRequest",
    "LoginFlow",
    "OAuthBearerAuth",
    "OAuthError",
    "OAuthInstallation",
    "PkcePair",
    "ReauthorizationRequired",
    "RedirectListener",
    "RefreshLockTimeout",
    "StateMismatch",
    "TokenEndpoint",
    "TokenEndpointError",
    "TokenEndpointUnavailable",
    "TokenManager",
    "TokenSet",
    "authorize_url",
    "code_challenge",
    "code_from_redirect",
    "is_dead",
    "token_key",
    "wait_for_redirect",
]
