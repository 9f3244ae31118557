"""``pleo-export init <connector>``: a configuration file and the connector's starter files.

The configuration names the connector, carries the settings the connector's
:meth:`~pleo_export.Connector.starter` returned (a beancount ledger, an SFTP delivery folder
and rules file, ...) and lists every other setting of the connector as a comment with its
default and description. A connector without a starter gets the commented settings only. The
file points at the Pleo sandbox unless told otherwise, so ``pleo-export check`` can run at
once, without an account.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from pleo_export.config import DEFAULT_CONFIG_FILE, SANDBOX, ConfigError, PleoSettings
from pleo_export.connector import Connector, ConnectorSettings
from pleo_export.host import PluginHost


class InitError(ConfigError):
    """``init`` cannot write what it was asked to (a file exists, a bad option)."""


@dataclass
class InitResult:
    config: Path
    connector: str
    settings: dict[str, Any]
    """What the connector's starter returned (empty when it has none)."""
    created: list[Path] = field(default_factory=list)
    """Every file and folder that did not exist before, the configuration first."""
    has_starter: bool = True


def toml_value(value: Any) -> str:
    """A TOML literal for a simple setting value (strings, numbers, booleans, paths, lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path | str):
        return json.dumps(str(value))
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
            + "}"
        )
    raise InitError(f"cannot write a {type(value).__name__} setting to the configuration")


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field's docstring (the string below its annotation), on one line."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, ConnectorSettings)):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in zip(body, [*body[1:], None], strict=True):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                text = " ".join(following.value.value.split())
                docs[node.target.id] = text.replace("``", "`")
    return docs


def _commented_settings(
    settings_model: type[ConnectorSettings], written: dict[str, Any]
) -> list[str]:
    """Every setting not written, as a comment: ``# key = default`` and its description."""
    prefix = str(settings_model.model_config.get("env_prefix") or "")
    docs = field_docs(settings_model)
    lines: list[str] = []
    for name, info in settings_model.model_fields.items():
        if name in written:
            continue
        secret = info.annotation is SecretStr or "SecretStr" in str(info.annotation)
        if secret:
            lines.append(f"# {name}: a secret; set {prefix}{name.upper()} in the environment")
        elif info.is_required():
            lines.append(f"# {name} = ...   (required)")
        else:
            default = info.get_default(call_default_factory=True)
            try:
                shown = "...   (not set)" if default is None else toml_value(default)
            except InitError:
                shown = "..."
            lines.append(f"# {name} = {shown}")
        if docs.get(name):
            lines += textwrap.wrap(
                docs[name], width=96, initial_indent="#     ", subsequent_indent="#     "
            )
    return lines


def config_text(
    connector_cls: type[Connector[Any]],
    settings: dict[str, Any],
    *,
    base_url: str,
    has_starter: bool,
) -> str:
    manifest = connector_cls.manifest
    env_prefix = manifest.settings_model.model_config.get("env_prefix") or ""
    lines = [
        f"# pleo-export configuration, written by `pleo-export init {manifest.id}`.",
        "# Reference: docs/configuration.md. Environment variables PLEO_EXPORT_* win over",
        "# this file (e.g. PLEO_EXPORT_PLEO__API_KEY; connector settings as",
        f"# {env_prefix}<SETTING>).",
        "",
        "[pleo]",
    ]
    if base_url == SANDBOX:
        lines += [
            "# The built-in Pleo sandbox: generated expenses, no account needed. To go live, set",
            '# base_url = "production", company_id and PLEO_EXPORT_PLEO__API_KEY, and point',
            "# the connector at your real books.",
            'base_url = "sandbox"',
        ]
    else:
        lines += [
            f"base_url = {toml_value(base_url)}",
            '# company_id = "..."        # your Pleo company id (needed with an organisation key)',
            "# The API key comes from the environment: PLEO_EXPORT_PLEO__API_KEY",
        ]
    lines += [
        "",
        "[state]",
        "# Where pleo-export keeps its outbox (created on first use, beside this file).",
        'url = "sqlite:///pleo-export-state.db"',
        "",
        "[connector]",
        f'name = "{manifest.id}"',
        "",
        "[connector.settings]",
    ]
    if manifest.docs_url:
        lines.insert(-1, f"# {manifest.display_name}: {manifest.docs_url}")
    if not has_starter:
        lines.append(f"# The {manifest.id} connector has no starter: fill in the settings below.")
    tables: list[str] = []
    for key, value in settings.items():
        if isinstance(value, dict):
            tables += ["", f"[connector.settings.{key}]"]
            tables += [f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key} = {toml_value(value)}")
    others = _commented_settings(manifest.settings_model, settings)
    if others:
        lines += ["", "# Other settings, with their defaults:", *others]
    return "\n".join([*lines, *tables, ""])


def _snapshot(directory: Path) -> set[Path]:
    return set(directory.rglob("*")) if directory.exists() else set()


def init_installation(
    directory: Path,
    connector_name: str,
    *,
    base_url: str = SANDBOX,
    currency: str | None = None,
) -> InitResult:
    """Write ``directory/pleo-export.toml`` and the connector's starter files.

    Nothing that exists is overwritten: an existing configuration or starter file is an
    :class:`InitError` naming it, and nothing is written in that case.
    """
    try:
        PleoSettings(base_url=base_url)
    except ValidationError as error:
        raise InitError(f"--base-url {base_url!r}: {error.errors()[0]['msg']}") from None
    if currency is None:
        if base_url != SANDBOX:
            raise InitError(
                "--currency is required with a real Pleo API: the company's wallet currency, "
                "e.g. --currency DKK"
            )
        from pleo_export.config import SandboxSettings

        currency = SandboxSettings().wallet_currency
    if len(currency) != 3 or not currency.isalpha():
        raise InitError(f"--currency {currency!r}: use a three-letter ISO 4217 code, e.g. EUR")
    currency = currency.upper()

    connector_cls = PluginHost(load_entry_points=False).load_connector(connector_name)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / DEFAULT_CONFIG_FILE
    if config.exists():
        raise InitError(
            f"{config} exists: init never overwrites a configuration; move it away or use "
            "--dir for a new folder"
        )
    before = _snapshot(directory)
    has_starter = True
    try:
        settings = connector_cls.starter(directory, currency)
    except NotImplementedError:
        settings, has_starter = {}, False
    except FileExistsError as error:
        raise InitError(
            f"{error}: init never overwrites files; move it away or use --dir for a new folder"
        ) from None
    text = config_text(connector_cls, settings, base_url=base_url, has_starter=has_starter)
    config.write_text(text, encoding="utf-8")
    created = sorted(_snapshot(directory) - before - {config})
    return InitResult(config, connector_cls.manifest.id, settings, [config, *created], has_starter)


__all__ = ["InitError", "InitResult", "config_text", "init_installation", "toml_value"]
