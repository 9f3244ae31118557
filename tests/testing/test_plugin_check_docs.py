"""The plugin example of ``docs/conformance.md`` ("Checking a plugin") runs as written: the
plugin module and its test are taken from the page and run in a child pytest session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "conformance.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_documented_plugin_example_passes_the_check(tmp_path: Path) -> None:
    section = PAGE.read_text(encoding="utf-8").split("## Checking a plugin", 1)[1]
    plugin, test = BLOCK.findall(section)[:2]
    assert "def pleo_export_job_finished" in plugin and "check_plugin(" in test
    (tmp_path / "pleo_failure_count.py").write_text(plugin, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_plugin_conformance.py").write_text(test, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
