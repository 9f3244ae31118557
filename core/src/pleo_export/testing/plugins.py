"""The plugin conformance check: one call a plugin's test makes.

::

    import pytest
    from pleo_export.testing.plugins import check_plugin

    @pytest.mark.anyio
    async def test_plugin_conformance(tmp_path):
        await check_plugin("audit", settings={"path": "audit.log"}, work_dir=tmp_path)

It checks, and raises :class:`PluginCheckFailure` listing every problem found:

- **hooks**: the plugin loads as ``pleo-export run`` loads it (by its entry-point name, or the
  object given), pluggy accepts every implementation, each names a documented hook of
  :mod:`pleo_export.hookspecs`, none is ``async`` and none is a hook wrapper;
- **settings**: a ``settings_model`` is a :class:`~pleo_export.PluginSettings` whose fields
  all have a description (a docstring under the field, or ``Field(description=...)``),
  fields that hold secrets are ``SecretStr``, ``configure`` exists, and ``settings`` is valid;
- **isolation**: a small export against the in-process sandbox (see
  :mod:`pleo_export.testing.plugin_run`) ends exactly as without the plugin when every hook
  the plugin implements raises, and each such failure is logged (``plugin.hook_failed``);
- **behaviour**: the export also runs with the plugin as it is, configured with ``settings``;
  a plugin that only observes (:data:`OBSERVING_HOOKS`) must not
  change its outcome, and no log line of that run may hold a secret of the settings.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import tempfile
import types
import typing
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from pleo_export import hookspecs
from pleo_export.host import PLUGINS_GROUP, Origin, PluginError, PluginHost
from pleo_export.testing.checks import MAX_LISTED_PROBLEMS
from pleo_export.testing.plugin_run import ExportOutcome, run_export

OBSERVING_HOOKS = frozenset(
    {
        "pleo_export_job_started",
        "pleo_export_job_finished",
        "pleo_export_item_prepared",
        "pleo_export_item_outcome",
        "pleo_export_job_reconciled",
        "pleo_export_service_started",
        "pleo_export_round_finished",
    }
)
"""Hooks whose answer the engine ignores: a plugin implementing only these cannot change an
export's outcome, and the check holds it to that."""

SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "private_key", "passphrase")
"""A settings field whose name contains one of these must be a ``SecretStr``."""


class PluginCheckFailure(AssertionError):
    """The plugin conformance check found problems; :attr:`problems` lists them."""

    def __init__(self, plugin: str, problems: list[str]) -> None:
        self.plugin = plugin
        self.problems = problems
        shown = problems[:MAX_LISTED_PROBLEMS]
        text = f"plugin {plugin!r}: {len(problems)} problem(s):\n" + "\n".join(
            f"  - {problem}" for problem in shown
        )
        if len(problems) > len(shown):
            text += f"\n  ... and {len(problems) - len(shown)} more"
        super().__init__(text)


@dataclass(frozen=True)
class PluginCheckReport:
    """What the check saw when it passed."""

    plugin: str
    hooks: tuple[str, ...]
    settings_fields: tuple[str, ...]
    outcome: ExportOutcome
    """The export without the plugin (the reference the other runs were compared with)."""
    as_is: ExportOutcome
    """The export with the plugin as it is (its ``records`` hold every log line of that run)."""
    isolated: Mapping[str, int]
    """Hook name -> ``plugin.hook_failed`` lines logged while the plugin raised in it."""
    failed_as_is: Mapping[str, int]
    """Hook name -> ``plugin.hook_failed`` lines of the run with the plugin as it is."""


class _Raised(RuntimeError):
    """What the check makes the plugin raise in each of its hooks."""


def _resolve(plugin: object | str, name: str | None) -> tuple[object, Origin]:
    if isinstance(plugin, str):
        eps = list(importlib.metadata.entry_points(group=PLUGINS_GROUP))
        found = [ep for ep in eps if ep.name == plugin]
        if not found:
            known = ", ".join(sorted({ep.name for ep in eps})) or "none"
            raise PluginCheckFailure(
                plugin,
                [
                    f"no entry point {plugin!r} in group {PLUGINS_GROUP} (installed: {known}); "
                    "install the plugin's distribution (pip install -e .) and check "
                    f'[project.entry-points."{PLUGINS_GROUP}"] in its pyproject.toml'
                ],
            )
        ep = found[0]
        dist = ep.dist
        origin = Origin(
            name=ep.name,
            value=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else "(unknown)",
            version=dist.version if dist is not None else "?",
        )
        try:
            return ep.load(), origin
        except Exception as error:
            raise PluginCheckFailure(
                plugin, [f"importing {ep.value} raised {type(error).__name__}: {error}"]
            ) from error
    label = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    return plugin, Origin(name=label, value=repr(plugin), distribution="(checked)", version="0")


