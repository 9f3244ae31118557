"""The plugin's settings, its readiness rule, and a listen address that cannot be used."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from pleo_export import (
    ExportJobItemFailureReasonType,
    ItemOutcome,
    LeaseState,
    PleoCalls,
    RoundResult,
)
from pleo_export_metrics import MetricsPlugin, MetricsSettings
from pleo_export_metrics.endpoints import Readiness, is_loopback, warn_if_exposed

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@dataclass
class FakeService:
    """A ServiceView whose state the test sets."""

    poll_interval: float = 30.0
    started_at: datetime = NOW - timedelta(hours=1)
    last_round: RoundResult | None = None
    last_success: RoundResult | None = None
    round_started_at: datetime | None = None
    held: tuple[str, ...] = field(default_factory=tuple)

    def pleo_calls(self) -> PleoCalls:
        return PleoCalls(
            requests=3,
            by_endpoint={"GET /v3/export-jobs": 3},
            by_status={200: 2, 429: 1},
            rate_limited=1,
            retries=1,
            budget_wait_seconds=12.5,
            retry_wait_seconds=1.0,
        )

    def leases(self) -> LeaseState:
        return LeaseState(worker="w1", companies=("c1", "c2"), held=self.held, leased_elsewhere=())


def _round(ago: float, *, succeeded: bool = True) -> RoundResult:
    return RoundResult(
        finished_at=NOW - timedelta(seconds=ago),
        succeeded=succeeded,
        jobs=0,
        error=None if succeeded else "connection refused",
    )


@pytest.mark.parametrize("listen", ["9464", "localhost", "a b:1", "127.0.0.1:70000", "[::1:1"])
def test_a_bad_listen_address_names_the_setting(listen: str) -> None:
    with pytest.raises(ValidationError, match=r"plugins\.metrics\.listen"):
        MetricsSettings(listen=listen)


def test_listen_forms_that_are_accepted() -> None:
    for listen in ("127.0.0.1:9464", "0.0.0.0:0", "[::1]:9464", "metrics-host:9464"):
        assert MetricsSettings(listen=listen).listen == listen
    assert MetricsSettings().listen is None


def test_readiness_follows_the_rounds() -> None:
    service = FakeService()
    readiness = Readiness(service)
    assert readiness.max_age == 90  # three poll intervals
    assert not readiness.check(NOW).ready  # nothing finished yet
    service.round_started_at = NOW
    verdict = readiness.check(NOW)
    assert not verdict.ready and "first round" in verdict.reason
    service.round_started_at = None
    service.last_round = service.last_success = _round(10)
    assert readiness.check(NOW).ready
    service.round_started_at = NOW  # a long job: still ready while it runs
    assert readiness.check(NOW + timedelta(hours=2)).ready
    service.round_started_at = None
    stale = readiness.check(NOW + timedelta(seconds=200))
    assert not stale.ready and "no round has succeeded for 210 s" in stale.reason
    service.last_round = _round(0, succeeded=False)
    failed = readiness.check(NOW)
    assert not failed.ready and "connection refused" in failed.reason
    assert Readiness(FakeService(poll_interval=1), None).max_age == 60
    assert Readiness(FakeService(), 5).max_age == 5


def test_counts_from_the_hooks_and_the_service_view() -> None:
    from prometheus_client import generate_latest

    plugin = MetricsPlugin()
    plugin.pleo_export_item_outcome(outcome=ItemOutcome(succeeded=True))
    plugin.pleo_export_item_outcome(outcome=ItemOutcome(succeeded=True, recovered=True))
    reason = ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN
    plugin.pleo_export_item_outcome(
        outcome=ItemOutcome(succeeded=False, failure_reason_type=reason)
    )
    failed = _round(0, succeeded=False)
    plugin.pleo_export_round_finished(result=failed)
    service = FakeService(held=("c2",), last_round=failed)
    assert plugin.pleo_export_service_started(service=service) is None  # listen unset
    text = generate_latest(plugin.registry).decode()
    for line in (
        'pleo_export_items_total{outcome="posted",reason=""} 1.0',
        'pleo_export_items_total{outcome="recovered",reason=""} 1.0',
        f'pleo_export_items_total{{outcome="failed",reason="{reason.value}"}} 1.0',
        'pleo_export_rounds_total{result="failed"} 1.0',
        'pleo_export_pleo_requests_total{endpoint="GET /v3/export-jobs"} 3.0',
        'pleo_export_pleo_responses_total{status="429"} 1.0',
        "pleo_export_pleo_rate_limited_total 1.0",
        "pleo_export_pleo_budget_wait_seconds_total 12.5",
        'pleo_export_lease_held{company="c1",worker="w1"} 0.0',
        'pleo_export_lease_held{company="c2",worker="w1"} 1.0',
        "pleo_export_last_round_succeeded 0.0",
    ):
        assert line in text.splitlines(), line


def test_a_listen_address_in_use_stops_the_service_with_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    cli = [sys.executable, "-m", "pleo_export.cli"]
    done = subprocess.run(
        [*cli, "init", "beancount"], cwd=tmp_path, env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "pleo-export.toml"
        config.write_text(
            config.read_text() + f'\n[plugins.metrics]\nlisten = "127.0.0.1:{port}"\n'
        )
        done = subprocess.run(
            [*cli, "run", "--watch", "--quiet"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert f"plugins.metrics.listen '127.0.0.1:{port}'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.anyio
async def test_the_plugin_passes_the_plugin_conformance_check(tmp_path: Path) -> None:
    from pleo_export.testing import check_plugin

    report = await check_plugin("metrics", settings={"listen": "127.0.0.1:0"}, work_dir=tmp_path)
    assert "pleo_export_service_started" in report.hooks


def test_nothing_is_served_unless_listen_names_an_address() -> None:
    plugin = MetricsPlugin()
    assert plugin.settings.listen is None
    assert plugin.pleo_export_service_started(FakeService()) is None
    assert plugin.url is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),  # noqa: S104 - only compared, never bound
        ("::", False),
        ("10.0.0.5", False),
        ("metrics-host", False),
    ],
)
def test_only_loopback_listens_without_a_warning(
    host: str, loopback: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pleo_export.plugins.metrics"):
        exposed = warn_if_exposed(host, f"http://{host}:9464")
    assert is_loopback(host) is loopback and exposed is not loopback
    warnings = [r for r in caplog.records if r.__dict__.get("event") == "metrics.exposed"]
    assert len(warnings) == (0 if loopback else 1)
    if warnings:
        assert "no authentication" in warnings[0].getMessage()
        assert "Protecting the endpoints" in warnings[0].getMessage()


@pytest.mark.anyio
async def test_a_loopback_listen_is_served_on_loopback_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plugin = MetricsPlugin()
    plugin.configure(MetricsSettings(listen="127.0.0.1:0"))
    served = plugin.pleo_export_service_started(FakeService())
    assert served is not None
    with caplog.at_level(logging.INFO, logger="pleo_export.plugins.metrics"):
        async with served as url:
            assert str(url).startswith("http://127.0.0.1:")
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{plugin.url}/healthz")).json() == {"status": "ok"}
    events = [r.__dict__.get("event") for r in caplog.records]
    assert "metrics.listening" in events and "metrics.exposed" not in events
