"""Configuration: a TOML file plus ``PLEO_EXPORT_*`` environment variables.

Precedence, highest first: keyword overrides (command-line options), environment variables,
the TOML file, defaults. Nested fields use ``__`` in environment variable names, e.g.
``PLEO_EXPORT_PLEO__API_KEY``. Secrets are :class:`~pydantic.SecretStr` and never printed.
The full reference is ``docs/configuration.md``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from pleo_export.concurrency import ConcurrencySettings
from pleo_export.connector import ConnectorManifest, ConnectorSettings, describe_settings_error

log = logging.getLogger("pleo_export.config")

DEFAULT_CONFIG_FILE = "pleo-export.toml"
SANDBOX = "sandbox"
BASE_URLS = {
    "production": "https://external.pleo.io",
    "staging": "https://external.staging.pleo.io",
}
AUTH_URLS = {
    "production": "https://auth.pleo.io",
    "staging": "https://auth.staging.pleo.io",
}
"""Pleo's OAuth servers (``/oauth/authorize``, ``/oauth/token``) for each named API."""


class ConfigError(Exception):
    """The configuration is invalid; the message names every offending field."""


BASE_URL_MISSING = (
    'pleo.base_url is not set: set it to "production", "staging" or the URL of your Pleo '
    'API, or to "sandbox" for the built-in simulator\'s generated expenses (in [pleo] of '
    "pleo-export.toml or PLEO_EXPORT_PLEO__BASE_URL; `pleo-export init` writes a configuration); "
    "nothing was exported"
)
"""The one-line refusal of ``run``, ``check`` and ``jobs`` when ``pleo.base_url`` is unset."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PleoSettings(_Section):
    base_url: str | None = None
    """``production``, ``staging``, an http(s) URL, or ``sandbox`` (the built-in simulator, in
    process). No default: ``run``, ``check`` and ``jobs`` refuse to start until it is set (see
    :func:`require_pleo_target`), so generated sandbox expenses never reach real books."""
    api_key: SecretStr | None = None
    access_token: SecretStr | None = None
    company_id: str | None = None
    """The company whose jobs this installation exports (required for organisation keys)."""
    company_ids: list[str] = Field(default_factory=list)
    """Several companies served by one worker (an organisation-level key), in turn, one job
    per company at a time; ``company_id``, if also set, comes first. ``run --company``
    overrides both for one run."""
    requests_per_minute: int = Field(500, ge=1, le=600)
    """Request budget; Pleo allows 600 per minute and asks integrations to stay near 500."""
    page_size: int = Field(1000, ge=1, le=10_000)
    timeout: float = Field(30.0, gt=0)
    """Seconds to wait for a connection and for each read from Pleo."""
    retry_attempts: int = Field(8, ge=1, le=20)
    """Attempts per request to Pleo when it answers 429 or 5xx or cannot be reached (the
    first included), with exponential backoff from 0.5 s up to 30 s between them."""
    download_timeout: float = Field(120.0, gt=0)
    """Total seconds one receipt download may take, retries included (``timeout`` is per
    read, so a server trickling bytes would otherwise hold a download forever)."""
    download_concurrency: int = Field(16, ge=1, le=256)
    """Receipt downloads in flight at once (Pleo's file storage: not in the API budget)."""
    receipt_hosts: list[str] = Field(default_factory=list)
    """Hosts (``host`` or ``host:port``) receipts may also be downloaded from over plain
    ``http`` or at a private, loopback or link-local address, e.g. the receipts port of
    ``pleo-export sandbox serve``. Absolute ``https`` URLs on public hosts need no entry;
    the host of ``base_url`` is always allowed."""

    @field_validator("base_url")
    @classmethod
    def _known_base_url(cls, value: str | None) -> str | None:
        if value is None or value in (SANDBOX, *BASE_URLS):
            return value
        if value.startswith(("http://", "https://")):
            return value
        raise ValueError(
            "must be 'sandbox', 'production', 'staging' or an http(s) URL such as "
            "http://127.0.0.1:8765"
        )

    def resolved_url(self) -> str:
        if self.base_url is None:
            raise ConfigError(BASE_URL_MISSING)
        return BASE_URLS.get(self.base_url, self.base_url)

    @field_validator("company_ids")
    @classmethod
    def _non_empty_ids(cls, value: list[str]) -> list[str]:
        if any(not company or company != company.strip() for company in value):
            raise ValueError("company ids must be non-empty and have no surrounding spaces")
        return value

    def companies(self) -> list[str]:
        """``company_id`` then ``company_ids``, without repeats."""
        first = [self.company_id] if self.company_id else []
        return list(dict.fromkeys([*first, *self.company_ids]))


class OAuthSettings(_Section):
    """OAuth for partner apps: ``pleo-export auth login`` installs, the engine refreshes."""

    client_id: str | None = None
    """The OAuth client id; setting it makes pleo-export authenticate with OAuth."""
    client_secret: SecretStr | None = None
    redirect_uri: str | None = None
    """The redirect URI registered for the client, matched exactly by Pleo."""
    scopes: list[str] = Field(
        default_factory=lambda: ["export-jobs:read", "export-jobs:write", "export-items:read"]
    )
    auth_url: str | None = None
    """``production``, ``staging`` or a URL; default: the one matching ``pleo.base_url``."""
    installation: str = Field("default", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    """Name of this installation's tokens in the state store (several may share a store)."""
    refresh_margin: float = Field(60.0, ge=0, le=3600)
    """Seconds before the access token expires at which it is refreshed."""

    @field_validator("redirect_uri")
    @classmethod
    def _absolute_redirect(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                "must be the absolute http(s) redirect URI registered for the OAuth client, "
                "e.g. http://127.0.0.1:8976/callback"
            )
        return value

    @field_validator("auth_url")
    @classmethod
    def _known_auth_url(cls, value: str | None) -> str | None:
        if value is None or value in AUTH_URLS or value.startswith(("http://", "https://")):
            return value
        raise ValueError("must be 'production', 'staging' or an http(s) URL")

    @field_validator("scopes")
    @classmethod
    def _some_scopes(cls, value: list[str]) -> list[str]:
        if not value or any(not scope or " " in scope for scope in value):
            raise ValueError("must be a non-empty list of scope names without spaces")
        return value

    def resolved_auth_url(self, base_url: str | None) -> str | None:
        """The OAuth server: ``auth_url``, else Pleo's for ``production``/``staging``, else
        ``base_url`` itself (a sandbox served over HTTP serves both); ``None`` for the
        in-process sandbox. Without either, :data:`BASE_URL_MISSING` as a ConfigError."""
        if self.auth_url is not None:
            return AUTH_URLS.get(self.auth_url, self.auth_url)
        if base_url is None:
            raise ConfigError(BASE_URL_MISSING)
        if base_url == SANDBOX:
            return None
        return AUTH_URLS.get(base_url, base_url)


class StateSettings(_Section):
    url: str = "sqlite:///pleo-export-state.db"
    """Where the engine keeps its outbox; relative SQLite paths are relative to the config file."""

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        from pleo_export.state import open_store

        open_store(value)  # parses only: a ValueError names the problem (password hidden)
        return value


class ConnectorSelection(_Section):
    name: str | None = None
    """The connector to use, e.g. ``beancount`` (see ``pleo-export connectors list``)."""
    settings: dict[str, Any] = Field(default_factory=dict)
    companies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-company settings for a worker serving several companies, keyed by company id and
    laid over ``settings`` (e.g. one ledger per company): ``[connector.companies."<id>"]``."""


class PluginSettings(_Section):
    """``[plugins]``: which plugins not to load, and one table ``[plugins.<name>]`` of settings
    per plugin that takes settings (validated by that plugin's own ``settings_model`` when it
    loads, see :meth:`pleo_export.host.PluginHost.configure_plugins`)."""

    model_config = ConfigDict(extra="allow")

    disabled: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tables_only(self) -> PluginSettings:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, dict):
                raise ValueError(
                    f"plugins.{name} is not a setting of [plugins] (only disabled is): a "
                    f"plugin's settings go in a table [plugins.{name}]"
                )
        return self

    def tables(self) -> dict[str, dict[str, Any]]:
        """The ``[plugins.<name>]`` tables, by plugin name."""
        return {name: dict(value) for name, value in (self.model_extra or {}).items()}


class EngineSettings(ConcurrencySettings, _Section):
    poll_interval: float = Field(60.0, gt=0)
    """Seconds between polls with ``run --watch``."""
    outage_backoff_max: float = Field(300.0, ge=1, le=3600)
    """Longest wait between polls of ``run --watch`` while Pleo is unavailable (the wait
    starts at ``poll_interval`` or 5 s, whichever is shorter, and doubles, with jitter)."""
    report_interval: float = Field(30.0, gt=0)
    post_attempts: int = Field(4, ge=1, le=20)
    rounding_tolerance_per_line: int = Field(1, ge=0, le=100)
    booking_timezone: str = "UTC"
    """IANA time zone whose calendar date an expense is booked on (e.g. ``Europe/Copenhagen``)."""
    lease_ttl: float = Field(60.0, ge=1, le=3600)
    """Seconds a worker's lease on a company lasts without renewal (renewed every third of
    it); after a worker dies, another takes its companies over once this has passed."""
    worker_id: str | None = Field(None, min_length=1, max_length=200)
    """This worker's name in the leases; default ``<hostname>-<8 hex digits>``, the digits
    hashing the state store's location: the same for every run of this installation on this
    host, so a restarted worker takes its own leases back at once."""

    @field_validator("booking_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Copenhagen"
            ) from None
        return value


class SandboxSettings(_Section):
    """What the built-in sandbox (``pleo.base_url = "sandbox"``) holds when a run starts.

    The in-process sandbox starts afresh on every run with the same deterministic jobs, so a
    second run shows that nothing is posted twice: every entry is found by reference."""

    seed: int = 7
    company_name: str = "Demo Ltd"
    wallet_currency: str = "GBP"
    jobs: int = Field(3, ge=0, le=50)
    items_per_job: int = Field(80, ge=1, le=100_000)
    vendor_based_jobs: int = Field(1, ge=0)
    """How many of the jobs (the last ones) use vendor-based bookkeeping (accounts payable)."""
    unknown_account_rate: float = Field(0.03, ge=0, le=1)
    """Share of items whose category is missing from the target, to show failed items."""
    api_latency: float = Field(0.0, ge=0, le=10)
    """Seconds before each API answer, to try a far-away Pleo (``0.05``: from Europe)."""
    file_latency: float = Field(0.0, ge=0, le=10)
    """Seconds the sandbox waits before answering each receipt download."""
    master_data: Literal["chart", "empty"] = "chart"  # Pleo's vendors, taxes, tags at first


class WebhookSettings(_Section):
    """The ``v1.export-job.created`` receiver that wakes ``run --watch`` (see docs/lifecycle.md)."""

    listen: str | None = None
    """``host:port`` to accept Pleo's webhook deliveries on; unset: poll only."""
    path: str = "/pleo/webhooks"
    secret: SecretStr | None = None
    """The subscription's ``whsec_...`` signing secret (``GET /v1/subscriptions/{id}/secret``).
    Unset: the secrets ``pleo-export webhooks subscribe`` stored in the state store; the
    receiver does not start without either."""
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)
    """Largest delivery body accepted; larger ones are refused (413) without being read."""
    read_timeout: float = Field(10.0, gt=0, le=300)
    """Seconds a connection has to deliver its whole request before it is closed."""
    max_connections: int = Field(64, ge=1, le=10_000)
    """Connections served at once; further ones are answered 503 and closed at once."""

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            from pleo_export.webhooks import parse_listen

            try:
                parse_listen(value)
            except ValueError as error:
                raise ValueError(str(error).removeprefix("webhooks.listen ")) from None
        return value

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() or c in "?#" for c in value):
            raise ValueError(
                "must be a URL path starting with '/' and without spaces, '?' or '#', "
                "e.g. /pleo/webhooks"
            )
        return value

    @field_validator("secret")
    @classmethod
    def _subscription_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from pleo_export.webhooks import WebhookError, decode_secret

            try:
                decode_secret(value)
            except WebhookError as error:
                raise ValueError(str(error).removeprefix("webhooks.secret ")) from None
        return value


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "warning"
    format: Literal["text", "json"] = "text"
    file: Path | None = None
    rotate_bytes: int = Field(10 * 1024 * 1024, ge=0)
    """Rotate ``file`` when it would grow past this many bytes; 0: never rotate here (an
    outside tool such as logrotate may move it: it is reopened)."""
    backups: int = Field(5, ge=0, le=1000)
    """Rotated files kept (``file.1`` newest ... ``file.<backups>``)."""

    @field_validator("file", mode="before")
    @classmethod
    def _names_a_file(cls, value: Any) -> Any:
        if isinstance(value, str | Path) and str(value).strip() in ("", "."):
            raise ValueError(
                "is empty: name a log file such as pleo-export.log, or leave log.file unset to "
                "log to stderr"
            )
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLEO_EXPORT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    pleo: PleoSettings = Field(default_factory=PleoSettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    connector: ConnectorSelection = Field(default_factory=ConnectorSelection)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    config_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    """The directory relative paths are resolved against (the config file's directory)."""

    toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)

    def state_url(self) -> str:
        url = self.state.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            path = url[len(prefix) :]
            if path != ":memory:":
                return prefix + str((self.config_dir / path).resolve())
        return url


