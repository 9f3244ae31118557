"""``pleo-export sync`` and the master-data part of ``pleo-export check`` on the built-in
sandbox with a real beancount ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pleo_export.cli import main
from pleo_export.connector import Capability
from pleo_export.demo import write_demo_config
from pleo_export.host import PluginHost
from pleo_export_sandbox import DEMO_CHART


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def beancount_folder(
    directory: Path, *, master_data: str = "empty", ledger_extra: str = ""
) -> Path:
    """A sandbox configuration (Pleo's master data ``master_data``) and a scaffolded ledger."""
    connector = PluginHost(load_entry_points=False).load_connector("beancount")
    config = write_demo_config(directory, connector.scaffold(directory, DEMO_CHART, "GBP"))  # type: ignore[attr-defined]
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('master_data = "empty"', f'master_data = "{master_data}"'))
    if ledger_extra:
        with (directory / "ledger" / "main.beancount").open("a", encoding="utf-8") as ledger:
            ledger.write(ledger_extra)
    return config


CLOSED_BT = "\n2020-01-01 close Liabilities:AccountsPayable:BTGroupPlc\n"


@pytest.fixture(autouse=True)
def _no_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLEO_EXPORT_CONFIG", raising=False)


def test_a_dry_run_shows_the_difference_as_a_table_and_writes_nothing(tmp_path: Path) -> None:
    config = beancount_folder(tmp_path)

    result = _run("--config", str(config), "sync", "--dry-run")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["KIND", "WHAT", "ACTION", "CODE", "NAME", "CHANGES"]
    assert any(line.split()[:4] == ["vendors", "vendor", "create", "V1001"] for line in lines)
    assert any(line.split()[:5] == ["tags", "tag", "group", "create", "DEPT"] for line in lines)
    assert "vendors: 8 to create, 0 to update, 0 to activate, 0 to archive, 0 unchanged" in lines
    assert "Dry run: nothing was written to Pleo." in result.output


