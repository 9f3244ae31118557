"""The plugin host: finds connectors and plugins through entry points and calls hooks.

Discovery uses stevedore over two entry-point groups:

- ``pleo_export.connectors``: name = connector id, value = a :class:`Connector` subclass. Only
  the connector named in the configuration is imported.
- ``pleo_export.plugins``: name = plugin id, value = a module or object with ``@hookimpl``
  functions (see :mod:`pleo_export.hookspecs`). Each is loaded in isolation: a plugin that
  fails to import or declares unknown hooks is recorded as a :class:`LoadFailure` (with its
  distribution, version and reason) and the others still load.

Two distributions registering the same name in one group is an error naming both.
Environment switches: ``PLEO_EXPORT_DISABLE_PLUGINS=a,b`` skips plugins by name,
``PLEO_EXPORT_LOAD_PLUGINS=a,b`` loads only those (empty = none),
``PLEO_EXPORT_STRICT_PLUGINS=1`` turns any load failure into an error.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel, SecretStr, ValidationError
from stevedore import DriverManager, ExtensionManager

from pleo_export import hookspecs
from pleo_export.connector import (
    CONTRACT_VERSION,
    Connector,
    ConnectorError,
    ConnectorManifest,
    contract_problems,
)
from pleo_export.hookspecs import Problem
from pleo_export.logs import redact, register_secret

if TYPE_CHECKING:
    from pleo_export.engine.report import JobReport
    from pleo_export.ledger import PostingPlan, PreparedEntry
    from pleo_export.masterdata import BookedEntry
    from pleo_export.pleo.models import ExportItem, ExportJob
    from pleo_export.service import RoundResult, ServiceView
    from pleo_export.state.base import ItemOutcome

CONNECTORS_GROUP = "pleo_export.connectors"
PLUGINS_GROUP = "pleo_export.plugins"

log = logging.getLogger("pleo_export.host")


class PluginError(Exception):
    """Base class of plugin host errors."""


class ConnectorNotFound(PluginError):
    """No installed distribution provides the configured connector."""


class ConnectorLoadError(PluginError):
    """The configured connector is installed but cannot be used."""


class PluginConflict(PluginError):
    """Two distributions register the same name in one entry-point group."""


class PluginLoadFailed(PluginError):
    """A plugin failed to load while strict loading is on."""


class PluginConfigError(PluginError):
    """A ``[plugins.<name>]`` table does not fit the plugin (or names no installed plugin)."""


@dataclass(frozen=True)
class Origin:
    """Where an entry point comes from."""

    name: str
    value: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} ({self.distribution} {self.version}, {self.value})"


@dataclass(frozen=True)
class LoadFailure:
    group: str
    origin: Origin
    reason: str

    def __str__(self) -> str:
        return f"{self.group} {self.origin}: {self.reason}"


@dataclass(frozen=True)
class LoadedPlugin:
    origin: Origin
    hooks: tuple[str, ...]


@dataclass(frozen=True)
class ConnectorInfo:
    origin: Origin
    manifest: ConnectorManifest | None
    failure: str | None = None


def _origin(ep: importlib.metadata.EntryPoint) -> Origin:
    dist = ep.dist
    name = dist.metadata["Name"] if dist is not None else "(unknown distribution)"
    version = dist.version if dist is not None else "?"
    return Origin(name=ep.name, value=ep.value, distribution=name, version=version)


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    seen: dict[tuple[str, str, str], importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=group):
        origin = _origin(ep)
        # The same distribution can be visible twice on sys.path (editable installs).
        seen.setdefault((ep.name, origin.distribution, ep.value), ep)
    return list(seen.values())


class _FreshExtensions(ExtensionManager[Any]):
    """stevedore's loader fed from ``importlib.metadata`` directly.

    stevedore caches entry points on disk keyed by path modification times, which can miss a
    distribution installed within the same second; its cached entry points also lack the
    distribution needed to name a broken plugin's package.
    """

    def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return _entry_points(self.namespace)


class _FreshDriver(DriverManager[Any]):
    def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return _entry_points(self.namespace)


def _check_conflicts(group: str, eps: Iterable[importlib.metadata.EntryPoint]) -> None:
    by_name: dict[str, list[Origin]] = {}
    for ep in eps:
        by_name.setdefault(ep.name, []).append(_origin(ep))
    for name, origins in by_name.items():
        if len({o.distribution for o in origins}) > 1:
            listed = " and ".join(f"{o.distribution} {o.version} ({o.value})" for o in origins)
            raise PluginConflict(
                f"{group}: the name {name!r} is registered by {listed}; uninstall one of them "
                "or ask its author to rename the entry point"
            )


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


class PluginHost:
    """Loads plugins and the configured connector; calls hooks with typed methods."""

    def __init__(
        self,
        *,
        load_entry_points: bool = True,
        disabled: Sequence[str] = (),
        strict: bool | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[LoadFailure] = []
        self.plugins: list[LoadedPlugin] = []
        env_disabled = _env_list("PLEO_EXPORT_DISABLE_PLUGINS") or []
        self._disabled = {*disabled, *env_disabled}
        self._only = _env_list("PLEO_EXPORT_LOAD_PLUGINS")
        self._strict = (
            strict if strict is not None else os.environ.get("PLEO_EXPORT_STRICT_PLUGINS") == "1"
        )
        if load_entry_points:
            self.load_plugins()

    # --- plugins -------------------------------------------------------------------------------

    def load_plugins(self) -> None:
        """Load every ``pleo_export.plugins`` entry point, each in isolation."""
        eps = [
            ep
            for ep in _entry_points(PLUGINS_GROUP)
            if ep.name not in self._disabled and (self._only is None or ep.name in self._only)
        ]
        # After the switches, so that disabling one of two clashing plugins resolves the clash.
        _check_conflicts(PLUGINS_GROUP, eps)
        wanted = {ep.name for ep in eps}
        if not wanted:
            return
        origins = {ep.name: _origin(ep) for ep in eps}

        def on_failure(
            _manager: Any, ep: importlib.metadata.EntryPoint, err: BaseException
        ) -> None:
            self._fail(PLUGINS_GROUP, _origin(ep), f"import failed: {type(err).__name__}: {err}")

        manager = _FreshExtensions(
            PLUGINS_GROUP, invoke_on_load=False, on_load_failure_callback=on_failure
        )
        for ext in manager.extensions:
            if ext.name in wanted:
                self.register(ext.plugin, origins[ext.name])

    def register(self, plugin: object, origin: Origin) -> bool:
        """Register one plugin object; record a failure instead of raising (unless strict)."""
        if inspect.isclass(plugin):
            try:
                plugin = plugin()
            except Exception as err:
                self._fail(PLUGINS_GROUP, origin, f"could not be instantiated: {err}")
                return False
        try:
            self.pm.register(plugin, name=origin.name)
        except Exception as err:  # pluggy validates signatures against the specs
            self._fail(PLUGINS_GROUP, origin, f"rejected by the hook manager: {err}")
            return False
        unknown = [
            hook.name for hook in self.pm.get_hookcallers(plugin) or [] if not hook.has_spec()
        ]
        unknown += [
            name
            for name in dir(plugin)
            if name.startswith(f"{hookspecs.PROJECT}_")
            and not hasattr(self.pm.hook, name)
            and name not in unknown
        ]
        if unknown:
            self.pm.unregister(plugin)
            self._fail(
                PLUGINS_GROUP,
                origin,
                f"implements unknown hook(s) {', '.join(sorted(unknown))}; see docs/hooks.md "
                "for the hooks this version of pleo-export provides",
            )
            return False
        _isolate(self.pm, plugin)
        hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
        self.plugins.append(LoadedPlugin(origin=origin, hooks=hooks))
        log.debug("plugin loaded", extra={"event": "plugin.loaded", "plugin": str(origin)})
        return True

    def _fail(self, group: str, origin: Origin, reason: str) -> None:
        failure = LoadFailure(group=group, origin=origin, reason=reason)
        if self._strict:
            raise PluginLoadFailed(str(failure))
        self.failures.append(failure)
        log.warning(
            "plugin failed to load and was skipped: %s",
            failure,
            extra={"event": "plugin.load_failed", "plugin": origin.name, "reason": reason},
        )

    def configure_plugins(
        self, tables: Mapping[str, Mapping[str, Any]], config_dir: Path | None = None
    ) -> None:
        """Validate each loaded plugin's ``[plugins.<name>]`` table with its ``settings_model``
        and hand the settings to its ``configure(settings)``; errors name the table and field.

        A table for a plugin that is installed but not loaded (disabled) is ignored; a table
        for no installed plugin, or for a plugin that takes no settings, is an error.
        """
        installed = {ep.name for ep in _entry_points(PLUGINS_GROUP)}
        loaded = {plugin.origin.name for plugin in self.plugins}
        for name in sorted(set(tables) - installed - loaded):
            known = ", ".join(sorted(installed)) or "none"
            raise PluginConfigError(
                f"[plugins.{name}]: no plugin {name!r} is installed (installed plugins: "
                f"{known}); remove the table or install the plugin"
            )
        configured: list[tuple[object, Any]] = []
        for name in sorted(loaded):
            plugin = self.pm.get_plugin(name)
            model = getattr(plugin, "settings_model", None)
            table = dict(tables.get(name) or {})
            if model is None:
                if name in tables:
                    raise PluginConfigError(
                        f"[plugins.{name}]: plugin {name!r} takes no settings; remove the table"
                    )
                continue
            try:
                settings = model(**table)
            except ValidationError as error:
                raise PluginConfigError(
                    _describe_plugin_settings(name, list(error.errors()))
                ) from None
            if config_dir is not None:
                settings = _resolve_paths(settings, config_dir)
            configured.append((plugin, settings))
        for plugin, settings in configured:  # only once every table is valid
            for secret in _secret_values(settings):
                register_secret(secret)
            configure = getattr(plugin, "configure", None)
            if callable(configure):
                configure(settings)

    # --- connectors ----------------------------------------------------------------------------

    def installed_connectors(self) -> list[ConnectorInfo]:
        """Every installed connector, each loaded in isolation (for ``connectors list``)."""
        infos: list[ConnectorInfo] = []
        for ep in sorted(_entry_points(CONNECTORS_GROUP), key=lambda e: e.name):
            origin = _origin(ep)
            try:
                cls = ep.load()
                manifest = _validate_connector_class(ep.name, cls, origin)
            except Exception as err:
                infos.append(ConnectorInfo(origin=origin, manifest=None, failure=str(err)))
                continue
            infos.append(ConnectorInfo(origin=origin, manifest=manifest))
        return infos

    def load_connector(self, name: str) -> type[Connector[Any]]:
        """Import only the connector ``name`` and check its manifest."""
        eps = [ep for ep in _entry_points(CONNECTORS_GROUP) if ep.name == name]
        _check_conflicts(CONNECTORS_GROUP, eps)
        if not eps:
            raise ConnectorNotFound(_not_installed(name))
        origin = _origin(eps[0])
        errors: list[str] = []

        def on_failure(
            _manager: Any, _ep: importlib.metadata.EntryPoint, err: BaseException
        ) -> None:
            errors.append(f"{type(err).__name__}: {err}")

        manager = _FreshDriver(
            CONNECTORS_GROUP,
            name,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
            on_missing_entrypoints_callback=None,
        )
        if errors or not manager.extensions:
            reason = errors[0] if errors else "the entry point did not load"
            raise ConnectorLoadError(f"connector {origin} could not be imported: {reason}")
        cls = manager.extensions[0].plugin
        _validate_connector_class(name, cls, origin)
        if self.pm.get_plugin(f"connector:{name}") is None and _has_hookimpls(cls):
            self.pm.register(cls, name=f"connector:{name}")
            _isolate(self.pm, cls)
        connector_cls: type[Connector[Any]] = cls
        return connector_cls

    # --- typed hook calls ----------------------------------------------------------------------

    def job_started(self, *, job: ExportJob, resumed: bool) -> None:
        self.pm.hook.pleo_export_job_started(job=job, resumed=resumed)

    def job_finished(self, *, job: ExportJob, report: JobReport) -> None:
        self.pm.hook.pleo_export_job_finished(job=job, report=report)

    def validate_job(self, *, job: ExportJob, manifest: ConnectorManifest) -> list[Problem]:
        return _flatten(self.pm.hook.pleo_export_validate_job(job=job, manifest=manifest))

    def validate_item(self, *, item: ExportItem, job: ExportJob) -> list[Problem]:
        return _flatten(self.pm.hook.pleo_export_validate_item(item=item, job=job))

    def map_item(self, *, plan: PostingPlan) -> object:
        """The first plugin's replacement plan, or ``None`` (the engine checks its type)."""
        result: object = self.pm.hook.pleo_export_map_item(plan=plan)
        return result

    def classify_error(
        self, *, error: BaseException, manifest: ConnectorManifest, during: str
    ) -> ConnectorError | None:
        result = self.pm.hook.pleo_export_classify_error(
            error=error, manifest=manifest, during=during
        )
        return result if isinstance(result, ConnectorError) else None

    def item_outcome(
        self, *, job: ExportJob, accounting_entry_id: str, outcome: ItemOutcome
    ) -> None:
        self.pm.hook.pleo_export_item_outcome(
            job=job, accounting_entry_id=accounting_entry_id, outcome=outcome
        )

    def item_prepared(self, *, job: ExportJob, prepared: PreparedEntry) -> None:
        self.pm.hook.pleo_export_item_prepared(job=job, prepared=prepared)

    def wants_reconciliation(self) -> bool:
        return bool(self.pm.hook.pleo_export_job_reconciled.get_hookimpls())

    def job_reconciled(
        self,
        *,
        job: ExportJob,
        report: JobReport,
        references: Sequence[str],
        booked: Sequence[BookedEntry] | None,
        problem: str | None,
    ) -> None:
        self.pm.hook.pleo_export_job_reconciled(
            job=job, report=report, references=references, booked=booked, problem=problem
        )

    def service_started(self, *, service: ServiceView) -> list[AbstractAsyncContextManager[object]]:
        """The context managers plugins want run beside the service (``None`` results left out;
        a result that is not an async context manager is a :class:`PluginError`)."""
        results: list[object] = self.pm.hook.pleo_export_service_started(service=service)
        contexts: list[AbstractAsyncContextManager[object]] = []
        for result in results:
            if result is None:
                continue
            if not isinstance(result, AbstractAsyncContextManager):
                raise PluginError(
                    "pleo_export_service_started must return an async context manager or None, "
                    f"a plugin returned {type(result).__name__}; see docs/hooks.md"
                )
            contexts.append(result)
        return contexts

    def round_finished(self, *, result: RoundResult) -> None:
        self.pm.hook.pleo_export_round_finished(result=result)