def require_pleo_target(settings: Settings, companies: Sequence[str] = ()) -> None:
    """Refuse a configuration that does not say, unambiguously, which Pleo to export from.

    ``pleo.base_url`` must be set explicitly (:data:`BASE_URL_MISSING`): an unset URL never
    falls back to the sandbox, whose generated expenses would otherwise be booked into the
    connector's real ledger. ``pleo.base_url = "sandbox"`` together with a credential or a
    company id of a real organisation (``pleo.api_key``, ``pleo.access_token``,
    ``oauth.client_id``, ``pleo.company_id``, ``pleo.company_ids`` or ``companies``, the
    ``run --company`` option) is a contradiction: the sandbox would silently ignore them. The
    error names every conflicting setting. ``pleo-export demo`` pins its own sandbox settings
    and so never meets either rule.
    """
    pleo = settings.pleo
    if pleo.base_url is None:
        raise ConfigError(BASE_URL_MISSING)
    if pleo.base_url != SANDBOX:
        return
    conflicts = [
        name
        for name, present in (
            ("pleo.api_key (PLEO_EXPORT_PLEO__API_KEY)", pleo.api_key is not None),
            ("pleo.access_token (PLEO_EXPORT_PLEO__ACCESS_TOKEN)", pleo.access_token is not None),
            ("oauth.client_id", settings.oauth.client_id is not None),
            ("pleo.company_id", pleo.company_id is not None),
            ("pleo.company_ids", bool(pleo.company_ids)),
            ("--company", bool(companies)),
        )
        if present
    ]
    if conflicts:
        raise ConfigError(
            'pleo.base_url is "sandbox" (the built-in simulator, generated expenses) but '
            f"{', '.join(conflicts)} {'is' if len(conflicts) == 1 else 'are'} set too, which "
            "only a real Pleo company uses: to export from Pleo set pleo.base_url to "
            '"production", "staging" or your Pleo URL; to try the sandbox remove '
            f"{'it' if len(conflicts) == 1 else 'them'}"
        )


