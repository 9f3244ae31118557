"""Plugin discovery through real entry points, isolation of broken plugins, name conflicts."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

import pytest

from pleo_export import host as host_module
from pleo_export.host import (
    PLUGINS_GROUP,
    ConnectorLoadError,
    ConnectorNotFound,
    LoadedPlugin,
    PluginConflict,
    PluginHost,
    PluginLoadFailed,
)
from tests.support.dists import make_distribution

GOOD_PLUGIN = """
from pleo_export.hookspecs import hookimpl, Problem

@hookimpl
def pleo_export_validate_item(item, job):
    return [Problem("validation_failure", "from good plugin")]
"""

BROKEN_PLUGIN = """
raise ImportError("this plugin needs the 'frobnicate' package, which is not installed")
"""

MISSPELT_PLUGIN = """
from pleo_export.hookspecs import hookimpl

@hookimpl
def pleo_export_validate_itme(item, job):
    return []
"""

CONNECTOR_MODULE = """
from pleo_export import Connector, ConnectorManifest, ConnectorSettings, Capability

class Settings(ConnectorSettings):
    path: str = "x"

class {cls}(Connector):
    manifest = ConnectorManifest(
        id="{id}", display_name="Test {id}", capabilities=frozenset({{Capability.JOURNAL}}),
        settings_model=Settings, contract_version={contract},
    )
    async def check(self, job): ...
    async def prepare(self, plan): ...
    async def post(self, prepared): ...
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    # The workspace installs first-party plugins (plugins/*): hide them, so each test sees
    # only the plugins of the distributions it makes here.
    real = host_module._entry_points

    def fixtures_only(group: str) -> list[importlib.metadata.EntryPoint]:
        found = real(group)
        if group != PLUGINS_GROUP:
            return found
        return [ep for ep in found if ep.dist is None or ep.dist.metadata["Name"].startswith("fx-")]

    monkeypatch.setattr(host_module, "_entry_points", fixtures_only)
    yield path
    for name in list(sys.modules):
        if name.startswith("fx_"):
            del sys.modules[name]
    importlib.invalidate_caches()


def _fixtures(plugins: list[LoadedPlugin]) -> list[LoadedPlugin]:
    """The plugins of this module's fixture distributions (``fx-*``), not the first-party
    plugins installed in the workspace."""
    return [p for p in plugins if p.origin.distribution.startswith("fx-")]


def test_broken_plugin_is_reported_and_others_still_load(site: Path) -> None:
    make_distribution(
        site,
        "fx-good",
        "1.2.0",
        {"pleo_export.plugins": {"good": "fx_good"}},
        {"fx_good": GOOD_PLUGIN},
    )
    make_distribution(
        site,
        "fx-broken",
        "0.3.1",
        {"pleo_export.plugins": {"broken": "fx_broken"}},
        {"fx_broken": BROKEN_PLUGIN},
    )
    host = PluginHost()

    assert [p.origin.name for p in _fixtures(host.plugins)] == ["good"]
    assert _fixtures(host.plugins)[0].hooks == ("pleo_export_validate_item",)
    [failure] = host.failures
    assert failure.origin.distribution == "fx-broken"
    assert failure.origin.version == "0.3.1"
    assert "frobnicate" in failure.reason
    problems = host.validate_item(item=None, job=None)
    assert [p.message for p in problems] == ["from good plugin"]