def _resolve_paths(settings: Any, config_dir: Path) -> Any:
    """``settings`` with every relative ``Path`` field, in nested models too, made absolute
    against ``config_dir``."""
    updates: dict[str, Any] = {}
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        if isinstance(value, Path) and not value.is_absolute():
            updates[field] = (config_dir / value).resolve()
        elif isinstance(value, BaseModel):
            resolved = _resolve_paths(value, config_dir)
            if resolved is not value:
                updates[field] = resolved
    return settings.model_copy(update=updates) if updates else settings


def _secret_values(value: object) -> list[str]:
    """Every ``SecretStr`` value in a settings model, nested models and lists included."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [
            s for field in type(value).model_fields for s in _secret_values(getattr(value, field))
        ]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _secret_values(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secret_values(item)]
    return []


def _isolate(pm: pluggy.PluginManager, plugin: object) -> None:
    """Make every hook implementation of ``plugin`` fail on its own.

    An implementation that raises (an ``Exception``, not a ``BaseException`` such as
    cancellation or ``KeyboardInterrupt``) is logged as ``plugin.hook_failed`` and counts as
    having answered ``None``: the other plugins are still called and the export goes on as if
    the failing implementation were absent. Wrappers (``hookwrapper``/``wrapper``) are left as
    they are; the plugin conformance check refuses them.
    """
    for caller in pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin or impl.hookwrapper or impl.wrapper:
                continue
            guarded = _guarded(impl.function, impl.plugin_name, caller.name)
            setattr(impl, "function", guarded)  # noqa: B010 - pluggy declares it Final


def _guarded(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            detail = redact(f"{type(error).__name__}: {error}")
            log.error(
                "plugin %r raised %s in %s; ignored it, the export goes on as if that plugin "
                "had not answered: fix the plugin or disable it (plugins.disabled)",
                plugin,
                detail,
                hook,
                exc_info=error,
                extra={
                    "event": "plugin.hook_failed",
                    "plugin": plugin,
                    "hook": hook,
                    "error_type": type(error).__name__,
                },
            )
            return None

    guarded.__wrapped__ = function  # type: ignore[attr-defined]
    return guarded


def _describe_plugin_settings(name: str, errors: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"invalid settings for plugin {name!r} in [plugins.{name}]:"]
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ())) or "(settings)"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        lines.append(f"  - plugins.{name}.{location}: {message}")
    return "\n".join(lines)


def _flatten(results: list[list[Problem] | None]) -> list[Problem]:
    problems: list[Problem] = []
    for result in results:
        if result:
            problems.extend(result)
    return problems


def _has_hookimpls(obj: object) -> bool:
    return any(
        name.startswith(f"{hookspecs.PROJECT}_") and callable(getattr(obj, name, None))
        for name in dir(obj)
    )


def _validate_connector_class(name: str, cls: object, origin: Origin) -> ConnectorManifest:
    if not (inspect.isclass(cls) and issubclass(cls, Connector)):
        raise ConnectorLoadError(
            f"connector {origin}: the entry point must name a pleo_export.Connector subclass, "
            f"got {cls!r}"
        )
    manifest = getattr(cls, "manifest", None)
    if not isinstance(manifest, ConnectorManifest):
        raise ConnectorLoadError(f"connector {origin}: class attribute `manifest` is missing")
    if manifest.id != name:
        raise ConnectorLoadError(
            f"connector {origin}: manifest id {manifest.id!r} differs from the entry-point "
            f"name {name!r}; they must be equal"
        )
    if manifest.contract_version != CONTRACT_VERSION:
        raise ConnectorLoadError(
            f"connector {origin} implements connector contract {manifest.contract_version}, "
            f"but this pleo-export implements contract {CONTRACT_VERSION}; install a version "
            "of the connector made for this pleo-export"
        )
    problems = contract_problems(cls)
    if problems:
        raise ConnectorLoadError(
            f"connector {origin} does not match its manifest: " + "; ".join(problems)
        )
    return manifest


__all__ = [
    "CONNECTORS_GROUP",
    "PLUGINS_GROUP",
    "ConnectorInfo",
    "ConnectorLoadError",
    "ConnectorNotFound",
    "LoadFailure",
    "LoadedPlugin",
    "Origin",
    "PluginConfigError",
    "PluginConflict",
    "PluginError",
    "PluginHost",
    "PluginLoadFailed",
]


def _not_installed(name: str) -> str:
    """Why connector ``name`` cannot be used: a close installed name first ("did you mean"),
    never an install command for what may be a typo."""
    import difflib

    installed = sorted({ep.name for ep in _entry_points(CONNECTORS_GROUP)})
    available = ", ".join(installed) if installed else "none"
    close = difflib.get_close_matches(name, installed, n=2, cutoff=0.6)
    if close:
        guess = " or ".join(repr(c) for c in close)
        return (
            f"connector {name!r} is not installed; did you mean {guess}? Set connector.name "
            f"in the configuration (installed connectors: {available})"
        )
    return (
        f"connector {name!r} is not installed (installed connectors: {available}). Check "
        "connector.name in the configuration, or install the package of the connector you "
        "want next to pleo-export; `pleo-export connectors list` shows what is installed"
    )
