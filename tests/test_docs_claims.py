"""Claims the documentation makes about behaviour, each checked against the behaviour.

Every test here pairs a sentence (or a snippet) of ``docs/`` with what the code does, so the
page and the code cannot drift apart silently: settings precedence, the SQLite state folder,
``auth status`` exit codes, what the in-process sandbox offers on each run, the tutorial's
manifest snippet, and that every page starts with its title.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic_settings import SettingsConfigDict

import pleo_export
from pleo_export import Capability, ConnectorSettings
from pleo_export.state import open_store

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TEMPLATE_README = ROOT / "core/src/pleo_export/templates/connector/README.md.tmpl"


def _text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8").split())


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    return subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class _Sample(ConnectorSettings):
    model_config = SettingsConfigDict(env_prefix="PLEO_EXPORT_SAMPLE_")
    path: str = "default"


@pytest.mark.parametrize(
    "page",
    [DOCS / "reference/connector.md", DOCS / "connectors.md", TEMPLATE_README],
    ids=lambda p: p.name,
)
def test_connector_settings_precedence_is_stated_as_it_works(
    page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLEO_EXPORT_SAMPLE_PATH", "from-environment")
    # The engine passes [connector.settings] as keyword arguments.
    assert _Sample(path="from-file").path == "from-environment"
    text = _text(page)
    assert "environment variable wins over the same key in the file" in text
    assert "file wins" not in text


@pytest.mark.anyio
async def test_a_missing_sqlite_folder_is_created_as_documented(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/not/yet/there/state.db")
    await store.open()
    await store.close()
    assert (tmp_path / "not/yet/there/state.db").is_file()
    text = _text(DOCS / "configuration.md")
    assert "A missing folder is created on first use" in text
    assert "The folder must exist" not in text


def test_auth_status_exit_codes_are_the_documented_ones(tmp_path: Path) -> None:
    text = _text(DOCS / "configuration.md")
    assert "It exits 0 when authorised; 1 when no login has been completed yet" in text
    assert "2 when OAuth is not configured" in text
    unconfigured = _cli("auth", "status", cwd=tmp_path)
    assert unconfigured.returncode == 2, unconfigured.stderr
    assert "oauth.client_id" in unconfigured.stderr
    never_logged_in = _cli(
        "auth",
        "status",
        cwd=tmp_path,
        PLEO_EXPORT_OAUTH__CLIENT_ID="pleo-export-docs",
        PLEO_EXPORT_OAUTH__CLIENT_SECRET="docs-secret",
        PLEO_EXPORT_PLEO__BASE_URL="http://127.0.0.1:9",
        PLEO_EXPORT_STATE__URL=f"sqlite:///{tmp_path}/state.db",
    )
    assert never_logged_in.returncode == 1, never_logged_in.stderr
    assert "not installed" in never_logged_in.stdout


def _dry_run(folder: Path) -> tuple[set[str], set[str]]:
    done = _cli("run", "--dry-run", "--json", cwd=folder)
    assert done.returncode in (0, 1), done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    jobs = {job["job_id"] for job in data["jobs"]}
    entries = {entry["accounting_entry_id"] for entry in data["would_post"]}
    return jobs, entries


def test_the_in_process_sandbox_offers_the_same_expenses_in_new_jobs(tmp_path: Path) -> None:
    assert _cli("init", "beancount", cwd=tmp_path).returncode == 0
    first_jobs, first_entries = _dry_run(tmp_path)
    second_jobs, second_entries = _dry_run(tmp_path)
    assert first_entries and first_entries == second_entries
    assert first_jobs and not first_jobs & second_jobs
    text = _text(DOCS / "configuration.md")
    assert "the job ids differ from run to run" in text
    assert "same jobs" not in text


def _section(page: Path, heading: str) -> str:
    text = page.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def test_the_tutorial_manifest_snippet_is_valid_to_paste() -> None:
    section = _section(DOCS / "tutorial-connector.md", "## 7. Add receipts")
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    (snippet,) = [b for b in blocks if "ConnectorManifest(" in b]

    class AcmeBooksSettings(ConnectorSettings):
        model_config = SettingsConfigDict(env_prefix="PLEO_EXPORT_ACME_BOOKS_")

    namespace: dict[str, Any] = {
        **{name: getattr(pleo_export, name) for name in pleo_export.__all__},
        "ClassVar": ClassVar,
        "AcmeBooksSettings": AcmeBooksSettings,
    }
    exec(compile(snippet, "tutorial section 7", "exec"), namespace)  # noqa: S102 - our own docs
    manifest = namespace["AcmeBooksConnector"].manifest
    assert Capability.ATTACHMENTS in manifest.capabilities
    assert manifest.limits.max_attachment_bytes == 10_000_000
    assert manifest.id == "acme-books"


@pytest.mark.parametrize(
    "page", sorted(DOCS.rglob("*.md")), ids=lambda p: p.relative_to(DOCS).as_posix()
)
def test_every_page_starts_with_its_title(page: Path) -> None:
    first = page.read_text(encoding="utf-8").lstrip("\n").splitlines()[0]
    assert first.startswith("# "), f"{page.name} starts with {first[:60]!r}, not its title"
