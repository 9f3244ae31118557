"""The plugin conformance check (``pleo_export.testing.check_plugin``) on plugins whose verdict
is known: correct ones pass, each kind of mistake fails with a message naming it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, SecretStr

from pleo_export import PluginSettings, Problem, hookimpl
from pleo_export.testing import PluginCheckFailure, check_plugin
from pleo_export.testing.plugins import OBSERVING_HOOKS

pytestmark = pytest.mark.anyio

log = logging.getLogger("tests.plugin_check")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class WatcherSettings(PluginSettings):
    channel: str = "#finance"
    """Where the summary goes."""
    token: SecretStr
    """The chat service's token."""


class Watcher:
    """An observing plugin with settings, as a class."""

    settings_model = WatcherSettings

    def __init__(self) -> None:
        self.settings: WatcherSettings | None = None
        self.finished: list[str] = []

    def configure(self, settings: WatcherSettings) -> None:
        self.settings = settings

    @hookimpl
    def pleo_export_job_started(self, job: Any) -> None:
        log.info("job %s started, telling %s", job.id, self.settings)

    @hookimpl
    def pleo_export_item_outcome(self, outcome: Any) -> None:
        if not outcome.succeeded:
            log.info("an item failed")

    @hookimpl
    def pleo_export_job_finished(self, job: Any, report: Any) -> None:
        self.finished.append(report.final_event or "none")


booked_by_ledger: list[tuple[int, Any, Any]] = []


class Everything:
    """A plugin in every hook: validation, mapping and classification included."""

    @hookimpl
    def pleo_export_job_started(self, job: Any, resumed: bool) -> None: ...

    @hookimpl
    def pleo_export_validate_job(self, job: Any, manifest: Any) -> list[Problem] | None:
        return None

    @hookimpl
    def pleo_export_job_finished(self, job: Any, report: Any) -> None: ...

    @hookimpl
    def pleo_export_validate_item(self, item: Any) -> list[Problem] | None:
        return None

    @hookimpl(tryfirst=True)
    def pleo_export_map_item(self, plan: Any) -> Any:
        return None

    @hookimpl
    def pleo_export_classify_error(self, error: BaseException) -> Any:
        return None

    @hookimpl
    def pleo_export_item_outcome(
        self, job: Any, accounting_entry_id: str, outcome: Any
    ) -> None: ...

    @hookimpl
    def pleo_export_service_started(self, service: Any) -> Any:
        return None

    @hookimpl
    def pleo_export_round_finished(self, result: Any) -> None: ...

    @hookimpl
    def pleo_export_item_prepared(self, prepared: Any) -> None: ...

    @hookimpl
    def pleo_export_job_reconciled(self, references: Any, booked: Any, problem: Any) -> None:
        booked_by_ledger.append((len(references), booked, problem))


async def test_an_observing_plugin_with_settings_passes(tmp_path: Path) -> None:
    report = await check_plugin(
        Watcher, name="watcher", settings={"token": "tok-123456"}, work_dir=tmp_path
    )
    assert report.hooks == (
        "pleo_export_item_outcome",
        "pleo_export_job_finished",
        "pleo_export_job_started",
    )
    assert set(report.hooks) <= OBSERVING_HOOKS
    assert report.settings_fields == ("channel", "token")
    # The plugin was made to raise in each hook, and each failure was logged.
    assert set(report.isolated) == set(report.hooks)
    assert all(count >= 1 for count in report.isolated.values())
    assert report.failed_as_is == {}
    journal, vendor = report.outcome.jobs
    assert journal.status == "completed_with_errors"
    assert vendor.status == "failed" and vendor.failure_reason_type == "invalid_configuration"


async def test_a_plugin_in_every_hook_is_isolated_in_every_hook(tmp_path: Path) -> None:
    booked_by_ledger.clear()
    report = await check_plugin(Everything, name="everything", work_dir=tmp_path)
    assert len(report.hooks) == 11
    assert set(report.isolated) == set(report.hooks)
    # The check's ledger reads its entries back: the journal job's 5 booked items.
    [(references, booked, problem)] = booked_by_ledger
    assert references == 5 and problem is None
    assert len(booked) == 5 and all(entry.postings for entry in booked)


