"""Checks that a documentation page's examples work as written: its TOML examples are accepted
by the plugins' settings, its Python examples run, its `pip install` commands name what they
need, and its `pleo-export` commands exist (used by ``plugins/*/tests/test_docs*.py``)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pleo_export.cli import main as cli
from pleo_export.host import PluginHost

ROOT = Path(__file__).resolve().parents[2]


def blocks(page: Path, language: str) -> list[str]:
    """The page's fenced code blocks in ``language`` (indented ones too, as in a list)."""
    text = page.read_text(encoding="utf-8")
    found = re.findall(rf"(?m)^([ \t]*)```{language}\n(.*?)^\1```", text, re.DOTALL)
    return [re.sub(rf"(?m)^{re.escape(indent)}", "", body) for indent, body in found]


def check_toml(page: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """Parse every TOML example and configure the plugins from its ``[plugins.*]`` tables the
    way ``run`` does (errors name the table and field); returns the parsed examples."""
    parsed = []
    for block in blocks(page, "toml"):
        document = tomllib.loads(block)
        tables = document.get("plugins", {})
        if tables:
            PluginHost(strict=True).configure_plugins(tables, tmp_path)
        parsed.append(document)
    return parsed


def _distributions() -> dict[str, Path]:
    """Every distribution of the repository: name -> folder."""
    found: dict[str, Path] = {}
    for pyproject in ROOT.glob("**/pyproject.toml"):
        if ".venv" in pyproject.parts or pyproject.parent == ROOT:
            continue
        name = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name")
        if name:
            found[name] = pyproject.parent
    return found


def _requirement_name(requirement: str) -> tuple[str, set[str]]:
    match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", requirement.strip())
    assert match, requirement
    extras = {e.strip() for e in (match[2] or "").split(",") if e.strip()}
    return match[1].lower().replace("_", "-"), extras


def pip_problems(command: str, cwd: Path = ROOT) -> list[str]:
    """Why ``pip install ...`` (run in a clone, in ``cwd``) would fail: a first-party
    distribution named by its name (none is on PyPI yet), a folder that holds no distribution,
    or a first-party requirement (with the requested extras) that the command does not give
    as a folder, so pip would look for it on PyPI."""
    words = shlex.split(command)
    words = words[words.index("install") + 1 :]
    ours = _distributions()
    given: dict[str, set[str]] = {}
    problems: list[str] = []
    for word in words:
        if word.startswith("-"):
            continue
        if word.startswith(("./", "/", "../")):
            folder, _, extras = word.partition("[")
            path = (cwd / folder).resolve()
            names = [n for n, p in ours.items() if p.resolve() == path]
            if not names:
                problems.append(f"{word}: no distribution in {path}")
                continue
            given[names[0]] = {e.strip() for e in extras.rstrip("]").split(",") if e.strip()}
        else:
            name, _ = _requirement_name(word)
            if name in ours:
                problems.append(
                    f"{word}: not on PyPI yet; install it from the clone ({ours[name]})"
                )
    for name, extras in given.items():
        project = tomllib.loads((ours[name] / "pyproject.toml").read_text(encoding="utf-8"))
        requirements = list(project["project"].get("dependencies", []))
        optional = project["project"].get("optional-dependencies", {})
        for extra in extras:
            requirements += optional.get(extra, [])
        for requirement in requirements:
            needed, _ = _requirement_name(requirement)
            if needed in ours and needed not in given:
                problems.append(
                    f"{name} needs {needed}, which is not on PyPI: add "
                    f"./{ours[needed].relative_to(ROOT)} to the command"
                )
    return problems


def commands(page: Path) -> list[str]:
    """The shell commands of the page's ``sh`` blocks, comments and continuations removed."""
    found: list[str] = []
    for block in blocks(page, "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


def program(command: str) -> tuple[str, list[str]]:
    """The program a command runs (its file name; ``sudo -u user`` skipped) and its arguments."""
    words = shlex.split(command)
    if words[:1] == ["sudo"]:
        words = words[3:] if words[1:2] == ["-u"] else words[1:]
    return (Path(words[0]).name, words[1:]) if words else ("", [])


def pip_commands(page: Path) -> list[str]:
    return [c for c in commands(page) if program(c)[0] == "pip" and "install" in c.split()]


def install_problems(page: Path, folder: str) -> list[str]:
    """Why the page's `pip install` examples would not install ``folder`` from a clone: there
    is none, one takes something first-party from PyPI, or one leaves ``folder`` out."""
    installs = pip_commands(page)
    if not installs:
        return [f"{page}: no pip install example"]
    problems: list[str] = []
    for command in installs:
        problems += [f"{command}: {problem}" for problem in pip_problems(command)]
        if folder not in command:
            problems.append(f"{command}: does not install {folder}")
    return problems


def pleo_export_problems(command: str) -> list[str]:
    """Why a ``pleo-export ...`` command would be refused: its subcommand or an option does
    not exist (each is parsed by the real CLI with ``--help`` appended)."""
    name, words = program(command)
    assert name == "pleo-export", command
    result = CliRunner().invoke(cli, [*words, "--help"])
    if result.exit_code != 0:
        return [f"{command}: {result.output.strip().splitlines()[-1:]}"]
    return []
