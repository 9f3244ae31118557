"""The connector contract checked when a connector loads, and the default ``post``.

A connector whose declared capabilities do not match the methods it implements is refused by
the host with an error naming the capability and the method (before any job runs); a connector
that implements ``post_batch`` gets ``post`` for free.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pleo_export import (
    Capability,
    Connector,
    ConnectorManifest,
    ConnectorSettings,
    ExportJobItemFailureReasonType,
    ExternalRecord,
    ItemRejected,
    SupportsScaffold,
    contract_problems,
)
from pleo_export.host import ConnectorLoadError, PluginHost
from tests.support.dists import make_distribution

pytestmark = pytest.mark.anyio

MODULE = """
from pleo_export import Capability, Connector, ConnectorManifest, ConnectorSettings

class Settings(ConnectorSettings):
    pass

class TestConnector(Connector):
    manifest = ConnectorManifest(
        id="{id}", display_name="Test", settings_model=Settings,
        capabilities=frozenset({{{capabilities}}}),
    )
    async def check(self, job): ...
{methods}
"""

PREPARE = "    async def prepare(self, plan): ...\n"
POST = "    async def post(self, prepared): ...\n"
POST_BATCH = "    async def post_batch(self, entries): return []\n"
FIND = "    async def find_existing(self, reference): return None\n"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in list(sys.modules):
        if name.startswith("fx_contract"):
            del sys.modules[name]
    importlib.invalidate_caches()


def _load(site: Path, conn_id: str, capabilities: list[str], methods: str) -> type[Any]:
    module = "fx_contract_" + conn_id
    caps = ", ".join(f"Capability.{c}" for c in ["JOURNAL", *capabilities])
    source = MODULE.format(id=conn_id, capabilities=caps, methods=methods)
    make_distribution(
        site,
        f"fx-contract-{conn_id}",
        "0.1",
        {"pleo_export.connectors": {conn_id: f"{module}:TestConnector"}},
        {module: source},
    )
    return PluginHost(load_entry_points=False).load_connector(conn_id)


@pytest.mark.parametrize(
    ("capabilities", "methods", "message"),
    [
        (
            ["LOOKUP_BY_REFERENCE"],
            PREPARE + POST,
            "declares lookup_by_reference but does not implement find_existing",
        ),
        (
            ["BATCH_POSTING"],
            PREPARE + POST,
            "declares batch_posting but does not implement post_batch",
        ),
        ([], PREPARE, "implements neither post nor post_batch"),
        ([], POST, "does not implement the required method(s) prepare"),
    ],
    ids=["lookup-without-find_existing", "batch-without-post_batch", "no-post", "no-prepare"],
)
def test_a_manifest_that_does_not_match_the_methods_is_refused_at_load(
    site: Path, capabilities: list[str], methods: str, message: str
) -> None:
    conn_id = f"c{abs(hash((tuple(capabilities), methods))) % 10**8}"
    with pytest.raises(ConnectorLoadError) as caught:
        _load(site, conn_id, capabilities, methods)
    text = str(caught.value)
    assert message in text
    assert f"connector {conn_id} (fx-contract-{conn_id} 0.1" in text  # names the distribution


def test_a_matching_manifest_loads(site: Path) -> None:
    cls = _load(site, "good", ["LOOKUP_BY_REFERENCE", "BATCH_POSTING"], PREPARE + POST_BATCH + FIND)
    assert cls.manifest.id == "good"
    assert contract_problems(cls) == []


def test_the_connectors_in_this_repository_match_their_manifests() -> None:
    host = PluginHost(load_entry_points=False)
    for name in ("beancount", "sftp", "tryton"):
        assert contract_problems(host.load_connector(name)) == [], name


class _Settings(ConnectorSettings):
    pass


class _BatchOnly(Connector[_Settings]):
    manifest = ConnectorManifest(
        id="batch-only",
        display_name="Batch only",
        capabilities=frozenset({Capability.JOURNAL, Capability.BATCH_POSTING}),
        settings_model=_Settings,
    )
    answers: list[Any]

    async def check(self, job: Any) -> None: ...

    async def prepare(self, plan: Any) -> Any: ...

    async def post_batch(self, entries: Any) -> Any:
        self.seen = list(entries)
        return self.answers


def _batch_only(answers: list[Any]) -> _BatchOnly:
    connector = _BatchOnly.__new__(_BatchOnly)
    connector.answers = answers
    return connector


async def test_default_post_is_a_batch_of_one() -> None:
    record = ExternalRecord(external_id="E1", exported_at=datetime(2026, 1, 2, tzinfo=UTC))
    connector = _batch_only([record])
    assert await connector.post("prepared") == record  # type: ignore[arg-type]
    assert connector.seen == ["prepared"]


async def test_default_post_raises_the_batchs_rejection() -> None:
    rejected = ItemRejected(ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN, "no account 6800")
    with pytest.raises(ItemRejected) as caught:
        await _batch_only([rejected]).post("prepared")  # type: ignore[arg-type]
    assert caught.value is rejected


async def test_default_post_refuses_a_wrong_number_of_answers() -> None:
    with pytest.raises(ValueError, match="answered 0 results for one entry"):
        await _batch_only([]).post("prepared")  # type: ignore[arg-type]


def test_scaffold_is_an_optional_protocol() -> None:
    host = PluginHost(load_entry_points=False)
    assert isinstance(host.load_connector("beancount"), SupportsScaffold)
    assert not isinstance(_BatchOnly, SupportsScaffold)
    assert not hasattr(Connector, "scaffold")