async def _problems(plugin: object, **kwargs: Any) -> str:
    with pytest.raises(PluginCheckFailure) as caught:
        await check_plugin(plugin, name="faulty", **kwargs)
    return str(caught.value)


async def test_an_unknown_hook_is_refused_by_name(tmp_path: Path) -> None:
    class Misspelt:
        @hookimpl
        def pleo_export_job_finishd(self, job: Any) -> None: ...

    text = await _problems(Misspelt, work_dir=tmp_path)
    assert "pleo_export_job_finishd" in text


async def test_an_argument_the_hook_does_not_have_is_refused(tmp_path: Path) -> None:
    class Greedy:
        @hookimpl
        def pleo_export_job_started(self, job: Any, company: Any) -> None: ...

    text = await _problems(Greedy, work_dir=tmp_path)
    assert "rejected by the hook manager" in text and "company" in text


async def test_async_hooks_and_wrappers_are_refused(tmp_path: Path) -> None:
    class Confused:
        @hookimpl
        async def pleo_export_job_started(self, job: Any) -> None: ...

        @hookimpl(wrapper=True)
        def pleo_export_job_finished(self, job: Any) -> Any:
            return (yield)

    text = await _problems(Confused, work_dir=tmp_path)
    assert "pleo_export_job_started is async" in text
    assert "pleo_export_job_finished is a hook wrapper" in text


async def test_settings_must_be_documented_plugin_settings_with_secret_fields(
    tmp_path: Path,
) -> None:
    class Relay(PluginSettings):
        api_key: str = Field("", description="not masked either")
        port: int = 25

    class Loose(PluginSettings):
        url: str
        password: str = Field(description="the password, not masked")
        relay: Relay | None = Field(None, description="where to relay")

    class Careless:
        settings_model = Loose

        def configure(self, settings: Loose) -> None: ...

        @hookimpl
        def pleo_export_job_started(self, job: Any) -> None: ...

    text = await _problems(Careless, settings={"url": "x"}, work_dir=tmp_path)
    assert "settings field 'url' is not documented" in text
    assert "settings field 'password' holds a secret but is not a SecretStr" in text
    assert "settings field 'relay.api_key' holds a secret but is not a SecretStr" in text
    assert "settings field 'relay.port' is not documented" in text


async def test_a_settings_model_that_is_not_plugin_settings_is_refused(tmp_path: Path) -> None:
    class Wrong:
        settings_model = dict

        @hookimpl
        def pleo_export_job_started(self, job: Any) -> None: ...

    text = await _problems(Wrong, work_dir=tmp_path)
    assert "not a subclass of pleo_export.PluginSettings" in text


async def test_invalid_settings_name_the_field(tmp_path: Path) -> None:
    text = await _problems(Watcher, settings={"tokn": "x"}, work_dir=tmp_path)
    assert "plugins.faulty.token: Field required" in text
    assert "plugins.faulty.tokn: unknown setting" in text


async def test_a_plugin_without_hooks_is_refused(tmp_path: Path) -> None:
    class Idle:
        pass

    assert "implements no hook" in await _problems(Idle, work_dir=tmp_path)


async def test_a_plugin_that_logs_its_secret_fails(tmp_path: Path) -> None:
    class Leaky(Watcher):
        @hookimpl
        def pleo_export_job_started(self, job: Any) -> None:
            assert self.settings is not None
            log.debug("using token %s", self.settings.token.get_secret_value())

    text = await _problems(Leaky, settings={"token": "tok-123456"}, work_dir=tmp_path)
    assert "holds the value of settings field 'token'" in text
    assert "tok-123456" not in text


async def test_a_base_exception_is_not_swallowed(tmp_path: Path) -> None:
    class Interrupting:
        @hookimpl
        def pleo_export_job_started(self, job: Any) -> None:
            raise KeyboardInterrupt  # not an Exception: the host lets it through, as Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        await check_plugin(Interrupting, name="interrupting", work_dir=tmp_path)


async def test_an_entry_point_name_that_is_not_installed_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(PluginCheckFailure, match=r"no entry point 'nonesuch' in group"):
        await check_plugin("nonesuch", work_dir=tmp_path)