def find_config_file(explicit: Path | None) -> Path | None:
    """The file named by ``--config``, else ``$PLEO_EXPORT_CONFIG``, else ``./pleo-export.toml``."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"configuration file {explicit} does not exist")
        return explicit
    from_env = os.environ.get("PLEO_EXPORT_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"PLEO_EXPORT_CONFIG names {path}, which does not exist")
        return path
    default = Path.cwd() / DEFAULT_CONFIG_FILE
    return default if default.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config_file`` (see :func:`find_config_file`) and the environment."""
    path = find_config_file(config_file)

    class _FileSettings(Settings):
        toml_file = path

    config_dir = path.parent.resolve() if path is not None else Path.cwd()
    _check_section_variables()
    try:
        loaded = _FileSettings(**overrides, config_dir=config_dir)
    except ValidationError as error:
        errors = list(error.errors())
        if all(_env_variable(e.get("loc", ())) for e in errors):
            head = "invalid environment variable" + ("s:" if len(errors) > 1 else ":")
        else:
            head = f"invalid configuration in {path}:" if path else "invalid configuration:"
        raise ConfigError(_describe(head, errors)) from None
    except SettingsError:
        raise ConfigError(_describe_environment_error()) from None
    except ValueError as error:  # TOML syntax errors
        raise ConfigError(f"cannot read configuration file {path}: {error}") from None
    return loaded


