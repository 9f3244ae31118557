"""The notify plugin's secrets can stay out of the configuration file: environment variables
``PLEO_EXPORT_PLUGINS__NOTIFY__...`` fill the ``[plugins.notify]`` table, as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from pleo_export.config import load_settings
from pleo_export.host import PluginHost
from pleo_export_notify import NotifyPlugin

CONFIG = """
[connector]
name = "beancount"

[plugins.notify.email]
host = "smtp.example.com"
username = "pleo-export@example.com"
sender = "pleo-export@example.com"
recipients = ["finance@example.com"]

[plugins.notify.webhook]
url = "https://hooks.example.com/pleo-export"
"""


def test_passwords_and_secrets_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLEO_EXPORT_PLUGINS__NOTIFY__EMAIL__PASSWORD", "env-pw-51c2")
    monkeypatch.setenv("PLEO_EXPORT_PLUGINS__NOTIFY__WEBHOOK__SECRET", "env-hmac-77d0")
    monkeypatch.setenv("PLEO_EXPORT_LOAD_PLUGINS", "notify")
    config = tmp_path / "pleo-export.toml"
    config.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(config)
    host = PluginHost(disabled=settings.plugins.disabled)
    host.configure_plugins(settings.plugins.tables(), settings.config_dir)
    plugin = host.pm.get_plugin("notify")
    assert isinstance(plugin, NotifyPlugin) and plugin.settings is not None
    email, webhook = plugin.settings.email, plugin.settings.webhook
    assert email is not None and webhook is not None
    assert email.password is not None and email.password.get_secret_value() == "env-pw-51c2"
    assert webhook.secret is not None and webhook.secret.get_secret_value() == "env-hmac-77d0"
    assert email.host == "smtp.example.com"  # the file's values stay
