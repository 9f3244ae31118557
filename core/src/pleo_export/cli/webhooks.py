"""``pleo-export webhooks subscribe|list|delete``: Pleo's Webhook Subscriptions API.

``subscribe URL`` creates a subscription for the export and vendor events, reads its signing
secret and stores it in the state store, where ``run --watch`` finds it when ``webhooks.secret``
is not set. Secrets are never printed: at most ``****`` and their last four characters.
"""

from __future__ import annotations

from typing import Any

import click
import httpx

from pleo_export.cli.common import Context, UsageError, emit_json, run_command
from pleo_export.cli.root import main
from pleo_export.config import Settings
from pleo_export.pleo.masterdata_models import (
    EXPORT_JOB_CREATED,
    VENDOR_CREATED,
    PleoSubscription,
)

DEFAULT_EVENTS = (EXPORT_JOB_CREATED, VENDOR_CREATED)


@main.group()
def webhooks() -> None:
    """Pleo webhook subscriptions (Webhook Subscriptions API).

    \b
    pleo-export webhooks subscribe https://erp.example.com/pleo/webhooks
    pleo-export webhooks list
    pleo-export webhooks delete SUBSCRIPTION_ID

    The signing secret of a new subscription is kept in the state store; the receiver of
    `run --watch` (webhooks.listen) uses it when webhooks.secret is not set.
    """


@webhooks.command("subscribe")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    help=f"Event type to subscribe to (repeatable; default: {', '.join(DEFAULT_EVENTS)}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def subscribe(obj: Context, url: str, events: tuple[str, ...], as_json: bool) -> None:
    """Subscribe URL to Pleo's export and vendor events and store the signing secret."""
    row = run_command(
        lambda: subscribe_async(obj.settings(), url, events or DEFAULT_EVENTS), as_json=as_json
    )
    if as_json:
        emit_json(row)
        return
    click.echo(f"subscribed {row['endpointUrl']} to {', '.join(row['eventTypes'])}")
    click.echo(f"  id     {row['id']}")
    click.echo(f"  secret {row['secret']} (stored in the state store)")


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def list_(obj: Context, as_json: bool) -> None:
    """Pleo's webhook subscriptions, and which of them have a stored secret."""
    rows = run_command(lambda: list_async(obj.settings()), as_json=as_json)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no webhook subscriptions")
    for row in rows:
        secret = row["secret"] or "no stored secret"
        click.echo(
            f"{row['id']}  {row['status']:<8} {row['endpointUrl']}  "
            f"[{', '.join(row['eventTypes'])}]  {secret}"
        )


@webhooks.command("delete")
@click.argument("subscription_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def delete(obj: Context, subscription_id: str, as_json: bool) -> None:
    """Delete a subscription in Pleo and forget its stored secret."""
    row = run_command(lambda: delete_async(obj.settings(), subscription_id), as_json=as_json)
    if as_json:
        emit_json(row)
        return
    click.echo(f"deleted subscription {subscription_id}")


# --- the work (also called by tests with a transport) -------------------------------------------


def _row(subscription: PleoSubscription, secret: str | None) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "endpointUrl": subscription.endpoint_url,
        "eventTypes": list(subscription.event_types),
        "status": subscription.status.value,
        "secret": secret,
    }


async def subscribe_async(
    settings: Settings,
    url: str,
    events: tuple[str, ...] = DEFAULT_EVENTS,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Create the subscription, read its secret, store it; the row printed (secret masked)."""
    from pleo_export.app import open_master_data
    from pleo_export.state import open_store
    from pleo_export.webhook_store import mask, remember_subscription

    parsed = httpx.URL(url) if "://" in url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"URL {url!r} must be an absolute https URL Pleo can reach")
    store = open_store(settings.state_url())
    await store.open()  # before anything is created in Pleo: a broken store fails first
    try:
        async with open_master_data(settings, transport=transport) as pleo:
            subscription = await pleo.create_subscription(url, events)
            secret = await pleo.get_subscription_secret(subscription.id)
        await remember_subscription(
            store, subscription.id, subscription.endpoint_url, subscription.event_types, secret
        )
    finally:
        await store.close()
    return _row(subscription, mask(secret))


async def list_async(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> list[dict[str, Any]]:
    from pleo_export.app import open_master_data
    from pleo_export.state import open_store
    from pleo_export.webhook_store import mask, stored_subscriptions

    store = open_store(settings.state_url())
    await store.open()
    try:
        stored = {s.subscription_id: s.secret for s in await stored_subscriptions(store)}
    finally:
        await store.close()
    async with open_master_data(settings, transport=transport) as pleo:
        subscriptions = await pleo.list_subscriptions()
    return [_row(s, mask(stored[s.id]) if s.id in stored else None) for s in subscriptions]


async def delete_async(
    settings: Settings,
    subscription_id: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    from pleo_export.app import open_master_data
    from pleo_export.pleo.errors import NotFound
    from pleo_export.state import open_store
    from pleo_export.webhook_store import forget_subscription

    deleted = True
    async with open_master_data(settings, transport=transport) as pleo:
        try:
            await pleo.delete_subscription(subscription_id)
        except NotFound:
            deleted = False
    store = open_store(settings.state_url())
    await store.open()
    try:
        forgotten = await forget_subscription(store, subscription_id)
    finally:
        await store.close()
    if not deleted and not forgotten:
        raise UsageError(
            f"webhook subscription {subscription_id} is unknown to Pleo and to the state store; "
            "`pleo-export webhooks list` shows the subscriptions"
        )
    return {"id": subscription_id, "deleted": deleted, "secretForgotten": forgotten}
