"""Webhook subscriptions made by ``pleo-export webhooks subscribe``: their signing secrets,
kept in the state store (:class:`~pleo_export.state.base.SettingStore`).

Each subscription's secret is stored under ``webhook-subscription:<id>`` with the URL and event
types it was made for. The receiver of ``run --watch`` verifies deliveries with these secrets
when ``webhooks.secret`` is not configured. A secret is shown nowhere: :func:`mask` gives
``****`` and its last four characters, and every secret read is registered for redaction in
the logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import SecretStr

from pleo_export import logs
from pleo_export.config import Settings
from pleo_export.state.base import SettingStore

__all__ = [
    "KEY_PREFIX",
    "StoredSubscription",
    "forget_subscription",
    "mask",
    "remember_subscription",
    "stored_secrets",
    "stored_subscriptions",
]

KEY_PREFIX = "webhook-subscription:"


@dataclass(frozen=True)
class StoredSubscription:
    subscription_id: str
    endpoint_url: str
    event_types: tuple[str, ...]
    secret: SecretStr


def mask(secret: SecretStr | None) -> str:
    """``****`` and the last four characters of the secret (``****`` alone when short)."""
    if secret is None:
        return ""
    value = secret.get_secret_value()
    return "****" + (value[-4:] if len(value) >= 16 else "")


async def remember_subscription(
    store: SettingStore,
    subscription_id: str,
    endpoint_url: str,
    event_types: tuple[str, ...],
    secret: SecretStr,
) -> None:
    logs.register_secret(secret.get_secret_value())
    value = json.dumps(
        {
            "endpointUrl": endpoint_url,
            "eventTypes": list(event_types),
            "secret": secret.get_secret_value(),
        }
    )
    await store.put_setting(KEY_PREFIX + subscription_id, value)


async def forget_subscription(store: SettingStore, subscription_id: str) -> bool:
    return await store.delete_setting(KEY_PREFIX + subscription_id)


async def stored_subscriptions(store: SettingStore) -> list[StoredSubscription]:
    """Every subscription whose secret is stored, oldest key first; unreadable rows are
    skipped."""
    found = []
    for key, value in (await store.settings_with_prefix(KEY_PREFIX)).items():
        try:
            document = json.loads(value)
            secret = document["secret"]
            url = document["endpointUrl"]
            types = tuple(document.get("eventTypes") or ())
        except (ValueError, KeyError, TypeError):
            continue
        if not isinstance(secret, str) or not isinstance(url, str):
            continue
        logs.register_secret(secret)
        found.append(StoredSubscription(key[len(KEY_PREFIX) :], url, types, SecretStr(secret)))
    return found


async def stored_secrets(settings: Settings) -> list[SecretStr]:
    """The secrets stored in the state store of ``settings`` (empty when there is none yet)."""
    from pleo_export.state import open_store

    store = open_store(settings.state_url())
    await store.open()
    try:
        return [s.secret for s in await stored_subscriptions(store)]
    finally:
        await store.close()
