"""Connectors and plugins use the public API only: ``pleo_export`` and ``pleo_export.testing``.

An AST scan of every ``.py`` file under ``connectors/``, ``plugins/`` and ``contrib/`` and of
every Python file the connector template generates (``pleo-export new-connector``). The rule:

* connector and plugin source packages (``src/``) and everything the template generates import
  from pleo-export only ``pleo_export`` (names in ``pleo_export.__all__``),
  ``pleo_export.attachments`` (the shared receipt helpers) and ``pleo_export.testing`` (names
  in their ``__all__``); other distributions (the sandbox
  ``pleo_export_sandbox``, the connector's own package, third-party libraries) are theirs to
  choose;
* a connector's ``tests/`` folder may in addition drive the real engine end to end, as
  ``pleo-export run`` does, from the modules in :data:`END_TO_END_MODULES` (building an
  engine, a store, a Pleo client and the plugin host by hand). Everything else a test needs
  comes from the public API too. A first-party plugin's tests may also open a whole session as
  ``pleo-export run`` and ``demo`` do (:data:`PLUGIN_END_TO_END_MODULES`).

The first-party plugins' own public API is checked the same way (:data:`PLUGINS`): a plugin's
public names are its package's ``__all__``, each defined by the plugin (never a re-exported
core name), each documented on its pages, with nothing public left out of ``__all__``; and
documentation and other distributions import a plugin only through those names.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest

import pleo_export
import pleo_export.attachments
import pleo_export.testing
from pleo_export.new_connector import ConnectorNames, template_files

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("connectors", "plugins", "contrib")

PUBLIC_MODULES: dict[str, frozenset[str]] = {
    "pleo_export": frozenset(pleo_export.__all__),
    "pleo_export.attachments": frozenset(pleo_export.attachments.__all__),
    "pleo_export.testing": frozenset(pleo_export.testing.__all__),
}

END_TO_END_MODULES = frozenset(
    {
        "pleo_export.config",
        "pleo_export.engine",
        "pleo_export.host",
        "pleo_export.pleo.auth",
        "pleo_export.pleo.client",
        "pleo_export.pleo.ratelimit",
        "pleo_export.state",
    }
)
"""What a connector's own end-to-end tests may import besides the public API."""

PLUGIN_END_TO_END_MODULES = END_TO_END_MODULES | {"pleo_export.app", "pleo_export.demo"}
"""What a first-party plugin's tests may import besides: a whole session as ``run`` opens it
(``open_session``) and the demo folder (``prepare_demo``)."""

PLUGINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "report": ("pleo_export_report", ("plugins/report/README.md", "docs/plugins.md")),
    "notify": ("pleo_export_notify", ("plugins/notify/README.md", "docs/notify.md")),
    "metrics": ("pleo_export_metrics", ("plugins/metrics/README.md", "docs/metrics.md")),
}
"""Each first-party plugin: its entry-point name, its package and the pages documenting it."""


def violations(
    source: str, where: str, *, tests: bool, allowed: frozenset[str] = END_TO_END_MODULES
) -> list[str]:
    """Every import of pleo-export in ``source`` that the rule above does not allow
    (``allowed``: the modules a test may import besides the public API)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.Import):
            modules = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [(node.module, [alias.name for alias in node.names])]
        else:
            continue
        for module, names in modules:
            if module.split(".")[0] != "pleo_export":
                continue
            if module in PUBLIC_MODULES:
                unknown = sorted(set(names or ()) - PUBLIC_MODULES[module])
                if unknown:
                    found.append(f"{where}:{node.lineno}: {module} has no public {unknown}")
            elif not (tests and module in allowed):
                found.append(f"{where}:{node.lineno}: imports {module}")
    return found


def _is_test(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def _scanned_files() -> list[Path]:
    files = [
        path
        for top in SCANNED
        for path in sorted((ROOT / top).rglob("*.py"))
        if ".venv" not in path.parts
    ]
    assert len(files) > 50, files  # guards the scan itself: the trees moved?
    return files


def test_connectors_plugins_and_contrib_import_only_the_public_api() -> None:
    found = [
        problem
        for path in _scanned_files()
        for problem in violations(
            path.read_text(encoding="utf-8"),
            str(path.relative_to(ROOT)),
            tests=_is_test(path.relative_to(ROOT)),
            allowed=(
                PLUGIN_END_TO_END_MODULES
                if path.relative_to(ROOT).parts[0] == "plugins"
                else END_TO_END_MODULES
            ),
        )
    ]
    assert not found, (
        "import these from pleo_export or pleo_export.testing (add the name to their __all__ "
        "and to docs/reference/connector.md if a connector really needs it):\n" + "\n".join(found)
    )


def test_generated_connector_imports_only_the_public_api() -> None:
    files = template_files(ConnectorNames.from_name("acme-ledger"))
    python = {path: text for path, text in files.items() if path.suffix == ".py"}
    assert any(path.parts[0] == "tests" for path in python), sorted(python)
    found = [
        problem
        for path, text in python.items()
        for problem in violations(text, f"template {path}", tests=False)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "tests", "expected"),
    [
        ("from pleo_export.pleo.models import ExportJob", False, "imports pleo_export.pleo.models"),
        ("import pleo_export.money", False, "imports pleo_export.money"),
        ("from pleo_export import bookkeeping", False, "has no public ['bookkeeping']"),
        ("from pleo_export.engine import ExportEngine", False, "imports pleo_export.engine"),
        ("from pleo_export.settlement import settle_payment", True, "imports pleo_export."),
    ],
)
def test_the_scan_catches_private_imports(source: str, tests: bool, expected: str) -> None:
    assert any(expected in found for found in violations(source, "x.py", tests=tests))


@pytest.mark.parametrize(
    "source",
    [
        "from pleo_export import ExportJob, hookimpl, Problem, RunReport, ItemOutcome",
        "from pleo_export.testing import ConformanceSuite, plan_item",
        "import pleo_export",
        "from pleo_export_sandbox import Chart",
        "from pleo_export_beancount.chart import Chart",
    ],
)
def test_the_scan_allows_the_public_api(source: str) -> None:
    assert violations(source, "x.py", tests=False) == []


def test_every_public_name_resolves() -> None:
    for module, names in PUBLIC_MODULES.items():
        imported = __import__(module, fromlist=["_"])
        missing = [name for name in names if not hasattr(imported, name)]
        assert not missing, f"{module}.__all__ names what it does not define: {missing}"


# the first-party plugins' own public API


def _plugin(name: str) -> tuple[object, list[str], str]:
    """The plugin's package, its ``__all__`` and the text of its documentation pages."""
    package_name, pages = PLUGINS[name]
    package = importlib.import_module(package_name)
    names = getattr(package, "__all__", None)
    assert isinstance(names, list), f"{package_name} needs an __all__ list of its public names"
    text = "\n".join((ROOT / page).read_text(encoding="utf-8") for page in pages)
    return package, names, text


