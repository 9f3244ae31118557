"""Fixtures of the hostile-input suite: the engine tests' harness (real engine, real client,
in-process sandbox, every exchange checked against Pleo's OpenAPI spec)."""

from __future__ import annotations

import pytest

from tests.engine.conftest import Harness, harness, make_harness
from tests.faults.conftest import debug_logs

# Fixtures: importing them makes them available in this folder.
__all__ = ["Harness", "debug_logs", "harness", "make_harness"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
