"""Nested settings models of a plugin: their secrets are registered with the log redaction and
their relative paths resolved against the configuration file's folder, as top-level ones."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pleo_export import PluginSettings, hookimpl
from pleo_export.host import Origin, PluginHost
from pleo_export.logs import TextFormatter


class Channel(PluginSettings):
    secret: SecretStr
    """Signs what is sent."""
    ca_file: Path | None = None
    """Trusted certificates."""


class Settings(PluginSettings):
    password: SecretStr
    """Logs in."""
    channels: list[Channel] = []
    """Where messages go."""
    relay: Channel | None = None
    """Where messages are relayed."""


class Chatty:
    settings_model = Settings

    def configure(self, settings: Settings) -> None:
        self.settings = settings

    @hookimpl
    def pleo_export_job_started(self, job: Any) -> None: ...


def test_plugin_secrets_are_masked_in_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    host = PluginHost(load_entry_points=False)
    assert host.register(Chatty, Origin("chatty", "tests", "tests", "0"))
    host.configure_plugins(
        {"chatty": {"password": "pw-7f3a9c2e", "channels": [{"secret": "hm-51d0b8aa"}]}}
    )
    record = logging.LogRecord(
        "x",
        logging.ERROR,
        __file__,
        1,
        "login with %s signed %s",
        ("pw-7f3a9c2e", "hm-51d0b8aa"),
        None,
    )
    line = TextFormatter().format(record)
    assert "pw-7f3a9c2e" not in line and "hm-51d0b8aa" not in line
    assert line.count("***") == 2


def test_nested_relative_paths_resolve_against_the_configuration_folder(tmp_path: Path) -> None:
    host = PluginHost(load_entry_points=False)
    assert host.register(Chatty, Origin("chatty", "tests", "tests", "0"))
    table = {
        "password": "pw-0c1d",
        "channels": [],
        "relay": {"secret": "s-9a8b", "ca_file": "ca.pem"},
    }
    host.configure_plugins({"chatty": table}, config_dir=tmp_path)
    plugin = host.pm.get_plugin("chatty")
    assert plugin.settings.relay.ca_file == (tmp_path / "ca.pem").resolve()