def test_sync_json_reports_the_plan_and_the_writes(tmp_path: Path) -> None:
    config = beancount_folder(tmp_path, master_data="chart", ledger_extra=CLOSED_BT)

    result = _run("--config", str(config), "sync", "vendors", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (vendors,) = report["kinds"]
    assert report["dry_run"] is False
    assert report["writes"] == 1
    assert vendors["summary"]["archive"] == 1
    (change,) = vendors["changes"]
    assert (change["action"], change["code"]) == ("archive", "V1004")
    assert change["changes"] == [{"field": "state", "old": "active", "new": "archived"}]
    assert report["draft_vendors"] == []


def test_a_kind_the_connector_cannot_list_is_skipped_or_refused_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = beancount_folder(tmp_path)
    # This beancount cannot list tax codes or dimensions.
    cls = PluginHost(load_entry_points=False).load_connector("beancount")
    reduced = cls.manifest.capabilities - {Capability.READ_TAX_CODES, Capability.READ_DIMENSIONS}
    monkeypatch.setattr(cls, "manifest", cls.manifest.model_copy(update={"capabilities": reduced}))

    everything = _run("--config", str(config), "sync", "--dry-run")
    asked = _run("--config", str(config), "sync", "vendors", "tax-codes")

    assert everything.exit_code == 0, everything.output
    assert "vendors: 8 to create" in everything.output
    assert "tax-codes: skipped: connector 'beancount' does not declare read_tax_codes" in (
        everything.output
    )
    assert "tags: skipped: connector 'beancount' does not declare read_dimensions" in (
        everything.output
    )
    assert asked.exit_code == 2
    assert "tax-codes needs read_tax_codes" in asked.output


def test_check_reports_master_data_drift_and_stays_ready_when_no_item_would_fail(
    tmp_path: Path,
) -> None:
    in_step = beancount_folder(tmp_path / "a", master_data="chart")
    drifted = beancount_folder(tmp_path / "b", master_data="chart", ledger_extra=CLOSED_BT)

    ok = _run("--config", str(in_step), "check")
    empty_pleo = _run("--config", str(beancount_folder(tmp_path / "c")), "check")
    only_in_pleo = _run("--config", str(drifted), "check", "--json")

    assert ok.exit_code == 0, ok.output
    assert "master data: Pleo and the accounting system agree" in ok.output
    # What only Pleo lacks fails nothing: a note per kind, and the verdict stays ok.
    assert empty_pleo.exit_code == 0, empty_pleo.output
    assert "connector beancount: ok" in empty_pleo.output
    assert "master data: note: vendors: 8 in the accounting system but not in Pleo" in (
        empty_pleo.output
    )
    # A vendor open in Pleo and closed in the books is reported, but no pending item uses it:
    # a note with the fix, not a NOT READY (tests/sync/test_drift.py has the blocking case).
    assert only_in_pleo.exit_code == 0, only_in_pleo.output
    report = json.loads(only_in_pleo.output)
    assert report["ok"] is True
    (finding,) = report["master_data"]["findings"]
    assert (finding["kind"], finding["code"], finding["blocking"]) == ("vendors", "V1004", False)
    assert "pleo-export sync" in finding["problem"]


def test_sync_help_teaches_the_matching_and_the_safety(tmp_path: Path) -> None:
    result = _run("sync", "--help")

    assert result.exit_code == 0
    for phrase in ("external id", "archive only", "a second sync", "--dry-run", "create_vendors"):
        assert phrase in result.output, phrase


def test_the_demo_syncs_first_and_fails_only_the_deliberate_items(tmp_path: Path) -> None:
    result = _run("demo", "--dir", str(tmp_path / "demo"), "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    synced = {kind["kind"]: kind["summary"] for kind in summary["sync"]["kinds"]}
    assert synced["vendors"]["create"] == len(DEMO_CHART.vendors)
    assert synced["tax-codes"]["create"] == len(DEMO_CHART.tax_codes)
    assert synced["tags"]["create"] > 0
    jobs = summary["report"]["jobs"]
    vendor_items = sum(job["posted"] for job in jobs[2:])
    reasons = {f["reason_type"] for job in jobs for f in job["failures"]}
    assert len(jobs) == 3 and vendor_items > 0
    assert reasons == {"account_unknown"}  # the deliberate ones: an account not in the ledger


@pytest.mark.anyio
async def test_company_picks_which_company_of_an_organisation_is_synced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pleo_export.cli.common import Context
    from pleo_export.cli.sync import _sync_async
    from pleo_export_sandbox import Sandbox, SandboxConfig

    sandbox = Sandbox(SandboxConfig(seed_master_data=False))
    first, second = (sandbox.add_company(wallet_currency="GBP") for _ in range(2))
    key = sandbox.add_organisation_key([first.id, second.id])
    connector = PluginHost(load_entry_points=False).load_connector("beancount")
    values = connector.scaffold(tmp_path, DEMO_CHART, "GBP")  # type: ignore[attr-defined]
    config = tmp_path / "pleo-export.toml"
    config.write_text(
        f'[pleo]\nbase_url = "{sandbox.base_url}"\ncompany_ids = ["{first.id}", "{second.id}"]\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
        f'[connector]\nname = "beancount"\n[connector.settings]\nledger = "{values["ledger"]}"\n'
    )
    monkeypatch.setenv("PLEO_EXPORT_PLEO__API_KEY", key.secret)
    code = await _sync_async(
        Context(config, "warning", None),
        ("vendors",),
        False,
        True,
        second.id,
        transport=sandbox.transport(),
    )

    assert code == 0
    assert json.loads(capsys.readouterr().out)["writes"] == len(DEMO_CHART.vendors)
    assert len(sandbox.master_data(second.id).vendors) == len(DEMO_CHART.vendors)
    assert len(sandbox.master_data(first.id).vendors) == 0
