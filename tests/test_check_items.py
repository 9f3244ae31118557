"""``pleo-export check`` previews the items of each pending job as the export would: on the
built-in sandbox with the real beancount starter ledger of ``pleo-export init beancount``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from pleo_export import app
from pleo_export.cli import main

HINT = "(`pleo-export run --dry-run --verbose` lists them)"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder after `pleo-export init beancount` (80 items pending in the sandbox)."""
    monkeypatch.delenv("PLEO_EXPORT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert _run("init", "beancount").exit_code == 0
    return tmp_path


def _dry_run() -> dict[str, Any]:
    done = _run("run", "--dry-run", "--json")
    (job,) = json.loads(done.output)["jobs"]
    assert isinstance(job, dict)
    return job


def _check_json(*args: str) -> tuple[int, dict[str, Any]]:
    checked = _run("check", "--json", *args)
    return checked.exit_code, json.loads(checked.output)


def _open_missing_accounts(folder: Path) -> None:
    """Open every account and vendor the dry run says the ledger lacks (an item fails on the
    first it lacks, so until the dry run finds none)."""
    for _ in range(5):
        messages = [f["message"] for f in _dry_run()["failures"]]
        if not messages:
            return
        accounts = {c for m in messages for c in re.findall(r'with pleo-code: "(\w+)"', m)}
        vendors = {c for m in messages for c in re.findall(r'carries vendor-code: "(\w+)"', m)}
        lines = [f'2000-01-01 open Expenses:Pleo:A{c}\n  pleo-code: "{c}"' for c in accounts]
        lines += [
            f'2000-01-01 open Liabilities:AccountsPayable:{c}\n  vendor-code: "{c}"'
            for c in vendors
        ]
        assert lines, messages
        with (folder / "books" / "main.beancount").open("a", encoding="utf-8") as ledger:
            ledger.write("\n".join(sorted(lines)) + "\n")


def test_after_init_check_stays_ok_and_notes_what_the_dry_run_would_fail(folder: Path) -> None:
    dry = _dry_run()
    assert dry["failure_types"]["account_unknown"] > 0  # the starter ledger has no expenses

    code, summary = _check_json()
    text = _run("check")

    assert code == 0 and summary["ok"] is True  # item failures never change the verdict
    (job,) = summary["pending_jobs"]
    assert job["ok"] is True
    assert job["items_checked"] == dry["items_total"] == 80
    assert job["would_post"] == dry["would_post"]
    assert job["would_fail"] == dry["failure_types"]
    assert "items_not_checked" not in job
    assert text.exit_code == 0
    lines = text.output.splitlines()
    assert lines[0] == "connector beancount: ok"
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(dry["failure_types"].items(), key=_most))
    assert lines[2] == (
        f"  items: {dry['would_post']} of 80 would post; {dry['failed']} would fail: "
        f"{reasons} {HINT}"
    )


def _most(pair: tuple[str, int]) -> tuple[int, str]:
    return -pair[1], pair[0]


def test_once_the_books_have_the_accounts_check_says_all_items_would_post(folder: Path) -> None:
    _open_missing_accounts(folder)
    assert _dry_run()["failed"] == 0

    code, summary = _check_json()
    text = _run("check")

    assert code == 0
    (job,) = summary["pending_jobs"]
    assert (job["items_checked"], job["would_post"], job["would_fail"]) == (80, 80, {})
    assert "  items: all 80 would post" in text.output.splitlines()


def test_the_preview_stops_at_max_items_and_says_how_many_were_left(folder: Path) -> None:
    code, summary = _check_json("--max-items", "10")
    text = _run("check", "--max-items", "10")

    assert code == 0
    (job,) = summary["pending_jobs"]
    assert job["items_checked"] == 10 and job["items_not_checked"] == 70
    assert job["would_post"] + sum(job["would_fail"].values()) == 10
    note = next(line for line in text.output.splitlines() if line.startswith("  items:"))
    assert note.startswith("  items: first 10 of 80 items checked: "), note
    # The master-data comparison still sees every item (drift's own tests pin its findings).
    assert summary["master_data"]["findings"]
    none = _check_json("--max-items", "0")[1]["pending_jobs"][0]
    assert (none["items_checked"], none["items_not_checked"]) == (0, 80)


