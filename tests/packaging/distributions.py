"""The project's distributions as their ``pyproject.toml`` files declare them.

Found through the workspace members of the root ``pyproject.toml``, so a new distribution
(a connector, the sandbox) is covered by the packaging tests as soon as it joins the workspace.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = REQUIREMENT_NAME.match(requirement)
    assert match, f"unparseable requirement {requirement!r}"
    return canonical(match.group(1))


@dataclass(frozen=True)
class Distribution:
    folder: Path
    project: dict[str, Any] = field(repr=False)
    tool: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.project["name"])

    @property
    def packages(self) -> list[Path]:
        """The import packages the wheel ships (hatch's ``packages`` setting)."""
        wheel = self.tool.get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
        return [self.folder / p for p in wheel.get("packages", [])]

    @property
    def import_names(self) -> set[str]:
        return {p.name for p in self.packages}

    @property
    def base_requirements(self) -> set[str]:
        return {requirement_name(r) for r in self.project.get("dependencies", [])}

    @property
    def extras(self) -> dict[str, set[str]]:
        optional = self.project.get("optional-dependencies", {})
        return {extra: {requirement_name(r) for r in reqs} for extra, reqs in optional.items()}

    @property
    def scripts(self) -> dict[str, str]:
        return dict(self.project.get("scripts", {}))

    def modules(self) -> list[Path]:
        return sorted(
            path
            for package in self.packages
            for path in package.rglob("*.py")
            if "__pycache__" not in path.parts
        )

    def module_name(self, path: Path) -> str:
        relative = path.relative_to(self.folder / "src").with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)


@cache
def distributions() -> tuple[Distribution, ...]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members = root["tool"]["uv"]["workspace"]["members"]
    found: list[Distribution] = []
    for pattern in members:
        for folder in sorted(ROOT.glob(pattern)):
            pyproject = folder / "pyproject.toml"
            if not pyproject.is_file():
                continue
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            found.append(Distribution(folder, data["project"], data.get("tool", {})))
    return tuple(found)
