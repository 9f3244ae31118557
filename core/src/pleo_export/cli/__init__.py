"""The ``pleo-export`` command: one module per command group.

:mod:`~pleo_export.cli.root` holds the group and its global options, :mod:`~pleo_export.cli.common`
the context, exit codes and error handling every command shares, :mod:`~pleo_export.cli.output`
the progress display and run report. Each command lives in its own module (``run``, ``check``,
``jobs``, ``demo``, ``init``, ``new_connector``, ``plugins`` for ``connectors``/``plugins``,
``auth``, ``sandbox``, ``completion``, ``serve``, ``sync``, ``webhooks``), which registers
itself on :data:`main` when imported here.
"""

from pleo_export.cli import (  # noqa: F401 - imported to register the commands on main
    auth,
    check,
    completion,
    demo,
    init,
    jobs,
    new_connector,
    plugins,
    run,
    sandbox,
    serve,
    sync,
    webhooks,
)
from pleo_export.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_CONFIG,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_UNAVAILABLE,
    Context,
    UsageError,
)
from pleo_export.cli.output import TerminalProgress
from pleo_export.cli.root import main

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CONFIG",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_ITEMS_FAILED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_UNAVAILABLE",
    "Context",
    "TerminalProgress",
    "UsageError",
    "main",
]
