"""Fixtures: a real Tryton on PostgreSQL per test module.

The Tryton server comes from ``tryton_server.py``: one template database (company, chart of
accounts with the sandbox chart's codes, taxes, vendors with addresses, fiscal years) built
once and reused while its inputs are unchanged, cloned per test module and served by
``trytond`` on a free loopback port. Without the Tryton environment or PostgreSQL the tests
skip with the reason; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.tryton.tests.tryton_server import (
    TrytonServer,
    TrytonUnavailable,
    ensure_template,
    running_clone,
    template_spec,
    unique_database_name,
)
from connectors.tryton.tests.tryton_support import CURRENCY, Harness
from pleo_export_sandbox import DEMO_CHART


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail under CI, where Tryton must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"Tryton tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def tryton_template() -> str:
    try:
        return ensure_template(template_spec(DEMO_CHART, CURRENCY))
    except TrytonUnavailable as error:
        unavailable(str(error))
        raise  # unreachable: skip and fail raise


@pytest.fixture(scope="module")
def tryton(
    tryton_template: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TrytonServer]:
    """A clone of the template served by trytond for this test module; dropped afterwards."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    name = unique_database_name(module)
    work = tmp_path_factory.mktemp(f"tryton-{module}")
    with running_clone(tryton_template, name, work) as server:
        yield server


@pytest.fixture
def harness(tryton: TrytonServer, tmp_path: Path) -> Harness:
    return Harness(server=tryton, tmp_path=tmp_path, downloads={})
