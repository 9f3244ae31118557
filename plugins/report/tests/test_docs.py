"""docs/plugins.md: its Python example runs as written, and its settings table matches the
settings model."""

from __future__ import annotations

import re
from pathlib import Path

from pleo_export_report import ReportSettings

PAGE = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


def test_the_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, "docs/plugins.md has no Python example"
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), {})  # noqa: S102 - our own documentation


def test_every_setting_is_documented() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name in ReportSettings.model_fields:
        assert f"| `{name}` |" in text, name
