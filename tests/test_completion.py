"""Shell completion: the bash script of ``pleo-export completion bash`` is sourced in a real
bash, and its completion function, called as bash calls it at a TAB, completes commands,
subcommands, options and choices through the installed ``pleo-export``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pleo_export.cli.completion import completion_script

BIN = Path(sys.executable).parent
BASH = shutil.which("bash")

DRIVER = r"""
set -e
eval "$(pleo-export completion bash)"
complete -p pleo-export
comp() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMPREPLY=()
    _pleo_export_completion pleo-export
    echo "== $*"
    printf '%s\n' "${COMPREPLY[@]}"
}
comp pleo-export ""
comp pleo-export ru
comp pleo-export plugins ""
comp pleo-export connectors l
comp pleo-export run --dr
comp pleo-export --log-level ""
comp pleo-export completion ""
"""


def _answers(output: str) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("== "):
            current = answers.setdefault(line[3:].strip(), [])
        elif line.strip():
            current.append(line.strip())
    return answers


@pytest.mark.skipif(
    BASH is None and not os.environ.get("CI"), reason="bash is not installed: apt-get install bash"
)
def test_bash_completes_commands_options_and_choices(tmp_path: Path) -> None:
    assert (BIN / "pleo-export").exists(), f"pleo-export is not installed in {BIN}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PLEO_EXPORT_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [BASH or "bash", "--norc", "--noprofile", "-c", DRIVER],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, _, rest = result.stdout.partition("\n")
    assert first == "complete -o nosort -F _pleo_export_completion pleo-export"
    answers = _answers(rest)
    top = set(answers["pleo-export"])
    assert {
        "run",
        "check",
        "demo",
        "init",
        "jobs",
        "connectors",
        "plugins",
        "auth",
        "sandbox",
        "new-connector",
        "completion",
    } <= top
    assert answers["pleo-export ru"] == ["run"]
    assert answers["pleo-export plugins"] == ["list"]
    assert answers["pleo-export connectors l"] == ["list"]
    assert answers["pleo-export run --dr"] == ["--dry-run"]
    assert answers["pleo-export --log-level"] == ["debug", "info", "warning", "error"]
    assert answers["pleo-export completion"] == ["bash", "zsh", "fish"]


def test_zsh_and_fish_scripts_call_back_into_pleo_export() -> None:
    zsh = completion_script("zsh")
    assert "#compdef pleo-export" in zsh
    assert "_PLEO_EXPORT_COMPLETE=zsh_complete pleo-export" in zsh
    fish = completion_script("fish")
    assert "complete --no-files --command pleo-export" in fish
    assert "_PLEO_EXPORT_COMPLETE=fish_complete" in fish
    for shell, script in (("zsh", zsh), ("fish", fish)):
        binary = shutil.which(shell)
        if binary is not None:  # a syntax check where the shell is installed
            checked = subprocess.run(
                [binary, "-n"], input=script, capture_output=True, text=True, check=False
            )
            assert checked.returncode == 0, checked.stderr