def test_strict_mode_turns_a_load_failure_into_an_error(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(
        site,
        "fx-broken",
        "0.3.1",
        {"pleo_export.plugins": {"broken": "fx_broken"}},
        {"fx_broken": BROKEN_PLUGIN},
    )
    monkeypatch.setenv("PLEO_EXPORT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadFailed, match=r"fx-broken 0\.3\.1"):
        PluginHost()


def test_plugin_with_unknown_hook_is_rejected_with_the_hook_name(site: Path) -> None:
    make_distribution(
        site,
        "fx-typo",
        "1.0",
        {"pleo_export.plugins": {"typo": "fx_typo"}},
        {"fx_typo": MISSPELT_PLUGIN},
    )
    host = PluginHost()
    assert _fixtures(host.plugins) == []
    [failure] = host.failures
    assert "pleo_export_validate_itme" in failure.reason
    assert host.pm.get_plugin("typo") is None


def test_disabled_and_allow_list_switches(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_distribution(
        site,
        "fx-good",
        "1.2.0",
        {"pleo_export.plugins": {"good": "fx_good"}},
        {"fx_good": GOOD_PLUGIN},
    )
    monkeypatch.setenv("PLEO_EXPORT_DISABLE_PLUGINS", "good")
    assert _fixtures(PluginHost().plugins) == []
    monkeypatch.delenv("PLEO_EXPORT_DISABLE_PLUGINS")
    monkeypatch.setenv("PLEO_EXPORT_LOAD_PLUGINS", "")
    assert PluginHost().plugins == []
    monkeypatch.setenv("PLEO_EXPORT_LOAD_PLUGINS", "good")
    assert [p.origin.name for p in PluginHost().plugins] == ["good"]


def test_two_distributions_with_one_plugin_name_is_an_error_naming_both(site: Path) -> None:
    make_distribution(
        site, "fx-one", "1.0", {"pleo_export.plugins": {"audit": "fx_one"}}, {"fx_one": GOOD_PLUGIN}
    )
    make_distribution(
        site, "fx-two", "2.0", {"pleo_export.plugins": {"audit": "fx_two"}}, {"fx_two": GOOD_PLUGIN}
    )
    with pytest.raises(PluginConflict) as caught:
        PluginHost()
    assert "fx-one 1.0" in str(caught.value)
    assert "fx-two 2.0" in str(caught.value)


def _connector_dist(site: Path, dist: str, conn_id: str, module: str, contract: int = 1) -> None:
    source = CONNECTOR_MODULE.format(cls="TestConnector", id=conn_id, contract=contract)
    make_distribution(
        site,
        dist,
        "0.9",
        {"pleo_export.connectors": {conn_id: f"{module}:TestConnector"}},
        {module: source},
    )


def test_only_the_configured_connector_is_imported(site: Path) -> None:
    _connector_dist(site, "fx-alpha", "alpha", "fx_alpha")
    _connector_dist(site, "fx-beta", "beta", "fx_beta")
    cls = PluginHost(load_entry_points=False).load_connector("alpha")
    assert cls.manifest.id == "alpha"
    assert "fx_alpha" in sys.modules
    assert "fx_beta" not in sys.modules


def test_missing_connector_says_how_to_install_one(site: Path) -> None:
    with pytest.raises(ConnectorNotFound) as caught:
        PluginHost(load_entry_points=False).load_connector("xero")
    message = str(caught.value)
    # The name may be a typo: no install command for it, but what to check and do.
    assert "pip install" not in message
    assert "install the package of the connector you want" in message
    assert "beancount" in message  # what is installed is listed


def test_a_misspelt_connector_gets_a_did_you_mean(site: Path) -> None:
    with pytest.raises(ConnectorNotFound) as caught:
        PluginHost(load_entry_points=False).load_connector("beancont")
    message = str(caught.value)
    assert "did you mean 'beancount'?" in message
    assert "pip install" not in message


def test_connector_manifest_must_match_entry_point_and_contract(site: Path) -> None:
    _connector_dist(site, "fx-misnamed", "gamma", "fx_gamma")
    # entry point name differs from manifest id
    make_distribution(
        site,
        "fx-alias",
        "0.1",
        {"pleo_export.connectors": {"delta": "fx_gamma:TestConnector"}},
        {},
    )
    with pytest.raises(ConnectorLoadError, match="manifest id 'gamma' differs"):
        PluginHost(load_entry_points=False).load_connector("delta")
    _connector_dist(site, "fx-old", "old", "fx_old", contract=0)
    with pytest.raises(ConnectorLoadError, match="contract 0"):
        PluginHost(load_entry_points=False).load_connector("old")


def test_two_distributions_with_one_connector_name_is_an_error(site: Path) -> None:
    _connector_dist(site, "fx-first", "same", "fx_first")
    _connector_dist(site, "fx-second", "same", "fx_second")
    with pytest.raises(
        PluginConflict, match=r"fx-first .* and fx-second|fx-second .* and fx-first"
    ):
        PluginHost(load_entry_points=False).load_connector("same")


def test_installed_connectors_lists_beancount_from_its_own_distribution() -> None:
    infos = {i.origin.name: i for i in PluginHost(load_entry_points=False).installed_connectors()}
    beancount = infos["beancount"]
    assert beancount.origin.distribution == "pleo-export-beancount"
    assert beancount.manifest is not None
    assert beancount.failure is None
