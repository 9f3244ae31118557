"""The Pleo sandbox is its own distribution (``pleo-export-sandbox``), imported only when used.

Each test runs a fresh interpreter: the first proves that the core's modules (the command,
the wiring, the engine, the configuration) load without importing the simulator; the others
hide the simulator from the interpreter, as an installation without ``pleo-export-sandbox``
would be, and check that what needs it says which package to install, and that what does not
need it keeps working.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Run before the command: a meta-path finder that refuses pleo_export_sandbox, the way Python
# refuses a package that is not installed.
HIDE_SANDBOX = textwrap.dedent(
    """
    import sys

    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name == "pleo_export_sandbox" or name.startswith("pleo_export_sandbox."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NotInstalled())
    """
)


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cli_without_sandbox(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = HIDE_SANDBOX + f"\nfrom pleo_export.cli import main\nmain({list(args)!r})\n"
    return _python(code, cwd)


def test_the_core_loads_without_importing_the_sandbox(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        import pleo_export, pleo_export.cli, pleo_export.app, pleo_export.demo
        import pleo_export.config, pleo_export.engine, pleo_export.new_connector
        loaded = sorted(m for m in sys.modules if m.startswith("pleo_export_sandbox"))
        print(loaded)
        """
    )
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_demo_without_the_sandbox_names_the_package_to_install(tmp_path: Path) -> None:
    result = _cli_without_sandbox("demo", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "pleo-export-sandbox" in result.stderr
    assert "pip install 'pleo-export[sandbox]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pleo-export-demo" / "pleo-export.toml").exists()


def test_sandbox_serve_without_the_sandbox_names_the_package_to_install(tmp_path: Path) -> None:
    result = _cli_without_sandbox("sandbox", "serve", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "pleo-export sandbox serve needs the Pleo sandbox" in result.stderr
    assert "pleo-export-sandbox" in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_that_do_not_need_the_sandbox_work_without_it(tmp_path: Path) -> None:
    result = _cli_without_sandbox("connectors", "list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"beancount"' in result.stdout
