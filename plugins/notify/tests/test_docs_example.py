"""docs/notify.md and the plugin's README: the signature check, run on a request the plugin
really sent; the settings examples are accepted; the install command works from a clone; the
`plugins list` line and the Python example are what the plugin does."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pleo_export_notify import NotifySettings
from pleo_export_notify.delivery import post_webhook
from pleo_export_notify.settings import WebhookSettings
from plugins.notify.tests.servers import Receiver
from tests.support.doc_examples import (
    check_toml,
    commands,
    install_problems,
    pleo_export_problems,
    program,
)

PAGE = Path(__file__).resolve().parents[3] / "docs" / "notify.md"


def _documented_verifier() -> Any:
    section = PAGE.read_text(encoding="utf-8").split("### Verifying the signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verified"]


def test_the_documented_check_accepts_a_real_request_and_refuses_tampering(
    receiver: Receiver,
) -> None:
    verified = _documented_verifier()
    settings = WebhookSettings.model_validate({"url": receiver.url, "secret": "s3cret-hmac"})
    assert post_webhook(settings, {"type": "pleo_export.job_finished", "failed": 2}) == 204
    (request,) = receiver.requests
    assert verified("s3cret-hmac", request.headers, request.body)
    assert not verified("another-secret", request.headers, request.body)
    assert not verified("s3cret-hmac", request.headers, request.body.replace(b"2", b"0"))
    stale = request.headers | {"X-Pleo-Export-Timestamp": "1000000000"}
    assert not verified("s3cret-hmac", stale, request.body)


PAGES = [PAGE, PAGE.parents[1] / "plugins" / "notify" / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_settings_examples_are_accepted_as_written(page: Path, tmp_path: Path) -> None:
    examples = check_toml(page, tmp_path)
    (table,) = [e["plugins"]["notify"] for e in examples if "notify" in e.get("plugins", {})]
    settings = NotifySettings.model_validate(table)
    assert settings.channels == ["email", "webhook"]
    assert settings.email is not None and settings.email.security == "starttls"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_install_commands_take_nothing_first_party_from_pypi(page: Path) -> None:
    assert install_problems(page, "./plugins/notify") == []


def test_plugins_list_shows_what_the_page_says() -> None:
    (command,) = [c for c in commands(PAGE) if program(c)[0] == "pleo-export"]
    assert pleo_export_problems(command) == []
    documented = re.search(r"pleo-export plugins list\s+# (.*)", PAGE.read_text("utf-8"))
    assert documented is not None
    executable = Path(sys.executable).parent / "pleo-export"
    done = subprocess.run(
        [str(executable), *shlex.split(command)[1:]], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    shown = [" ".join(line.split()) for line in done.stdout.splitlines()]
    assert " ".join(documented[1].split()) in shown


def test_the_python_api_example_runs() -> None:
    section = PAGE.read_text(encoding="utf-8").split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    exec(compile(code.group(1), str(PAGE), "exec"), {})  # noqa: S102 - our own docs
