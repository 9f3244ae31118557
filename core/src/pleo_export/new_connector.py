"""``pleo-export new-connector NAME``: generate a connector package from the built-in template.

The template lives in ``pleo_export/templates/connector/`` as package data. Every file ends in
``.tmpl`` (so linters, type checkers and test runners leave it alone) and may contain
placeholders ``{{key}}``; a folder named ``__package__`` becomes the import package. The result
is a separately installable distribution ``pleo-export-NAME`` with its own ``pyproject.toml``,
entry point, settings model, manifest, README, an example configuration for the built-in
sandbox, and tests wired to the conformance kit (``pleo_export.testing``). It is a working
connector out of the box: it books entries as JSON lines in a local file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from pleo_export import __version__
from pleo_export.connector import CONTRACT_VERSION

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")
"""The connector id: the entry-point name and ``ConnectorManifest.id``."""
TEMPLATE_PACKAGE = "pleo_export.templates"
TEMPLATE_DIR = "connector"
TEMPLATE_SUFFIX = ".tmpl"
PACKAGE_FOLDER = "__package__"
PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
RENAMES = {"gitignore": ".gitignore"}
"""Files that cannot carry their real name inside a Python package (hatch skips dot files)."""

# The role accounts the template's scaffold() adds to the sandbox chart; the example
# configuration repeats them (the acceptance test runs the example, which keeps both in step).
EXAMPLE_ROLE_ACCOUNTS = {
    "wallet": "1990",
    "out_of_pocket": "2150",
    "contra": "1200",
    "accounts_payable": "2100",
    "tax_input": "2201",
    "tax_output": "2202",
    "rounding": "7990",
    "exchange_gain": "8100",
    "exchange_loss": "8200",
}


class NewConnectorError(Exception):
    """The connector cannot be generated; the message says what to change."""


@dataclass(frozen=True)
class ConnectorNames:
    """Every name derived from the connector id."""

    name: str
    """The connector id, e.g. ``acme-ledger``."""
    display_name: str
    distribution: str
    """``pleo-export-acme-ledger``."""
    package: str
    """``pleo_export_acme_ledger``."""
    class_prefix: str
    """``AcmeLedger`` (classes ``AcmeLedgerConnector`` and ``AcmeLedgerSettings``)."""
    env_name: str
    """``ACME_LEDGER`` (environment variables ``PLEO_EXPORT_ACME_LEDGER_*``)."""

    @classmethod
    def from_name(cls, name: str, display_name: str | None = None) -> ConnectorNames:
        if not NAME_PATTERN.match(name):
            raise NewConnectorError(
                f"NAME {name!r} is not a valid connector id: use lower-case letters, digits, "
                "'-' and '_', starting with a letter (e.g. acme-ledger)"
            )
        words = [word for word in re.split(r"[-_]+", name) if word]
        display = display_name if display_name is not None else " ".join(w.title() for w in words)
        if not display.strip() or any(ch in display for ch in '"\\\n\r'):
            raise NewConnectorError(
                f"--display-name {display!r} must be a non-empty line without quotes or backslashes"
            )
        return cls(
            name=name,
            display_name=display.strip(),
            distribution=f"pleo-export-{name}",
            package="pleo_export_" + name.replace("-", "_"),
            class_prefix="".join(w[:1].upper() + w[1:] for w in words),
            env_name=name.upper().replace("-", "_"),
        )


def core_requirement(version: str = __version__) -> str:
    """``pleo-export>=0.1,<0.2``: the core minor version the generated connector is built for."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    major, minor = [*parts, 0, 0][:2]
    return f"pleo-export>={major}.{minor},<{major}.{minor + 1}"


