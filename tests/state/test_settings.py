"""The settings part of the StateStore contract (small named values such as webhook
secrets), on every backend in BACKENDS."""

from __future__ import annotations

import pytest

from pleo_export.state import StateStore
from tests.state.conftest import Backend

pytestmark = pytest.mark.anyio


async def test_a_setting_is_stored_replaced_and_deleted(store: StateStore) -> None:
    assert await store.get_setting("webhook-subscription:a") is None
    await store.put_setting("webhook-subscription:a", "one")
    await store.put_setting("webhook-subscription:a", "two")
    assert await store.get_setting("webhook-subscription:a") == "two"
    assert await store.delete_setting("webhook-subscription:a") is True
    assert await store.delete_setting("webhook-subscription:a") is False
    assert await store.get_setting("webhook-subscription:a") is None


async def test_settings_are_listed_by_prefix_literally(store: StateStore) -> None:
    await store.put_setting("webhook-subscription:b", "2")
    await store.put_setting("webhook-subscription:a", "1")
    await store.put_setting("webhook-subscriptionX", "not under the prefix")
    await store.put_setting("other:a", "3")
    await store.put_setting("web%", "a LIKE pattern would match it")
    assert await store.settings_with_prefix("webhook-subscription:") == {
        "webhook-subscription:a": "1",
        "webhook-subscription:b": "2",
    }
    assert await store.settings_with_prefix("web%") == {"web%": "a LIKE pattern would match it"}


async def test_another_instance_sees_the_setting(backend: Backend, store: StateStore) -> None:
    await store.put_setting("k", "v")
    other = await backend.open()
    try:
        assert await other.get_setting("k") == "v"
    finally:
        await other.close()
