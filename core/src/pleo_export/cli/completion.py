"""``pleo-export completion SHELL``: the shell completion script, from click's own mechanism.

The script calls ``pleo-export`` back with ``_PLEO_EXPORT_COMPLETE`` set at each TAB; click
answers with the commands, options and choices that fit, so completion always matches the
installed version (and its connectors' commands).
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from pleo_export.cli.root import main

PROG_NAME = "pleo-export"
COMPLETE_VAR = "_PLEO_EXPORT_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

COMPLETION_HELP = """Print the completion script for SHELL (bash, zsh or fish).

\b
Load it once in the current shell, or at each start from the shell's
startup file:
  bash:  eval "$(pleo-export completion bash)"     (in ~/.bashrc; bash 4.4+)
  zsh:   eval "$(pleo-export completion zsh)"      (in ~/.zshrc, after compinit)
  fish:  pleo-export completion fish > ~/.config/fish/completions/pleo-export.fish

Commands, options and their choices complete; so do files for --config.
"""


def completion_script(shell: str) -> str:
    """The completion script of ``pleo-export`` for ``shell``."""
    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click.Choice allows only the three
        raise click.BadParameter(f"no completion for {shell!r}; use one of {', '.join(SHELLS)}")
    return cls(main, {}, PROG_NAME, COMPLETE_VAR).source()


@main.command(help=COMPLETION_HELP)
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    click.echo(completion_script(shell))