def _describe_environment_error() -> str:
    """Name the ``PLEO_EXPORT_*`` variables whose value is meant as JSON but is not."""
    broken = []
    for name, value in sorted(os.environ.items()):
        if not name.upper().startswith("PLEO_EXPORT_") or not value.strip():
            continue
        if value.lstrip()[0] in "[{":
            try:
                json.loads(value)
            except ValueError:
                broken.append(name)
    if broken:
        return (
            f"environment variable {', '.join(broken)} is not valid JSON: lists and tables "
            'are written as JSON there, e.g. PLEO_EXPORT_PLEO__COMPANY_IDS=\'["id-1", "id-2"]\''
        )
    return (
        "a PLEO_EXPORT_* environment variable for a list or table setting is not valid JSON: "
        "write lists and tables as JSON, e.g. PLEO_EXPORT_PLEO__COMPANY_IDS='[\"id-1\"]'"
    )


def connector_settings(
    manifest: ConnectorManifest, values: dict[str, Any], config_dir: Path
) -> ConnectorSettings:
    """Validate the connector's settings (``[connector.settings]`` + its environment variables).

    Relative paths are resolved against ``config_dir``. Errors name the fields, never values.
    """
    model = manifest.settings_model
    prefix = connector_env_prefix(manifest.id)
    for problem in unknown_connector_variables(manifest.id, model):
        # Reported, not fatal: test harnesses and other tools also use this prefix.
        log.warning(problem, extra={"event": "config.unknown_variable"})
    try:
        settings = model(_env_prefix=prefix, **values)
    except ValidationError as error:
        raise ConfigError(
            describe_settings_error(manifest.id, list(error.errors()), env_prefix=prefix)
        ) from None
    updates: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[name] = (config_dir / value).resolve()
    return settings.model_copy(update=updates) if updates else settings


