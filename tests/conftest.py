"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest

from tests.support.openapi import OpenApiContract, require_contract


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def openapi_contract() -> OpenApiContract:
    """Pleo's Export API spec as a checker; skips (fails under CI) when the spec is absent."""
    return require_contract()
