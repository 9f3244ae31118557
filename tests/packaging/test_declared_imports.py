"""Every runtime import of a distribution is one of its declared dependencies.

A fast, static check beside the fresh-install test (``test_fresh_install.py``): the
workspace installs every distribution and the dev tools together, so an import that only a
neighbour or a dev tool pulls in (``sniffio`` once was one) works here and breaks for a user
who installs one distribution on its own. The imports are read with :mod:`ast` from every
module a distribution ships:

- an import anywhere (module level or inside a function) must name a distribution declared in
  ``dependencies`` or in one of the extras;
- an import that runs when the module is imported (module level, outside
  ``if TYPE_CHECKING:``) must be in ``dependencies``, except in the modules that exist for one
  extra (the conformance kit ``pleo_export.testing`` needs ``[testing]``).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.packaging.distributions import Distribution, canonical, distributions

EXTRA_ONLY_MODULES = {"pleo_export.testing": "testing"}
"""Module prefix -> the extra it is documented to need; its module-level imports may use it."""


@dataclass(frozen=True)
class Import:
    module: str
    """The top-level module name, e.g. ``uvicorn`` for ``from uvicorn.config import Config``."""
    line: int
    eager: bool
    """Runs when the importing module is imported (not inside a function)."""


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str) -> list[Import]:
    """Absolute imports that can run, with whether they run at import time."""
    found: list[Import] = []

    def visit(node: ast.AST, eager: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, eager)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(a.name.split(".")[0], node.lineno, eager) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(Import(node.module.split(".")[0], node.lineno, eager))
        inner = eager and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(source), eager=True)
    return found


def _third_party(dist: Distribution) -> list[tuple[Path, Import]]:
    own = dist.import_names
    return [
        (path, found)
        for path in dist.modules()
        for found in runtime_imports(path.read_text(encoding="utf-8"))
        if found.module not in sys.stdlib_module_names
        and found.module != "__future__"
        and found.module not in own
    ]


DISTRIBUTIONS = distributions()
WORKSPACE = {module: canonical(d.name) for d in DISTRIBUTIONS for module in d.import_names}
"""Import name -> distribution for the workspace's own (editable) distributions."""


def _provider(module: str) -> str | None:
    if module in WORKSPACE:
        return WORKSPACE[module]
    providers = packages_distributions().get(module)
    return canonical(providers[0]) if providers else None


def test_distributions_found() -> None:
    names = {d.name for d in DISTRIBUTIONS}
    assert {"pleo-export", "pleo-export-beancount", "pleo-export-sftp"} <= names
    assert all(d.modules() for d in DISTRIBUTIONS), "a distribution without modules"


def test_finds_imports_in_functions_and_skips_type_checking() -> None:
    source = (
        "from typing import TYPE_CHECKING\nimport httpx\n"
        "if TYPE_CHECKING:\n    import psycopg\n"
        "def serve():\n    import uvicorn\n"
    )
    assert [(i.module, i.eager) for i in runtime_imports(source)] == [
        ("typing", True),
        ("httpx", True),
        ("uvicorn", False),
    ]


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_every_import_is_declared(dist: Distribution) -> None:
    declared = dist.base_requirements.union(*dist.extras.values())
    missing: list[str] = []
    for path, found in _third_party(dist):
        provider = _provider(found.module)
        if provider is None or provider not in declared:
            where = path.relative_to(dist.folder)
            missing.append(
                f"{where}:{found.line}: import {found.module} (from distribution "
                f"{provider or 'unknown'}) is not in dependencies or any extra"
            )
    assert not missing, f"{dist.name} ({dist.folder.name}/pyproject.toml):\n" + "\n".join(missing)


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_import_time_imports_are_base_dependencies(dist: Distribution) -> None:
    wrong: list[str] = []
    for path, found in _third_party(dist):
        if not found.eager:
            continue
        provider = _provider(found.module)
        allowed = set(dist.base_requirements)
        module = dist.module_name(path)
        for prefix, extra in EXTRA_ONLY_MODULES.items():
            if module == prefix or module.startswith(prefix + "."):
                allowed |= dist.extras.get(extra, set())
        if provider not in allowed:
            wrong.append(
                f"{module}:{found.line}: `import {found.module}` runs on import but "
                f"{provider} is not a base dependency (import it where it is used, or "
                "declare it in dependencies)"
            )
    assert not wrong, f"{dist.name}:\n" + "\n".join(wrong)
