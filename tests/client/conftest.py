"""Fixtures of the Pleo client tests.

Async tests run on asyncio by default. Tests that wait (backoff, ``Retry-After``, the
request budget) run on trio with a ``MockClock`` instead, so virtual time passes instantly:
mark them with ``helpers.VIRTUAL_TIME``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio.testing
from pydantic import SecretStr

from pleo_export.pleo.auth import ApiKeyAuth
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.ratelimit import RetryPolicy
from tests.client.helpers import API_KEY, BASE_URL


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """``asyncio``, or trio with a fresh auto-jumping ``MockClock`` for ``"trio_mock"``."""
    backend = getattr(request, "param", "asyncio")
    if backend == "trio_mock":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return backend


@pytest.fixture
def make_client() -> Callable[..., PleoClient]:
    """Build a client for ``BASE_URL`` with an API key; keyword arguments override defaults.

    The default retry policy has no jitter and tiny delays so that asyncio tests which
    retry stay fast; virtual-time tests pass their own policy.
    """

    def make(**overrides: Any) -> PleoClient:
        options: dict[str, Any] = {
            "retry": RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01, jitter=False),
        }
        options.update(overrides)
        auth = options.pop("auth", ApiKeyAuth(SecretStr(API_KEY)))
        return PleoClient(options.pop("base_url", BASE_URL), auth, **options)

    return make
