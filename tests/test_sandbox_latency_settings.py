"""The ``[sandbox]`` latency settings: validated with the setting named, passed to the sandbox,
and refused by ``pleo-export sandbox serve`` before it listens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pleo_export.app import build_sandbox
from pleo_export.config import ConfigError, load_settings


def _config(tmp_path: Path, sandbox: str) -> Path:
    path = tmp_path / "pleo-export.toml"
    path.write_text(f'[pleo]\nbase_url = "sandbox"\n\n[sandbox]\n{sandbox}\n')
    return path


def test_latency_settings_reach_the_sandbox(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, "api_latency = 0.05\nfile_latency = 0.25"))
    sandbox, _, _ = build_sandbox(settings)
    assert sandbox.config.api_latency == 0.05
    assert sandbox.config.file_latency == 0.25
    default, _, _ = build_sandbox(load_settings(_config(tmp_path, "")))
    assert (default.config.api_latency, default.config.file_latency) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("api_latency = -0.05", "sandbox.api_latency: Input should be greater than or equal to 0"),
        ("file_latency = 30", "sandbox.file_latency: Input should be less than or equal to 10"),
        ('api_latency = "fast"', "sandbox.api_latency: Input should be a valid number"),
    ],
)
def test_bad_latency_names_the_setting(tmp_path: Path, line: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, line))
    assert named in str(caught.value)


def test_sandbox_serve_refuses_a_bad_latency(tmp_path: Path) -> None:
    config = _config(tmp_path, "file_latency = -1")
    env = {k: v for k, v in os.environ.items() if k != "PLEO_EXPORT_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", "--config", str(config), "sandbox", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "sandbox.file_latency" in done.stderr
    assert "listening" not in done.stdout