def _register(plugin: object, origin: Origin) -> PluginHost:
    host = PluginHost(load_entry_points=False, strict=True)
    try:
        host.register(plugin, origin)
    except PluginError as error:
        raise PluginCheckFailure(origin.name, [str(error)]) from None
    return host


def _hook_problems(host: PluginHost, registered: object) -> tuple[list[str], tuple[str, ...]]:
    problems: list[str] = []
    hooks: list[str] = []
    for caller in host.pm.get_hookcallers(registered) or []:
        hooks.append(caller.name)
        spec = caller.spec
        if spec is None or not (inspect.getdoc(spec.function) or "").strip():
            problems.append(f"{caller.name} is not a documented hook of pleo_export.hookspecs")
        for impl in caller.get_hookimpls():
            if impl.plugin is not registered:
                continue
            function = inspect.unwrap(impl.function)
            if impl.hookwrapper or impl.wrapper:
                problems.append(
                    f"{caller.name} is a hook wrapper; pleo-export does not isolate wrappers' "
                    "failures: implement it as a plain hook"
                )
            if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
                problems.append(
                    f"{caller.name} is async; hooks are synchronous and a coroutine would "
                    "never run: make it a plain function (start background work elsewhere)"
                )
    if not hooks:
        problems.append(
            "implements no hook: mark functions named after a hook of pleo_export.hookspecs "
            "with @hookimpl"
        )
    return problems, tuple(sorted(hooks))


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in typing.get_args(annotation))


def _settings_problems(registered: object, name: str) -> tuple[list[str], tuple[str, ...]]:
    model = getattr(registered, "settings_model", None)
    configure = getattr(registered, "configure", None)
    if model is None:
        if configure is not None:
            return [
                "defines configure but no settings_model, so configure is never called: add "
                "settings_model (a PluginSettings subclass) or remove configure"
            ], ()
        return [], ()
    if not (inspect.isclass(model) and issubclass(model, hookspecs.PluginSettings)):
        return [
            f"settings_model is {model!r}, not a subclass of pleo_export.PluginSettings: "
            "derive the settings model from PluginSettings"
        ], ()
    problems: list[str] = []
    if not callable(configure):
        problems.append(
            "has a settings_model but no configure(settings): without it the plugin never "
            "sees its settings"
        )
    problems += _field_problems(model, name, "")
    return problems, tuple(model.model_fields)


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def _field_problems(model: type[BaseModel], name: str, prefix: str) -> list[str]:
    """Undocumented fields and secrets that are not ``SecretStr``, nested models included
    (their fields are named ``table.field``)."""
    problems: list[str] = []
    for field, info in model.model_fields.items():
        where = f"{prefix}{field}"
        if not (info.description or "").strip():
            problems.append(
                f"settings field {where!r} is not documented: put a docstring under it (or "
                f"Field(description=...)); it is what users of [plugins.{name}] read"
            )
        lowered = field.lower()
        if any(word in lowered for word in SECRET_WORDS) and not _is_secret(info.annotation):
            problems.append(
                f"settings field {where!r} holds a secret but is not a SecretStr: declare it "
                "SecretStr so it is masked in repr() and logs"
            )
        for nested in _nested_models(info.annotation):
            if nested is not model:
                problems += _field_problems(nested, name, f"{where}.")
    return problems


def _secrets(settings: object) -> dict[str, str]:
    found: dict[str, str] = {}
    for field in getattr(type(settings), "model_fields", {}):
        value = getattr(settings, field, None)
        if isinstance(value, SecretStr) and len(value.get_secret_value()) >= 4:
            found[field] = value.get_secret_value()
    return found