def _describe(head: str, errors: list[Any]) -> str:
    """One line for one problem (naming the setting), else a line per problem."""
    lines = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ())) or "(root)"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown setting (check the spelling; see docs/configuration.md)"
        variable = _env_variable(error.get("loc", ()))
        if variable is not None:
            location = f"{variable} ({location})"
        lines.append(f"{location}: {message}")
    if len(lines) == 1:
        return f"{head} {lines[0]}"
    return "\n".join([head, *(f"  - {line}" for line in lines)])


ENV_PREFIX = "PLEO_EXPORT_"


def _env_variable(loc: Any) -> str | None:
    """The environment variable that set the setting at ``loc``, if one is set."""
    parts = [str(part) for part in loc or () if not isinstance(part, int)]
    if not parts:
        return None
    wanted = ENV_PREFIX + "__".join(parts).upper()
    for name in os.environ:
        if name.upper() == wanted:
            return name
    return None


def _check_section_variables() -> None:
    """A ``PLEO_EXPORT_<SECTION>__<KEY>`` variable whose section does not exist is an error
    naming the variable (pydantic-settings would ignore it silently). Connector variables
    (``PLEO_EXPORT_<CONNECTOR>_<FIELD>``) are checked by :func:`connector_settings`."""
    import difflib

    sections = sorted(name for name in Settings.model_fields if name != "config_dir")
    for name in sorted(os.environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        head, nested, _ = rest.partition("__")
        if not nested or "_" in head or not head or head.lower() in sections:
            continue
        close = difflib.get_close_matches(head.lower(), sections, n=1)
        hint = (
            f"did you mean {ENV_PREFIX}{close[0].upper()}__{rest.partition('__')[2]}?"
            if close
            else f"the sections are {', '.join(sections)}"
        )
        raise ConfigError(
            f"environment variable {name}: there is no [{head.lower()}] section; {hint}"
        )


def connector_env_prefix(connector_id: str) -> str:
    """``PLEO_EXPORT_<CONNECTOR>_``: the prefix of a connector's own environment variables."""
    return f"{ENV_PREFIX}{connector_id.upper().replace('-', '_')}_"


def unknown_connector_variables(connector_id: str, model: type[BaseModel]) -> list[str]:
    """``PLEO_EXPORT_<CONNECTOR>_*`` variables that name no field of the connector's
    settings (pydantic-settings would ignore them), each with what was probably meant."""
    import difflib

    prefix = connector_env_prefix(connector_id)
    fields = sorted(model.model_fields)
    found: list[str] = []
    for name in sorted(os.environ):
        if not name.upper().startswith(prefix):
            continue
        field = name[len(prefix) :].partition("__")[0].lower()
        if field in fields:
            continue
        close = difflib.get_close_matches(field, fields, n=1)
        hint = f"did you mean {prefix}{close[0].upper()}?" if close else "it is ignored"
        found.append(f"{name} is not a setting of connector {connector_id!r}; {hint}")
    return found
