"""``[plugins.<name>]``: a plugin's own settings, validated by its settings model.

Plugins are installed as real distributions with entry points (``tests.support.dists``) and
the tables come from a real configuration file.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pleo_export.config import ConfigError, load_settings
from pleo_export.host import PluginConfigError, PluginHost
from tests.support.dists import make_distribution

CONFIGURABLE = """
from pathlib import Path

from pleo_export import PluginSettings, hookimpl

class Settings(PluginSettings):
    path: Path
    threshold: int = 100

settings_model = Settings
received = []

def configure(settings):
    received.append(settings)

@hookimpl
def pleo_export_job_started(job, resumed):
    pass
"""

PLAIN = """
from pleo_export import hookimpl

@hookimpl
def pleo_export_job_started(job, resumed):
    pass
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.delenv("PLEO_EXPORT_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("PLEO_EXPORT_DISABLE_PLUGINS", raising=False)
    make_distribution(
        site_path := path,
        "fx-audit",
        "1.0",
        {"pleo_export.plugins": {"audit": "fx_cfg_audit"}},
        {"fx_cfg_audit": CONFIGURABLE},
    )
    make_distribution(
        site_path,
        "fx-plain",
        "1.0",
        {"pleo_export.plugins": {"plain": "fx_cfg_plain"}},
        {"fx_cfg_plain": PLAIN},
    )
    yield path
    for name in list(sys.modules):
        if name.startswith("fx_cfg_"):
            del sys.modules[name]
    importlib.invalidate_caches()


def _tables(tmp_path: Path, body: str) -> tuple[dict[str, dict[str, object]], Path]:
    config = tmp_path / "pleo-export.toml"
    config.write_text(body, encoding="utf-8")
    settings = load_settings(config)
    return settings.plugins.tables(), settings.config_dir


def test_a_plugins_table_is_validated_and_handed_to_the_plugin(site: Path, tmp_path: Path) -> None:
    tables, config_dir = _tables(
        tmp_path, '[plugins]\ndisabled = []\n\n[plugins.audit]\npath = "audit.log"\n'
    )
    assert tables == {"audit": {"path": "audit.log"}}
    host = PluginHost()
    host.configure_plugins(tables, config_dir)
    (settings,) = sys.modules["fx_cfg_audit"].received
    assert settings.path == (tmp_path / "audit.log").resolve()  # relative to the file
    assert settings.threshold == 100


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[plugins.audit]\nthreshold = 5\n", "plugins.audit.path: Field required"),
        (
            '[plugins.audit]\npath = "a"\nthreshhold = 5\n',
            "plugins.audit.threshhold: unknown setting",
        ),
        ('[plugins.audit]\npath = "a"\nthreshold = "many"\n', "plugins.audit.threshold:"),
        (
            '[plugins.audit]\npath = "a"\n\n[plugins.plain]\nx = 1\n',
            "[plugins.plain]: plugin 'plain' takes no settings",
        ),
        ("[plugins.audti]\npath = 1\n", "[plugins.audti]: no plugin 'audti' is installed"),
    ],
    ids=["missing", "misspelt", "wrong-type", "no-settings", "not-installed"],
)
def test_a_table_that_does_not_fit_is_an_error_naming_table_and_field(
    site: Path, tmp_path: Path, body: str, expected: str
) -> None:
    tables, config_dir = _tables(tmp_path, body)
    with pytest.raises(PluginConfigError) as caught:
        PluginHost().configure_plugins(tables, config_dir)
    assert expected in str(caught.value)
    assert sys.modules["fx_cfg_audit"].received == []  # nothing half-configured


def test_a_plugin_with_a_required_setting_needs_its_table(site: Path) -> None:
    with pytest.raises(PluginConfigError, match=r"\[plugins\.audit\]"):
        PluginHost().configure_plugins({})


def test_a_disabled_plugins_table_is_ignored(site: Path, tmp_path: Path) -> None:
    tables, config_dir = _tables(tmp_path, "[plugins.audit]\nthreshold = 5\n")
    PluginHost(disabled=["audit"]).configure_plugins(tables, config_dir)


def test_a_plain_value_under_plugins_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "pleo-export.toml"
    config.write_text("[plugins]\naudit = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a plugin's settings go in a table \[plugins\.audit\]"):
        load_settings(config)


def test_a_bad_table_stops_a_run_with_exit_code_2(tmp_path: Path) -> None:
    from pleo_export.exit_codes import ExitCode
    from tests.test_cli import pleo_export

    made = pleo_export("demo", "--dir", "demo", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    config = tmp_path / "demo" / "pleo-export.toml"
    with config.open("a", encoding="utf-8") as file:
        file.write("\n[plugins.no-such-plugin]\npath = 1\n")
    result = pleo_export("--config", str(config), "run", "--dry-run", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert "[plugins.no-such-plugin]: no plugin 'no-such-plugin' is installed" in result.stderr