def _raising_copy(registered: object, host: PluginHost) -> object:
    """A plugin with the same hook implementations (names, arguments, options) as
    ``registered``, each raising :class:`_Raised`."""
    copy = types.SimpleNamespace()
    marker = f"{hookspecs.PROJECT}_impl"
    for attribute in dir(registered):
        opts = host.pm.parse_hookimpl_opts(registered, attribute)
        if opts is None:
            continue
        original = getattr(registered, attribute)

        def raiser(*_args: Any, _hook: str = attribute, **_kwargs: Any) -> Any:
            raise _Raised(f"raised on purpose by the plugin conformance check in {_hook}")

        raiser.__wrapped__ = original  # type: ignore[attr-defined]  # pluggy reads the arguments
        setattr(raiser, marker, dict(opts))
        setattr(copy, attribute, raiser)
    return copy


def _hook_failures(outcome: ExportOutcome, plugin: str) -> Counter[str]:
    return Counter(
        str(getattr(record, "hook", ""))
        for record in outcome.records
        if getattr(record, "event", None) == "plugin.hook_failed"
        and getattr(record, "plugin", None) == plugin
    )


def _leaks(outcome: ExportOutcome, secrets: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    formatter = logging.Formatter()
    for record in outcome.records:
        text = record.getMessage() + repr(vars(record))
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        for field, value in secrets.items():
            if value in text:
                problems.append(
                    f"a log line ({record.name}: {getattr(record, 'event', record.msg)!s:.60}) "
                    f"holds the value of settings field {field!r}: log the SecretStr, never "
                    "its get_secret_value()"
                )
    return problems


async def check_plugin(
    plugin: object | str,
    *,
    name: str | None = None,
    settings: Mapping[str, Any] | None = None,
    work_dir: Path | None = None,
) -> PluginCheckReport:
    """Check ``plugin`` (an entry-point name in ``pleo_export.plugins``, or the module, class
    or object itself) and raise :class:`PluginCheckFailure` with every problem found.

    :param name: the plugin's name when ``plugin`` is an object (default: its ``__name__``).
    :param settings: the plugin's ``[plugins.<name>]`` table; relative paths resolve against
        ``work_dir``. Needed when the settings model has required fields.
    :param work_dir: where the runs keep their state stores (default: a temporary folder).
    """
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="pleo-plugin-check-") as folder:
            return await check_plugin(plugin, name=name, settings=settings, work_dir=Path(folder))
    obj, origin = _resolve(plugin, name)
    label = origin.name
    host = _register(obj, origin)
    registered = host.pm.get_plugin(label)
    problems, hooks = _hook_problems(host, registered)
    settings_problems, fields = _settings_problems(registered, label)
    problems += settings_problems
    configured: object = None
    if not settings_problems and getattr(registered, "settings_model", None) is not None:
        try:
            host.configure_plugins({label: dict(settings or {})}, config_dir=work_dir)
            configured = getattr(registered, "settings_model")(**dict(settings or {}))  # noqa: B009
        except (PluginError, ValueError) as error:
            problems.append(f"settings= is not a valid [plugins.{label}] table: {error}")
    elif settings:
        problems.append(f"settings= was given but plugin {label!r} takes no settings")
    if problems:
        raise PluginCheckFailure(label, problems)

    baseline = await run_export(PluginHost(load_entry_points=False), work_dir / "without-plugin")
    as_is = await run_export(host, work_dir / "with-plugin")
    raising_host = PluginHost(load_entry_points=False, strict=True)
    raising_host.register(_raising_copy(registered, host), origin)
    try:
        raising = await run_export(raising_host, work_dir / "plugin-raising")
    except Exception as error:
        raise PluginCheckFailure(
            label,
            [
                f"the export stopped with {type(error).__name__}: {error} when the plugin "
                "raised in its hooks; this pleo-export does not isolate hook failures"
            ],
        ) from error

    problems += baseline.differences(raising, label="with the plugin raising in every hook")
    isolated = _hook_failures(raising, label)
    for hook in hooks:
        if not isolated[hook]:
            problems.append(
                f"the plugin raised in {hook} but no plugin.hook_failed line was logged for it"
            )
    if set(hooks) <= OBSERVING_HOOKS:
        problems += baseline.differences(as_is, label="with the plugin (which only observes hooks)")
    problems += _leaks(as_is, _secrets(configured))
    if problems:
        raise PluginCheckFailure(label, problems)
    return PluginCheckReport(
        plugin=label,
        hooks=hooks,
        settings_fields=fields,
        outcome=baseline,
        as_is=as_is,
        isolated=dict(isolated),
        failed_as_is=dict(_hook_failures(as_is, label)),
    )


__all__ = [
    "OBSERVING_HOOKS",
    "PluginCheckFailure",
    "PluginCheckReport",
    "check_plugin",
]