def test_help_explains_the_item_preview(folder: Path) -> None:
    shown = _run("check", "--help").output
    assert "--max-items" in shown and "never changes the verdict" in shown


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_check_writes_nothing_to_pleo_the_ledger_or_the_state_store(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run("run").exit_code in (0, 1)  # a real run: posts 11 items, fills the state store
    assert (folder / "pleo-export-state.db").exists()
    built: list[Any] = []
    real_build = app.build_sandbox

    def keep(settings: Any) -> Any:
        made = real_build(settings)
        built.append(made[0])
        return made

    monkeypatch.setattr(app, "build_sandbox", keep)
    before = _snapshot(folder)

    checked = _run("check", "--json")

    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["pending_jobs"][0]["items_checked"] == 80
    assert _snapshot(folder) == before  # ledger, state store, reports: byte for byte
    (sandbox,) = built
    methods = {(r.method, r.path) for r in sandbox.requests}
    assert any(path == "/v3/export-items" for _, path in methods)
    writes = {(m, path) for m, path in methods if m != "GET" and not path.endswith(":search")}
    assert writes == set()  # reads only (a `:search` is a read that takes its filter as a body)


def test_each_item_is_read_once_and_prepared_once_for_the_preview_and_the_drift(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import Counter

    from pleo_export_beancount.connector import BeancountConnector

    prepared: Counter[str] = Counter()
    real_prepare = BeancountConnector.prepare

    async def counted(self: BeancountConnector, plan: Any) -> Any:
        prepared[plan.reference] += 1
        return await real_prepare(self, plan)

    built: list[Any] = []
    real_build = app.build_sandbox
    monkeypatch.setattr(app, "build_sandbox", lambda s: built.append(real_build(s)) or built[-1])
    monkeypatch.setattr(BeancountConnector, "prepare", counted)

    checked = _run("check", "--json")
    by_check = Counter(prepared)
    assert _run("run", "--dry-run").exit_code in (0, 1)

    assert checked.exit_code == 0, checked.output
    # The drift has findings on these items (tax codes the ledger lacks), and still each item
    # was prepared once: the drift took the preview's answer.
    assert json.loads(checked.output)["master_data"]["findings"]
    assert len(by_check) == 80 and set(by_check.values()) == {1}
    check_box, dry_box = (sandbox for sandbox, *_ in built)

    def item_pages(sandbox: Any) -> int:
        return sum(1 for r in sandbox.requests if r.path == "/v3/export-items")

    assert item_pages(check_box) == item_pages(dry_box) >= 1  # one pass, as the export reads


@pytest.mark.anyio
async def test_an_interrupted_jobs_items_final_in_pleo_are_counted_not_previewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from pleo_export.cli.check import _check_async
    from pleo_export.cli.common import Context
    from pleo_export.host import PluginHost
    from pleo_export.pleo.models import (
        ExportJobEventType,
        ExportJobItemStatus,
        UpdateExportJobItem,
    )
    from pleo_export_sandbox import DEMO_CHART, Sandbox
    from tests.sync.support import session_on, settings_for, watch_config

    cls = PluginHost(load_entry_points=False).load_connector("beancount")
    values = cls.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined]
    sandbox = Sandbox()
    company = sandbox.add_company(wallet_currency="GBP")
    job = sandbox.queue_export(company.id, count=20, seed=5)
    done = [i.accounting_entry_id for i in sandbox.job_items(job.id)[:5]]
    settings = settings_for(
        tmp_path, sandbox, company.id, SecretStr(company.api_key), "beancount", values
    )
    async with session_on(settings, sandbox) as (session, _):
        # An earlier run started the job and reported 5 items, then stopped.
        await session.client.send_event(job.id, ExportJobEventType.STARTED)
        now = datetime.now(UTC)
        updates = [
            UpdateExportJobItem(
                accounting_entry_id=entry,
                status=ExportJobItemStatus.SUCCESSFUL,
                exported_at=now,
                external_id=entry,
            )
            for entry in done
        ]
        await session.client.update_items(job.id, updates)
    config = watch_config(
        tmp_path,
        sandbox,
        company.id,
        "beancount",
        {"ledger": str(values["ledger"])},
        poll=1,
        listen=None,
    )
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", company.api_key)
    context = Context(config, "warning", None)

    code = await _check_async(context, True, transport=sandbox.transport())

    assert code == 0
    (checked,) = json.loads(capsys.readouterr().out)["pending_jobs"]
    assert checked["status"] == "in_progress"
    assert (checked["already_final"], checked["items_checked"]) == (5, 15)
    assert "items_not_checked" not in checked
    assert "; 5 already final in Pleo" in checked["items_note"]
