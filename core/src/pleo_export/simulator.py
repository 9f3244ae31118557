"""Where the core finds the Pleo sandbox: the separate distribution ``pleo-export-sandbox``.

The simulator (import ``pleo_export_sandbox``) is not part of the core, so that a production
installation carries no generator of fake expenses. The core imports it only inside the few
functions that use it (``pleo-export demo``, ``pleo-export sandbox serve``, a session with
``pleo.base_url = "sandbox"``, ``pleo-export new-connector``'s example settings), each after
:func:`require_sandbox`, which turns its absence into an error that names what to install.
"""

from __future__ import annotations

from pleo_export.config import ConfigError

SANDBOX_DISTRIBUTION = "pleo-export-sandbox"
SANDBOX_MODULE = "pleo_export_sandbox"


class SandboxNotInstalled(ConfigError):
    """The Pleo sandbox is needed but its distribution is not installed."""


def require_sandbox(purpose: str) -> None:
    """Raise :class:`SandboxNotInstalled` unless ``pleo_export_sandbox`` can be imported.

    ``purpose`` says what needs it, e.g. ``"pleo-export demo"``.
    """
    try:
        import pleo_export_sandbox  # noqa: F401 - imported to check that it is installed
    except ModuleNotFoundError as error:
        if error.name != SANDBOX_MODULE:
            raise  # the sandbox is there but one of its own dependencies is not
        raise SandboxNotInstalled(
            f"{purpose} needs the Pleo sandbox, which is the separate distribution "
            f"{SANDBOX_DISTRIBUTION}: install it with pip install 'pleo-export[sandbox]' "
            f"(or pip install {SANDBOX_DISTRIBUTION})"
        ) from None
