"""Throwaway installed distributions for plugin-discovery tests.

A distribution here is a real ``*.dist-info`` folder (METADATA + entry_points.txt) plus its
modules, in a directory that the test puts on ``sys.path`` (or ``PYTHONPATH`` for a
subprocess), so discovery goes through ``importlib.metadata`` exactly as for an installed
package.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_distribution(
    site: Path,
    name: str,
    version: str,
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str],
) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines: list[str] = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in entries.items()]
        lines.append("")
    (dist_info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    for module, source in modules.items():
        path = site / f"{module}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return site