def test_every_first_party_plugin_is_checked() -> None:
    installed = {ep.name for ep in importlib.metadata.entry_points(group="pleo_export.plugins")}
    folders = {path.parent.name for path in (ROOT / "plugins").glob("*/pyproject.toml")}
    assert folders == set(PLUGINS) and set(PLUGINS) <= installed, (folders, installed)


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugin_public_names_resolve_and_are_the_plugins_own(name: str) -> None:
    package, names, _ = _plugin(name)
    package_name = PLUGINS[name][0]
    assert names == sorted(set(names)), f"{package_name}.__all__: sort it, no repeats"
    missing = [n for n in names if not hasattr(package, n)]
    assert not missing, f"{package_name}.__all__ names what it does not define: {missing}"
    foreign = [
        n
        for n in names
        if not getattr(getattr(package, n), "__module__", package_name).startswith(package_name)
    ]
    assert not foreign, (
        f"{package_name}.__all__ re-exports {foreign}: import them from where they are defined"
    )
    (entry_point,) = [
        ep for ep in importlib.metadata.entry_points(group="pleo_export.plugins") if ep.name == name
    ]
    assert entry_point.attr in names, f"{package_name}.__all__ needs {entry_point.attr}"


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugin_defines_nothing_public_outside_its_all(name: str) -> None:
    package, names, _ = _plugin(name)
    package_name = PLUGINS[name][0]
    stray = sorted(
        attribute
        for attribute, value in vars(package).items()
        if not attribute.startswith("_")
        and attribute not in names
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == package_name
    )
    assert not stray, (
        f"{package_name} defines {stray} but leaves them out of __all__: add and document "
        "them, or prefix them with _"
    )


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugin_public_names_are_documented(name: str) -> None:
    _, names, text = _plugin(name)
    undocumented = [n for n in names if f"`{n}`" not in text]
    assert not undocumented, (
        f"document {undocumented} on {', '.join(PLUGINS[name][1])} (or drop them from "
        f"{PLUGINS[name][0]}.__all__)"
    )


def _plugin_imports(source: str, where: str) -> list[str]:
    """Imports of a first-party plugin in ``source`` that use more than its ``__all__``."""
    public = {package: _plugin(name)[1] for name, (package, _) in PLUGINS.items()}
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.Import):
            modules = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [(node.module, [alias.name for alias in node.names])]
        else:
            continue
        for module, imported in modules:
            top = module.split(".")[0]
            if top not in public:
                continue
            if module != top:
                found.append(f"{where}:{node.lineno}: imports {module} (internal to {top})")
            unknown = sorted(set(imported or ()) - set(public[top]))
            if unknown:
                found.append(f"{where}:{node.lineno}: {top} has no public {unknown}")
    return found


def test_docs_and_other_distributions_use_only_a_plugins_public_names() -> None:
    sources: list[tuple[str, str]] = []
    for page in sorted([*(ROOT / "docs").rglob("*.md"), *(ROOT / "plugins").glob("*/README.md")]):
        text = page.read_text(encoding="utf-8")
        for n, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.DOTALL)):
            try:
                ast.parse(block)
            except SyntaxError:
                continue  # a fragment (a signature, an excerpt), not a program
            sources.append((block, f"{page.relative_to(ROOT)} example {n + 1}"))
    for top in ("core", "connectors", "contrib", "tests", "sandbox", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if ".venv" not in path.parts:
                sources.append((path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))))
    assert len(sources) > 100, len(sources)
    found = [problem for source, where in sources for problem in _plugin_imports(source, where)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from pleo_export_report.collect import Line", "imports pleo_export_report.collect"),
        ("from pleo_export_metrics import log", "has no public ['log']"),
        ("import pleo_export_notify.delivery", "imports pleo_export_notify.delivery"),
    ],
)
def test_the_plugin_scan_catches_internal_imports(source: str, expected: str) -> None:
    assert any(expected in found for found in _plugin_imports(source, "x.py"))
