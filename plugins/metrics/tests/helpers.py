"""Shared by the metrics tests: a watch process against a sandbox on loopback, and scrapes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from pleo_export_beancount import BeancountConnector
from pleo_export_sandbox import DEMO_CHART

API_KEY = "pleo-api-key-metrics-0123456789abcdef"
COMPANY_ID = "7c2e4b1a-9d3f-4a6b-8c5d-1e2f3a4b5c6d"
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
URL_IN_LOG = re.compile(r"event=metrics\.listening url=(http://\S+)/metrics")
WEBHOOK_URL_IN_LOG = re.compile(r"event=webhook\.listening url=(http://\S+)")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def write_config(
    directory: Path,
    base_url: str,
    *,
    metrics: str | None = "127.0.0.1:0",
    webhooks: bool = False,
    state_url: str = "sqlite:///state.db",
    poll_interval: float = 0.5,
    extra: str = "",
) -> Path:
    ledger = BeancountConnector.scaffold(directory, DEMO_CHART, "GBP")["ledger"]
    hooks = f'[webhooks]\nlisten = "127.0.0.1:0"\nsecret = "{SECRET}"\n' if webhooks else ""
    table = f'[plugins.metrics]\nlisten = "{metrics}"\n' if metrics else ""
    path = directory / "pleo-export.toml"
    path.write_text(
        f"""
[pleo]
base_url = "{base_url}"
company_id = "{COMPANY_ID}"
retry_attempts = 4

[engine]
poll_interval = {poll_interval}

[state]
url = "{state_url}"

[connector]
name = "beancount"

[connector.settings]
ledger = "{ledger}"

{hooks}
{table}
{extra}
"""
    )
    return path


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    env["PLEO_EXPORT_PLEO__API_KEY"] = API_KEY
    return env


@contextmanager
def running(directory: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``pleo-export <args>`` as a subprocess in ``directory``, logging at info to
    ``stderr.txt``; stopped with SIGTERM (then killed) when the block ends."""
    with (
        (directory / "stderr.txt").open("w") as stderr,
        (directory / "stdout.txt").open("w") as stdout,
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "pleo_export.cli", "--log-level", "info", *args],
            cwd=directory,
            env=environment(),
            stdout=stdout,
            stderr=stderr,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def log_of(directory: Path) -> str:
    return (directory / "stderr.txt").read_text(encoding="utf-8")


async def url_from_log(
    directory: Path,
    process: subprocess.Popen[bytes],
    pattern: re.Pattern[str] = URL_IN_LOG,
) -> str:
    deadline = time.monotonic() + 60
    while True:
        match = pattern.search(log_of(directory))
        if match:
            return match.group(1)
        assert process.poll() is None, log_of(directory)[-3000:]
        assert time.monotonic() < deadline, log_of(directory)[-3000:]
        await anyio.sleep(0.1)


async def scrape(client: httpx.AsyncClient, base: str) -> Samples:
    response = await client.get(f"{base}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version="), response.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when a counter with these labels was never incremented."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, found), v in samples.items() if n == name and set(labels.items()) <= set(found)
    )
