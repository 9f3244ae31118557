"""The ``[oauth]`` settings and how the app wires an installation from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pleo_export.app import oauth_installation, open_session
from pleo_export.config import ConfigError, OAuthSettings, Settings, load_settings
from pleo_export.host import PluginHost
from pleo_export.pleo.oauth import EXPORT_SCOPES, OAuthBearerAuth
from pleo_export_sandbox import DEMO_CHART

pytestmark = pytest.mark.anyio


def _settings(tmp_path: Path, **sections: Any) -> Settings:
    return Settings(
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"}, config_dir=tmp_path, **sections
    )


@pytest.mark.parametrize(
    ("base_url", "auth_url", "expected"),
    [
        ("production", None, "https://auth.pleo.io"),
        ("staging", None, "https://auth.staging.pleo.io"),
        ("http://127.0.0.1:8765", None, "http://127.0.0.1:8765"),
        ("production", "staging", "https://auth.staging.pleo.io"),
        ("production", "https://auth.example", "https://auth.example"),
        ("sandbox", None, None),
    ],
)
def test_auth_url_follows_the_api(base_url: str, auth_url: str | None, expected: str) -> None:
    assert OAuthSettings(auth_url=auth_url).resolved_auth_url(base_url) == expected


def test_defaults_ask_for_the_export_scopes() -> None:
    assert tuple(OAuthSettings().scopes) == EXPORT_SCOPES


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"redirect_uri": "127.0.0.1:8976/callback"}, "oauth.redirect_uri"),
        ({"auth_url": "prod"}, "oauth.auth_url"),
        ({"scopes": []}, "oauth.scopes"),
        ({"installation": "a b"}, "oauth.installation"),
        ({"refresh_margin": -1}, "oauth.refresh_margin"),
        ({"client": "x"}, "oauth.client"),
    ],
)
def test_bad_values_name_the_setting(
    values: dict[str, Any], field: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLEO_EXPORT_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=field):
        load_settings(oauth=values)


def test_the_secret_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLEO_EXPORT_CONFIG", raising=False)
    monkeypatch.setenv("PLEO_EXPORT_OAUTH__CLIENT_ID", "app")
    monkeypatch.setenv("PLEO_EXPORT_OAUTH__CLIENT_SECRET", "s3cret-value")
    settings = load_settings()
    assert settings.oauth.client_id == "app"
    assert settings.oauth.client_secret is not None
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("pleo", "oauth", "message"),
    [
        ({"base_url": "production"}, {}, "oauth.client_id is not set"),
        ({"base_url": "production"}, {"client_id": "app"}, "oauth.client_secret is required"),
        ({"base_url": "sandbox"}, {"client_id": "app", "client_secret": "x"}, "in process"),
    ],
)
def test_an_installation_needs_its_settings(
    tmp_path: Path, pleo: dict[str, Any], oauth: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        oauth_installation(_settings(tmp_path, pleo=pleo, oauth=oauth))


async def test_an_installation_keeps_its_tokens_in_the_state_store(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        pleo={"base_url": "staging"},
        oauth={"client_id": "app", "client_secret": "x", "installation": "eu"},
    )
    async with oauth_installation(settings) as installation:
        assert installation.key == "pleo-oauth:app:eu"
        assert installation.endpoint.token_url == "https://auth.staging.pleo.io/oauth/token"
        assert await installation.manager.current() is None
    assert (tmp_path / "state.db").is_file()


async def _session_settings(tmp_path: Path, **pleo: Any) -> Settings:
    connector = PluginHost(load_entry_points=False).load_connector("beancount")
    values = connector.scaffold(tmp_path, DEMO_CHART, "GBP")
    return _settings(
        tmp_path,
        pleo={"base_url": "http://127.0.0.1:9", **pleo},
        oauth={"client_id": "app", "client_secret": "x"},
        connector={"name": "beancount", "settings": values},
    )


async def test_open_session_uses_the_installation_as_bearer_token_provider(
    tmp_path: Path,
) -> None:
    settings = await _session_settings(tmp_path)
    async with open_session(settings, dry_run=True) as session:
        assert isinstance(session.client._auth, OAuthBearerAuth)
        assert session.client._auth.manager.key == "pleo-oauth:app:default"


async def test_oauth_and_an_api_key_together_are_refused(tmp_path: Path) -> None:
    settings = await _session_settings(tmp_path, api_key="key-value")
    with pytest.raises(ConfigError, match="authenticate one way"):
        async with open_session(settings):
            pass
