"""Shell completion: the scripts of ``pleo-export completion bash|zsh|fish`` are loaded in a
real bash, zsh and fish, and their completion, asked as each shell asks at a TAB, completes
commands, subcommands, options and choices through the installed ``pleo-export``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


ZSH_DRIVER = r"""
autoload -U compinit && compinit -u -D
eval "$(pleo-export completion zsh)"
print -r -- "registered: ${_comps[pleo-export]}"
# What zsh would offer: print the candidates instead of adding them to the menu.
_describe() { local name=${@[3]}; print -rl -- ${${(P)name}%%:*} }
compadd() { local name=${@[-1]}; print -rl -- ${(P)name} }
comp() { words=("$@"); CURRENT=${#words}; print -r -- "== $*"; _pleo_export_completion }
comp pleo-export ru
comp pleo-export plugins ""
comp pleo-export run --dr
comp pleo-export --log-level ""
"""

FISH_DRIVER = r"""
pleo-export completion fish | source
for line in "pleo-export ru" "pleo-export plugins " \
        "pleo-export run --dr" "pleo-export --log-level "
    echo "== $line"
    # Candidates without their descriptions (string replace fails where there is none).
    complete --do-complete "$line" | string replace -r '\t.*' ''; or true
end
"""

EXPECTED = {
    "pleo-export ru": ["run"],
    "pleo-export plugins": ["list"],
    "pleo-export run --dr": ["--dry-run"],
}


def _shell(name: str, args: list[str], tmp_path: Path) -> str:
    binary = shutil.which(name)
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/prepare installs it)")
        pytest.skip(f"{name} is not installed: apt-get install {name}")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PLEO_EXPORT_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [binary, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_zsh_completes_through_its_completion_function(tmp_path: Path) -> None:
    output = _shell("zsh", ["-f", "-c", ZSH_DRIVER], tmp_path)
    first, _, rest = output.partition("\n")
    assert first == "registered: _pleo_export_completion"
    answers = _answers(rest)
    for line, expected in EXPECTED.items():
        assert answers[line] == expected, (line, answers)
    assert sorted(answers["pleo-export --log-level"]) == ["debug", "error", "info", "warning"]


def test_fish_completes_with_its_own_complete_command(tmp_path: Path) -> None:
    answers = _answers(_shell("fish", ["--no-config", "-c", FISH_DRIVER], tmp_path))
    for line, expected in EXPECTED.items():
        assert answers[line] == expected, (line, answers)
    assert sorted(answers["pleo-export --log-level"]) == ["debug", "error", "info", "warning"]
