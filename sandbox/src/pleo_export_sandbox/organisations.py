"""Organisation-level API keys: one credential covering several companies.

Pleo scopes an API key (or token) to a company or to an organisation; with an organisation
credential every request that names a company must pass ``company_id``, because exports are
per company (reference §1.3, "Multi-entity"). The sandbox models this with a
:class:`~pleo_export_sandbox.records.Credential` whose ``companies`` lists every company it
covers:

* ``GET /v3/export-jobs`` and ``GET /v3/export-job-items`` without ``company_id`` answer 400
  (the sandbox's choice: Pleo's docs say it is required, not how it fails); with a company the
  key does not cover, 403 ``FORBIDDEN``;
* a job of a covered company is served through every job endpoint; another company's job is
  404 ``EXPORT_NOT_FOUND``, as for company keys.

Each organisation key has its own ``credential_id`` (``org-key-<n>``), so tests can tell two
workers apart in ``Sandbox.requests`` by giving each its own key.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pleo_export_sandbox.records import ALL_SCOPES, Credential

if TYPE_CHECKING:
    from pleo_export_sandbox.config import SandboxHost

__all__ = ["add_organisation_key"]


def add_organisation_key(
    sandbox: SandboxHost,
    company_ids: Sequence[str],
    api_key: str | None = None,
    scopes: Iterable[str] = ALL_SCOPES,
) -> Credential:
    """Accept ``api_key`` (HTTP Basic, like company keys) for every company in ``company_ids``.

    Returns the credential; its ``secret`` is the key (generated when not given).

    Raises:
        KeyError: a company is unknown to the sandbox.
        ValueError: no company given, the key is already registered, or a scope is unknown.
    """
    store = sandbox.store
    companies = list(dict.fromkeys(company_ids))
    if not companies:
        raise ValueError("an organisation key must cover at least one company")
    for company_id in companies:
        store.company(company_id)
    secret = api_key or f"sandbox-org-key-{secrets.token_hex(12)}"
    if store.find_credential("api_key", secret) is not None:
        raise ValueError("that api_key is already registered")
    wanted = frozenset(scopes)
    unknown = wanted - ALL_SCOPES
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; known: {sorted(ALL_SCOPES)}")
    number = sum(1 for c in store.credentials.values() if c.companies) + 1
    credential = Credential(
        id=f"org-key-{number}",
        company_id=companies[0],
        kind="api_key",
        secret=secret,
        scopes=wanted,
        companies=frozenset(companies),
    )
    store.credentials[credential.id] = credential
    return credential