def _example_settings() -> str:
    """``[connector.settings]`` for the built-in sandbox, as the template's scaffold makes it."""
    from pleo_export.simulator import SandboxNotInstalled, require_sandbox

    try:
        require_sandbox("pleo-export new-connector (the example settings use its chart)")
    except SandboxNotInstalled as error:
        raise NewConnectorError(str(error)) from None
    from pleo_export_sandbox import DEMO_CHART

    vendors = {
        v.code: f"{EXAMPLE_ROLE_ACCOUNTS['accounts_payable']}-{v.code}" for v in DEMO_CHART.vendors
    }
    accounts = [a.code for a in DEMO_CHART.ledger_accounts()]
    accounts = list(dict.fromkeys([*accounts, *EXAMPLE_ROLE_ACCOUNTS.values(), *vendors.values()]))
    lines = [
        'path = "books/entries.jsonl"',
        "accounts = [" + ", ".join(json.dumps(code) for code in accounts) + "]",
        "tax_codes = [" + ", ".join(json.dumps(t.code) for t in DEMO_CHART.tax_codes) + "]",
        "",
        "[connector.settings.role_accounts]",
        *(f"{role} = {json.dumps(code)}" for role, code in EXAMPLE_ROLE_ACCOUNTS.items()),
        "",
        "[connector.settings.vendor_accounts]",
        *(f"{code} = {json.dumps(account)}" for code, account in vendors.items()),
    ]
    return "\n".join(lines)


def _values(names: ConnectorNames) -> dict[str, str]:
    return {
        "name": names.name,
        "display_name": names.display_name,
        "distribution": names.distribution,
        "package": names.package,
        "class_prefix": names.class_prefix,
        "env_name": names.env_name,
        "core_requirement": core_requirement(),
        "testing_requirement": core_requirement().replace("pleo-export", "pleo-export[testing]", 1),
        "core_version": __version__,
        "contract_version": str(CONTRACT_VERSION),
        "example_settings": _example_settings(),
    }


def _walk(
    folder: Traversable, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from _walk(entry, (*prefix, entry.name))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            yield (*prefix, entry.name), entry


def render(text: str, values: dict[str, str], where: str) -> str:
    """Replace every ``{{key}}`` in ``text``; an unknown key is a bug in the template."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise NewConnectorError(f"template {where}: unknown placeholder {{{{{key}}}}}")
        return values[key]

    return PLACEHOLDER.sub(substitute, text)


def template_files(names: ConnectorNames) -> dict[Path, str]:
    """The generated files: relative path -> content."""
    values = _values(names)
    root = resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR)
    files: dict[Path, str] = {}
    for parts, entry in _walk(root):
        where = "/".join(parts)
        target = [names.package if part == PACKAGE_FOLDER else part for part in parts]
        leaf = target[-1].removesuffix(TEMPLATE_SUFFIX)
        target[-1] = RENAMES.get(leaf, leaf)
        files[Path(*target)] = render(entry.read_text(encoding="utf-8"), values, where)
    if not files:
        raise NewConnectorError(f"the connector template is missing from {root}")
    return files


def generate(directory: Path, names: ConnectorNames) -> list[Path]:
    """Write the connector package into ``directory`` (absent or empty); return the files."""
    if directory.exists():
        if not directory.is_dir():
            raise NewConnectorError(
                f"{directory} exists and is not a folder: choose another --directory"
            )
        if any(directory.iterdir()):
            raise NewConnectorError(
                f"{directory} is not empty: choose a new or empty folder with --directory "
                "(nothing was written)"
            )
    files = template_files(names)
    written: list[Path] = []
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def next_steps(directory: Path, names: ConnectorNames) -> str:
    """What to do after generating, as shown by the command."""
    return "\n".join(
        [
            f"Created {names.distribution} (connector {names.name!r}, import "
            f"{names.package}) in {directory}",
            "",
            "Next steps:",
            f"  cd {directory}",
            "  pip install -e '.[test]'        # into an environment with pleo-export (this one)",
            f"  pleo-export connectors list     # {names.name} is listed",
            "  pytest                          # the conformance kit and the connector's own tests",
            "  cd example && pleo-export run   # export the built-in sandbox's jobs into books/",
            "",
            "Then replace books.py with your accounting system's client. See the tutorial:",
            "docs/tutorial-connector.md, and docs/publishing.md before you release it.",
        ]
    )
