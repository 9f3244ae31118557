"""What every command shares: the context, exit codes, errors and running a coroutine."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click

from pleo_export import logs
from pleo_export.config import ConfigError, Settings, load_settings
from pleo_export.exit_codes import ExitCode
from pleo_export.host import PluginError
from pleo_export.pleo.errors import PleoApiError
from pleo_export.state import StateStoreError

T = TypeVar("T")
log = logging.getLogger("pleo_export.cli")

EXIT_OK = ExitCode.OK
EXIT_ITEMS_FAILED = ExitCode.ITEMS_FAILED
EXIT_CONFIG = ExitCode.CONFIG
EXIT_UNAVAILABLE = ExitCode.UNAVAILABLE
EXIT_INTERNAL = ExitCode.INTERNAL
EXIT_INTERRUPTED = ExitCode.INTERRUPTED
EXIT_BROKEN_PIPE = ExitCode.BROKEN_PIPE
EXIT_TERMINATED = ExitCode.TERMINATED


class Context:
    def __init__(self, config: Path | None, log_level: str | None, log_format: str | None):
        self.config = config
        self.log_level = log_level
        self.log_format = log_format

    def settings(self, **overrides: Any) -> Settings:
        settings = load_settings(self.config, **overrides)
        level = self.log_level or settings.log.level
        fmt = self.log_format or settings.log.format
        log_file = settings.log.file
        if log_file is not None and not log_file.is_absolute():
            log_file = settings.config_dir / log_file
        try:
            logs.configure(
                level=level,
                fmt=fmt,
                file=log_file,
                rotate_bytes=settings.log.rotate_bytes,
                backups=settings.log.backups,
            )
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(
                f"log.file {log_file}: cannot be created or opened ({reason}): name a file in a "
                "folder pleo-export may write to, or leave log.file unset to log to stderr"
            ) from None
        return settings


def fail(message: str, code: int, *, as_json: bool = False, kind: str | None = None) -> None:
    """Print the error (as JSON on stdout with ``--json``) and exit with ``code``."""
    if as_json:
        error = {"kind": kind or ExitCode(code).name.lower(), "message": message}
        emit_json({"error": error, "exit_code": int(code)})
    else:
        click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(int(code))


class UsageError(Exception):
    """The command line names something that does not exist (exit 2, like click's own)."""


class Terminated(Exception):
    """The process received SIGTERM; the command was cancelled."""


async def _cancel_on_sigterm(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``factory()``; SIGTERM cancels it (between awaits, like Ctrl-C) and raises
    :class:`Terminated` once everything has been closed in order."""
    if sys.platform == "win32":  # pragma: no cover - no signal receivers there
        return await factory()
    terminated = False
    outcome: list[T] = []
    failure: list[BaseException] = []

    async def watch(scope: anyio.CancelScope) -> None:
        nonlocal terminated
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                terminated = True
                scope.cancel()
                return

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch, tasks.cancel_scope)
        try:
            outcome.append(await factory())
        except Exception as error:  # re-raised outside the task group's wrapping
            failure.append(error)
        finally:
            tasks.cancel_scope.cancel()
    if terminated:
        raise Terminated
    if failure:
        raise failure[0]
    return outcome[0]


def _unwrapped(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``anyio.run`` that raises the real error instead of an exception group wrapping it."""
    from pleo_export.outage import sole_error

    try:
        return anyio.run(_cancel_on_sigterm, factory)
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if error is group:
            raise
        raise error from error.__cause__


def run_command(factory: Callable[[], Coroutine[Any, Any, T]], *, as_json: bool = False) -> T:
    """Run a coroutine, turning the expected failures into clear messages and exit codes."""
    try:
        return _unwrapped(factory)
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG, as_json=as_json, kind="configuration")
    except PluginError as error:
        fail(str(error), EXIT_CONFIG, as_json=as_json, kind="plugin")
    except PleoApiError as error:
        from pleo_export.pleo.oauth import OAuthError, RefreshLockTimeout, TokenEndpointUnavailable

        if isinstance(error, OAuthError):
            # A revoked installation or a failed login needs a person (exit 2, like a
            # configuration error); an unreachable token endpoint is Pleo being unavailable.
            transient = isinstance(error, (TokenEndpointUnavailable, RefreshLockTimeout))
            fail(
                f"OAuth: {error}",
                EXIT_UNAVAILABLE if transient else EXIT_CONFIG,
                as_json=as_json,
                kind="oauth",
            )
        fail(f"Pleo API: {error}", EXIT_UNAVAILABLE, as_json=as_json, kind="pleo")
    except UsageError as error:
        fail(str(error), EXIT_CONFIG, as_json=as_json, kind="usage")
    except StateStoreError as error:
        # The message names the database (password hidden) and says what to change.
        fail(f"state store: {error}", EXIT_CONFIG, as_json=as_json, kind="state_store")
    except KeyboardInterrupt:
        fail(
            "interrupted (Ctrl-C); what was done is kept in the state store, and the next run "
            "resumes where this one stopped",
            EXIT_INTERRUPTED,
            as_json=as_json,
            kind="interrupted",
        )
    except Terminated:
        fail(
            "stopped by SIGTERM; what was done is kept in the state store, and the next run "
            "resumes where this one stopped",
            EXIT_TERMINATED,
            as_json=as_json,
            kind="terminated",
        )
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more on stdout, like other Unix tools.
        _silence_stdout()
        sys.exit(int(EXIT_BROKEN_PIPE))
    except Exception as error:
        # A bug, in pleo-export or in a connector. Python's own traceback printer would show
        # the exception text unredacted (a connector error may quote a password), so the
        # traceback goes through the logger, which masks registered secrets.
        from pleo_export.logs import redact

        logging.getLogger("pleo_export.cli").error(
            "unexpected error", exc_info=error, extra={"event": "cli.crash"}
        )
        fail(
            f"unexpected error: {redact(f'{type(error).__name__}: {error}')} (the traceback is "
            "in the log above; please report it with the connector's name and version)",
            EXIT_INTERNAL,
            as_json=as_json,
            kind="internal",
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
